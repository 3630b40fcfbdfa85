"""Test harness: real PostgreSQL servers and a fresh database per test. No mocks.

Which servers (read once, at collection):
- ``PGGUARD_TEST_DSN``: an external server's superuser DSN; used alone.
- else ``PGGUARD_PG_VERSIONS`` (comma-separated majors, default ``15``): one throwaway
  :class:`~pgguard.localpg.LocalCluster` per major, started on first use, stopped at session end;
  with ``PGGUARD_USE_DOCKER=1`` and a Docker daemon that answers, a testcontainers server instead.
A server that cannot be had fails the tests under ``CI`` or ``PGGUARD_PG_REQUIRE=1``, else skips.

Fixtures (interface; others write tests against these names):
- ``pg_server`` (session, one per server, ids ``pg14``…): :class:`PgServer`.
- ``make_db`` → ``make_db(template=None) -> name``; every such database is dropped after the test.
- ``db_name`` / ``db_dsn`` / ``admin``: a fresh empty database: its name, a superuser DSN, and an
  autocommit superuser connection.
- ``guarded_db_name`` / ``guarded_db_dsn`` / ``guarded_admin``: the same for a fresh database
  made from a per-server template in which ``pgguard.installer.install(conn,
  protect_empty=True)`` ran (so empty tables are refused like any other; tests of the
  empty-table rule re-run install with the defaults).
- ``app_role``: :class:`AppRole`, a LOGIN NOSUPERUSER role with CREATE on the test database (the
  guarded one if the test uses a guarded fixture, else ``db_name``) and on schema public.
- ``make_app_role`` → ``make_app_role(dbname=None, *, prefix="app", grants=True) -> AppRole``;
  ``grants=False`` gives a plain role that may only connect.
- ``actor``: parametrized ``superuser`` / ``app``, a connection to the guarded database.
Teardown order is fixed by ``_pg_janitor``: close connections, drop databases (WITH FORCE, so
no event trigger is involved), then drop roles from the ``postgres`` database.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import psycopg
import pytest
from hypothesis import settings
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pgguard import localpg

Conn = psycopg.Connection[Any]
_GUARDED = ("guarded_db_name", "guarded_db_dsn", "guarded_admin")


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


# CI machines are shared and slow at times: no per-example deadline there, and a fixed seed so
# a red run can be replayed exactly. Locally hypothesis keeps exploring new examples.
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
if _truthy("CI"):
    settings.load_profile("ci")

# rich wraps at the terminal width (80 when there is none): CLI subprocesses get a wide one, so
# long paths and tables stay on one line wherever the tests run (xdist workers included)
os.environ["COLUMNS"] = "250"

EXTERNAL_DSN = os.environ.get("PGGUARD_TEST_DSN") or None
MAJORS = [int(v) for v in os.environ.get("PGGUARD_PG_VERSIONS", "15").split(",") if v.strip()]
#: Under CI a missing server is a failure, never a skip.
REQUIRE = _truthy("CI") or os.environ.get("PGGUARD_PG_REQUIRE") == "1"
SERVER_IDS = ["external"] if EXTERNAL_DSN else [f"pg{m}" for m in MAJORS]


def unique_name(prefix: str) -> str:
    """A cluster-unique identifier: databases and roles are shared by every test."""
    return f"pgg_{prefix}_{uuid.uuid4().hex[:10]}"


def _unavailable(reason: str) -> NoReturn:
    if REQUIRE:
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


class PgServer:
    """A running server the tests use as superuser."""

    def __init__(
        self,
        label: str,
        base_dsn: str,
        *,
        cluster: localpg.LocalCluster | None = None,
        stop: Callable[[], None] | None = None,
        source: str = "",
    ) -> None:
        self.label = label
        self.cluster = cluster  #: the LocalCluster, or None (external / Docker)
        self.source = source
        self._base = base_dsn
        self._stop = stop
        self._roles: set[str] = set()
        self._templates: dict[str, str | BaseException] = {}
        with self.connect() as conn:
            self.version_num: int = conn.info.server_version
            self.version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        self.major = self.version_num // 10000

    @property
    def log_path(self) -> Path | None:
        """The server log, when the server is local (refusals are logged there)."""
        return self.cluster.log_path if self.cluster else None

    def admin_dsn(self, dbname: str = "postgres") -> str:
        """Superuser DSN of ``dbname``."""
        return make_conninfo(self._base, dbname=dbname)

    def dsn(self, dbname: str, user: str, password: str | None = None) -> str:
        """DSN of ``dbname`` as ``user``."""
        return make_conninfo(self._base, dbname=dbname, user=user, password=password)

    def connect(self, dbname: str = "postgres") -> Conn:
        """Autocommit superuser connection (close it, or use ``with``)."""
        return psycopg.connect(self.admin_dsn(dbname), autocommit=True)

    def create_database(self, template: str | None = None) -> str:
        """``CREATE DATABASE`` a uniquely named database; returns its name."""
        name = unique_name("db")
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with self.connect() as conn:
            conn.execute(query)
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name`` even if sessions are connected or it is a template."""
        ident = sql.Identifier(name)
        with self.connect() as conn:
            row = conn.execute(
                "SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if row is None:
                return
            if row[0]:  # a template cannot be dropped
                conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(ident))
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))

    def make_role(
        self, prefix: str = "role", *, login: bool = True, superuser: bool = False
    ) -> tuple[str, str]:
        """Create a uniquely named role; returns ``(name, password)``. Dropped at session end
        unless dropped earlier with :meth:`drop_role`."""
        name, password = unique_name(prefix), uuid.uuid4().hex
        attrs = "LOGIN" if login else "NOLOGIN"
        attrs += " SUPERUSER" if superuser else " NOSUPERUSER NOCREATEROLE NOCREATEDB"
        with self.connect() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} " + attrs + " PASSWORD {}").format(
                    sql.Identifier(name), sql.Literal(password)
                )
            )
        self._roles.add(name)
        return name, password

    def drop_role(self, name: str) -> None:
        """Drop a role and whatever it owns; warns instead of failing if it cannot."""
        drop_owned = sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name))
        drop = sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name))
        with self.connect() as conn:
            try:
                conn.execute(drop_owned)
                conn.execute(drop)
            except psycopg.errors.UndefinedObject:
                pass  # already gone
            except psycopg.Error:
                # It still owns or holds something in another database: clean there first.
                rows = conn.execute(
                    "SELECT DISTINCT d.datname FROM pg_shdepend s"
                    " JOIN pg_database d ON d.oid = s.dbid"
                    " WHERE s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = %s)"
                    " AND d.datallowconn",
                    (name,),
                ).fetchall()
                try:
                    for (dbname,) in rows:
                        with self.connect(dbname) as other:
                            other.execute(drop_owned)
                    conn.execute(drop)
                except psycopg.Error as e:
                    warnings.warn(f"could not drop test role {name}: {e}", stacklevel=2)
                    return
        self._roles.discard(name)

    def template(self, key: str, build: Callable[[PgServer, str], None]) -> str:
        """Name of a template database made once per server by ``build(server, dbname)``."""
        cached = self._templates.get(key)
        if isinstance(cached, BaseException):
            raise cached
        if cached is not None:
            return cached
        name = self.create_database()
        try:
            build(self, name)
            with self.connect() as conn:
                # Nothing may be connected to a template while it is copied: forbid it.
                conn.execute(
                    sql.SQL(
                        "ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"
                    ).format(sql.Identifier(name))
                )
        except BaseException as e:
            self.drop_database(name)
            self._templates[key] = e
            raise
        self._templates[key] = name
        return name

    def close(self) -> None:
        """Drop leftover templates and roles; stop the server if we started it."""
        try:
            for name in self._templates.values():
                if isinstance(name, str):
                    self.drop_database(name)
            for role in sorted(self._roles):
                self.drop_role(role)
        finally:
            if self._stop is not None:
                self._stop()

    def __repr__(self) -> str:
        return f"<PgServer {self.label}: PostgreSQL {self.version} ({self.source})>"


