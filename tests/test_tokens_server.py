"""Override tokens as the server sees them: every refusal DETAIL, scope semantics, the ways a
session presents a token, once-per-statement verification, and that a session can neither
forge the cache nor pass with any string it makes up.

Everything destructive runs as a LOGIN NOSUPERUSER application role that owns its tables (the
role the guard exists for); the superuser only registers and revokes keys and looks at
pgguard's tables. Tokens are signed with session-wide 2048-bit test keys.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from psycopg import sql
from tokenhelp import (
    DETAIL_BAD_SIGNATURE,
    DETAIL_MALFORMED,
    DETAIL_MALFORMED_PREFIX,
    DETAIL_NONE,
    Conn,
    approver_key,
    count,
    detail_already_used,
    detail_expired,
    detail_future,
    detail_revoked,
    detail_unknown_key,
    detail_wrong_db,
    detail_wrong_object,
    detail_wrong_op,
    exists,
    hint_for,
    refused,
    register,
    text_of,
)

from pgguard import keys, keystore
from pgguard.errors import GuardRefused
from pgguard.token import b64url_encode, issue_token, object_matches, parse_token

# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def key_a() -> rsa.RSAPrivateKey:
    """The registered approver key."""
    return approver_key("a")


@pytest.fixture(scope="session")
def key_b() -> rsa.RSAPrivateKey:
    """A key never registered in any test database."""
    return approver_key("b")


@dataclass
class Env:
    """A guarded database, key A registered, schema ``app`` owned by the app role."""

    admin: Conn  # superuser, autocommit
    app: Conn  # the app role, autocommit
    role: Any  # conftest.AppRole
    db: str
    key: rsa.RSAPrivateKey
    kid: str

    def token(self, **kw: Any) -> str:
        # An approval comes after the tables it approves. iat is whole seconds, and a partition
        # attached within the token's iat second counts as attached after it (so a token cannot
        # be stretched to it): issue one second on, well inside the 60 s clock-skew leeway.
        kw.setdefault("now", time.time() + 1)
        return issue_token(self.key, **kw)

    def table(self, name: str, rows: int = 3, conn: Conn | None = None) -> str:
        """Create ``name`` (id, c, d) as the app role in its own transaction, with rows."""
        c = conn or self.app
        c.execute(f"CREATE TABLE {name} (id int, c int, d int)")
        c.execute(f"INSERT INTO {name} SELECT g, g, g FROM generate_series(1, {rows}) g")
        return name

    def use(self, token: str) -> None:
        """Present ``token`` for the app session."""
        self.app.execute("SELECT set_config('pgguard.token', %s, false)", (token,))


@pytest.fixture
def env(guarded_admin: Conn, guarded_db_name: str, app_role: Any, key_a: rsa.RSAPrivateKey) -> Env:
    register(guarded_admin, key_a)
    app_role.create_schema("app")
    app = app_role.connect()
    e = Env(guarded_admin, app, app_role, guarded_db_name, key_a, keys.kid(key_a))
    e.table("app.t")
    return e


def b64json(claims: dict[str, Any]) -> str:
    text = json.dumps(claims, separators=(",", ":"), sort_keys=True)
    return b64url_encode(text.encode())


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[2]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def assert_drop_refused(env: Env, table: str, detail: str) -> None:
    """DROP TABLE ``table`` as the app role is refused with exactly ``detail``; table kept."""
    r = refused(env.app, f"DROP TABLE {table}")
    assert r.message == f'pgguard: refusing to drop table "{table}"'
    assert r.detail == detail
    assert r.hint == hint_for(["drop_table"], [table], env.db)
    assert r.constraint == "op=drop_table"
    assert exists(env.app, table)


# --- every refusal DETAIL ----------------------------------------------------------------------


def test_no_token_is_refused_with_exact_fields(env: Env) -> None:
    r = refused(env.app, "DROP TABLE app.t")
    assert r.sqlstate == "PGG01"
    assert r.message == 'pgguard: refusing to drop table "app.t"'
    assert r.detail == DETAIL_NONE
    assert (
        r.hint == f"to approve it, run: pgguard allow --op drop_table --object app.t --db {env.db}"
    )
    assert exists(env.app, "app.t")
    assert count(env.app, "SELECT count(*) FROM app.t") == 3
    # the Python side reads op and object back from the error
    with pytest.raises(psycopg.Error) as info:
        env.app.execute("TRUNCATE app.t")
    g = GuardRefused.from_diag(info.value)
    assert g is not None
    assert (g.op, g.obj, g.detail) == ("truncate", "app.t", DETAIL_NONE)
    assert g.hint == hint_for(["truncate"], ["app.t"], env.db)


def test_empty_token_is_none_set(env: Env) -> None:
    env.use("")
    assert_drop_refused(env, "app.t", DETAIL_NONE)


@pytest.mark.parametrize(
    "make",
    [
        lambda t, kid: "garbage",
        lambda t, kid: "pgg1",
        lambda t, kid: t + ".extra",
        lambda t, kid: "pgg3" + t[4:],  # pgg2 is the multi-signature format
        lambda t, kid: t.replace(kid, kid.upper(), 1),
        lambda t, kid: t.replace(kid, kid[:15], 1),
        lambda t, kid: t.rsplit(".", 1)[0] + ".",
        lambda t, kid: t.rsplit(".", 1)[0] + ".a+b/",
        lambda t, kid: t.rsplit(".", 1)[0] + ".AAAAA",  # length % 4 == 1
        lambda t, kid: t.rsplit(".", 1)[0] + ".AB",  # non-canonical last character
        lambda t, kid: " " + t,
        lambda t, kid: t + "\n",
    ],
    ids=[
        "garbage",
        "prefix-only",
        "five-parts",
        "wrong-version",
        "uppercase-kid",
        "short-kid",
        "empty-sig",
        "sig-bad-alphabet",
        "sig-bad-length",
        "sig-non-canonical",
        "leading-space",
        "trailing-newline",
    ],
)
def test_malformed_token(env: Env, make: Any) -> None:
    good = env.token(objects=["*"])
    env.use(make(good, env.kid))
    assert_drop_refused(env, "app.t", DETAIL_MALFORMED)


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b64url_encode(b"not json"), "the payload is not UTF-8 JSON"),
        (b64url_encode(b"[1,2]"), "the payload is not a JSON object"),
        (b64url_encode(b'{"iat":1,"iat":2}'), "the payload repeats a claim"),
        ("AB", "the payload is not canonical base64url"),
    ],
    ids=["not-json", "array", "duplicate-claim", "non-canonical"],
)
def test_malformed_payload(env: Env, payload: str, problem: str) -> None:
    good = env.token()
    _, kid, _, sig = good.split(".")
    env.use(f"pgg1.{kid}.{payload}.{sig}")
    assert_drop_refused(env, "app.t", f"{DETAIL_MALFORMED_PREFIX}: {problem}")


def test_malformed_claims(env: Env) -> None:
    claims = claims_of(env.token())
    sig = env.token().split(".")[3]
    cases = [
        ({**claims, "zzz": 1}, "unknown claim(s) zzz"),
        ({k: v for k, v in claims.items() if k != "jti"}, "missing claim(s) jti"),
        ({**claims, "exp": 1e12}, "claim exp must be a non-negative integer"),
        ({**claims, "ops": ["drop_everything"]}, 'unknown operation "drop_everything"'),
        ({**claims, "obj": ["a..b"]}, 'object pattern "a..b" is invalid'),
        ({**claims, "once": "yes"}, "claim once must be true or false"),
    ]
    for bad, problem in cases:
        env.use(f"pgg1.{env.kid}.{b64json(bad)}.{sig}")
        assert_drop_refused(env, "app.t", f"{DETAIL_MALFORMED_PREFIX}: {problem}")


def test_bad_signature_tampered_payload(env: Env) -> None:
    good = env.token(objects=["app.other"])
    prefix, kid, _, sig = good.split(".")
    claims = claims_of(good)
    claims["obj"] = ["*"]  # widen the scope, keep the signature
    env.use(f"{prefix}.{kid}.{b64json(claims)}.{sig}")
    assert_drop_refused(env, "app.t", DETAIL_BAD_SIGNATURE)


def test_bad_signature_other_key_with_registered_kid(env: Env, key_b: rsa.RSAPrivateKey) -> None:
    # kid is a fingerprint, so key B cannot have key A's kid; sign with B and claim A's kid
    payload = env.token().split(".")[2]
    signing_input = f"pgg1.{env.kid}.{payload}"
    sig = key_b.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    env.use(f"{signing_input}.{b64url_encode(sig)}")
    assert_drop_refused(env, "app.t", DETAIL_BAD_SIGNATURE)


def test_bad_signature_wrong_length_and_flipped_bit(env: Env) -> None:
    good = env.token()
    head, sig_text = good.rsplit(".", 1)
    sig = base64.urlsafe_b64decode(sig_text + "=" * (-len(sig_text) % 4))
    for bad in (sig[:-1], b"\x00" + sig, bytes([sig[0] ^ 1]) + sig[1:], b"\x00" * len(sig)):
        env.use(f"{head}.{b64url_encode(bad)}")
        assert_drop_refused(env, "app.t", DETAIL_BAD_SIGNATURE)
    env.use(good)  # the untouched token still works
    env.app.execute("DROP TABLE app.t")


def test_unknown_key(env: Env, key_b: rsa.RSAPrivateKey) -> None:
    env.use(issue_token(key_b, objects=["*"]))
    assert_drop_refused(env, "app.t", detail_unknown_key(keys.kid(key_b)))


def test_revoked_key_stops_a_token_verified_before(env: Env) -> None:
    env.table("app.t2")
    token = env.token(objects=["app.*"])
    env.use(token)
    env.app.execute("DROP TABLE app.t")  # verified and cached
    assert count(env.admin, "SELECT count(*) FROM pgguard.verified_tokens") == 1
    keystore.revoke_key(env.admin, env.kid)
    assert count(env.admin, "SELECT count(*) FROM pgguard.verified_tokens") == 0
    revoked_at = text_of(
        env.app, "SELECT revoked_at::text FROM pgguard.keys WHERE kid = %s", [env.kid]
    )
    # the same session, the same token: no longer good
    assert_drop_refused(env, "app.t2", detail_revoked(env.kid, revoked_at))
    # nor a fresh token from the revoked key
    env.use(env.token())
    assert_drop_refused(env, "app.t2", detail_revoked(env.kid, revoked_at))


def test_revoked_key_even_if_cache_row_survives(env: Env) -> None:
    """Revocation by a plain UPDATE (not keystore.revoke_key) leaves the cache row in place:
    the revoked check must still come first."""
    env.table("app.t2")
    token = env.token(objects=["app.*"])
    env.use(token)
    env.app.execute("DROP TABLE app.t")
    env.admin.execute("UPDATE pgguard.keys SET revoked_at = now() WHERE kid = %s", (env.kid,))
    assert count(env.admin, "SELECT count(*) FROM pgguard.verified_tokens") == 1
    revoked_at = text_of(
        env.app, "SELECT revoked_at::text FROM pgguard.keys WHERE kid = %s", [env.kid]
    )
    assert_drop_refused(env, "app.t2", detail_revoked(env.kid, revoked_at))


def test_expired(env: Env) -> None:
    token = env.token(now=time.time() - 3600, ttl=600)
    exp = claims_of(token)["exp"]
    env.use(token)
    exp_text = text_of(env.app, "SELECT to_timestamp(%s::double precision)::text", [exp])
    assert_drop_refused(env, "app.t", detail_expired(exp_text))


def test_issued_in_the_future(env: Env) -> None:
    token = env.token(now=time.time() + 3600)
    iat = claims_of(token)["iat"]
    env.use(token)
    iat_text = text_of(env.app, "SELECT to_timestamp(%s::double precision)::text", [iat])
    assert_drop_refused(env, "app.t", detail_future(iat_text))


def test_issued_in_the_future_within_leeway(env: Env) -> None:
    env.use(env.token(now=time.time() + 30))
    env.app.execute("DROP TABLE app.t")
    assert not exists(env.app, "app.t")


def test_wrong_database(env: Env) -> None:
    env.use(env.token(db="some_other_db"))
    assert_drop_refused(env, "app.t", detail_wrong_db("some_other_db", env.db))
    env.use(env.token(db=env.db.upper()))  # exact, case-sensitive
    assert_drop_refused(env, "app.t", detail_wrong_db(env.db.upper(), env.db))
    env.use(env.token(db=env.db))
    env.app.execute("DROP TABLE app.t")


def test_wrong_op(env: Env) -> None:
    env.use(env.token(ops=["truncate", "drop_column"], objects=["*"]))
    assert_drop_refused(env, "app.t", detail_wrong_op("drop_table", ["truncate", "drop_column"]))
    env.app.execute("TRUNCATE app.t")  # what it does cover works


def test_wrong_object(env: Env) -> None:
    env.use(env.token(objects=["app.other", "public.t"]))
    assert_drop_refused(env, "app.t", detail_wrong_object("app.t", ["app.other", "public.t"]))


# --- single use ----------------------------------------------------------------------------------


def spent_at(env: Env, jti: str) -> str:
    tz = text_of(env.app, "SHOW TimeZone")
    env.admin.execute("SELECT set_config('TimeZone', %s, false)", (tz,))
    return text_of(
        env.admin, "SELECT used_at::text FROM pgguard.spent_tokens WHERE jti = %s", [jti]
    )


def test_once_second_transaction_refused(env: Env) -> None:
    env.table("app.t2")
    token = env.token(objects=["app.*"], once=True)
    jti = claims_of(token)["jti"]
    env.use(token)
    env.app.execute("DROP TABLE app.t")
    assert_drop_refused(env, "app.t2", detail_already_used(jti, spent_at(env, jti)))
    # and from another session too
    other = env.role.connect()
    other.execute("SELECT set_config('pgguard.token', %s, false)", (token,))
    r = refused(other, "TRUNCATE app.t2")
    assert r.detail == detail_already_used(jti, spent_at(env, jti))


def test_once_rolled_back_use_leaves_it_unspent(env: Env) -> None:
    token = env.token(objects=["app.t"], once=True)
    jti = claims_of(token)["jti"]
    env.use(token)
    with env.app.transaction(force_rollback=True):
        env.app.execute("DROP TABLE app.t")
    assert exists(env.app, "app.t")
    assert count(env.admin, "SELECT count(*) FROM pgguard.spent_tokens WHERE jti = %s", [jti]) == 0
    env.app.execute("DROP TABLE app.t")
    assert not exists(env.app, "app.t")
    assert count(env.admin, "SELECT count(*) FROM pgguard.spent_tokens WHERE jti = %s", [jti]) == 1


def test_once_several_statements_in_one_transaction(env: Env) -> None:
    for name in ("app.t2", "app.t3", "app.t4"):
        env.table(name)
    token = env.token(objects=["app.*"], once=True)
    env.use(token)
    with env.app.transaction():
        env.app.execute("DROP TABLE app.t")
        env.app.execute("TRUNCATE app.t2")
        env.app.execute("ALTER TABLE app.t3 DROP COLUMN c")
        env.app.execute("DROP TABLE app.t4")
    assert not exists(env.app, "app.t") and not exists(env.app, "app.t4")
    assert count(env.app, "SELECT count(*) FROM app.t2") == 0
    jti = claims_of(token)["jti"]
    r = refused(env.app, "TRUNCATE app.t3")
    assert r.detail == detail_already_used(jti, spent_at(env, jti))


# --- scope semantics -----------------------------------------------------------------------------


def test_schema_glob_covers_tables_and_columns_of_that_schema_only(env: Env) -> None:
    env.table("app.u")
    env.table("public.x")
    env.use(env.token(objects=["app.*"]))
    env.app.execute("ALTER TABLE app.t DROP COLUMN c")
    env.app.execute("TRUNCATE app.t")
    env.app.execute("DROP TABLE app.u")
    assert not exists(env.app, "app.u")
    assert_drop_refused(env, "public.x", detail_wrong_object("public.x", ["app.*"]))
    r = refused(env.app, "ALTER TABLE public.x DROP COLUMN d")
    assert r.detail == detail_wrong_object("public.x.d", ["app.*"])
    assert r.message == 'pgguard: refusing to drop column "public.x.d"'
    assert r.hint == hint_for(["drop_column"], ["public.x.d"], env.db)


def test_column_pattern_covers_only_that_column(env: Env) -> None:
    env.use(env.token(objects=["app.t.c"]))
    env.app.execute("ALTER TABLE app.t DROP COLUMN c")
    r = refused(env.app, "ALTER TABLE app.t DROP COLUMN d")
    assert r.detail == detail_wrong_object("app.t.d", ["app.t.c"])
    assert_drop_refused(env, "app.t", detail_wrong_object("app.t", ["app.t.c"]))
    r = refused(env.app, "TRUNCATE app.t")
    assert r.detail == detail_wrong_object("app.t", ["app.t.c"])
    assert count(env.app, "SELECT count(*) FROM app.t") == 3


def test_star_covers_everything(env: Env) -> None:
    env.table("public.x")
    env.table("app.u")
    env.use(env.token(objects=["*"]))
    env.app.execute("ALTER TABLE app.u DROP COLUMN c")
    env.app.execute("TRUNCATE app.u, public.x")
    env.app.execute("DROP TABLE app.t, public.x")
    assert not exists(env.app, "app.t") and not exists(env.app, "public.x")


def make_partitioned(env: Env) -> None:
    env.app.execute("CREATE TABLE app.p (id int, v int) PARTITION BY RANGE (id)")
    env.app.execute("CREATE TABLE app.p1 PARTITION OF app.p FOR VALUES FROM (0) TO (10)")
    env.app.execute("CREATE TABLE app.p2 PARTITION OF app.p FOR VALUES FROM (10) TO (20)")
    env.app.execute("INSERT INTO app.p SELECT g, g FROM generate_series(0, 19) g")


def test_parent_token_covers_partitions_dropped_with_it(env: Env) -> None:
    make_partitioned(env)
    env.use(env.token(ops=["drop_table"], objects=["app.p"]))
    # a partition dropped on its own is not covered by the parent's name
    assert_drop_refused(env, "app.p1", detail_wrong_object("app.p1", ["app.p"]))
    env.app.execute("DROP TABLE app.p")
    for name in ("app.p", "app.p1", "app.p2"):
        assert not exists(env.app, name)


def test_partition_token_does_not_cover_parent(env: Env) -> None:
    make_partitioned(env)
    env.use(env.token(ops=["drop_table"], objects=["app.p1", "app.p2"]))
    r = refused(env.app, "DROP TABLE app.p")
    assert r.detail == detail_wrong_object("app.p", ["app.p1", "app.p2"])
    assert exists(env.app, "app.p1")


def test_no_token_partitioned_drop_names_parent(env: Env) -> None:
    make_partitioned(env)
    r = refused(env.app, "DROP TABLE app.p")
    assert r.detail == DETAIL_NONE
    assert r.message.startswith('pgguard: refusing to drop table "app.p"')
    assert r.hint == hint_for(["drop_table"], ["app.p"], env.db)


def test_drop_schema_cascade_with_schema_token(env: Env) -> None:
    for i in range(6):
        env.table(f"app.s{i}")
    r = refused(env.app, "DROP SCHEMA app CASCADE")
    assert r.detail == DETAIL_NONE
    assert r.message.startswith('pgguard: refusing to drop table "app.')
    assert r.message.endswith(" and 6 more")  # 7 tables
    assert r.hint == hint_for(["drop_table"], ["app.*"], env.db)  # widened past five objects
    env.use(env.token(ops=["drop_table"], objects=["app.*"]))
    env.app.execute("DROP SCHEMA app CASCADE")
    assert count(env.app, "SELECT count(*) FROM pg_namespace WHERE nspname = 'app'") == 0


def test_truncate_several_tables_with_one_token(env: Env) -> None:
    env.table("app.u")
    env.table("public.x")
    env.use(env.token(ops=["truncate"], objects=["app.*", "public.x"]))
    env.app.execute("TRUNCATE app.t, app.u, public.x")
    for name in ("app.t", "app.u", "public.x"):
        assert count(env.app, f"SELECT count(*) FROM {name}") == 0


def test_partial_coverage_refuses_the_whole_drop(env: Env) -> None:
    env.table("app.u")
    env.use(env.token(objects=["app.t"]))
    r = refused(env.app, "DROP TABLE app.t, app.u")
    assert r.detail == detail_wrong_object("app.u", ["app.t"])
    assert r.message == 'pgguard: refusing to drop table "app.u" and 1 more'
    assert r.hint == hint_for(["drop_table"], ["app.t", "app.u"], env.db)
    assert exists(env.app, "app.t") and exists(env.app, "app.u")


def test_partial_coverage_refuses_the_whole_truncate(env: Env) -> None:
    env.table("app.u")
    env.use(env.token(objects=["app.t"]))
    r = refused(env.app, "TRUNCATE app.t, app.u")
    assert r.detail == detail_wrong_object("app.u", ["app.t"])
    assert r.message == 'pgguard: refusing to truncate table "app.u"'
    assert count(env.app, "SELECT count(*) FROM app.t") == 3
    assert count(env.app, "SELECT count(*) FROM app.u") == 3


ORACLE_CASES = [
    # (statement, the object as an identifier tuple, pattern)
    ('DROP TABLE app."a.b"', ("app", "a.b"), "app.a"),
    ('DROP TABLE app."a.b"', ("app", "a.b"), "app.a.b"),
    ('DROP TABLE app."a.b"', ("app", "a.b"), "app.*"),
    ('DROP TABLE app."a.b"', ("app", "a.b"), "app.a?b"),
    ('TRUNCATE app."a.b"', ("app", "a.b"), "app.a"),
    ('TRUNCATE app."a.b"', ("app", "a.b"), "app.a.b"),
    ('TRUNCATE app."a.b"', ("app", "a.b"), "app.*"),
    ('ALTER TABLE app."a.b" DROP COLUMN z', ("app", "a.b", "z"), "app.a"),
    ('ALTER TABLE app."a.b" DROP COLUMN z', ("app", "a.b", "z"), "app.*"),
    ('ALTER TABLE app."a.b" DROP COLUMN z', ("app", "a.b", "z"), "app.*.z"),
    ('ALTER TABLE app.t DROP COLUMN "x.y"', ("app", "t", "x.y"), "app.t"),
    ('ALTER TABLE app.t DROP COLUMN "x.y"', ("app", "t", "x.y"), "app.t.x"),
    ('ALTER TABLE app.t DROP COLUMN "x.y"', ("app", "t", "x.y"), "app.t.*"),
    ("DROP TABLE app.tx1", ("app", "tx1"), "app.t_1"),
    ("DROP TABLE app.tx1", ("app", "tx1"), "app.t%1"),
    ("DROP TABLE app.tx1", ("app", "tx1"), "app.t?1"),
    ('DROP TABLE app."T"', ("app", "T"), "app.t"),
    ('DROP TABLE app."T"', ("app", "T"), "app.T"),
]


@pytest.mark.parametrize(
    ("statement", "obj", "pattern"),
    ORACLE_CASES,
    ids=[f"{s.split()[0].lower()}:{'|'.join(o)}:{p}" for s, o, p in ORACLE_CASES],
)
def test_scope_matches_the_reference_rules(
    env: Env, statement: str, obj: tuple[str, ...], pattern: str
) -> None:
    """pgguard.token.object_matches on the identifier tuple is the reference (its docstring:
    "the server must match identifiers, not a joined string"); the server must agree, for
    identifiers holding '.', LIKE metacharacters and upper case too."""
    env.app.execute('CREATE TABLE app."a.b" (id int, z int)')
    env.app.execute('ALTER TABLE app.t ADD COLUMN "x.y" int')
    env.app.execute("CREATE TABLE app.tx1 (id int)")
    env.app.execute('CREATE TABLE app."T" (id int)')
    expected = object_matches(pattern, obj)
    env.use(env.token(objects=[pattern]))
    try:
        with env.app.transaction(force_rollback=True):
            env.app.execute(statement)
        passed, why = True, "passed"
    except psycopg.Error as e:
        assert e.diag.sqlstate == "PGG01", e
        passed, why = False, f"refused: {e.diag.message_detail}"
    assert passed == expected, (
        f"{statement} with a token for {pattern!r}: server {why}; the reference rules say "
        f"{'covered' if expected else 'not covered'} ({'.'.join(obj)} as {obj})"
    )


def token_from_hint(env: Env, hint: str | None) -> str:
    """Sign exactly what the HINT's `pgguard allow` line asks for."""
    prefix = "to approve it, run: pgguard allow "
    assert hint is not None and hint.startswith(prefix), hint
    words = shlex.split(hint.removeprefix(prefix))
    found: dict[str, list[str]] = {"--op": [], "--object": [], "--db": []}
    for flag, value in zip(words[::2], words[1::2], strict=True):
        found[flag].append(value)
    assert found["--db"] == [env.db]
    return env.token(ops=found["--op"], objects=found["--object"], db=env.db)


