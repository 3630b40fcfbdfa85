"""Golden vectors (tests/data/golden): a fixed key, time and claims give an exact token.

Python re-creates every token byte for byte and verifies it; every server's SQL accepts each
signature (decoded from the token string by ``pgguard.b64url_decode``) and rejects it after
one flipped byte. ``checks`` pins the verification outcome of each rule, for Python here and for
the server-side checker. Regenerate only on purpose: ``tests/data/golden/make_golden.py``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pgguard import errors, keys
from pgguard.resources import sql_dir
from pgguard.token import b64url_decode, b64url_encode, issue_token, parse_token, verify_token

GOLDEN = Path(__file__).parent / "data" / "golden"
DOC = json.loads((GOLDEN / "vectors.json").read_text(encoding="utf-8"))
VECTORS = {v["name"]: v for v in DOC["vectors"]}
PRIVATE = {name: keys.load_private_key(GOLDEN / info["file"]) for name, info in DOC["keys"].items()}


def _flip(token: str, index: int) -> str:
    """Change one base64url character of the signature, keeping the encoding canonical."""
    head, sig = token.rsplit(".", 1)
    raw = bytearray(b64url_decode(sig))
    raw[index] ^= 0x01
    return f"{head}.{b64url_encode(bytes(raw))}"


# --- Python side --------------------------------------------------------------------------------


def test_golden_set_covers_both_key_sizes() -> None:
    assert {info["bits"] for info in DOC["keys"].values()} == {2048, 3072}
    assert {v["key"] for v in DOC["vectors"]} == set(DOC["keys"])


@pytest.mark.parametrize("name", sorted(DOC["keys"]))
def test_golden_keys(name: str) -> None:
    info = DOC["keys"][name]
    row = keys.public_numbers_for_db(PRIVATE[name])
    assert (row.kid, row.n, row.e, row.bits, row.k) == (
        info["kid"],
        info["n"],
        info["e"],
        info["bits"],
        info["k"],
    )


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_python_recreates_token_exactly(name: str) -> None:
    vec = VECTORS[name]
    tok = issue_token(PRIVATE[vec["key"]], **vec["issue"])
    assert tok == vec["token"]
    parsed = parse_token(tok)
    assert parsed.claims.to_json() == vec["claims"]
    assert parsed.signing_input.decode("ascii") == vec["signing_input"]
    assert b64url_decode(tok.split(".")[2]).decode("ascii") == vec["payload_json"]
    assert vec["payload_json"] == json.dumps(
        vec["claims"], separators=(",", ":"), sort_keys=True, ensure_ascii=True
    )


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_python_verifies_and_rejects_flipped(name: str) -> None:
    vec = VECTORS[name]
    pub = {DOC["keys"][vec["key"]]["kid"]: PRIVATE[vec["key"]].public_key()}
    claims = verify_token(vec["token"], keys=pub, now=vec["claims"]["iat"])
    assert claims.jti == vec["issue"]["jti"]
    for index in (0, 100, -1):
        with pytest.raises(errors.TokenBadSignature):
            verify_token(_flip(vec["token"], index), keys=pub, now=vec["claims"]["iat"])


def _lookup(check: dict[str, Any]) -> Any:
    registered = check.get("registered", list(DOC["keys"]))

    def lookup(kid: str) -> rsa.RSAPublicKey:
        for name in registered:
            if DOC["keys"][name]["kid"] == kid:
                if check["revoked"]:
                    raise errors.TokenRevokedKey(kid=kid)
                return PRIVATE[name].public_key()
        raise errors.TokenUnknownKey(kid=kid)

    return lookup


@pytest.mark.parametrize(
    "check",
    DOC["checks"],
    ids=[f"{c['vector']}-{c['op']}-{c['obj']}-{c['now']}-{c['expect']}" for c in DOC["checks"]],
)
def test_golden_checks(check: dict[str, Any]) -> None:
    vec = VECTORS[check["vector"]]
    kwargs = {"op": check["op"], "obj": check["obj"], "db": check["db"], "now": check["now"]}
    if check["expect"] == "ok":
        assert verify_token(vec["token"], keys=_lookup(check), **kwargs).jti
        return
    with pytest.raises(errors.TokenError) as info:
        verify_token(vec["token"], keys=_lookup(check), **kwargs)
    assert info.value.reason == check["expect"]
    if check["expect"] == "expired":
        expected = dt.datetime.fromtimestamp(vec["claims"]["exp"], dt.timezone.utc)
        assert isinstance(info.value, errors.TokenExpired)
        assert info.value.expired_at == expected


# --- SQL side -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def conn(pg_server: Any) -> Iterator[psycopg.Connection[Any]]:
    """A fresh database holding schema pgguard with the decoding and RSA primitives."""
    dbname = pg_server.create_database()
    try:
        with psycopg.connect(pg_server.admin_dsn(dbname=dbname), autocommit=True) as c:
            c.execute("CREATE SCHEMA pgguard")
            for name in ("020_b64url.sql", "030_rsa_verify.sql"):
                c.execute((sql_dir() / name).read_text())
            yield c
    finally:
        pg_server.drop_database(dbname)


SQL_CHECK = """
    SELECT pgguard.rsa_verify_pkcs1_sha256(
               %(n)s::numeric, %(k)s,
               convert_to(split_part(%(tok)s, '.', 1) || '.' || split_part(%(tok)s, '.', 2)
                          || '.' || split_part(%(tok)s, '.', 3), 'UTF8'),
               pgguard.b64url_decode(split_part(%(tok)s, '.', 4))),
           convert_from(pgguard.b64url_decode(split_part(%(tok)s, '.', 3)), 'UTF8')::json::text
"""


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_sql_accepts_golden_signature(conn: psycopg.Connection[Any], name: str) -> None:
    vec = VECTORS[name]
    info = DOC["keys"][vec["key"]]
    params = {"n": info["n"], "k": info["k"], "tok": vec["token"]}
    row = conn.execute(SQL_CHECK, params).fetchone()
    assert row is not None
    ok, payload = row
    assert ok is True
    assert payload == vec["payload_json"]
    assert json.loads(payload) == vec["claims"]
    for index in (0, 100, -1):
        row = conn.execute(SQL_CHECK, {**params, "tok": _flip(vec["token"], index)}).fetchone()
        assert row is not None and row[0] is False
    other = next(k for k in DOC["keys"] if k != vec["key"])
    row = conn.execute(
        SQL_CHECK, {**params, "n": DOC["keys"][other]["n"], "k": DOC["keys"][other]["k"]}
    ).fetchone()
    assert row is not None and row[0] is False