def _docker_server(major: int) -> PgServer | None:
    """A testcontainers server, only when asked for and a Docker daemon answers."""
    if not _truthy("PGGUARD_USE_DOCKER"):
        return None
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=5).ping()
    except Exception:
        return None
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:
        from testcontainers.postgres import PostgresContainer
    container = PostgresContainer(
        f"postgres:{major}", username="postgres", password="postgres", dbname="postgres"
    )
    container.start()
    dsn = make_conninfo(
        "",
        host=container.get_container_host_ip(),
        port=container.get_exposed_port(5432),
        user="postgres",
        password="postgres",
        dbname="postgres",
    )
    return PgServer(f"pg{major}", dsn, stop=container.stop, source=f"docker postgres:{major}")


def _start_server(label: str) -> PgServer:
    if EXTERNAL_DSN:
        return PgServer(label, EXTERNAL_DSN, source="PGGUARD_TEST_DSN")
    major = int(label.removeprefix("pg"))
    server = _docker_server(major)
    if server is not None:
        return server
    cluster = localpg.LocalCluster(major).start()
    try:
        return PgServer(
            label,
            cluster.dsn(),
            cluster=cluster,
            stop=cluster.stop,
            source=f"{cluster.binaries.source} {cluster.binaries.bindir}",
        )
    except BaseException:
        cluster.stop()
        raise


