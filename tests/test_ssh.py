"""The ssh connector and profiling over SSH, against a real sshd on loopback."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import tiny_space
from edgenas.device.connectors import SSHConnector
from edgenas.device.descriptor import Connection, get_device
from edgenas.errors import DeviceError
from edgenas.profile.keys import space_units
from edgenas.profile.profiler import profile


def _connection(sshd, tmp_path, config=None) -> Connection:
    return Connection(kind="ssh", host=sshd.alias, ssh_config=str(config or sshd.config),
                      python=sys.executable, workdir=str(tmp_path / "remote"))


def test_arguments_reach_the_remote_side_exactly_as_given(sshd, tmp_path) -> None:
    connector = SSHConnector(_connection(sshd, tmp_path))
    try:
        tricky = ["a b", "it's", "$(whoami)", "`id`", "x;y", "*"]
        out = connector.run(["printf", "%s\\n", *tricky])
        assert out.splitlines() == tricky
    finally:
        connector.close()


def test_files_travel_both_ways(sshd, tmp_path) -> None:
    connector = SSHConnector(_connection(sshd, tmp_path))
    try:
        local = tmp_path / "file with space.txt"
        local.write_text("payload")
        remote = connector.push(local, local.name)
        back = tmp_path / "back.txt"
        connector.pull(remote, back)
        assert back.read_text() == "payload"
    finally:
        connector.close()


def test_unknown_host_key_is_refused_not_accepted(sshd, tmp_path) -> None:
    connection = _connection(sshd, tmp_path, sshd.config_without_known_host())
    with pytest.raises(DeviceError, match="Host key verification failed"):
        SSHConnector(connection)


def test_profiling_over_ssh_fills_the_table(sshd, tmp_path) -> None:
    device = get_device("host-cpu")
    device = replace(device, name="loopback-ssh", connection=_connection(sshd, tmp_path),
                     timing=replace(device.timing, warmup=1, repeats=5, min_time_ms=1.0))
    lut = profile(device, tiny_space(), calibrate=4, chunk=16)
    assert set(lut.entries) == set(space_units(tiny_space()))
    assert lut.fingerprint["onnxruntime"]
    assert lut.correction["networks"] == 4


def test_hostile_names_are_data_on_both_sides(sshd, tmp_path) -> None:
    """A workdir and file names full of shell syntax are created literally on the device;
    a host that looks like an ssh option is a host name, never an option."""
    marker = tmp_path / "pwned"
    workdir = tmp_path / f"w $(touch {marker}); `touch {marker}` 'q' \"x\" -rf"
    connection = replace(_connection(sshd, tmp_path), workdir=str(workdir))
    connector = SSHConnector(connection)
    try:
        # a file name cannot hold '/': if this ran, 'pwned' would appear in a shell's cwd
        local = tmp_path / "-n; $(touch pwned) `touch pwned` 'a'.txt"
        local.write_text("payload")
        remote = connector.push(local, local.name)
        assert (workdir / local.name).read_text() == "payload"
        back = tmp_path / "back.txt"
        connector.pull(remote, back)
        assert back.read_text() == "payload"
    finally:
        connector.close()
    # the descriptor refuses such a host; the connector holds even when handed one (a
    # one-word remote command is where ssh would otherwise run the ProxyCommand)
    connector = SSHConnector(connection)
    try:
        connector.target = f"-oProxyCommand=touch {marker}"
        with pytest.raises(DeviceError):
            connector.run(["true"])
    finally:
        connector.target = sshd.alias
        connector.close()
    assert not marker.exists()
    assert not any((folder / "pwned").exists() for folder in (Path.home(), Path.cwd(), workdir))