def setup_fk(env: Env) -> None:
    env.app.execute("CREATE TABLE app.parent (id int PRIMARY KEY)")
    env.app.execute("CREATE TABLE app.child (pid int REFERENCES app.parent)")
    env.app.execute("INSERT INTO app.parent VALUES (1)")
    env.app.execute("INSERT INTO app.child VALUES (1)")


@pytest.mark.parametrize(
    ("setup", "statement"),
    [
        (lambda e: None, "DROP TABLE app.t"),
        (lambda e: e.table("app.u"), "DROP TABLE app.t, app.u"),
        (lambda e: None, "ALTER TABLE app.t DROP COLUMN c"),
        (lambda e: [e.table(f"app.s{i}") for i in range(6)], "DROP SCHEMA app CASCADE"),
        (make_partitioned, "DROP TABLE app.p"),
        (lambda e: None, "TRUNCATE app.t"),
        (lambda e: e.table("app.u"), "TRUNCATE app.t, app.u"),
        (make_partitioned, "TRUNCATE app.p"),
        (setup_fk, "TRUNCATE app.parent CASCADE"),
    ],
    ids=[
        "drop-one",
        "drop-two",
        "drop-column",
        "drop-schema-cascade",
        "drop-partitioned",
        "truncate-one",
        "truncate-two",
        "truncate-partitioned",
        "truncate-cascade",
    ],
)
def test_following_the_hint_approves_the_statement(env: Env, setup: Any, statement: str) -> None:
    """Contract: the HINT is "the exact `pgguard allow …` line that would approve this
    statement". Sign what it says, present it, run the statement again: it must pass."""
    setup(env)
    r = refused(env.app, statement)
    assert r.detail == DETAIL_NONE
    env.use(token_from_hint(env, r.hint))
    try:
        env.app.execute(statement)
    except psycopg.Error as e:
        pytest.fail(
            f"{statement!r} with a token for its HINT ({r.hint!r}) was still refused:"
            f" {e.diag.message_primary} / {e.diag.message_detail} / {e.diag.message_hint}"
        )