@dataclass
class _Servers:
    """Servers started so far this session (lazily: only those some test asked for)."""

    started: dict[str, PgServer] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def get(self, label: str) -> PgServer:
        if label not in self.started and label not in self.failed:
            try:
                self.started[label] = _start_server(label)
            except Exception as e:
                self.failed[label] = f"PostgreSQL server {label} unavailable: {e}"
        if label in self.failed:
            _unavailable(self.failed[label])
        return self.started[label]

    def close(self) -> None:
        for server in self.started.values():
            server.close()  # stays listed: the terminal summary reports it


_SERVERS = _Servers()


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Which servers this run selected (and where their binaries are)."""
    if EXTERNAL_DSN:
        try:
            with psycopg.connect(EXTERNAL_DSN, connect_timeout=5) as conn:
                version = conn.execute("SELECT version()").fetchone()[0]  # type: ignore[index]
        except psycopg.Error as e:
            version = f"cannot connect: {e}"
        return [f"pgguard test server: PGGUARD_TEST_DSN ({version})"]
    lines = []
    for major in MAJORS:
        try:
            b = localpg.find_binaries(major, download=False)
            lines.append(f"  pg{major}: PostgreSQL {b.version} ({b.source}, {b.bindir})")
        except localpg.LocalPgError:
            lines.append(f"  pg{major}: PostgreSQL {localpg.PINNED_VERSIONS.get(major)} (to fetch)")
    policy = "missing server fails" if REQUIRE else "missing server skips"
    return [f"pgguard test servers (PGGUARD_PG_VERSIONS; {policy}):", *lines]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The server versions that actually ran."""
    for server in _SERVERS.started.values():
        terminalreporter.write_line(f"pgguard: {server.label} ran PostgreSQL {server.version}")


@pytest.fixture(scope="session")
def _pg_servers() -> Iterator[_Servers]:
    yield _SERVERS
    _SERVERS.close()


@pytest.fixture(scope="session", params=SERVER_IDS)
def pg_server(request: pytest.FixtureRequest, _pg_servers: _Servers) -> PgServer:
    """The server under test: ``.major``, ``.admin_dsn(dbname)``, ``.log_path``,
    ``.make_role(prefix)``, ``.cluster`` (LocalCluster or None)."""
    return _pg_servers.get(request.param)


@dataclass
class AppRole:
    """A LOGIN, NOSUPERUSER, NOCREATEROLE role connecting to one test database."""

    name: str
    password: str
    dbname: str
    dsn: str
    server: PgServer
    _connections: list[Conn] = field(default_factory=list, repr=False)

    def connect(self) -> Conn:
        """Autocommit connection as this role (closed at teardown if still open)."""
        conn = psycopg.connect(self.dsn, autocommit=True)
        self._connections.append(conn)
        return conn

    def create_schema(self, schema: str) -> str:
        """Create ``schema`` (as superuser) owned by this role; returns its name."""
        with self.server.connect(self.dbname) as conn:
            conn.execute(
                sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                    sql.Identifier(schema), sql.Identifier(self.name)
                )
            )
        return schema


@dataclass
class _Janitor:
    """Everything one test created on the cluster, undone in a safe order."""

    server: PgServer
    databases: list[str] = field(default_factory=list)
    roles: list[AppRole] = field(default_factory=list)
    connections: list[Conn] = field(default_factory=list)

    def cleanup(self) -> None:
        for conn in self.connections + [c for r in self.roles for c in r._connections]:
            conn.close()
        # Databases first, WITH (FORCE): pgguard's event triggers would refuse DROP OWNED
        # inside a guarded database, but never see DROP DATABASE.
        for name in reversed(self.databases):
            self.server.drop_database(name)
        for role in reversed(self.roles):
            self.server.drop_role(role.name)


@pytest.fixture
def _pg_janitor(pg_server: PgServer) -> Iterator[_Janitor]:
    janitor = _Janitor(pg_server)
    yield janitor
    janitor.cleanup()


