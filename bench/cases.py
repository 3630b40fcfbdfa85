"""The bench's cases: each a function ``(lab) -> list[Row]`` registered with :func:`case`.

To add a case (say, privilege mode's executor): write a function taking a
:class:`~bench.lab.Lab`, time its work with ``lab.ab(...)`` (interleaved unguarded/guarded
sessions) or by hand, return :class:`~bench.lab.Row` values with a goal, and decorate it with
``@case("id")``. ``python -m bench --cases id`` runs it alone. Sizes shrink under ``lab.quick``.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from psycopg import sql

from .lab import GUARDED, PLAIN, Conn, Lab, Row, backend_cpu, fresh_schema

CaseFn = Callable[[Lab], list[Row]]
CASES: dict[str, CaseFn] = {}


def case(name: str) -> Callable[[CaseFn], CaseFn]:
    """Register a case under ``name`` (run in registration order)."""

    def register(fn: CaseFn) -> CaseFn:
        CASES[name] = fn
        return fn

    return register


def at_most(limit: float) -> Callable[[float], bool]:
    return lambda r: r <= limit


def at_least(limit: float) -> Callable[[float], bool]:
    return lambda r: r >= limit


def run_statements(stmts: list[str]) -> Callable[[Conn], None]:
    """Work that sends each statement on its own, as a migration tool does."""

    def work(conn: Conn) -> None:
        for s in stmts:
            conn.execute(s.encode())

    return work


def migration_mix(n: int, schema: str = "mix") -> list[str]:
    """``n`` statements: a third each CREATE TABLE, ADD COLUMN, CREATE INDEX, table by table."""
    out: list[str] = []
    i = 0
    while len(out) < n:
        i += 1
        t = f"{schema}.t{i}"
        out += [
            f"CREATE TABLE {t} (id bigint PRIMARY KEY, name text NOT NULL, at timestamptz)",
            f"ALTER TABLE {t} ADD COLUMN ref integer",
            f"CREATE INDEX ON {t} (ref)",
        ]
    return out[:n]


def _mix_rows(lab: Lab, in_transaction: bool) -> list[Row]:
    n = 30 if lab.quick else 2000
    stmts = migration_mix(n)
    work = run_statements(stmts)
    if in_transaction:

        def work_tx(conn: Conn) -> None:
            with conn.transaction():
                run_statements(stmts)(conn)

        times = lab.ab(work_tx, setup=lambda c: fresh_schema(c, "mix"))
    else:
        times = lab.ab(work, setup=lambda c: fresh_schema(c, "mix"))
    mode = "one transaction" if in_transaction else "autocommit"
    return [
        Row(
            "mix_tx" if in_transaction else "mix_autocommit",
            f"migration mix, {n} statements, {mode}",
            "s",
            PLAIN,
            GUARDED,
            times[PLAIN],
            times[GUARDED],
            "≤ 1.5×",
            at_most(1.5),
            cpu_a=times.cpu[PLAIN],
            cpu_b=times.cpu[GUARDED],
        )
    ]


@case("mix_autocommit")
def mix_autocommit(lab: Lab) -> list[Row]:
    """2,000 statements (CREATE TABLE / ADD COLUMN / CREATE INDEX), each its own transaction."""
    return _mix_rows(lab, in_transaction=False)


@case("mix_tx")
def mix_tx(lab: Lab) -> list[Row]:
    """The same 2,000 statements in one transaction."""
    return _mix_rows(lab, in_transaction=True)


@case("other_ddl")
def other_ddl(lab: Lab) -> list[Row]:
    """DDL other than CREATE TABLE on existing tables: ADD COLUMN, CREATE INDEX, ALTER, views."""
    tables = 5 if lab.quick else 150
    stmts: list[str] = []
    for i in range(1, tables + 1):
        t = f"od.t{i}"
        stmts += [
            f"ALTER TABLE {t} ADD COLUMN c integer",
            f"CREATE INDEX ON {t} (c)",
            f"ALTER TABLE {t} ALTER COLUMN v SET DEFAULT 'x'",
            f"CREATE VIEW od.v{i} AS SELECT id, c FROM {t}",
        ]
    times = lab.ab(run_statements(stmts), setup=lambda c: fresh_schema(c, "od", tables))
    return [
        Row(
            "other_ddl",
            f"other DDL (ADD COLUMN, CREATE INDEX, ALTER, CREATE VIEW), {len(stmts)} statements",
            "s",
            PLAIN,
            GUARDED,
            times[PLAIN],
            times[GUARDED],
            "≤ 1.10×",
            at_most(1.10),
            cpu_a=times.cpu[PLAIN],
            cpu_b=times.cpu[GUARDED],
        )
    ]


@case("create_table")
def create_table(lab: Lab) -> list[Row]:
    """CREATE TABLE alone, autocommit: each new table gets its TRUNCATE guard."""
    n = 10 if lab.quick else 500
    stmts = [f"CREATE TABLE ct.t{i} (id bigint PRIMARY KEY, v text)" for i in range(1, n + 1)]
    times = lab.ab(run_statements(stmts), setup=lambda c: fresh_schema(c, "ct"))
    return [
        Row(
            "create_table",
            f"CREATE TABLE × {n}, autocommit",
            "s",
            PLAIN,
            GUARDED,
            times[PLAIN],
            times[GUARDED],
            "≤ 1.6×",
            at_most(1.6),
            cpu_a=times.cpu[PLAIN],
            cpu_b=times.cpu[GUARDED],
        )
    ]


def _many(lab: Lab) -> int:
    return 20 if lab.quick else 1000


def _truncate_all(n: int, schema: str = "tr") -> bytes:
    return ("TRUNCATE " + ", ".join(f"{schema}.t{i}" for i in range(1, n + 1))).encode()


@case("truncate_many")
def truncate_many(lab: Lab) -> list[Row]:
    """TRUNCATE of 1,000 tables in one statement, with a token (a fresh session, as a tool's)."""
    n = _many(lab)
    stmt = _truncate_all(n)
    times = lab.ab(
        lambda c: c.execute(stmt), setup=lambda c: fresh_schema(c, "tr", n, rows=True), token=True
    )
    return [
        Row(
            "truncate_many",
            f"TRUNCATE {n} tables in one statement, with a token",
            "s",
            PLAIN,
            GUARDED,
            times[PLAIN],
            times[GUARDED],
            "≤ 2×",
            at_most(2.0),
            cpu_a=times.cpu[PLAIN],
            cpu_b=times.cpu[GUARDED],
        )
    ]


@case("drop_schema")
def drop_schema(lab: Lab) -> list[Row]:
    """DROP SCHEMA … CASCADE of 1,000 tables, with a token."""
    n = _many(lab)
    times = lab.ab(
        lambda c: c.execute("DROP SCHEMA ds CASCADE"),
        setup=lambda c: fresh_schema(c, "ds", n, rows=True),
        token=True,
    )
    return [
        Row(
            "drop_schema",
            f"DROP SCHEMA … CASCADE of {n} tables, with a token",
            "s",
            PLAIN,
            GUARDED,
            times[PLAIN],
            times[GUARDED],
            "≤ 1.3×",
            at_most(1.3),
            cpu_a=times.cpu[PLAIN],
            cpu_b=times.cpu[GUARDED],
        )
    ]


@case("session_growth")
def session_growth(lab: Lab) -> list[Row]:
    """Later DDL in a guarded session that truncated 1,000 distinct guarded tables."""
    return [_session_growth(lab, GUARDED, "no growth (≤ 1.05×)", at_most(1.05))]


@case("session_growth_plain")
def session_growth_plain(lab: Lab) -> list[Row]:
    """The same in the unguarded database: PostgreSQL's own growth (no goal; the reference for
    session_growth). A backend that locked thousands of relations keeps its local lock table
    that large, and every later commit walks it."""
    return [_session_growth(lab, PLAIN, "reference for session_growth", None)]


def _session_growth(lab: Lab, side: str, goal: str, met: Callable[[float], bool] | None) -> Row:
    n = _many(lab)
    pairs = 10 if lab.quick else 200
    stmts = []
    for _ in range(pairs):
        stmts += ["CREATE INDEX sg_ix ON sg.t (a)", "DROP INDEX sg.sg_ix"]
    with lab.session(side, token=True) as s:
        fresh_schema(s, "tr", n, rows=True)
        fresh_schema(s, "sg")
        s.execute("CREATE TABLE sg.t (a int, b int)")
    work = run_statements(stmts)
    truncate = _truncate_all(n)
    fresh: list[float] = []
    truncated: list[float] = []
    cpu: dict[str, list[float]] = {"fresh": [], "truncated": []}
    for r in range(lab.repeat):
        for kind in ("fresh", "truncated") if r % 2 == 0 else ("truncated", "fresh"):
            with lab.session(side, token=True) as conn:
                work(conn)  # warm: both sessions have compiled the event-trigger functions
                if kind == "truncated":
                    conn.execute(truncate)
                c0 = backend_cpu(conn)
                t = time.perf_counter()
                work(conn)
                (fresh if kind == "fresh" else truncated).append(time.perf_counter() - t)
                c1 = backend_cpu(conn)
                if c0 is not None and c1 is not None:
                    cpu[kind].append(c1 - c0)
    where = "" if side == GUARDED else ", unguarded database"
    row = Row(
        "session_growth" if side == GUARDED else "session_growth_plain",
        f"{len(stmts)} DDL statements after TRUNCATE of {n} tables in the same session{where}",
        "s",
        "fresh guarded session" if side == GUARDED else "fresh unguarded session",
        "after the TRUNCATE",
        fresh,
        truncated,
        goal,
        met,
        cpu_a=cpu["fresh"],
        cpu_b=cpu["truncated"],
    )
    if row.a and row.b:
        delta = (statistics.median(row.b) - statistics.median(row.a)) / len(stmts) * 1000
        row.note = f"{delta:+.3f} ms per statement"
    return row


def _pgbench(lab: Lab, args: list[str], dbname: str, token: bool = False) -> str:
    assert lab.bindir is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if lab.libdir is not None:
        env["LD_LIBRARY_PATH"] = str(lab.libdir)
    if token:
        env["PGOPTIONS"] = f"-c pgguard.token={lab.token}"
    out = subprocess.run(
        [str(lab.bindir / "pgbench"), *args, "-d", lab.dsn(dbname)],
        capture_output=True,
        text=True,
        env=env,
    )
    if out.returncode != 0:
        raise RuntimeError(f"pgbench {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout


@case("pgbench")
def pgbench(lab: Lab) -> list[Row]:
    """pgbench select-only and tpcb-like throughput: application traffic."""
    if lab.bindir is None or not (lab.bindir / "pgbench").exists():
        return [
            Row("pgbench", "pgbench", "tps", PLAIN, GUARDED, [], [], "≥ 0.98", None, "no pgbench")
        ]
    for side in (PLAIN, GUARDED):
        _pgbench(lab, ["-i", "-q", "-s", "1" if lab.quick else "10"], lab.dbs[side], token=True)
    # short runs, twice as many: on a shared machine the noise comes in bursts
    seconds = "1" if lab.quick else "3"
    rows = []
    for label, extra in (("select-only", ["-S"]), ("tpcb-like", [])):
        tps: dict[str, list[float]] = {PLAIN: [], GUARDED: []}
        for r in range(lab.repeat * (1 if lab.quick else 2)):
            for side in (PLAIN, GUARDED) if r % 2 == 0 else (GUARDED, PLAIN):
                args = ["-n", *extra, "-T", seconds, "-c", "2", "-j", "2"]
                out = _pgbench(lab, args, lab.dbs[side])
                m = re.search(r"tps = ([0-9.]+)", out)
                if m is None:
                    raise RuntimeError(f"no tps in pgbench output: {out}")
                tps[side].append(float(m.group(1)))
        rows.append(
            Row(
                f"pgbench_{label.replace('-', '_')}",
                f"pgbench {label}, 2 clients, {seconds} s runs",
                "tps",
                PLAIN,
                GUARDED,
                tps[PLAIN],
                tps[GUARDED],
                "≥ 0.98",
                at_least(0.98),
            )
        )
    return rows


def _install_run(lab: Lab, tables: int) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, outcome) of ``pgguard install`` on a database of ``tables``."""
    db = lab.create_db("pgguard_bench_install")
    try:
        with lab.connect_db(db) as conn:
            per = 500
            for start in range(0, tables, per):
                schema = f"s{start // 5000}"
                if start % 5000 == 0:
                    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
                conn.execute(
                    sql.SQL(
                        "DO $$ BEGIN FOR i IN {}..{} LOOP EXECUTE pg_catalog.format("
                        "'CREATE TABLE %I.%I (id int PRIMARY KEY, v text)', {}, 't' || i);"
                        " END LOOP; END $$"
                    ).format(
                        sql.Literal(start + 1),
                        sql.Literal(min(tables, start + per)),
                        sql.Literal(schema),
                    )
                )
        env = dict(os.environ)
        env.pop("PGGUARD_DSN", None)
        t = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "pgguard", "install", "--dsn", lab.dsn(db), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        # wait4 gives this child's own peak RSS (getrusage(RUSAGE_CHILDREN) would mix children)
        stdout = proc.stdout.read() if proc.stdout else b""
        stderr = proc.stderr.read() if proc.stderr else b""
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t
        if proc.returncode != 0:
            raise RuntimeError(f"pgguard install exited {proc.returncode}: {stderr.decode()}")
        del stdout
        return seconds, usage.ru_maxrss / 1024, "ok"
    finally:
        lab.drop_db(db)


@case("install")
def install_sizes(lab: Lab) -> list[Row]:
    """`pgguard install` (the CLI, in its own process) on databases of 10,000 and 50,000 tables."""
    sizes = (200, 1000) if lab.quick else (10_000, 50_000)
    results = {n: _install_run(lab, n) for n in sizes}
    small, large = sizes
    rows = []
    for n in sizes:
        secs, rss, _ = results[n]
        rows.append(
            Row(
                f"install_{n}",
                f"pgguard install on {n:,} tables",
                "s",
                "",
                "install",
                [],
                [secs],
                "≤ 30 s" if n == small else "linear",
                None,
                f"peak CLI memory {rss:.0f} MiB; {secs / n * 1000:.2f} ms per table",
                {"seconds": secs, "peak_rss_mib": rss, "tables": n},
            )
        )
    s_small, m_small, _ = results[small]
    s_large, m_large, _ = results[large]
    scale = (s_large / large) / (s_small / small)
    mem = m_large / m_small
    rows[0].verdict = s_small <= 30.0
    rows[1].verdict = scale <= 1.25 and mem <= 1.25
    rows[1].note += f"; time per table ×{scale:.2f} and peak memory ×{mem:.2f} of the {small:,} run"
    return rows


@case("privmode")
def privmode(lab: Lab) -> list[Row]:
    """Privilege mode: schema changes through the executor, next to the same DDL run directly.

    Two more databases owned by a non-superuser owner credential, each with existing tables;
    one gets pgguard in privilege mode. The same CREATE TABLE / ADD COLUMN / CREATE INDEX
    statements (one transaction each) run directly as the owner on the plain one and as the
    app role through ``pgguard.run_ddl`` on the guarded one.
    """
    import uuid

    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from pgguard.installer import install

    n = 9 if lab.quick else 150
    existing = 5 if lab.quick else 100
    tag = uuid.uuid4().hex[:8]
    owner, app = f"bench_own_{tag}", f"bench_app_{tag}"

    def dsn(db: str, user: str, password: str) -> str:
        params = conninfo_to_dict(lab.dsn(db))
        params.update(user=user, password=password)
        return make_conninfo("", **params)

    def stmts(prefix: str) -> list[str]:
        out = []
        for i in range(n):
            t = f"public.{prefix}{i - i % 3}"
            out.append(
                [
                    f"CREATE TABLE {t} (id int PRIMARY KEY, v text)",
                    f"ALTER TABLE {t} ADD COLUMN c int",
                    f"CREATE INDEX ON {t} (v)",
                ][i % 3]
            )
        return out

    lab.admin.execute(
        sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD 'x'").format(sql.Identifier(owner))
    )
    # pgguard_owner is cluster-wide and the event-trigger install made it already: the owner
    # credential needs ADMIN on it (on PG 16+ CREATEROLE alone does not give that)
    lab.admin.execute(
        sql.SQL("GRANT pgguard_owner TO {} WITH ADMIN OPTION").format(sql.Identifier(owner))
    )
    dbs: list[str] = []
    try:
        for _ in range(2):
            db = lab.create_db("pgguard_bench_priv")
            dbs.append(db)
            lab.admin.execute(
                sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                    sql.Identifier(db), sql.Identifier(owner)
                )
            )
            with lab.connect_db(db) as c:
                c.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(owner)))
            with psycopg.connect(dsn(db, owner, "x"), autocommit=True) as c:
                fresh_schema(c, "pre", existing)
        with psycopg.connect(dsn(dbs[1], owner, "x"), autocommit=True) as c:
            password = install(c, mode="privileges", app_role=app).app_password or ""
        direct: list[float] = []
        executor: list[float] = []
        cpu: dict[str, list[float]] = {"direct": [], "executor": []}
        for r in range(lab.repeat):
            batch = stmts(f"b{r}_")
            for side in ("direct", "executor") if r % 2 == 0 else ("executor", "direct"):
                through = side == "executor"
                user, pw = (app, password) if through else (owner, "x")
                with psycopg.connect(dsn(dbs[1] if through else dbs[0], user, pw)) as conn:
                    c0 = backend_cpu(conn)
                    t = time.perf_counter()
                    for s in batch:
                        if through:
                            conn.execute("SELECT pgguard.run_ddl(%s)", (s,))
                        else:
                            conn.execute(s.encode())
                        conn.commit()
                    (executor if through else direct).append(time.perf_counter() - t)
                    c1 = backend_cpu(conn)
                    if c0 is not None and c1 is not None:
                        cpu[side].append(c1 - c0)
    finally:
        for db in dbs:
            lab.drop_db(db)
        for role in (app, owner):
            lab.admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    return [
        Row(
            "privmode",
            f"privilege mode: {n} schema changes through pgguard.run_ddl, one transaction each",
            "s",
            "direct DDL",
            "through the executor",
            direct,
            executor,
            "≤ 1.5×",
            at_most(1.5),
            cpu_a=cpu["direct"],
            cpu_b=cpu["executor"],
        )
    ]


@case("row_limits")
def row_limits(lab: Lab) -> list[Row]:
    """Row-loss limits (`protect-rows`): single-row UPDATEs, each committed, on a table with the
    default limits against one without pgguard; and a 100,000-row DELETE approved by a token.
    A third row is the floor any statement trigger pays: an AFTER UPDATE trigger with a
    transition table whose WHEN is false (so no function runs)."""
    from pgguard.rowlimits import protect_rows

    n = 50 if lab.quick else 2000
    big = 2000 if lab.quick else 100_000
    loop = (
        "CREATE OR REPLACE PROCEDURE rl.bump(n int) LANGUAGE plpgsql AS $$ BEGIN"
        " FOR i IN 1..n LOOP UPDATE rl.t SET v = v + 1 WHERE id = 1 + i % 1000; COMMIT;"
        " END LOOP; END $$"
    )

    def table(conn: Conn, side: str, trigger: str | None) -> None:
        fresh_schema(conn, "rl")
        conn.execute("CREATE TABLE rl.t (id int PRIMARY KEY, v int)")
        conn.execute("INSERT INTO rl.t SELECT g, 0 FROM generate_series(1, 1000) g")
        conn.execute(loop)
        if side == GUARDED and trigger == "limit":
            protect_rows(conn, ["rl.t"])
        elif side == GUARDED and trigger == "floor":
            conn.execute(
                "CREATE FUNCTION rl.noop() RETURNS trigger LANGUAGE plpgsql"
                " AS 'BEGIN RETURN NULL; END'"
            )
            conn.execute(
                "CREATE TRIGGER floor AFTER UPDATE ON rl.t REFERENCING OLD TABLE AS o"
                " FOR EACH STATEMENT WHEN (false) EXECUTE FUNCTION rl.noop()"
            )

    rows = []
    for trigger, label, goal, check in (
        ("limit", "single-row UPDATE + COMMIT, protect-rows defaults", "≤ 1.02", at_most(1.02)),
        ("floor", "single-row UPDATE + COMMIT, empty-WHEN trigger (floor)", "", None),
    ):
        t = lab.ab(
            lambda c: c.execute("CALL rl.bump(%s)", (n,)),
            setup=lambda c, tr=trigger: table(c, GUARDED if _is_guarded(lab, c) else PLAIN, tr),
        )
        row = Row(f"row_limits_{trigger}", f"{label} ({n} statements)", "s", PLAIN, GUARDED,
                  t[PLAIN], t[GUARDED], goal, check)  # fmt: skip
        row.cpu_a, row.cpu_b = t.cpu[PLAIN], t.cpu[GUARDED]
        if row.a and row.b:
            delta = (statistics.median(row.b) - statistics.median(row.a)) / n * 1e6
            row.note = f"{delta:+.1f} µs per UPDATE"
        rows.append(row)

    def big_table(conn: Conn) -> None:
        fresh_schema(conn, "rl")
        conn.execute("CREATE TABLE rl.big (id int PRIMARY KEY, tenant int, note text)")
        conn.execute(
            "INSERT INTO rl.big SELECT g, g %% 100, md5(g::text) FROM generate_series(1, %s) g",
            (big,),
        )
        if _is_guarded(lab, conn):
            protect_rows(conn, ["rl.big"])
        conn.execute("VACUUM ANALYZE rl.big")

    t = lab.ab(lambda c: c.execute("DELETE FROM rl.big"), setup=big_table, token=True)
    row = Row("row_limits_delete", f"DELETE of {big:,} rows approved by a token", "s", PLAIN,
              GUARDED, t[PLAIN], t[GUARDED], "≤ 1.5", at_most(1.5))  # fmt: skip
    row.cpu_a, row.cpu_b = t.cpu[PLAIN], t.cpu[GUARDED]
    rows.append(row)
    return rows


def _is_guarded(lab: Lab, conn: Conn) -> bool:
    return conn.info.dbname == lab.dbs[GUARDED]