# --- presenting the token --------------------------------------------------------------------


def test_set_and_reset(env: Env) -> None:
    env.table("app.u")
    token = env.token(objects=["app.*"])
    env.app.execute(sql.SQL("SET pgguard.token = {}").format(sql.Literal(token)))
    env.app.execute("DROP TABLE app.t")
    env.app.execute("RESET pgguard.token")
    assert_drop_refused(env, "app.u", DETAIL_NONE)
    env.app.execute(sql.SQL("SET pgguard.token TO {}").format(sql.Literal(token)))
    env.app.execute("RESET ALL")
    assert_drop_refused(env, "app.u", DETAIL_NONE)


def test_set_local_is_gone_after_the_transaction(env: Env) -> None:
    env.table("app.u")
    token = env.token(objects=["app.*"])
    with env.app.transaction():
        env.app.execute(sql.SQL("SET LOCAL pgguard.token = {}").format(sql.Literal(token)))
        env.app.execute("DROP TABLE app.t")
    assert not exists(env.app, "app.t")
    assert_drop_refused(env, "app.u", DETAIL_NONE)


def test_set_config(env: Env) -> None:
    env.table("app.u")
    token = env.token(objects=["app.*"])
    env.app.execute("SELECT set_config('pgguard.token', %s, false)", (token,))
    env.app.execute("DROP TABLE app.t")
    with env.app.transaction():
        env.app.execute("SELECT set_config('pgguard.token', '', true)")
        r = refused(env.app, "DROP TABLE app.u")
        assert r.detail == DETAIL_NONE
    env.app.execute("DROP TABLE app.u")  # the session value is back


