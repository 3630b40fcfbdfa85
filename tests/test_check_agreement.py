"""`pgguard check` agrees with the server, statement by statement.

Each corpus under tests/data/check/ is read by check and then run, statement by statement, in
a guarded database: every statement check says the guard refuses must be refused (SQLSTATE
PGG01, with an op and objects check named), and must then go through with a token scoped to
exactly what check listed for it; every statement check lets through must not be refused. A
statement that fails for another reason (the corpora include PostgreSQL's own regression SQL,
which fails on purpose) is counted, not judged. Counts go to the test's output.
"""

from __future__ import annotations

import inspect
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from guardhelp import claims, parse_hint, payload_of, private_key, register_key, sign
from psycopg.pq import TransactionStatus

from pgguard.check import CheckOptions
from pgguard.check.analyze import Analyzer
from pgguard.check.sqlfiles import statements
from pgguard.installer import install
from pgguard.token import KNOWN_OPS

DATA = Path(__file__).parent / "data" / "check"
#: more corpora to measure against, e.g. a checkout's src/test/regress/sql (PostgreSQL's own
#: regression SQL: it creates roles and tablespaces too, which the harness does not send)
EXTRA = os.environ.get("PGGUARD_CHECK_CORPORA")
CORPORA = sorted(DATA.glob("*.sql")) + (sorted(Path(EXTRA).glob("*.sql")) if EXTRA else [])
Conn = psycopg.Connection[Any]

#: statements the harness does not send (cluster-wide or session-breaking), by parse-tree type
NOT_SENT = {
    "CreateRoleStmt",
    "DropRoleStmt",
    "AlterRoleStmt",
    "GrantRoleStmt",
    "CreatedbStmt",
    "DropdbStmt",
    "CreateTableSpaceStmt",
    "DropTableSpaceStmt",
    "AlterSystemStmt",
    "LoadStmt",
    "CheckPointStmt",
    "VacuumStmt",
}


#: `ALTER TABLE … SET UNLOGGED` is refused by servers whose pgguard knows the op
UNLOGGED_GUARDED = "unlogged" in KNOWN_OPS


#: known, conservative mispredictions under the empty-table rule (see the test's comment)
MAX_FALSE_POSITIVES = {"ddl_edges.sql": 1}


def _supports(param: str) -> bool:
    return param in inspect.signature(install).parameters


@dataclass
class Tally:
    true_pos: int = 0
    true_neg: int = 0
    false_pos: list[str] = field(default_factory=list)
    false_neg: list[str] = field(default_factory=list)
    errored: int = 0
    not_sent: int = 0
    unparsed: int = 0
    problems: list[str] = field(default_factory=list)
    hint_differs: list[str] = field(default_factory=list)


def _send(conn: Conn, text: str) -> psycopg.Error | None:
    """Run one statement; inside a block, under a savepoint so an error leaves the block usable."""
    in_block = conn.info.transaction_status == TransactionStatus.INTRANS
    if in_block:
        conn.execute("SAVEPOINT pgguard_check_probe")
    try:
        conn.execute(text)  # type: ignore[call-overload]
    except psycopg.Error as e:
        if in_block:
            conn.execute("ROLLBACK TO SAVEPOINT pgguard_check_probe")
        return e
    if in_block:
        conn.execute("RELEASE SAVEPOINT pgguard_check_probe")
    return None


