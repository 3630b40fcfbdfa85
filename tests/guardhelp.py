"""Shared assertions for the adversarial guard tests (test_guard_*.py).

A refusal is asserted whole: SQLSTATE ``PGG01``, the exact message, the DETAIL, the HINT (the
``pgguard allow`` line), the ``op=`` constraint field, and that the connection still works.
``snapshot`` captures every user table's columns, rows and TRUNCATE guard plus pgguard's own
objects, so a test can prove a refused statement lost nothing and switched nothing off.
Tokens are built here from first principles (the contract's format, ``cryptography``), not with
``pgguard.token``, so these tests do not depend on the code they check.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import secrets
import shlex
import time
from collections.abc import Collection, Iterable
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from psycopg import sql
from psycopg.pq import TransactionStatus

Conn = psycopg.Connection[Any]

PGG01 = "PGG01"
NO_TOKEN = "no override token is set (pgguard.token is empty)"
HINT_PREFIX = "to approve it, run: pgguard allow"
GUARD = "pgguard_truncate_guard"
VERBS = {"drop_table": "drop table", "drop_column": "drop column", "truncate": "truncate table"}


# --- running statements ------------------------------------------------------------------------


def refusal(conn: Conn, stmt: str) -> psycopg.errors.Diagnostic:
    """Run ``stmt``; it must fail with SQLSTATE PGG01. Returns the error's diagnostics."""
    try:
        conn.execute(stmt)  # type: ignore[call-overload]
    except psycopg.Error as e:
        if e.sqlstate != PGG01:
            pytest.fail(
                f"{stmt!r} failed with {e.sqlstate} instead of the guard's {PGG01}: {e}",
                pytrace=False,
            )
        return e.diag
    pytest.fail(f"{stmt!r} was NOT refused: it succeeded", pytrace=False)


def failure(conn: Conn, stmt: str) -> psycopg.Error:
    """Run ``stmt``; it must fail (with any error). Returns the error."""
    try:
        conn.execute(stmt)  # type: ignore[call-overload]
    except psycopg.Error as e:
        return e
    pytest.fail(f"{stmt!r} succeeded; it must fail", pytrace=False)


def assert_usable(conn: Conn) -> None:
    """After an error: autocommit connections answer again; open transactions are aborted."""
    status = conn.info.transaction_status
    if status == TransactionStatus.IDLE:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    else:
        assert status == TransactionStatus.INERROR, f"unexpected transaction status {status!r}"


def _as_set(obj: str | Collection[str]) -> set[str]:
    return {obj} if isinstance(obj, str) else set(obj)


def assert_refused(
    conn: Conn,
    stmt: str,
    *,
    op: str,
    obj: str | Collection[str],
    more: int = 0,
    detail: str | None = NO_TOKEN,
    detail_prefix: str | tuple[str, ...] | None = None,
    hint_ops: Iterable[str] | None = None,
    hint_objs: Iterable[str] | None = None,
) -> psycopg.errors.Diagnostic:
    """``stmt`` is refused by the guard for ``op``.

    ``obj`` is the object the message must name, or the set of objects any of which it may name
    first (PostgreSQL does not promise an order for several); ``more`` is the number of further
    objects (message suffix `` and N more``). ``detail`` is the exact DETAIL (None: not checked),
    ``detail_prefix`` a prefix (or a tuple of prefixes) it must have instead.
    The HINT must be ``pgguard allow`` with exactly the ops ``hint_ops`` (default: ``op``) and
    exactly the objects ``hint_objs`` (default: the one named when ``more`` is 0; all of ``obj``
    when it lists ``more`` + 1; else at least the one named), and this database: the line that
    approves this statement and nothing more.
    """
    diag = refusal(conn, stmt)
    allowed = _as_set(obj)
    verb = VERBS[op]
    msg = diag.message_primary or ""
    suffix = f" and {more} more" if more else ""
    firsts = [o for o in allowed if msg == f'pgguard: refusing to {verb} "{o}"{suffix}']
    assert firsts, (
        f"{stmt!r}: message {msg!r}, expected 'pgguard: refusing to {verb} \"<one of "
        f"{sorted(allowed)}>\"{suffix}'"
    )
    first = firsts[0]
    assert diag.constraint_name == f"op={op}", diag.constraint_name
    if detail_prefix is not None:
        assert (diag.message_detail or "").startswith(detail_prefix), diag.message_detail
    elif detail is not None:
        assert diag.message_detail == detail, diag.message_detail
    hint = parse_hint(diag.message_hint)
    assert hint["db"] == [conn.info.dbname], hint
    assert set(hint["op"]) == set(hint_ops or [op]), (stmt, hint)
    if hint_objs is None and more and len(allowed) == more + 1:
        hint_objs = allowed  # the caller listed every object the statement touches
    if hint_objs is not None:
        assert set(hint["object"]) == widen(hint_objs), (stmt, hint)
    elif more == 0:
        assert hint["object"] == [first], (stmt, hint)
    else:
        assert first in hint["object"] or f"{first.split('.')[0]}.*" in hint["object"], hint
    assert_usable(conn)
    return diag


