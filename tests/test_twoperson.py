"""The two-person rule, enforced by the server: `install --require-approvals N [--for-op OP]`,
`pgguard allow` (one signature) + `pgguard cosign` (another), distinct live registered keys.

Attacks tried as the app role that owns the tables and as a superuser: one signature, the same
key twice, a revoked or unregistered co-signer, a signature moved between tokens.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from tokenhelp import Conn, approver_key, count, refused, register, run_cli

from pgguard import approvals, errors, keys
from pgguard.multisig import cosign, split_token
from pgguard.signers.keyfile import KeySigner
from pgguard.token import issue_token

A, B, C = (approver_key(n) for n in ("a", "b", "c"))
KID = {name: keys.kid(k) for name, k in (("a", A), ("b", B), ("c", C))}


def _detail(present: int, needed: int, op: str, kids: list[str]) -> str:
    return (
        f"the override token carries {present} of the {needed} approvals {op} needs "
        f"(signed by: {', '.join(sorted(kids))})"
    )


def _set_token(conn: Conn, token: str) -> None:
    conn.execute("SELECT set_config('pgguard.token', %s, false)", (token,))


@pytest.fixture
def two(guarded_admin: Conn, guarded_db_dsn: str, actor: Conn) -> Conn:
    """Keys a and b registered, two approvals required for every op; table public.t (3 rows)."""
    register(guarded_admin, A, B)
    proc = run_cli("install", "--dsn", guarded_db_dsn, "--require-approvals", "2")
    assert proc.returncode == 0, proc.stderr
    assert "other ops 2" in proc.stderr
    actor.execute("CREATE TABLE public.t (id int)")
    actor.execute("INSERT INTO public.t VALUES (1), (2), (3)")
    if not actor.autocommit:
        actor.commit()
    return actor


def test_one_signature_is_refused_with_the_count(two: Conn) -> None:
    one = issue_token(A, ops="truncate", objects="public.t")
    _set_token(two, one)
    r = refused(two, "TRUNCATE public.t")
    assert r.detail == _detail(1, 2, "truncate", [KID["a"]])
    assert r.hint is not None and "pgguard cosign" in r.hint
    assert count(two, "SELECT count(*) FROM public.t") == 3


def test_two_distinct_keys_pass(two: Conn) -> None:
    both = cosign(issue_token(A, ops="truncate", objects="public.t"), KeySigner(B))
    assert split_token(both).kids == tuple(sorted([KID["a"], KID["b"]]))
    _set_token(two, both)
    two.execute("TRUNCATE public.t")
    assert count(two, "SELECT count(*) FROM public.t") == 0


def test_same_key_twice_is_refused(two: Conn) -> None:
    one = issue_token(A, ops="truncate", objects="public.t")
    with pytest.raises(errors.UsageError, match="already signed"):
        cosign(one, KeySigner(A))
    # a hand-made token repeating the key is malformed for the server too
    p = cosign(one, KeySigner(B)).split(".")
    first = [p[2], p[3]] if p[2] == KID["a"] else [p[4], p[5]]
    _set_token(two, ".".join([p[0], p[1], *first, *first]))
    r = refused(two, "TRUNCATE public.t")
    assert r.detail is not None and r.detail.startswith("the override token is malformed")


def test_revoked_or_unregistered_cosigner_does_not_count(
    two: Conn, guarded_admin: Conn, guarded_db_dsn: str
) -> None:
    one = issue_token(A, ops="truncate", objects="public.t")
    with_c = cosign(one, KeySigner(C))  # c is not registered here
    _set_token(two, with_c)
    assert refused(two, "TRUNCATE public.t").detail == _detail(1, 2, "truncate", [KID["a"]])
    both = cosign(one, KeySigner(B))
    _set_token(two, both)
    two.execute("BEGIN")
    two.execute("TRUNCATE public.t")  # verified, and cached
    two.execute("ROLLBACK")
    revoke = run_cli("keys", "revoke", KID["b"], "--dsn", guarded_db_dsn)
    assert revoke.returncode == 0, revoke.stderr
    assert refused(two, "TRUNCATE public.t").detail == _detail(1, 2, "truncate", [KID["a"]])
    # three keys, one revoked: still two that count
    register(guarded_admin, C)
    _set_token(two, cosign(both, KeySigner(C)))
    two.execute("TRUNCATE public.t")
    assert count(two, "SELECT count(*) FROM public.t") == 0


def test_signature_moved_from_another_token_is_bad(two: Conn) -> None:
    t1 = cosign(issue_token(A, ops="truncate", objects="public.t"), KeySigner(B))
    t2 = cosign(issue_token(A, ops="truncate", objects="public.*"), KeySigner(B))
    p1, p2 = t1.split("."), t2.split(".")
    # t2's payload (wider scope) with t1's signatures
    _set_token(two, ".".join([p2[0], p2[1], *p1[2:]]))
    r = refused(two, "TRUNCATE public.t")
    assert r.detail is not None and "does not verify" in r.detail


def test_for_op_and_turning_it_off(guarded_admin: Conn, guarded_db_dsn: str, actor: Conn) -> None:
    register(guarded_admin, A, B)
    proc = run_cli(
        "install", "--dsn", guarded_db_dsn, "--require-approvals", "2", "--for-op", "drop_table"
    )
    assert proc.returncode == 0, proc.stderr
    policy = approvals.read_policy(guarded_admin)
    assert policy.needed("drop_table") == 2 and policy.needed("truncate") == 1
    actor.execute("CREATE TABLE public.t (id int)")
    actor.execute("INSERT INTO public.t VALUES (1)")
    if not actor.autocommit:
        actor.commit()
    one = issue_token(A, ops=["truncate", "drop_table"], objects="public.t")
    _set_token(actor, one)
    actor.execute("TRUNCATE public.t")  # one approval is enough for truncate
    actor.execute("INSERT INTO public.t VALUES (1)")
    if not actor.autocommit:
        actor.commit()
    r = refused(actor, "DROP TABLE public.t")
    assert r.detail == _detail(1, 2, "drop_table", [KID["a"]])
    bad = run_cli("install", "--dsn", guarded_db_dsn, "--for-op", "truncate")
    assert bad.returncode == 2 and "--require-approvals" in bad.stderr
    off = run_cli("install", "--dsn", guarded_db_dsn, "--require-approvals", "1")
    assert off.returncode == 0, off.stderr
    actor.execute("DROP TABLE public.t")


def test_app_role_cannot_lower_the_requirement(two: Conn, app_role: Any) -> None:
    conn = app_role.connect()
    for stmt in (
        "UPDATE pgguard.settings SET value = '{\"*\": 1}' WHERE name = 'required_approvals'",
        "DELETE FROM pgguard.settings WHERE name = 'required_approvals'",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(stmt)
        conn.rollback()
    with pytest.raises(errors.PrivilegeError):
        approvals.set_required_approvals(conn, 1)


def test_cosign_cli(tmp_path: Any, two: Conn) -> None:
    a = keys.write_private_key(tmp_path / "a.pem", A, passphrase=b"pa")
    b = keys.write_private_key(tmp_path / "b.pem", B, passphrase=b"pb")
    first = run_cli(
        "allow", "--key-file", str(a), "--op", "truncate", "--object", "public.t",
        "--reason", "JIRA-9", env={"PGGUARD_KEY_PASSPHRASE": "pa"},
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    token = first.stdout.strip()
    ask = run_cli("cosign", token, "--key-file", str(b), env={"PGGUARD_KEY_PASSPHRASE": "pb"})
    assert ask.returncode == 2 and ask.stdout == ""
    assert "ops:      truncate" in ask.stderr and "JIRA-9" in ask.stderr
    assert "no terminal to confirm" in ask.stderr
    again = run_cli(
        "cosign", token, "--key-file", str(a), "--yes", env={"PGGUARD_KEY_PASSPHRASE": "pa"}
    )
    assert again.returncode == 2 and "already signed" in again.stderr
    ok = run_cli(
        "cosign", token, "--key-file", str(b), "--yes", env={"PGGUARD_KEY_PASSPHRASE": "pb"}
    )
    assert ok.returncode == 0, ok.stderr
    both = ok.stdout.strip()
    assert both.startswith("pgg2.") and "\n" not in both
    _set_token(two, both)
    two.execute("TRUNCATE public.t")
    assert count(two, "SELECT count(*) FROM public.t") == 0
