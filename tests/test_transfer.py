"""Transfer profiling: a device's table from another device's table and a few networks.

Both devices are scripted (`scripted_device`): their times come from known cost models that
differ in per-call cost, cost per MAC, how much dearer depth-wise convolutions are and how
networks fuse, so the test knows what the transfer has to learn. The profile, the transfer,
the tables and the CLI are the real code.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from edgenas.cli import main
from edgenas.errors import ProfileError
from edgenas.profile import anchor as anchor_module
from edgenas.profile import transfer as transfer_module
from edgenas.profile.lut import load_lut, lut_path, save_lut
from edgenas.profile.profiler import FITTING_SEED, arch_stream, profile
from edgenas.profile.transfer import MIN_NETWORKS, check_source, worse_than_macs
from edgenas.space import SPACES, get_space
from edgenas.device.descriptor import get_device
from scripted_device import CostModel, DeviceKilled, scripted_device
from tiny_space import tiny_space

SOURCE_COST = CostModel(per_call_ms=0.05, ms_per_mmac=0.02, depthwise_factor=4.0)
#: The new device: dearer calls, slower per MAC, depth-wise far dearer, some fusion.
TARGET_COST = CostModel(per_call_ms=0.2, ms_per_mmac=0.06, depthwise_factor=10.0,
                        network_factor=0.9)


@pytest.fixture(scope="module")
def source_profiles(tmp_path_factory) -> Path:
    """A profiles folder holding host-cpu's fully measured tiny table (scripted SOURCE_COST)."""
    monkeypatch = pytest.MonkeyPatch()
    try:
        scripted_device(monkeypatch, SOURCE_COST)
        profiles = tmp_path_factory.mktemp("profiles")
        lut = profile(get_device("host-cpu"), tiny_space(), calibrate=30)
        save_lut(lut, lut_path(profiles, "host-cpu", "tiny"))
    finally:
        monkeypatch.undo()
    return profiles


@pytest.fixture
def new_device(source_profiles, tmp_path, monkeypatch):
    """./devices/new-board.toml (a second local device), ./profiles with the source table,
    the tiny space registered, and the scripted TARGET_COST device timing everything."""
    monkeypatch.setitem(SPACES, "tiny", tiny_space)
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "new-board.toml").write_text(
        'name = "new-board"\n[connection]\nkind = "local"\n[runtime]\nthreads = 2\n')
    shutil.copytree(source_profiles, tmp_path / "profiles")
    monkeypatch.chdir(tmp_path)
    device = scripted_device(monkeypatch, TARGET_COST)
    monkeypatch.setattr(transfer_module, "DeviceSession", device.session)
    monkeypatch.setattr(anchor_module, "DeviceSession", device.session)
    return device


def _transfer(*extra: str) -> int:
    return main(["profile", "new-board", "--space", "tiny", "--from", "host-cpu",
                 "--validate", "30", *extra])


def test_a_transfer_from_20_networks_predicts_held_out_networks_within_10_percent(
        new_device, capsys) -> None:
    assert _transfer("--networks", "20") == 0
    lut = load_lut(lut_path("profiles", "new-board", "tiny"))
    assert lut.validation["within_10pct"] >= 0.95 and lut.validation["kendall_tau"] >= 0.9
    assert lut.transfer["source"] == "host-cpu/tiny" and lut.transfer["networks"] == 20
    assert lut.transfer["units_timed"] == 0
    # no unit was timed on the new device: 20 + 30 networks, two rounds each, plus references
    assert "unit" not in new_device.kinds and new_device.kinds.count("network") == 2 * (20 + 30)
    assert len(lut.networks["fitting"]) == 20 and len(lut.networks["validation"]) == 30
    printed = capsys.readouterr().out
    assert "transferred from host-cpu/tiny with 20 networks" in printed


