"""Shared helpers for the server-side token tests (test_tokens_server, test_audit,
test_cli_tokens): approver keys made once per session, registering them, running a statement
that must be refused and reading the refusal's fields, and the exact texts the server writes.

The DETAIL texts below are copied from sql/040_token.sql and sql/045_override.sql; the tests
assert them exactly, so a change of wording there must be a deliberate change here too.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from psycopg import sql

from pgguard import keys, keystore
from pgguard.errors import REFUSAL_SQLSTATE

Conn = psycopg.Connection[Any]

# --- DETAIL wording (sql/040_token.sql, sql/045_override.sql) -------------------------------
DETAIL_NONE = "no override token is set (pgguard.token is empty)"
DETAIL_MALFORMED = "the override token is malformed (expected pgg1.<kid>.<payload>.<signature>)"
DETAIL_MALFORMED_PREFIX = "the override token is malformed"
DETAIL_BAD_SIGNATURE = "the override token's signature does not verify"


def detail_unknown_key(kid: str) -> str:
    return f"the override token is signed by key {kid}, which is not registered in this database"


def detail_revoked(kid: str, revoked_at: str) -> str:
    return f"the override token is signed by key {kid}, revoked at {revoked_at}"


def detail_expired(exp_text: str) -> str:
    return f"the override token expired at {exp_text}"


def detail_future(iat_text: str) -> str:
    return f"the override token was issued in the future ({iat_text}); check the approver's clock"


def detail_wrong_db(token_db: str, current: str) -> str:
    return f'the override token is for database "{token_db}", not "{current}"'


def detail_wrong_op(op: str, ops: Sequence[str]) -> str:
    return f"the override token does not cover op {op} (it covers: {', '.join(ops)})"


def detail_wrong_object(obj: str, patterns: Sequence[str]) -> str:
    return f'the override token does not cover "{obj}" (it covers: {", ".join(patterns)})'


def detail_already_used(jti: str, used_at: str) -> str:
    return f"token {jti} was already used at {used_at}"


def shell_quote(word: str) -> str:
    """As the server quotes HINT words (pgguard.shell_quote): only when needed."""
    if re.fullmatch(r"[A-Za-z0-9_.,/:=@+-]+", word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"


def hint_for(ops: Sequence[str], objects: Sequence[str], db: str) -> str:
    """The exact HINT: ``pgguard allow`` with sorted ops and objects and ``--db``."""
    line = "to approve it, run: pgguard allow"
    line += "".join(f" --op {op}" for op in sorted(set(ops)))
    line += "".join(f" --object {shell_quote(o)}" for o in sorted(set(objects)))
    return f"{line} --db {shell_quote(db)}"


# --- keys ------------------------------------------------------------------------------------


@functools.cache
def approver_key(name: str) -> rsa.RSAPrivateKey:
    """A 2048-bit test key, one per ``name`` for the whole session."""
    return keys.generate_private_key(2048)


def register(admin: Conn, *private: rsa.RSAPrivateKey) -> None:
    """Register the public halves of ``private`` (as the installing superuser)."""
    keystore.add_keys(admin, [keys.public_numbers_for_db(k.public_key()) for k in private])


# --- refusals --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """The fields of a PGG01 error."""

    sqlstate: str
    message: str
    detail: str | None
    hint: str | None
    constraint: str | None


def refused(
    conn: Conn, statement: str | sql.Composable, params: Sequence[Any] | None = None
) -> Refusal:
    """Run ``statement``; it must fail with SQLSTATE PGG01. An open transaction is rolled back."""
    with pytest.raises(psycopg.Error) as info:
        conn.execute(statement, params)
    if not conn.autocommit:
        conn.rollback()
    diag = info.value.diag
    assert diag.sqlstate == REFUSAL_SQLSTATE, f"expected PGG01, got {diag.sqlstate}: {info.value}"
    assert diag.message_primary is not None
    return Refusal(
        sqlstate=diag.sqlstate,
        message=diag.message_primary,
        detail=diag.message_detail,
        hint=diag.message_hint,
        constraint=diag.constraint_name,
    )


def text_of(conn: Conn, query: str, params: Sequence[Any] | None = None) -> str:
    """One value as the server renders it to text in ``conn``'s session (TimeZone etc.)."""
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return str(row[0])


def exists(conn: Conn, relation: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (relation,)).fetchone()
    assert row is not None
    return bool(row[0])


def count(conn: Conn, query: str, params: Sequence[Any] | None = None) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


# --- the CLI ---------------------------------------------------------------------------------


def run_cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    unset: Sequence[str] = (),
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``python -m pgguard ARGS`` as a subprocess; stdout and stderr captured apart."""
    full_env = clean_env(env, unset)
    return subprocess.run(
        [sys.executable, "-m", "pgguard", *args],
        env=full_env,
        stdin=subprocess.DEVNULL,  # never a terminal: a prompt must fail, not wait
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def clean_env(env: Mapping[str, str] | None = None, unset: Sequence[str] = ()) -> dict[str, str]:
    """The test process's environment without pgguard/libpq settings that could leak in."""
    out = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "PGOPTIONS",
            "PGGUARD_TOKEN",
            "PGGUARD_KEY_FILE",
            "PGGUARD_DSN",
            "PGGUARD_KEY",
            "PGGUARD_KEY_PASSPHRASE",
            "PGGUARD_PKCS11_PIN",
            "PGGUARD_SIGN_COMMAND",
            "PGGUARD_SIGN_PUBLIC_KEY",
        )  # fmt: skip
    }
    for name in unset:
        out.pop(name, None)
    out.update(env or {})
    out.setdefault("COLUMNS", "200")  # rich wraps stderr at the terminal width otherwise
    return out
