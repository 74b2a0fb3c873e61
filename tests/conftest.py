"""Shared fixtures: preset names and seeded random archs of each space."""

from __future__ import annotations

import pytest

from edgenas import SearchSpace, get_space
from edgenas.space import ARCH_PRESETS, Head, StageChoices, Stem


@pytest.fixture(params=sorted(ARCH_PRESETS))
def preset_name(request: pytest.FixtureRequest) -> str:
    return request.param


def random_archs(space_name: str, n: int, seed: int = 0) -> list:
    """``n`` archs drawn from a preset space with consecutive seeds (reproducible)."""
    space = get_space(space_name)
    return [space.sample(seed + i) for i in range(n)]


def tiny_space() -> SearchSpace:
    """A space small enough to enumerate (tens of thousands of archs, ~40 distinct units)."""
    return SearchSpace(
        name="tiny", num_classes=10, stem=Stem(8), head=Head(),
        stages=(StageChoices(channels=(8, 16), depths=(1, 2)),
                StageChoices(channels=(16,), depths=(1, 2), strides=(1, 2),
                             downsamples=("stride", "avgpool"))),
        resolutions=(32,), width_mults=(1.0,), depth_mults=(1.0, 2.0),
        ops=("conv", "mbconv", "skip"), kernels=(3, 5), expansions=(6.0,),
        se=(False,), activations=("relu",))


# -- services ----------------------------------------------------------------------------------

import getpass  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402