def test_a_transfer_beats_a_macs_only_line_on_a_device_where_depthwise_is_dear(
        new_device, capsys) -> None:
    assert _transfer("--networks", "20") == 0
    lut = load_lut(lut_path("profiles", "new-board", "tiny"))
    macs = lut.transfer["macs_only"]
    assert lut.validation["mean_abs_pct_error"] < macs["mean_abs_pct_error"] / 2
    assert not worse_than_macs(lut)
    assert "worse than counting MACs" not in capsys.readouterr().out


def test_a_transfer_killed_while_it_times_networks_keeps_them(new_device) -> None:
    new_device.killed_when = lambda: new_device.kinds.count("network") >= 30
    with pytest.raises(DeviceKilled):
        _transfer("--networks", "20")
    partial = load_lut(lut_path("profiles", "new-board", "tiny"))
    kept = sum(len(item.rounds) for item in partial.networks["fitting"])
    assert kept > 0
    new_device.killed_when, before = None, new_device.timed
    assert _transfer("--networks", "20") == 0
    lut = load_lut(lut_path("profiles", "new-board", "tiny"))
    assert lut.validation["within_10pct"] >= 0.95
    # 20 x 2 table-fitting and 30 x 2 held-out timings in all; the kept ones are not redone
    assert new_device.kinds[before:].count("network") == 2 * (20 + 30) - kept


def test_a_transfer_timed_on_the_random_only_stream_adds_the_cheap_archs_once(new_device) -> None:
    """A table transferred before cheap archs joined the table-fitting stream (2026-12-08)
    keeps the networks it shares with the new stream and times the cheap ones, once."""
    assert _transfer("--networks", "20") == 0
    path = lut_path("profiles", "new-board", "tiny")
    lut = load_lut(path)
    timed = {item.arch: item for item in lut.networks["fitting"]}
    template = lut.networks["fitting"][0]
    lut.networks["fitting"] = [timed.get(arch.to_json()) or replace(template, arch=arch.to_json())
                               for arch in arch_stream(tiny_space(), FITTING_SEED, 20)]
    save_lut(lut, path)
    before = new_device.timed
    assert _transfer("--networks", "20") == 0
    assert new_device.kinds[before:].count("network") == 2 * 5  # the 5 cheap archs, 2 rounds
    assert len(load_lut(path).networks["fitting"]) == 20
    again = new_device.timed
    assert _transfer("--networks", "20") == 0
    assert new_device.kinds[again:].count("network") == 0


def test_a_connection_lost_mid_chunk_keeps_every_network_the_device_finished(
        new_device, capsys) -> None:
    # 12 networks into the first chunk of 20: a board's chunk is minutes of timing
    new_device.lost_when = lambda: new_device.kinds.count("network") >= 12
    assert _transfer("--networks", "20") == 2
    assert "lost the connection" in capsys.readouterr().err
    partial = load_lut(lut_path("profiles", "new-board", "tiny"))
    assert sum(len(item.rounds) for item in partial.networks["fitting"]) == 12
    new_device.lost_when, before = None, new_device.timed
    assert _transfer("--networks", "20") == 0
    assert new_device.kinds[before:].count("network") == 2 * (20 + 30) - 12


def test_networks_below_the_minimum_is_one_line_with_the_minimum(new_device, capsys) -> None:
    assert _transfer("--networks", str(MIN_NETWORKS - 1)) == 2
    err = capsys.readouterr().err
    assert f"at least {MIN_NETWORKS} networks" in err and err.count("\n") == 1


def test_a_source_of_another_space_is_refused(source_profiles) -> None:
    lut = load_lut(lut_path(source_profiles, "host-cpu", "tiny"))
    with pytest.raises(ProfileError, match="a table of space 'tiny'; --from needs"):
        check_source(lut, get_space("cifar"), "x.json")


def test_a_partial_source_is_refused(source_profiles) -> None:
    lut = load_lut(lut_path(source_profiles, "host-cpu", "tiny"))
    lut.entries.pop(next(iter(lut.entries)))
    with pytest.raises(ProfileError, match="is partial: 1 of .* units have no entry"):
        check_source(lut, tiny_space(), "x.json")


