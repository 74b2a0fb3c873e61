"""The latency predictions an export records, and what it says about devices without one."""

from __future__ import annotations

import logging

from edgenas.device.descriptor import list_devices
from edgenas.export_arch import predicted_latencies
from edgenas.space import get_space


def test_devices_without_a_table_are_named_together_in_one_line(tmp_path, caplog) -> None:
    arch = get_space("cifar").sample(0)
    with caplog.at_level(logging.INFO, logger="edgenas.export_arch"):
        assert predicted_latencies(arch, tmp_path) == {}
    lines = [r.getMessage() for r in caplog.records if "no latency prediction" in r.getMessage()]
    assert len(lines) == 1
    names = [device.name for device in list_devices()]
    assert len(names) > 1 and all(name in lines[0] for name in names)
    assert str(tmp_path) in lines[0]