@pytest.fixture
def make_db(pg_server: PgServer, _pg_janitor: _Janitor) -> Callable[..., str]:
    """Factory: ``make_db(template=None) -> name`` of a new database, dropped after the test."""

    def make(template: str | None = None) -> str:
        name = pg_server.create_database(template)
        _pg_janitor.databases.append(name)
        return name

    return make


def _admin_connection(pg_server: PgServer, janitor: _Janitor, dbname: str) -> Conn:
    conn = pg_server.connect(dbname)
    janitor.connections.append(conn)
    return conn


@pytest.fixture
def db_name(make_db: Callable[..., str]) -> str:
    """Name of a fresh, empty database."""
    return make_db()


@pytest.fixture
def db_dsn(pg_server: PgServer, db_name: str) -> str:
    """Superuser DSN of a fresh, empty database."""
    return pg_server.admin_dsn(db_name)


@pytest.fixture
def admin(pg_server: PgServer, _pg_janitor: _Janitor, db_name: str) -> Conn:
    """Autocommit superuser connection to the fresh database of ``db_dsn``."""
    return _admin_connection(pg_server, _pg_janitor, db_name)


def _install_pgguard(server: PgServer, dbname: str) -> None:
    try:
        from pgguard.installer import install
    except ModuleNotFoundError as e:
        if e.name != "pgguard.installer":
            raise
        _unavailable("pgguard.installer is not available")
    with psycopg.connect(server.admin_dsn(dbname)) as conn:
        # The attack matrices test what the guard refuses on tables that happen to be empty:
        # the template keeps them refused. The empty-table rule (on by default) has its own
        # tests, on databases installed with the defaults.
        install(conn, protect_empty=True)
        conn.commit()
    # The connection is closed here: a template must have no session attached.


@pytest.fixture(scope="session")
def guarded_template(pg_server: PgServer) -> str:
    """Name of the per-server template database in which pgguard is installed."""
    return pg_server.template("guarded", _install_pgguard)


@pytest.fixture
def guarded_db_name(make_db: Callable[..., str], guarded_template: str) -> str:
    """Name of a fresh database with pgguard installed (copied from the template)."""
    return make_db(template=guarded_template)


@pytest.fixture
def guarded_db_dsn(pg_server: PgServer, guarded_db_name: str) -> str:
    """Superuser DSN of a fresh database with pgguard installed."""
    return pg_server.admin_dsn(guarded_db_name)


@pytest.fixture
def guarded_admin(pg_server: PgServer, _pg_janitor: _Janitor, guarded_db_name: str) -> Conn:
    """Autocommit superuser connection to the fresh database of ``guarded_db_dsn``."""
    return _admin_connection(pg_server, _pg_janitor, guarded_db_name)


@pytest.fixture
def make_app_role(
    request: pytest.FixtureRequest, pg_server: PgServer, _pg_janitor: _Janitor
) -> Callable[..., AppRole]:
    """Factory: ``make_app_role(dbname=None, *, prefix="app", grants=True) -> AppRole``.

    ``dbname`` defaults to the test's database (guarded if the test uses a guarded fixture).
    ``grants`` gives CREATE on the database and CREATE, USAGE on schema public.
    """

    def make(dbname: str | None = None, *, prefix: str = "app", grants: bool = True) -> AppRole:
        if dbname is None:
            guarded = any(name in request.fixturenames for name in _GUARDED)
            dbname = request.getfixturevalue("guarded_db_name" if guarded else "db_name")
        name, password = pg_server.make_role(prefix)
        role = AppRole(name, password, dbname, pg_server.dsn(dbname, name, password), pg_server)
        _pg_janitor.roles.append(role)
        if grants:
            role_id, db_id = sql.Identifier(name), sql.Identifier(dbname)
            with pg_server.connect(dbname) as conn:
                conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(db_id, role_id))
                conn.execute(sql.SQL("GRANT CREATE, USAGE ON SCHEMA public TO {}").format(role_id))
        return role

    return make


@pytest.fixture
def app_role(make_app_role: Callable[..., AppRole]) -> AppRole:
    """An application role in the test's database (see ``make_app_role``)."""
    return make_app_role()


@pytest.fixture(params=["superuser", "app"])
def actor(
    request: pytest.FixtureRequest,
    pg_server: PgServer,
    guarded_db_name: str,
    app_role: AppRole,
) -> Conn:
    """The role matrix: who acts on the guarded database, the superuser or the app role
    (either owns the tables it creates)."""
    if request.param == "app":
        return app_role.connect()
    conn = pg_server.connect(guarded_db_name)
    request.addfinalizer(conn.close)
    return conn
