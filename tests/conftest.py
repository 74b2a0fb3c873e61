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
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
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

    def config_without_known_host(self) -> Path:
        """The same client config, but the server's host key is not known."""
        path = self.folder / "ssh_config_unknown_host"
        empty = self.folder / "known_hosts_empty"
        empty.write_text("")
        path.write_text(self.config.read_text().replace(str(self.folder / "known_hosts"), str(empty)))
        return path


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory):
    """A real OpenSSH server on a loopback port with throw-away keys."""
    sshd_path = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
    if sshd_path is None or shutil.which("ssh") is None:
        skip_or_fail("OpenSSH server/client not installed (apt-get install openssh-server)")
    folder = tmp_path_factory.mktemp("sshd")
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
    process = subprocess.Popen([sshd_path, "-D", "-e", "-f", str(folder / "sshd_config")],
                               stdout=subprocess.DEVNULL, stderr=open(folder / "sshd.log", "w"))
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.05)
    else:
        process.kill()
    if process.poll() is not None:
        skip_or_fail(f"sshd did not start: {(folder / 'sshd.log').read_text()[-500:]}")
    yield SSHServer("edgenas-test", folder / "ssh_config", folder)
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory):
    """A real PostgreSQL server on a loopback port, in a throw-away data directory.

    Yields a SQLAlchemy URL. As root the server runs as the ``postgres`` system user
    (PostgreSQL refuses to run as root).
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
    folder = tmp_path_factory.mktemp("postgres")
    data = folder / "data"
    prefix: list[str] = []
    if os.geteuid() == 0:
        prefix = ["runuser", "-u", "postgres", "--"]
        os.chmod(folder, 0o777)
        for parent in folder.parents:  # the postgres user must reach the data directory
            if str(parent).startswith(str(tmp_path_factory.getbasetemp().parent)):
                os.chmod(parent, os.stat(parent).st_mode | 0o055)
    port = _free_port()
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                    "--auth=trust", "-E", "UTF8"], check=True, capture_output=True)
    log = folder / "postgres.log"
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
                    "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True)
    try:
        subprocess.run([*prefix, str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port),
                        "-U", "postgres", "edgenas"], check=True, capture_output=True)
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/edgenas"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)


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