REMOVES_GUARD = "this statement would remove the guard itself"


def parse_hint(hint: str | None) -> dict[str, list[str]]:
    """``to approve it, run: pgguard allow --op X --object Y --db Z`` -> its option values."""
    assert hint and hint.startswith(HINT_PREFIX + " "), hint
    words = shlex.split(hint[len(HINT_PREFIX) :])
    if "--" in words:  # `pgguard allow … -- pgguard uninstall`: the command to run with it
        words = words[: words.index("--")]
    opts: dict[str, list[str]] = {"op": [], "object": [], "db": []}
    assert len(words) % 2 == 0, hint
    for flag, value in zip(words[::2], words[1::2], strict=True):
        assert flag.startswith("--") and flag[2:] in opts, (flag, hint)
        opts[flag[2:]].append(value)
    return opts


def widen(objs: Iterable[str]) -> set[str]:
    """The HINT's objects: as given up to five, else ``schema.*`` per schema."""
    objs = set(objs)
    return objs if len(objs) <= 5 else {f"{o.split('.')[0]}.*" for o in objs}


def assert_uninstall_refused(
    conn: Conn, stmt: str, *, mentions: str | None = None
) -> psycopg.errors.Diagnostic:
    """``stmt`` is refused as op ``uninstall`` (tampering with pgguard or a TRUNCATE guard)."""
    diag = refusal(conn, stmt)
    msg = diag.message_primary or ""
    assert msg.startswith("pgguard: refusing to "), msg
    if mentions is not None:
        assert mentions in msg, (mentions, msg)
    assert diag.constraint_name == "op=uninstall", (diag.constraint_name, msg)
    hint = parse_hint(diag.message_hint)
    assert "uninstall" in hint["op"], hint
    assert hint["db"] == [conn.info.dbname], hint
    if diag.message_detail == REMOVES_GUARD:
        # dropping pgguard's own objects: no token can approve it, only `pgguard uninstall`
        assert diag.message_hint.endswith(" -- pgguard uninstall"), diag.message_hint
    else:
        assert diag.message_detail == NO_TOKEN, diag.message_detail
    assert_usable(conn)
    return diag


def assert_denied(conn: Conn, stmt: str) -> psycopg.Error:
    """``stmt`` fails on a privilege check (42501 insufficient_privilege), not on the guard."""
    err = failure(conn, stmt)
    assert err.sqlstate == "42501", f"{stmt!r}: {err.sqlstate} {err}"
    assert_usable(conn)
    return err


# --- tables and guards -------------------------------------------------------------------------


def ident(qualified: str) -> sql.Composed:
    """``"schema"."table"`` from ``schema.table``."""
    schema, _, table = qualified.partition(".")
    return sql.SQL(".").join([sql.Identifier(schema), sql.Identifier(table)])


def make_table(conn: Conn, name: str, rows: int = 3, *, extra: str = "") -> None:
    """CREATE TABLE ``name`` (id, c, d ``extra``) with ``rows`` rows, in its own transaction."""
    with conn.transaction():
        conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, c int, d text{extra})")  # type: ignore[arg-type]
        if rows:
            conn.execute(
                f"INSERT INTO {name} (id, c, d)"  # type: ignore[arg-type]
                f" SELECT g, g * 10, 'row ' || g FROM generate_series(1, {rows}) g"
            )


def guard_state(conn: Conn, table: str) -> tuple[Any, ...] | None:
    """(tgenabled, function, tgtype, WHEN is the guard's own for this very table) of
    ``table``'s guard, or None if it has none."""
    row = conn.execute(
        """
        SELECT t.tgenabled, t.tgfoid::regprocedure::text, t.tgtype,
               COALESCE(pg_catalog.pg_get_expr(t.tgqual, 0) IN (
                   format('pgguard.truncate_refused(%%s::regclass)', q.lit),
                   format('truncate_refused(%%s::regclass)', q.lit)), false)
          FROM pg_catalog.pg_trigger t,
               LATERAL (SELECT '''' || replace(t.tgrelid::regclass::text, '''', '''''')
                               || '''' AS lit) q
         WHERE t.tgrelid = %s::regclass AND t.tgname = %s
        """,
        (table, GUARD),
    ).fetchone()
    return tuple(row) if row else None


GOOD_GUARD = ("A", "pgguard.truncate_guard()", 34, True)


def assert_guarded(conn: Conn, table: str, *, check_truncate: bool = True) -> None:
    """``table`` carries a correct ENABLE ALWAYS guard, and TRUNCATE of it is refused."""
    assert guard_state(conn, table) == GOOD_GUARD, (table, guard_state(conn, table))
    if check_truncate:
        assert conn.info.transaction_status == TransactionStatus.IDLE
        assert_refused(conn, f"TRUNCATE {table}", op="truncate", obj=table)


