"""benchmarks/bench_transfer_terms: a term set the device's costs follow is found by the fit, and
one they do not follow is judged worse on held-out networks (so its verdict on the board
means something)."""

from __future__ import annotations

from edgenas.cost.count import count
from edgenas.profile.records import TimedNetwork
from edgenas.space import get_space
from benchmarks.bench_transfer_terms import SETS, judge, terms


def _items(start: int, n: int, ms: object) -> list[TimedNetwork]:
    space = get_space("cifar")
    archs = [space.sample(start + i) for i in range(n)]
    return [TimedNetwork(a.to_json(), ms(a)) for a in archs]  # type: ignore[operator]


def test_terms_add_up_to_the_counted_macs() -> None:
    arch = get_space("cifar").sample(3)
    t = terms(arch, None)
    # the classifier's linear layer is the only MAC the unit terms leave out
    assert 0.9 * count(arch).macs / 1e6 <= t["macs"] <= count(arch).macs / 1e6
    assert abs(t["pointwise"] + t["dense_kxk"] - t["dense_mmacs"]) < 1e-9
    assert abs(t["dw_k3"] + t["dw_k5"] + t["dw_k7"] - t["depthwise_mmacs"]) < 1e-9


def test_a_device_that_charges_for_hswish_is_found_by_the_op_kind_terms() -> None:
    def device_ms(arch: object) -> float:  # a device on which hswish is dear
        t = terms(arch, None)  # type: ignore[arg-type]
        return 0.5 + 0.02 * t["macs"] + 40.0 * t["hswish"] + 0.01 * t["ops"]

    fitting, held_out = _items(0, 40, device_ms), _items(1000, 20, device_ms)
    kinds = judge(SETS["by kind of op"], fitting, held_out, source=None)
    macs = judge(SETS["MACs only"], fitting, held_out, source=None)
    assert kinds["held_out"]["within_10pct"] == 1.0
    assert kinds["weights"]["hswish"] > 20.0
    assert macs["held_out"]["mean_abs_pct_error"] > 3 * kinds["held_out"]["mean_abs_pct_error"]