def test_a_missing_source_table_names_the_command_that_makes_it(new_device, capsys) -> None:
    assert main(["profile", "new-board", "--space", "tiny", "--from", "raspberry-pi-5"]) == 2
    assert "edgenas profile raspberry-pi-5 --space tiny" in capsys.readouterr().err


def test_a_transfer_on_a_device_unrelated_to_its_source_still_beats_counting_macs(
        new_device, capsys) -> None:
    # every convolution has a cost of its own, unrelated to the source's or to its MACs:
    # the work mix still explains more than one line through MACs
    new_device.cost = CostModel(ms_per_mmac=0.06, scrambled=True)
    assert _transfer("--networks", "20") == 0
    lut = load_lut(lut_path("profiles", "new-board", "tiny"))
    assert lut.validation["mean_abs_pct_error"] < lut.transfer["macs_only"]["mean_abs_pct_error"]
    assert not worse_than_macs(lut)


def test_worse_than_macs_compares_mean_errors_on_the_same_held_out_networks(
        source_profiles) -> None:
    lut = load_lut(lut_path(source_profiles, "host-cpu", "tiny"))
    lut.validation = {"mean_abs_pct_error": 12.0}
    lut.transfer = {"macs_only": {"mean_abs_pct_error": 11.0}}
    assert worse_than_macs(lut)
    lut.transfer = {"macs_only": {"mean_abs_pct_error": 13.0}}
    assert not worse_than_macs(lut)
    lut.transfer = {}  # not judged on held-out networks: nothing to say
    assert not worse_than_macs(lut)


def test_the_profile_offers_the_plain_profile_when_the_transfer_is_worse(
        new_device, capsys, monkeypatch) -> None:
    from edgenas.commands import devices

    monkeypatch.setattr(devices, "worse_than_macs", lambda lut: True)  # forced verdict
    assert _transfer("--networks", "20") == 0
    printed = capsys.readouterr().out
    assert "worse than counting MACs" in printed
    assert "edgenas profile new-board --space tiny --time-budget" in printed


# -- the table's level at the time of use ---------------------------------------------------

def test_a_table_built_in_a_fast_stretch_is_reanchored_to_a_slow_one(new_device, capsys) -> None:
    from edgenas.profile.latency import LatencyModel
    from edgenas.profile.measure import measure_latency

    assert _transfer("--networks", "20") == 0
    path = lut_path("profiles", "new-board", "tiny")
    device, space = get_device("new-board"), tiny_space()
    archs = {f"a{i}": space.sample(9_000 + i) for i in range(20)}
    new_device.load = 1.3  # a slower stretch, minutes later
    slow = measure_latency(device, archs)  # as a user times them now
    stale = LatencyModel(load_lut(path))
    bias = sorted(stale.predict(a) / slow[n] for n, a in archs.items())[10]
    assert bias == pytest.approx(1 / 1.3, rel=0.02)  # every prediction 23 % too fast

    assert main(["profile", "new-board", "--space", "tiny", "--reanchor"]) == 0
    assert "predictions x 1.300" in capsys.readouterr().out
    anchored = load_lut(path)
    model = LatencyModel(anchored)
    assert all(model.predict(a) == pytest.approx(slow[n], rel=0.02) for n, a in archs.items())
    # its own held-out times stay at the yardstick: the validation is unchanged
    assert LatencyModel(anchored, anchored=False).predict(archs["a0"]) == pytest.approx(
        stale.predict(archs["a0"]))


def test_a_recalibration_drops_the_anchor_of_the_old_yardstick(new_device) -> None:
    assert _transfer("--networks", "20") == 0
    new_device.load = 1.3
    assert main(["profile", "new-board", "--space", "tiny", "--reanchor"]) == 0
    path = lut_path("profiles", "new-board", "tiny")
    assert load_lut(path).timing["anchor"]["ratio"] == pytest.approx(1.3)
    lut = profile(get_device("new-board"), tiny_space(), load_lut(path), recalibrate=True,
                  calibrate=20)
    assert "anchor" not in lut.timing
