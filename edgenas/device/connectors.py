"""Connectors: run a command on a device and move files to it (local, ssh, adb).

Commands are argument lists, never shell strings built from data: the local connector
runs them directly, ssh and adb send ``shlex.join(argv)`` so every argument reaches the
remote shell quoted. ssh is the system OpenSSH client, so ``~/.ssh/config``, keys and
agents work as for the user; connections are reused (ControlMaster) and host keys are
checked as the user's configuration says (never disabled).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Protocol

from edgenas.device.descriptor import Connection
from edgenas.errors import DeviceError

LineHandler = Callable[[str], None]


class Connector(Protocol):
    """What the profiler and deployer need from a device."""

    workdir: str

    def run(self, argv: list[str], on_line: LineHandler | None = None) -> str:
        """Run ``argv`` on the device; stdout lines go to ``on_line`` as they arrive."""

    def push(self, local: Path, remote_name: str) -> str:
        """Copy a file or folder into the device's workdir; returns its device path."""

    def pull(self, remote_path: str, local: Path) -> None:
        """Copy a file from the device."""

    def run_setup(self, command: str) -> None:
        """Run one of the descriptor's setup commands (a shell line the user wrote)."""

    def close(self) -> None:
        """Release connections and temporary folders."""


def _stream(argv: list[str], on_line: LineHandler | None, what: str) -> str:
    """Run a local process, forwarding stdout lines; raise DeviceError on failure."""
    try:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, text=True, bufsize=1)
    except OSError as err:
        raise DeviceError(f"{what}: cannot start {argv[0]!r} ({err.strerror})") from None
    lines = []
    assert process.stdout is not None and process.stderr is not None
    for line in process.stdout:
        lines.append(line)
        if on_line is not None:
            on_line(line.rstrip("\n"))
    stderr = process.stderr.read()
    if process.wait() != 0:
        lost = _lost(process.returncode) if Path(argv[0]).name == "ssh" else ""
        raise DeviceError(f"{what}: {shlex.join(argv[:6])}{' ...' if len(argv) > 6 else ''} "
                          f"failed with exit code {process.returncode}{lost}: "
                          f"{_last_lines(stderr)}")
    return "".join(lines)