def run_corpus(conn: Conn, path: Path, opts: CheckOptions, key: Any, kid: str) -> Tally:
    an = Analyzer(opts)
    tally = Tally()
    for node, src, _error in statements(path.read_text(encoding="utf-8"), path.name):
        where = f"{src.file}:{src.line} {src.sql[:120]}"
        if node is None:
            tally.unparsed += 1
            continue
        before = len(an.refusals)
        an.feed(node, src)
        predicted = an.refusals[before:]
        if not UNLOGGED_GUARDED:
            predicted = [r for r in predicted if r.op != "unlogged"]
        if type(node).__name__ in NOT_SENT:
            tally.not_sent += 1
            continue
        if type(node).__name__ == "TransactionStmt":
            try:
                conn.execute(src.text)  # type: ignore[call-overload]
            except psycopg.Error:
                tally.errored += 1
            continue
        outcome = _send(conn, src.text)
        refused = outcome is not None and outcome.sqlstate == "PGG01"
        if predicted and refused:
            assert outcome is not None
            tally.true_pos += 1
            op = (outcome.diag.constraint_name or "").removeprefix("op=")
            patterns = {r.pattern for r in predicted}
            if op not in {r.op for r in predicted}:
                tally.problems.append(
                    f"{where}: server refused op {op}, check said "
                    f"{sorted({r.op for r in predicted})}"
                )
            hint = parse_hint(outcome.diag.message_hint)["object"]
            if len(hint) < 5 and not set(hint) <= patterns and "*" not in patterns:
                # the HINT may name a parent whose token covers the refused child, where
                # check names the child itself; the token run below decides
                tally.hint_differs.append(f"{where}: HINT names {hint}, check {patterns}")
            if any(r.note for r in predicted):
                # a token must be issued after the rename: iat is whole seconds
                time.sleep(1.05 - time.time() % 1)
            token = sign(
                key,
                kid,
                payload_of(claims(ops=sorted({r.op for r in predicted}), obj=sorted(patterns))),
            )
            conn.execute("SELECT set_config('pgguard.token', %s, false)", (token,))
            again = _send(conn, src.text)
            conn.execute("SELECT set_config('pgguard.token', '', false)")
            if again is not None and again.sqlstate == "PGG01":
                tally.problems.append(f"{where}: still refused with check's scope: {again}")
        elif predicted and outcome is None:
            tally.false_pos.append(f"{where}: check said {[r.object for r in predicted]}")
        elif predicted:
            tally.errored += 1
        elif refused:
            tally.false_neg.append(f"{where}: server refused: {outcome}")
        elif outcome is None:
            tally.true_neg += 1
        else:
            tally.errored += 1
    if conn.info.transaction_status != TransactionStatus.IDLE:
        conn.execute("ROLLBACK")
    return tally


def _modes() -> list[bool]:
    # the server without the empty-table rule behaves as `install --protect-empty`
    return [True, False] if _supports("protect_empty") else [True]


@pytest.mark.parametrize("protect_empty", _modes(), ids=lambda v: f"protect_empty={v}")
@pytest.mark.parametrize("corpus", CORPORA, ids=lambda p: p.stem)
def test_check_agrees_with_server(
    guarded_db_dsn: str, guarded_admin: Conn, corpus: Path, protect_empty: bool
) -> None:
    if _supports("protect_empty"):
        with psycopg.connect(guarded_db_dsn) as c:
            install(c, protect_empty=protect_empty)  # type: ignore[call-arg]
    key = private_key()
    kid = register_key(guarded_admin, key)
    with psycopg.connect(guarded_db_dsn, autocommit=True) as conn:
        conn.execute("SET client_min_messages = error")
        tally = run_corpus(conn, corpus, CheckOptions(protect_empty=protect_empty), key, kid)
    print(
        f"\n{corpus.name} protect_empty={protect_empty}: {tally.true_pos} refused as predicted, "
        f"{tally.true_neg} let through as predicted, {len(tally.false_pos)} false positives, "
        f"{len(tally.false_neg)} false negatives, {tally.errored} failed for other reasons, "
        f"{tally.unparsed} unparsed, {tally.not_sent} not sent"
    )
    for line in tally.false_pos + tally.hint_differs:
        print("  ", line)
    assert not tally.false_neg, "\n".join(tally.false_neg)
    assert not tally.problems, "\n".join(tally.problems)
    if protect_empty:
        # without the empty-table rule nothing depends on guessing rows: exact agreement
        assert not tally.false_pos, "\n".join(tally.false_pos)
    elif corpus.parent == DATA:
        # with it, check errs only towards refusing: a table it cannot prove empty (rows
        # routed to partitions it cannot tell apart, INSERTs that fail, functions it cannot
        # see into) is assumed to hold rows
        assert len(tally.false_pos) <= MAX_FALSE_POSITIVES.get(corpus.name, 0), tally.false_pos
    assert tally.true_pos > 0
