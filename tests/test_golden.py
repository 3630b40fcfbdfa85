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


# --- multi-signature (pgg2) vectors ---------------------------------------------------------

MULTI = {m["name"]: m for m in DOC["multi"]}
PUBLIC = {info["kid"]: PRIVATE[name].public_key() for name, info in DOC["keys"].items()}


@pytest.mark.parametrize("name", sorted(MULTI))
def test_python_recreates_multi_token_exactly(name: str) -> None:
    from pgguard.multisig import cosign, split_token, verify_multi
    from pgguard.signers.keyfile import KeySigner

    m = MULTI[name]
    tok = VECTORS[m["base"]]["token"]
    for cosigner in m["cosigners"]:
        tok = cosign(tok, KeySigner(PRIVATE[cosigner]))
    assert tok == m["token"]
    assert tok.startswith("pgg2.") and split_token(tok).kids == tuple(m["kids"])
    iat = VECTORS[m["base"]]["claims"]["iat"]
    claims, kids = verify_multi(tok, keys=PUBLIC, required=2, now=iat)
    assert kids == tuple(m["kids"]) and claims.jti == VECTORS[m["base"]]["issue"]["jti"]
    with pytest.raises(errors.TokenInsufficientApprovals):
        verify_multi(tok, keys=PUBLIC, required=3, now=iat)
    # each signature is the pgg1 signature of its key over the same payload
    for kid, sig in split_token(tok).signatures:
        single = split_token(tok).as_pgg1(kid, sig)
        assert verify_token(single, keys=PUBLIC, now=iat).jti == claims.jti
    for index in (0, -1):
        with pytest.raises(errors.TokenBadSignature):
            verify_multi(_flip(tok, index), keys=PUBLIC, now=iat)
    # a signature by a key this side does not know does not count; none known: unknown key
    only = {m["kids"][0]: PUBLIC[m["kids"][0]]}
    assert verify_multi(tok, keys=only, now=iat)[1] == (m["kids"][0],)
    with pytest.raises(errors.TokenUnknownKey):
        verify_multi(tok, keys={}, now=iat)


def test_multi_token_spelling_rules() -> None:
    from pgguard.multisig import split_token

    tok = DOC["multi"][0]["token"]
    p = tok.split(".")
    swapped = ".".join([p[0], p[1], p[4], p[5], p[2], p[3]])
    same_twice = ".".join([p[0], p[1], p[2], p[3], p[2], p[3]])
    for bad in (swapped, same_twice, ".".join(p[:4]), tok + ".x", "pgg3" + tok[4:]):
        with pytest.raises(errors.TokenMalformed):
            split_token(bad)


def test_sql_verifies_multi_tokens(guarded_admin: psycopg.Connection[Any]) -> None:
    """The server's pgguard.multisig_verify agrees with Python on every pgg2 vector."""
    for info in DOC["keys"].values():
        guarded_admin.execute(
            "INSERT INTO pgguard.keys (kid, n, e, k, bits, public_pem) VALUES "
            "(%s, %s::numeric, %s, %s, %s, 'golden test key')",
            (info["kid"], info["n"], info["e"], info["k"], info["bits"]),
        )
    q = (
        "SELECT m.claims::text, m.kids, m.reason FROM pgguard.multisig_verify("
        "%(t)s, sha256(convert_to(%(t)s, 'UTF8')), NULL, NULL) m"
    )
    for m in DOC["multi"]:
        row = guarded_admin.execute(q, {"t": m["token"]}).fetchone()
        assert row is not None
        claims, kids, reason = row
        assert reason is None and kids == ",".join(m["kids"])
        assert json.loads(claims) == VECTORS[m["base"]]["claims"]
        for index in (0, -1):
            row = guarded_admin.execute(q, {"t": _flip(m["token"], index)}).fetchone()
            assert row is not None and row[2] == "bad_signature"
        p = m["token"].split(".")
        swapped = ".".join([p[0], p[1], p[4], p[5], p[2], p[3]])
        row = guarded_admin.execute(q, {"t": swapped}).fetchone()
        assert row is not None and row[2] == "malformed"
    guarded_admin.execute(
        "UPDATE pgguard.keys SET revoked_at = now() WHERE kid = %s", (DOC["multi"][0]["kids"][1],)
    )
    row = guarded_admin.execute(q, {"t": DOC["multi"][0]["token"]}).fetchone()
    assert row is not None and row[1] == DOC["multi"][0]["kids"][0]  # the revoked one drops out
