"""A managed platform played on a real server, for the privilege-mode tests (test_privmode_*).

The superuser of the test cluster plays the platform. It makes:
- ``owner``: the customer's credential, NOSUPERUSER, owner of the database (Render's default
  user, Aiven's avnadmin; with CREATEROLE and CREATEDB) or, ``heroku=True``, without CREATEROLE;
- the customer's tables in ``public`` (and schema ``billing``), created by ``owner``;
- on PostgreSQL 16+, ADMIN OPTION for ``owner`` on pgguard_owner (what creating a role gives a
  CREATEROLE user there; Heroku's default credential holds it on every other credential). The
  roles pgguard_owner and pgguard_auditor are cluster-wide, so the platform makes them once.
The customer then runs ``pgguard install --mode privileges --app-role APP`` as ``owner``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from pgguard.installer import InstallReport, install

Conn = psycopg.Connection[Any]


@dataclass
class Platform:
    server: Any
    dbname: str
    owner: str
    owner_password: str
    app: str
    app_password: str | None = None
    heroku: bool = False
    conns: list[Conn] = field(default_factory=list)

    def connect(self, who: str = "owner", *, autocommit: bool = True) -> Conn:
        user, password = {
            "owner": (self.owner, self.owner_password),
            "app": (self.app, self.app_password),
        }[who]
        conn = psycopg.connect(self.server.dsn(self.dbname, user, password), autocommit=autocommit)
        self.conns.append(conn)
        return conn

    def admin(self) -> Conn:
        conn = self.server.connect(self.dbname)
        self.conns.append(conn)
        return conn

    def install(self, **kw: Any) -> InstallReport:
        with psycopg.connect(
            self.server.dsn(self.dbname, self.owner, self.owner_password), autocommit=True
        ) as conn:
            kw.setdefault("mode", "privileges")
            kw.setdefault("app_role", self.app)
            report = install(conn, **kw)
        if report.app_password:
            self.app_password = report.app_password
        return report

    def close(self) -> None:
        """Close the connections and drop this platform's roles now, not at session end:
        roles are cluster-wide, and a CREATEROLE role left behind is a finding (doctor) in
        every other test's database."""
        for c in self.conns:
            c.close()
        self.server.drop_database(self.dbname)  # the janitor's later drop finds nothing
        for role in (self.app, self.owner):
            self.server.drop_role(role)


CUSTOMER_SCHEMA = """
CREATE TABLE public.tenants (id serial PRIMARY KEY, name text NOT NULL, legacy text);
INSERT INTO public.tenants (name, legacy) SELECT 't' || g, 'x' FROM generate_series(1, 5) g;
CREATE TABLE public.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                            tenant int REFERENCES public.tenants, total numeric);
INSERT INTO public.orders (tenant, total) VALUES (1, 10), (2, 20);
CREATE VIEW public.big_orders AS SELECT * FROM public.orders WHERE total > 15;
CREATE FUNCTION public.tenant_name(int) RETURNS text LANGUAGE sql STABLE
    AS 'SELECT name FROM public.tenants WHERE id = $1';
CREATE FUNCTION public.norm(text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT lower($1)';
CREATE INDEX tenants_norm ON public.tenants (public.norm(name));
CREATE SCHEMA billing;
CREATE TABLE billing.invoices (id int PRIMARY KEY, amount numeric);
INSERT INTO billing.invoices VALUES (1, 9.5);
"""


def make_platform(server: Any, make_db: Any, *, heroku: bool = False) -> Platform:
    """A database owned by a non-superuser customer credential, with the customer's tables."""
    from conftest import unique_name

    dbname = make_db()
    owner, owner_pw = server.make_role("own")
    app = unique_name("app")
    with server.connect() as su:
        if not heroku:
            su.execute(sql.SQL("ALTER ROLE {} CREATEROLE CREATEDB").format(sql.Identifier(owner)))
        for role in ("pgguard_owner", "pgguard_auditor"):
            if su.execute("SELECT to_regrole(%s)", (role,)).fetchone() == (None,):
                su.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        su.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(dbname), sql.Identifier(owner)
            )
        )
        if server.major >= 16:
            su.execute(
                sql.SQL(
                    "GRANT pgguard_owner TO {} WITH ADMIN TRUE, INHERIT FALSE, SET FALSE"
                ).format(sql.Identifier(owner))
            )
        elif heroku:
            # PG 15 and older have no ADMIN without membership: Heroku's default credential
            # would hold the credential with ADMIN, i.e. as a member. Tests that need a
            # non-member installer without CREATEROLE run on 16+.
            su.execute(
                sql.SQL("GRANT pgguard_owner TO {} WITH ADMIN OPTION").format(sql.Identifier(owner))
            )
        if heroku:
            # credentials are made outside SQL on Heroku: the app role exists already
            server_app, app_pw = server.make_role("app")
            app = server_app
        else:
            server._roles.add(app)
            app_pw = None
    with psycopg.connect(server.dsn(dbname, owner, owner_pw), autocommit=True) as conn:
        if server.major >= 15:
            # PG 15+: public belongs to pg_database_owner, i.e. to the database owner
            pass
        else:
            su_conn = server.connect(dbname)
            su_conn.execute(
                sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(owner))
            )
            su_conn.close()
        conn.execute(CUSTOMER_SCHEMA)
    p = Platform(server, dbname, owner, owner_pw, app, app_pw, heroku)
    return p


def error_of(conn: Conn, stmt: str, params: Any = None) -> psycopg.Error:
    """Run ``stmt``; it must fail. Returns the error; the connection stays usable."""
    try:
        conn.execute(stmt, params)
    except psycopg.Error as e:
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
            conn.rollback()
        return e
    raise AssertionError(f"{stmt!r} succeeded")


def run_ddl(conn: Conn, stmt: str) -> Any:
    row = conn.execute("SELECT pgguard.run_ddl(%s)", (stmt,)).fetchone()
    return row[0] if row else None


def ddl_error(conn: Conn, stmt: str) -> psycopg.Error:
    """``pgguard.run_ddl(stmt)`` must fail; returns the error."""
    return error_of(conn, "SELECT pgguard.run_ddl(%s)", (stmt,))


def owner_of(conn: Conn, relation: str) -> str:
    schema, name = relation.split(".")
    row = conn.execute(
        "SELECT c.relowner::regrole::text FROM pg_class c JOIN pg_namespace n"
        " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (schema, name),
    ).fetchone()
    assert row is not None
    return str(row[0])


def guard_enabled(conn: Conn, relation: str) -> str | None:
    schema, name = relation.split(".")
    row = conn.execute(
        "SELECT t.tgenabled::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s"
        " AND c.relname = %s AND t.tgname = 'pgguard_truncate_guard'",
        (schema, name),
    ).fetchone()
    return None if row is None else str(row[0])