def count(conn: Conn, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # type: ignore[arg-type]
    assert row is not None
    return int(row[0])


def snapshot(conn: Conn) -> dict[str, Any]:
    """Every user table (columns, row digest, guard) and pgguard's objects, comparable with ==."""
    tables = conn.execute(
        """
        SELECT c.oid, pg_catalog.format('%I.%I', n.nspname, c.relname), c.relkind
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgguard')
           AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'
         ORDER BY 2
        """
    ).fetchall()
    snap: dict[str, Any] = {}
    for oid, name, relkind in tables:
        cols = conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            (oid,),
        ).fetchall()
        rows = conn.execute(
            sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), ''))"
                " FROM ONLY {} x"
            ).format(sql.SQL(name))  # name is quoted by format('%I.%I')
        ).fetchone()
        snap[name] = {
            "oid": oid,
            "relkind": relkind,
            "columns": cols,
            "rows": rows,
            "guard": guard_state(conn, name),
        }
    snap["<pgguard>"] = conn.execute(
        """
        SELECT (SELECT array_agg(evtname || ':' || evtenabled::text ORDER BY evtname)
                  FROM pg_event_trigger WHERE evtname LIKE 'pgguard\\_%%'),
               (SELECT array_agg(p.oid::regprocedure::text || ':' || md5(p.prosrc)
                                 || ':' || p.proowner::regrole::text || ':' || p.prosecdef::text
                                 ORDER BY 1)
                  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                 WHERE n.nspname IN ('pgguard', 'pgguard_sentinel')),
               (SELECT array_agg(c.relname::text || ':' || c.relowner::regrole::text
                                 || ':' || coalesce(c.relacl::text, '') ORDER BY 1)
                  FROM pg_class c WHERE c.relnamespace = 'pgguard'::regnamespace),
               (SELECT array_agg(nspname || ':' || nspowner::regrole::text || ':'
                                 || coalesce(nspacl::text, '') ORDER BY 1)
                  FROM pg_namespace WHERE nspname IN ('pgguard', 'pgguard_sentinel'))
        """
    ).fetchone()
    return snap


def assert_intact(conn: Conn, before: dict[str, Any]) -> None:
    """Nothing changed since ``before`` (a :func:`snapshot`): no table, column, row or guard."""
    after = snapshot(conn)
    lost = sorted(set(before) - set(after))
    assert not lost, f"tables gone: {lost}"
    for name, was in before.items():
        assert after[name] == was, f"{name} changed:\n was {was}\n now {after[name]}"


# --- override tokens (contract: token format, version 1) ----------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@functools.lru_cache(maxsize=4)
def private_key(n: int = 0) -> rsa.RSAPrivateKey:
    """A test approver key (2048 bits: the server accepts 2048..16384), cached per process."""
    del n  # only the cache key: several distinct keys
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def kid_of(key: rsa.RSAPrivateKey) -> str:
    """First 16 hex digits of SHA-256 over the public key's DER (SubjectPublicKeyInfo)."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]


def register_key(admin: Conn, key: rsa.RSAPrivateKey) -> str:
    """Register ``key``'s public half in pgguard.keys (as the installing superuser)."""
    pub = key.public_key()
    n = pub.public_numbers().n
    pem = pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    kid = kid_of(key)
    admin.execute(
        "INSERT INTO pgguard.keys (kid, n, e, k, bits, public_pem, comment)"
        " VALUES (%s, %s::numeric, 65537, %s, %s, %s, 'test key')",
        (kid, str(n), (n.bit_length() + 7) // 8, n.bit_length(), pem),
    )
    return kid


def claims(**overrides: Any) -> dict[str, Any]:
    """Well-formed claims, valid now for 10 minutes, covering everything unless overridden."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iat": now,
        "exp": now + 600,
        "jti": secrets.token_hex(8),
        "ops": ["drop_table", "drop_column", "truncate"],
        "obj": ["*"],
        "once": False,
        "sub": "guard-tests",
        "why": "adversarial test",
    }
    base.update(overrides)
    return base


def payload_of(c: dict[str, Any]) -> str:
    return b64url(json.dumps(c, separators=(",", ":")).encode())


def sign(key: rsa.RSAPrivateKey, kid: str, payload: str) -> str:
    """``pgg1.<kid>.<payload>.<sig>`` with an RSASSA-PKCS1-v1_5/SHA-256 signature by ``key``."""
    signing_input = f"pgg1.{kid}.{payload}"
    sig = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(sig)}"


def set_token(conn: Conn, token: str) -> None:
    """``SET pgguard.token`` for the session (any role may set the placeholder)."""
    conn.execute("SELECT set_config('pgguard.token', %s, false)", (token,))


def install_excluding(dsn: str, schemas: list[str]) -> None:
    """Re-run install on the database of ``dsn`` with ``exclude_schemas=schemas``."""
    from pgguard.installer import install

    with psycopg.connect(dsn) as conn:
        report = install(conn, exclude_schemas=schemas)
    assert sorted(report.excluded_schemas) == sorted(schemas), report