def test_connection_options(env: Env) -> None:
    token = env.token(objects=["app.t"])
    with psycopg.connect(env.role.dsn, autocommit=True, options=f"-c pgguard.token={token}") as c:
        assert text_of(c, "SHOW pgguard.token") == token
        c.execute("DROP TABLE app.t")
    assert not exists(env.app, "app.t")


def test_pgoptions_in_psql(env: Env) -> None:
    env.table("app.u")
    token = env.token(objects=["app.t"])
    base = {k: v for k, v in os.environ.items() if k not in ("PGOPTIONS", "PGGUARD_TOKEN")}
    args = ["psql", env.role.dsn, "-X", "-v", "ON_ERROR_STOP=1", "-c"]
    ok = subprocess.run(
        [*args, "DROP TABLE app.t"],
        env={**base, "PGOPTIONS": f"-c pgguard.token={token}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert not exists(env.app, "app.t")
    bad = subprocess.run(
        [*args, "DROP TABLE app.u"],
        env={**base, "PGOPTIONS": f"-c pgguard.token={token}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode != 0
    assert 'pgguard: refusing to drop table "app.u"' in bad.stderr
    assert detail_wrong_object("app.u", ["app.t"]) in bad.stderr
    none = subprocess.run(
        [*args, "DROP TABLE app.u"], env=base, capture_output=True, text=True, timeout=60
    )
    assert none.returncode != 0
    assert DETAIL_NONE in none.stderr
    assert exists(env.app, "app.u")


# --- once per statement ------------------------------------------------------------------------


def rsa_calls(env: Env) -> int:
    """Calls of pgguard.rsa_verify_pkcs1_sha256 so far (track_functions is on for the role)."""
    env.admin.execute("SELECT pg_stat_clear_snapshot()")
    return count(
        env.admin,
        "SELECT COALESCE(sum(calls), 0) FROM pg_stat_user_functions"
        " WHERE schemaname = 'pgguard' AND funcname = 'rsa_verify_pkcs1_sha256'",
    )


def wait_rsa_calls(env: Env, expected: int) -> int:
    deadline = time.monotonic() + 10
    n = rsa_calls(env)
    while n < expected and time.monotonic() < deadline:
        time.sleep(0.1)
        n = rsa_calls(env)
    return n


N_TABLES = 200


def test_one_rsa_verification_per_statement(env: Env) -> None:
    env.admin.execute(
        sql.SQL("ALTER ROLE {} SET track_functions = 'all'").format(sql.Identifier(env.role.name))
    )
    env.app.execute(
        f"""
        DO $$ BEGIN FOR i IN 1..{N_TABLES} LOOP
            EXECUTE format('CREATE TABLE app.m%s (id int)', i);
            EXECUTE format('INSERT INTO app.m%s VALUES (1)', i);
        END LOOP; END $$
        """
    )
    names = ", ".join(f"app.m{i}" for i in range(1, N_TABLES + 1))

    def fresh_session() -> Conn:
        return psycopg.connect(env.role.dsn, autocommit=True)

    before = rsa_calls(env)
    with fresh_session() as c:
        assert text_of(c, "SHOW track_functions") == "all"
        c.execute("SELECT set_config('pgguard.token', %s, false)", (env.token(),))
        started = time.perf_counter()
        c.execute(f"TRUNCATE {names}")
        truncate_s = time.perf_counter() - started
    assert count(env.app, "SELECT count(*) FROM app.m1") == 0
    assert count(env.admin, "SELECT count(*) FROM pgguard.verified_tokens") == 1
    assert wait_rsa_calls(env, before + 1) == before + 1

    with fresh_session() as c:
        c.execute("SELECT set_config('pgguard.token', %s, false)", (env.token(objects=["app.*"]),))
        started = time.perf_counter()
        c.execute("DROP SCHEMA app CASCADE")
        drop_s = time.perf_counter() - started
    assert count(env.admin, "SELECT count(*) FROM pgguard.verified_tokens") == 2
    assert wait_rsa_calls(env, before + 2) == before + 2
    # and the time: one verification, not 200. Time one real verification of a valid token.
    head, sig = env.token().rsplit(".", 1)
    args = (head.encode(), base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)), env.kid)
    query = "SELECT pgguard.rsa_verify_pkcs1_sha256(n, k, %s, %s) FROM pgguard.keys WHERE kid = %s"
    assert text_of(env.admin, query, args) == "True"
    started = time.perf_counter()
    for _ in range(20):
        env.admin.execute(query, args)
    one_verify = (time.perf_counter() - started) / 20
    # generous: a verification per table would take at least N_TABLES x one_verify
    assert drop_s < N_TABLES * one_verify, (drop_s, one_verify)
    print(
        f"TRUNCATE/DROP SCHEMA x{N_TABLES}: {truncate_s:.3f}s/{drop_s:.3f}s; one RSA check"
        f" {one_verify * 1000:.2f} ms"
    )


# --- a session cannot forge ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO pgguard.verified_tokens (token_sha256, kid, claims, exp)"
        " VALUES (sha256('x'), '0123456789abcdef', '{}', now() + interval '1h')",
        "UPDATE pgguard.verified_tokens SET exp = now() + interval '1 day'",
        "DELETE FROM pgguard.verified_tokens",
        "INSERT INTO pgguard.spent_tokens (jti, kid, xid) VALUES ('j', '0123456789abcdef', 1)",
        "UPDATE pgguard.spent_tokens SET xid = 0",
        "DELETE FROM pgguard.spent_tokens",
        "INSERT INTO pgguard.audit (kind, op, object) VALUES ('override', 'drop_table', 'x.y')",
        "UPDATE pgguard.audit SET why = 'x'",
        "DELETE FROM pgguard.audit",
        "INSERT INTO pgguard.keys (kid, n, e, k, bits, public_pem)"
        " VALUES ('0123456789abcdef', 3, 65537, 256, 2048, 'x')",
        "UPDATE pgguard.keys SET revoked_at = NULL",
        "INSERT INTO pgguard.created_tables (xid, relid)"
        " VALUES (pg_current_xact_id()::text::bigint, 'app.t'::regclass)",
    ],
)
def test_app_role_cannot_write_pgguard_tables(env: Env, statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        env.app.execute(statement)


# --- random strings never pass -----------------------------------------------------------------

RANDOM = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def fuzz_env(env: Env) -> Iterator[tuple[Env, str]]:
    token = env.token(objects=["*"], ttl=3600)
    # sanity: this token does pass
    with env.app.transaction(force_rollback=True):
        env.app.execute("SELECT set_config('pgguard.token', %s, true)", (token,))
        env.app.execute("DROP TABLE app.t")
    yield env, token


def never_passes(env: Env, candidate: str) -> None:
    with env.app.transaction(force_rollback=True):
        env.app.execute("SELECT set_config('pgguard.token', %s, true)", (candidate,))
        with pytest.raises(psycopg.Error) as info:
            with env.app.transaction():
                env.app.execute("DROP TABLE app.t")
        diag = info.value.diag
        assert diag.sqlstate == "PGG01", f"{candidate!r}: {info.value!r}"
        assert diag.message_detail, candidate
    assert exists(env.app, "app.t")


TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
TOKENISH = st.text(alphabet="abcdefABCDEF0123456789_-.pgAQgw=+/ ", max_size=400)


@RANDOM
@given(candidate=st.one_of(TEXT, TOKENISH, st.builds(lambda s: "pgg1." + s, TOKENISH)))
def test_random_text_never_passes(fuzz_env: tuple[Env, str], candidate: str) -> None:
    env, _ = fuzz_env
    never_passes(env, candidate)


@st.composite
def mutations(draw: st.DrawFn, token: str) -> str:
    chars = list(token)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["replace", "delete", "insert", "truncate", "swap"]))
        i = draw(st.integers(0, max(len(chars) - 1, 0)))
        if kind == "replace" and chars:
            chars[i] = draw(st.sampled_from(alphabet))
        elif kind == "delete" and chars:
            del chars[i]
        elif kind == "insert":
            chars.insert(i, draw(st.sampled_from(alphabet)))
        elif kind == "truncate":
            chars = chars[:i]
        elif kind == "swap":
            parts = "".join(chars).split(".")
            j, k = draw(st.integers(0, len(parts) - 1)), draw(st.integers(0, len(parts) - 1))
            parts[j], parts[k] = parts[k], parts[j]
            chars = list(".".join(parts))
    return "".join(chars)


@RANDOM
@given(data=st.data())
def test_mutated_token_never_passes(fuzz_env: tuple[Env, str], data: st.DataObject) -> None:
    env, token = fuzz_env
    candidate = data.draw(mutations(token))
    assume(candidate != token)
    never_passes(env, candidate)


def test_valid_token_parses_in_python(env: Env) -> None:
    """The tokens used above are what pgguard.token itself issues (guards the test's own
    assumptions about the format)."""
    parsed = parse_token(env.token(objects=["app.*"], once=True, reason="why"))
    assert parsed.kid == env.kid
    assert parsed.claims.obj == ("app.*",)