@contextlib.contextmanager
def _replacing(local: Path) -> Iterator[Path]:
    """A temporary path next to ``local`` that replaces it on success: a failed copy leaves
    the previous file, and a link or hard link at ``local`` is replaced, never written
    through (a file fetched into a bundle cannot land outside it)."""
    partial = local.with_name(f".{local.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        yield partial
        os.replace(partial, local)
    finally:
        partial.unlink(missing_ok=True)


def _last_lines(stderr: str, count: int = 5) -> str:
    """The end of a failed command's stderr: the cause is last, and a runtime's start-up
    warnings (ONNX Runtime's cpuinfo lines on a board without /sys) would bury it."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    shown = " | ".join(lines[-count:])[-2000:]
    return f"... {shown}" if len(lines) > count else shown


def _lost(returncode: int) -> str:
    """ssh exits 255 when it cannot reach the device or the connection drops."""
    return (" (ssh could not reach the device or lost the connection: finished work is "
            "saved, re-run the same command once the device is back)" if returncode == 255 else "")


class LocalConnector:
    """This machine: commands run in a private temporary folder."""

    def __init__(self, connection: Connection) -> None:
        self._tmp = None
        if connection.workdir:
            Path(connection.workdir).mkdir(parents=True, exist_ok=True)
            self.workdir = connection.workdir
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="edgenas-")
            self.workdir = self._tmp.name

    def run(self, argv: list[str], on_line: LineHandler | None = None) -> str:
        return _stream(argv, on_line, "local")

    def push(self, local: Path, remote_name: str) -> str:
        target = Path(self.workdir) / remote_name
        if Path(local).resolve() == target.resolve():
            return str(target)
        if Path(local).is_dir():
            shutil.copytree(local, target, dirs_exist_ok=True)
        else:
            shutil.copy2(local, target)
        return str(target)

    def pull(self, remote_path: str, local: Path) -> None:
        with _replacing(Path(local)) as partial:
            shutil.copy2(remote_path, partial)

    def run_setup(self, command: str) -> None:
        _stream(shlex.split(command), None, "local setup")

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


class SSHConnector:
    """A device reached with the system ``ssh`` (BatchMode: never prompts; files go as tar)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._control = tempfile.TemporaryDirectory(prefix="edgenas-ssh-")
        self.options = ["-o", "BatchMode=yes", "-o", "ControlMaster=auto",
                        "-o", f"ControlPath={self._control.name}/%C", "-o", "ControlPersist=120",
                        "-o", "ConnectTimeout=15"]
        if connection.ssh_config:
            self.options = ["-F", connection.ssh_config, *self.options]
        if connection.user:
            self.options += ["-o", f"User={connection.user}"]
        self.target = connection.host
        self.workdir = connection.workdir or "/tmp/edgenas"
        self.run(["mkdir", "-p", "--", self.workdir])

    def _ssh(self, remote_command: str) -> list[str]:
        port = ["-p", str(self.connection.port)] if self.connection.port else []
        # '--': whatever the target is, ssh never reads it as an option
        return ["ssh", *self.options, *port, "--", self.target, remote_command]

    def run(self, argv: list[str], on_line: LineHandler | None = None) -> str:
        return _stream(self._ssh(shlex.join(argv)), on_line, f"ssh {self.target}")

    def push(self, local: Path, remote_name: str) -> str:
        # a tar stream into `tar -x` on the device: one round trip for a folder of models,
        # and the path reaches the device as a quoted argument (scp's SFTP and legacy
        # modes disagree about quoting remote paths)
        argv = self._ssh(shlex.join(["tar", "-x", "-f", "-", "-C", self.workdir]))
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
        assert process.stdin is not None and process.stderr is not None
        try:
            # dereference: links travel as the files they point to, never as links
            with tarfile.open(fileobj=process.stdin, mode="w|", dereference=True) as archive:
                archive.add(str(local), arcname=remote_name)
        except BrokenPipeError:
            pass  # the error is in stderr
        finally:
            process.stdin.close()
        stderr = process.stderr.read().decode(errors="replace")
        if process.wait() != 0:
            raise DeviceError(f"ssh {self.target}: copying {local} failed"
                              f"{_lost(process.returncode)}: {_last_lines(stderr)}")
        return f"{self.workdir}/{remote_name}"

    def pull(self, remote_path: str, local: Path) -> None:
        argv = self._ssh(shlex.join(["cat", "--", remote_path]))
        with _replacing(Path(local)) as partial:
            with open(partial, "wb") as handle:
                result = subprocess.run(argv, stdout=handle, stderr=subprocess.PIPE,
                                        stdin=subprocess.DEVNULL, check=False)
            if result.returncode != 0:
                raise DeviceError(f"ssh {self.target}: fetching {remote_path} failed"
                                  f"{_lost(result.returncode)}: "
                                  f"{_last_lines(result.stderr.decode(errors='replace'))}")

    def run_setup(self, command: str) -> None:
        _stream(self._ssh(command), None, f"ssh {self.target} setup")

    def close(self) -> None:
        port = ["-p", str(self.connection.port)] if self.connection.port else []
        subprocess.run(["ssh", *self.options, *port, "-O", "exit", "--", self.target],
                       capture_output=True, stdin=subprocess.DEVNULL, check=False)
        self._control.cleanup()


class ADBConnector:
    """An Android device through ``adb`` (``adb`` from the platform tools on PATH)."""

    def __init__(self, connection: Connection) -> None:
        self.base = [connection.adb, *(["-s", connection.serial] if connection.serial else [])]
        self.workdir = connection.workdir or "/data/local/tmp/edgenas"
        self.run(["mkdir", "-p", "--", self.workdir])

    def run(self, argv: list[str], on_line: LineHandler | None = None) -> str:
        return _stream([*self.base, "shell", shlex.join(argv)], on_line, "adb")

    def push(self, local: Path, remote_name: str) -> str:
        remote = f"{self.workdir}/{remote_name}"
        _stream([*self.base, "push", str(local), remote], None, "adb push")
        return remote

    def pull(self, remote_path: str, local: Path) -> None:
        with _replacing(Path(local)) as partial:
            _stream([*self.base, "pull", remote_path, str(partial)], None, "adb pull")

    def run_setup(self, command: str) -> None:
        _stream([*self.base, "shell", command], None, "adb setup")

    def close(self) -> None:
        pass


def connect(connection: Connection) -> Connector:
    """The connector for a descriptor's connection."""
    if connection.kind == "local":
        return LocalConnector(connection)
    if connection.kind == "ssh":
        return SSHConnector(connection)
    if connection.kind == "adb":
        return ADBConnector(connection)
    raise DeviceError(f"unknown connection kind {connection.kind!r}")