def require_services() -> bool:
    """CI sets EDGENAS_REQUIRE_SERVICES=1: a service it started must be used, never skipped."""
    return os.environ.get("EDGENAS_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str) -> None:
    if require_services():
        pytest.fail(f"{reason} (EDGENAS_REQUIRE_SERVICES=1, so this is an error)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SSHServer:
    alias: str
    config: Path  # an ssh_config file that reaches the server by ``alias``
    folder: Path
    sshd_path: str = ""
    port: int = 0
    process: subprocess.Popen | None = None

    def config_without_known_host(self) -> Path:
        """The same client config, but the server's host key is not known."""
        path = self.folder / "ssh_config_unknown_host"
        empty = self.folder / "known_hosts_empty"
        empty.write_text("")
        path.write_text(self.config.read_text().replace(str(self.folder / "known_hosts"), str(empty)))
        return path

    def start(self) -> None:
        """Start sshd (again, on the same port and keys); returns once it accepts."""
        self.process = subprocess.Popen(
            [self.sshd_path, "-D", "-e", "-f", str(self.folder / "sshd_config")],
            stdout=subprocess.DEVNULL, stderr=open(self.folder / "sshd.log", "a"))
        deadline = time.time() + 10
        while time.time() < deadline and self.process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.process.kill()
        skip_or_fail(f"sshd did not start: {(self.folder / 'sshd.log').read_text()[-500:]}")

    def stop(self) -> None:
        """The device goes away: the listener and every open connection are killed."""
        if self.process is None:
            return
        for pid in [*_descendants(self.process.pid), self.process.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)
        self.process = None


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (sshd forks one per connection), children first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    stack = list(children.get(pid, []))
    while stack:
        child = stack.pop()
        found.append(child)
        stack.extend(children.get(child, []))
    return found[::-1]


def make_sshd(folder: Path) -> SSHServer:
    """A real OpenSSH server on a loopback port with throw-away keys, in ``folder``."""
    sshd_path = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
    if sshd_path is None or shutil.which("ssh") is None:
        skip_or_fail("OpenSSH server/client not installed (apt-get install openssh-server)")
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)],
                       check=True)
    (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
    os.chmod(folder / "client_key", 0o600)
    port = _free_port()
    user = getpass.getuser()
    (folder / "sshd_config").write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {folder}/host_key
PidFile {folder}/sshd.pid
AuthorizedKeysFile {folder}/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AllowUsers {user}
Subsystem sftp internal-sftp
""")
    host_key = (folder / "host_key.pub").read_text().split()
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    (folder / "ssh_config").write_text(f"""Host edgenas-test
  HostName 127.0.0.1
  Port {port}
  User {user}
  IdentityFile {folder}/client_key
  IdentitiesOnly yes
  UserKnownHostsFile {folder}/known_hosts
  StrictHostKeyChecking yes
""")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)  # privilege separation directory
    server = SSHServer("edgenas-test", folder / "ssh_config", folder, sshd_path, port)
    server.start()
    return server


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory):
    """A real OpenSSH server on a loopback port, shared by the session's tests."""
    server = make_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture
def own_sshd(tmp_path_factory: pytest.TempPathFactory):
    """A server of the test's own, which it may stop and start (a device going away)."""
    server = make_sshd(tmp_path_factory.mktemp("own-sshd"))
    yield server
    server.stop()


@dataclass
class PostgresServer:
    url: str  # a SQLAlchemy URL
    pg_ctl: list[str]  # pg_ctl -D <data> (as the postgres user when we are root)
    options: list[str]

    def restart(self) -> None:
        """Restart the server (every open connection is dropped), waiting until it is back."""
        done = subprocess.run([*self.pg_ctl, *self.options, "-m", "fast", "-w", "restart"],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl restart failed ({done.returncode}):\n{done.stdout}"
                               f"{done.stderr}")


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server on a loopback port, in a throw-away data directory.

    As root the server runs as the ``postgres`` system user (PostgreSQL refuses to run as
    root).
    """
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    initdb = shutil.which("initdb") or (str(bins[-1]) if bins else None)
    if initdb is None:
        skip_or_fail("PostgreSQL server not installed (apt-get install postgresql)")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        skip_or_fail("psycopg2 not installed (pip install -e '.[dev]')")
    bindir = Path(initdb).resolve().parent
    # Not under pytest's base temp: every pytest session that starts (a mutation run's, a
    # second suite's) sets /tmp/pytest-of-<user> back to 0700, which locked the postgres
    # user out of its own data directory between start and a restart.
    folder = Path(tempfile.mkdtemp(prefix="edgenas-postgres-"))
    data = folder / "data"
    prefix: list[str] = []
    if os.geteuid() == 0:
        prefix = ["runuser", "-u", "postgres", "--"]
        os.chmod(folder, 0o777)
    port = _free_port()
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                    "--auth=trust", "-E", "UTF8"], check=True, capture_output=True)
    pg_ctl = [*prefix, str(bindir / "pg_ctl"), "-D", str(data)]
    options = ["-l", str(folder / "postgres.log"),
               "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"]
    subprocess.run([*pg_ctl, *options, "-w", "start"], check=True, capture_output=True)
    try:
        subprocess.run([*prefix, str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port),
                        "-U", "postgres", "edgenas"], check=True, capture_output=True)
        yield PostgresServer(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/edgenas", pg_ctl,
                             options)
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(postgres_server: PostgresServer) -> str:
    """The shared server's SQLAlchemy URL."""
    return postgres_server.url


# -- the checkout stays as committed -------------------------------------------------------

COMMITTED = Path(__file__).resolve().parents[1] / "profiles"


def _tables() -> dict[str, bytes]:
    return {str(p.relative_to(COMMITTED)): p.read_bytes() for p in sorted(COMMITTED.rglob("*.json"))}


@pytest.fixture(scope="session", autouse=True)
def committed_tables_untouched():
    """Tests read the committed tables; one that re-measured them in place (as `edgenas run`
    does on a host whose fingerprint differs) changed what later tests saw, so that a test
    passed on one host and failed on another. Any such write fails the session here."""
    before = _tables()
    yield
    changed = sorted(name for name, data in _tables().items() if before.get(name) != data)
    assert not changed, (f"tests wrote into the checkout's profiles/: {changed}; give the "
                         "command a copy (--profiles-dir tmp_path/...)")


@pytest.fixture(autouse=True)
def torch_threads_restored():
    """A test that changed torch's thread count for itself and left it so made the main
    job's in-process run train with other float sums than its subprocess re-runs, and the
    kill-matrix test of test_pipeline.py fail far from the cause. Fail the test that leaks."""
    import torch

    before = torch.get_num_threads()
    yield
    after = torch.get_num_threads()
    if after != before:
        torch.set_num_threads(before)
        pytest.fail(f"the test left torch.set_num_threads({after}) (was {before}); restore it")


# -- the committed tables, as another host sees them ------------------------------------------

import json  # noqa: E402
import re  # noqa: E402
import textwrap  # noqa: E402
from typing import Any, Callable  # noqa: E402

from edgenas.device.descriptor import get_device  # noqa: E402
from edgenas.errors import DeviceError  # noqa: E402
from edgenas.profile.lut import local_fingerprint  # noqa: E402

#: The CPU a copied table names in its fingerprint: never this host's, whatever the host.
ANOTHER_CPU = "Another CPU (not this host: a test's stand-in for a new machine)"


def copy_committed_tables(folder: Path, fingerprint: Callable[[str, dict[str, Any]], dict[str, Any]]
                          ) -> Path:
    """A copy of the checkout's profiles/ in ``folder``, each table's fingerprint replaced by
    ``fingerprint(device_name, committed_fingerprint)``; the entries are the committed ones."""
    shutil.copytree(COMMITTED, folder, ignore=shutil.ignore_patterns(".*.lock"))
    for path in sorted(folder.rglob("*.json")):
        table = json.loads(path.read_text(encoding="utf-8"))
        table["fingerprint"] = fingerprint(path.parent.name, table["fingerprint"])
        path.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    return folder


def copy_tables_from_another_cpu(folder: Path) -> Path:
    """The committed tables as a fresh clone on a new machine finds them: measured, by their
    fingerprint, on another CPU, so stale here whichever host runs the tests."""
    return copy_committed_tables(folder, lambda _, committed: {**committed, "cpu": ANOTHER_CPU})


def fingerprint_here(device_name: str, committed: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint a table of ``device_name`` measured on this host would carry: this
    host's for a local device; the committed one for a remote device, and for a device with
    no descriptor here (profiles/arm64-emulated/ is committed, while its descriptor is
    written by `emulated-board.sh up` and git-ignored), which nothing here can use."""
    try:
        device = get_device(device_name)
    except DeviceError:
        return committed
    return local_fingerprint(device) or committed


def copy_tables_current_here(folder: Path) -> Path:
    """The committed tables with this host's fingerprint: what a table measured on this host
    looks like, whichever host runs the tests and whichever measured the committed one."""
    return copy_committed_tables(folder, fingerprint_here)


@pytest.fixture
def tables_from_another_cpu(tmp_path: Path) -> Path:
    """A profiles/ folder whose tables name another CPU: a test that reads it must allow the
    stale table explicitly (``--allow-stale``, ``allow_stale=True``), and so it passes on any
    host, before `edgenas run` has rewritten the checkout's tables or after."""
    return copy_tables_from_another_cpu(tmp_path / "profiles-from-another-cpu")


@pytest.fixture
def tables_current_here(tmp_path: Path) -> Path:
    """A profiles/ folder whose tables are current on this host, for tests of what a table
    that holds gives (export records predictions only from current tables)."""
    return copy_tables_current_here(tmp_path / "profiles-current-here")


# -- waiting for a state ----------------------------------------------------------------------

def wait_until(reached: Callable[[], bool], what: str, timeout_s: float = 600,
               poll_s: float = 0.05) -> None:
    """Return once ``reached()`` holds. The timeout only guards against a hang: it fails the
    test, it is never a moment the test acts at."""
    deadline = time.monotonic() + timeout_s
    while not reached():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout_s:.0f} s for {what}; it never happened")
        time.sleep(poll_s)


# -- a child process that acts at a state ------------------------------------------------------

AFTER_EACH_RENAME = """
import os, signal, sys
from pathlib import Path
sys.path[:0] = [{root!r}, {tests!r}]  # this checkout's edgenas, and the tests' helpers

def after_rename(path: Path) -> None:
{action}

_replace = os.replace

def _replace_then_act(src, dst, *args, **kwargs):
    _replace(src, dst, *args, **kwargs)
    after_rename(Path(os.fsdecode(dst)))

os.replace = _replace_then_act
{code}
"""


def acting_after_each_rename(code: str, action: str) -> list[str]:
    """A command line running the Python ``code`` with ``action`` (the body of
    ``after_rename(path: Path)``; ``os``, ``signal``, ``sys`` at hand) run after every file
    the child renames into place.

    edgenas writes every file it keeps (tables, run records, checkpoints, stage results) to a
    temporary name and renames it (os.replace), so each rename is a new state on disk, and
    an action taken there (SIGKILL, filling the disk) happens at exactly that state, however
    fast or slow the host is. A test that polled from outside instead acted at whatever
    state the child had reached by then.
    """
    script = AFTER_EACH_RENAME.format(root=str(Path(__file__).parents[1]),
                                      tests=str(Path(__file__).parent),
                                      action=textwrap.indent(textwrap.dedent(action).strip(),
                                                             "    "),
                                      code=textwrap.dedent(code).strip())
    return [sys.executable, "-c", script]


#: ``code`` for `acting_after_each_rename`: the edgenas command line given after the script.
EDGENAS_CLI = "from edgenas.cli import main\nsys.exit(main(sys.argv[1:]))"


# -- a skip says why, and CI allows only TensorRT's ----------------------------------------------

#: Skips CI may keep: the hardware they need is absent from its hosts.
ALLOWED_SKIP = re.compile(r"TensorRT|NVIDIA|CUDA")
_SKIPS: list[tuple[str, str]] = []


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr or "")
    return reason.removeprefix("Skipped: ").removeprefix("Skipped").strip()


def _record_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _SKIPS.append((report.nodeid, _skip_reason(report)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _record_skip(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _record_skip(report)


def _refused_skips() -> list[tuple[str, str]]:
    """Skips that fail the session: one without a reason, always; under
    EDGENAS_REQUIRE_SERVICES=1 (CI), any whose reason is not missing NVIDIA hardware."""
    return [(node, reason) for node, reason in _SKIPS
            if not reason or require_services() and not ALLOWED_SKIP.search(reason)]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _refused_skips() and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    refused = _refused_skips()
    if not refused:
        return
    terminalreporter.write_sep("=", "skips that fail the session", red=True)
    for node, reason in refused:
        terminalreporter.write_line(f"SKIPPED {node}: {reason or '(no reason given)'}", red=True)
    if require_services():
        terminalreporter.write_line(
            "EDGENAS_REQUIRE_SERVICES=1: only a test that needs TensorRT or an NVIDIA GPU may "
            "skip; install what the others name, or fix the test", red=True)
    else:
        terminalreporter.write_line("a skip says why: give pytest.skip a reason", red=True)
