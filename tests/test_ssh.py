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


def test_device_gone_mid_profile_is_an_error_and_the_rerun_continues(own_sshd, tmp_path) -> None:
    """sshd and every connection killed after the first chunk is saved: a DeviceError; with
    sshd back, the same call times only what is missing and keeps every finished unit."""
    from edgenas.profile.lut import load_lut, save_lut

    device = get_device("host-cpu")
    device = replace(device, name="loopback-ssh", connection=_connection(own_sshd, tmp_path),
                     timing=replace(device.timing, warmup=1, repeats=5, min_time_ms=1.0))
    path = tmp_path / "profiles" / "loopback-ssh" / "tiny.json"
    saved: list[int] = []

    def save_then_pull_the_plug(table) -> None:  # noqa: ANN001
        save_lut(table, path)
        saved.append(len(table.entries))
        if len(table.entries) and own_sshd.process is not None:
            own_sshd.stop()

    with pytest.raises(DeviceError, match="lost the connection: finished work is saved"):
        profile(device, tiny_space(), calibrate=4, chunk=8, checkpoint=save_then_pull_the_plug)
    before = load_lut(path)
    assert 0 < len(before.entries) < len(space_units(tiny_space()))
    own_sshd.start()
    after = profile(device, tiny_space(), before, calibrate=4, chunk=8,
                    checkpoint=lambda table: save_lut(table, path))
    assert set(after.entries) == set(space_units(tiny_space()))
    for key, entry in before.entries.items():  # finished units kept, not timed again
        assert after.entries[key] == entry


def test_device_gone_mid_deploy_is_an_error_and_the_rerun_deploys(own_sshd, tmp_path,
                                                                  monkeypatch) -> None:
    from edgenas.cli import main
    from edgenas.deploy.deploy import deploy
    from edgenas.device.session import DeviceSession

    bundle = tmp_path / "bundle"
    assert main(["export", "mobilenetv2-cifar", "--formats", "onnx", "--out", str(bundle),
                 "--data", "digits"]) == 0
    device = get_device("host-cpu")
    device = replace(device, name="loopback-ssh", connection=_connection(own_sshd, tmp_path),
                     timing=replace(device.timing, warmup=1, repeats=5, min_time_ms=1.0))
    time_paths = DeviceSession.time_paths

    def pull_the_plug_then_time(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        own_sshd.stop()  # the model has travelled; the device goes away before timing it
        return time_paths(self, *args, **kwargs)

    monkeypatch.setattr(DeviceSession, "time_paths", pull_the_plug_then_time)
    with pytest.raises(DeviceError, match="ssh edgenas-test"):
        deploy(bundle, device)
    assert not (bundle / "deploy" / "loopback-ssh.json").exists()  # no half report
    monkeypatch.setattr(DeviceSession, "time_paths", time_paths)
    own_sshd.start()
    report = deploy(bundle, device)
    assert report["latency_ms"]["n"] >= 5 and (bundle / "deploy" / "loopback-ssh.json").exists()
