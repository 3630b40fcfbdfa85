"""pgguard.token and pgguard.keys, Python side only (no server).

The token rules tested here are the ones the server's SQL must implement identically; the
shared tables live in ``tests/data/golden`` so the SQL tests can use the same rows.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from pgguard import errors, keys
from pgguard.token import (
    Claims,
    b64url_decode,
    b64url_encode,
    covers,
    issue_token,
    object_matches,
    parse_token,
    verify_token,
)

GOLDEN = Path(__file__).parent / "data" / "golden"
KEY = keys.load_private_key(GOLDEN / "test-key-2048.pem")
KEY_3072 = keys.load_private_key(GOLDEN / "test-key-3072.pem")
KID = keys.kid(KEY)
PUB = KEY.public_key()
KEYS = {KID: PUB, keys.kid(KEY_3072): KEY_3072.public_key()}
#: a different 2048-bit key, for "right kid, wrong key" (generated once per test session)
OTHER_KEY = keys.generate_private_key(2048)
T0 = 1767225600
ALL_OPS = ("drop_table", "drop_column", "truncate", "uninstall")


def make_token(**kwargs: Any) -> str:
    kwargs.setdefault("now", T0)
    kwargs.setdefault("sub", "tester@host")
    return issue_token(KEY, **kwargs)


def verify(tok: str, **kwargs: Any) -> Claims:
    kwargs.setdefault("keys", KEYS)
    kwargs.setdefault("now", T0)
    return verify_token(tok, **kwargs)


def sign_raw(payload: bytes | str, *, key: rsa.RSAPrivateKey = KEY, kid: str | None = None) -> str:
    """A correctly signed token around an arbitrary payload (bypasses issue_token's checks)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    head = f"pgg1.{kid or keys.kid(key)}.{b64url_encode(payload)}"
    sig = key.sign(head.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{b64url_encode(sig)}"


def good_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iat": T0,
        "exp": T0 + 600,
        "jti": "abc",
        "ops": ["drop_table"],
        "obj": ["*"],
        "once": False,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not DROP}


DROP = object()


def signed(claims: dict[str, Any]) -> str:
    return sign_raw(json.dumps(claims, separators=(",", ":"), sort_keys=True))


# --- issue / verify round trip ----------------------------------------------------------------


def test_round_trip_defaults() -> None:
    tok = issue_token(KEY)
    claims = verify_token(tok, keys=KEYS, op="truncate", obj="public.t", db="any")
    assert claims.ops == ("drop_table", "drop_column", "truncate")
    assert claims.obj == ("*",)
    assert claims.exp - claims.iat == 600
    assert claims.once is False
    assert claims.db is None and claims.why is None
    assert claims.sub is not None and re.fullmatch(r"[^@]+@.+", claims.sub)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", claims.jti)
    assert tok.startswith(f"pgg1.{KID}.")


def test_round_trip_everything() -> None:
    tok = make_token(
        ttl=dt.timedelta(minutes=5),
        ops=["drop_column"],
        objects=["app.users.legacy_*", "app.t"],
        once=True,
        reason="cleanup ☕",
        db="appdb",
        sub="alice@laptop",
        jti="j-1",
    )
    claims = verify(tok, op="drop_column", obj="app.users.legacy_x", db="appdb")
    assert claims == Claims(
        iat=T0,
        exp=T0 + 300,
        jti="j-1",
        ops=("drop_column",),
        obj=("app.users.legacy_*", "app.t"),
        once=True,
        db="appdb",
        sub="alice@laptop",
        why="cleanup ☕",
    )
    assert claims.expires_at == dt.datetime(2026, 1, 1, 0, 5, tzinfo=dt.timezone.utc)
    assert claims.issued_at == dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    assert covers(claims, "drop_column", "app.t.c")
    assert not covers(claims, "drop_table", "app.t")


def test_deterministic_and_canonical_payload() -> None:
    a = make_token(jti="x", reason="r", db="d")
    assert a == make_token(jti="x", reason="r", db="d")
    payload = b64url_decode(a.split(".")[2]).decode("ascii")
    assert payload == (
        '{"db":"d","exp":1767226200,"iat":1767225600,"jti":"x","obj":["*"],"once":false,'
        '"ops":["drop_table","drop_column","truncate"],"sub":"tester@host","why":"r"}'
    )
    assert make_token() != make_token()  # random jti


def test_optional_claims_omitted() -> None:
    for reason in (None, ""):
        payload = json.loads(b64url_decode(make_token(reason=reason).split(".")[2]))
        assert "why" not in payload and "db" not in payload
        assert set(payload) == {"iat", "exp", "jti", "ops", "obj", "once", "sub"}


def test_now_forms() -> None:
    aware = dt.datetime(2026, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert verify(make_token(now=aware)).iat == T0
    assert verify(make_token(now=T0 + 0.9)).iat == T0
    with pytest.raises(ValueError):
        make_token(now=dt.datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"ttl": 0}, ValueError),
        ({"ttl": dt.timedelta(milliseconds=999)}, ValueError),
        ({"ttl": 1.5}, TypeError),
        ({"ttl": True}, TypeError),
        ({"ops": []}, ValueError),
        ({"ops": ["drop_index"]}, ValueError),
        ({"objects": []}, ValueError),
        ({"objects": ["a.b.c.d"]}, ValueError),
        ({"objects": ["a..b"]}, ValueError),
        ({"objects": [""]}, ValueError),
        ({"jti": ""}, ValueError),
        ({"db": "a\x00b"}, ValueError),
    ],
)
def test_issue_rejects_bad_arguments(kwargs: dict[str, Any], exc: type[Exception]) -> None:
    with pytest.raises(exc):
        make_token(**kwargs)


def test_issue_accepts_single_strings() -> None:
    claims = verify(make_token(ops="truncate", objects="s.t"))
    assert claims.ops == ("truncate",) and claims.obj == ("s.t",)


def test_issue_rejects_unsuitable_keys() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(errors.KeyFileError):
        issue_token(small)
    with pytest.raises(TypeError):
        issue_token(ec.generate_private_key(ec.SECP256R1()))  # type: ignore[arg-type]


# --- rejections: each rule maps to its error --------------------------------------------------


def test_expiry_boundaries() -> None:
    tok = make_token(ttl=600)
    assert verify(tok, now=T0 + 599)
    with pytest.raises(errors.TokenExpired) as info:
        verify(tok, now=T0 + 600)
    assert info.value.expired_at == dt.datetime(2026, 1, 1, 0, 10, tzinfo=dt.timezone.utc)
    assert info.value.reason == "expired"


def test_not_yet_valid_boundaries() -> None:
    tok = make_token()
    assert verify(tok, now=T0 - 60)
    with pytest.raises(errors.TokenNotYetValid):
        verify(tok, now=T0 - 61)


def test_expired_wins_over_not_yet_valid() -> None:
    tok = signed(good_claims(iat=T0 + 1000, exp=T0))
    with pytest.raises(errors.TokenExpired):
        verify(tok)


def test_database() -> None:
    tok = make_token(db="appdb")
    assert verify(tok, db="appdb")
    assert verify(tok)  # db=None: not checked
    for other in ("other", "AppDB", "appdb "):
        with pytest.raises(errors.TokenWrongDatabase):
            verify(tok, db=other)
    assert verify(make_token(), db="anything")


def test_scope() -> None:
    tok = make_token(ops=["drop_table"], objects=["app.t*"])
    assert verify(tok, op="drop_table", obj="app.t1")
    assert verify(tok, op="drop_table", obj=("app", "t.x"))
    with pytest.raises(errors.TokenWrongScope) as info:
        verify(tok, op="truncate", obj="app.t1")
    assert (info.value.op, info.value.obj) == ("truncate", "app.t1")
    with pytest.raises(errors.TokenWrongScope) as info:
        verify(tok, op="drop_table", obj="app.x")
    assert (info.value.op, info.value.obj) == ("drop_table", "app.x")
    with pytest.raises(errors.TokenWrongScope) as info:
        verify(tok, op="drop_table", obj=("other", "t"))
    assert info.value.obj == "other.t"


def test_once_is_exposed_not_enforced() -> None:
    tok = make_token(once=True)
    assert verify(tok).once is True
    assert verify(tok).once is True


def test_unknown_and_revoked_keys() -> None:
    tok = make_token()
    with pytest.raises(errors.TokenUnknownKey) as info:
        verify(tok, keys={})
    assert info.value.kid == KID and type(info.value) is errors.TokenUnknownKey

    def revoked(kid: str) -> rsa.RSAPublicKey:
        raise errors.TokenRevokedKey(kid=kid)

    with pytest.raises(errors.TokenRevokedKey):
        verify(tok, keys=revoked)
    assert verify(tok, keys=lambda kid: KEYS[kid]).jti


def test_wrong_key_with_same_kid() -> None:
    tok = sign_raw(json.dumps(good_claims()), key=OTHER_KEY, kid=KID)
    with pytest.raises(errors.TokenBadSignature):
        verify(tok)
    # a 3072-bit signature under a 2048-bit key's kid: wrong length
    tok = sign_raw(json.dumps(good_claims()), key=KEY_3072, kid=KID)
    with pytest.raises(errors.TokenBadSignature):
        verify(tok)


def test_signature_length_must_equal_key_length() -> None:
    head, sig = make_token().rsplit(".", 1)
    raw = b64url_decode(sig)
    for bad in (raw[1:], b"\x00" + raw, raw + b"\x00", b""):
        tok = f"{head}.{b64url_encode(bad)}" if bad else f"{head}.AA"
        with pytest.raises(errors.TokenError) as info:
            verify(tok)
        assert type(info.value) is errors.TokenBadSignature


def test_signature_covers_the_encoded_header() -> None:
    """Same claims, re-encoded differently (whitespace, key order): the old signature fails."""
    tok = make_token()
    kid_part, payload, sig = tok.split(".")[1:]
    claims = json.loads(b64url_decode(payload))
    for text in (
        json.dumps(claims),
        json.dumps(claims, separators=(", ", ":")),
        json.dumps(dict(reversed(list(claims.items()))), separators=(",", ":")),
        " " + b64url_decode(payload).decode(),
    ):
        assert text.encode() != b64url_decode(payload)
        forged = f"pgg1.{kid_part}.{b64url_encode(text.encode())}.{sig}"
        assert parse_token(forged)  # well-formed ...
        with pytest.raises(errors.TokenBadSignature):
            verify(forged)  # ... but not what was signed


@pytest.mark.parametrize(
    "claim",
    [
        {"exp": T0 + 10**6},
        {"iat": T0 - 10**6},
        {"ops": ["drop_table", "drop_column", "truncate", "uninstall"]},
        {"obj": ["*"]},
        {"obj": ["public.*"]},
        {"db": "x"},
        {"once": True},
        {"jti": "other"},
        {"why": "because"},
    ],
)
def test_edited_claims_fail_without_resigning(claim: dict[str, Any]) -> None:
    tok = make_token(ops=["drop_table"], objects=["a.b"], once=False)
    kid_part, payload, sig = tok.split(".")[1:]
    claims = json.loads(b64url_decode(payload))
    claims.update(claim)
    edited = json.dumps(claims, separators=(",", ":"), sort_keys=True)
    forged = f"pgg1.{kid_part}.{b64url_encode(edited.encode())}.{sig}"
    with pytest.raises(errors.TokenBadSignature):
        verify(forged)


MALFORMED_STRINGS = [
    "",
    "pgg1",
    "pgg1...",
    "pgg1.0123456789abcdef.e30",
    "pgg1.0123456789abcdef.e30.AA.AA",
    "pgg2.0123456789abcdef.e30.AA",
    "PGG1.0123456789abcdef.e30.AA",
    "pgg1.0123456789ABCDEF.e30.AA",
    "pgg1.0123456789abcde.e30.AA",
    "pgg1.0123456789abcdef0.e30.AA",
    "pgg1.0123456789abcdeg.e30.AA",
    "pgg1.0123456789abcdef..AA",
    "pgg1.0123456789abcdef.e30.",
    "pgg1.0123456789abcdef.e30=.AA",
    "pgg1.0123456789abcdef.e30.AA==",
    "pgg1.0123456789abcdef.e3+.AA",
    "pgg1.0123456789abcdef.e3/.AA",
    "pgg1.0123456789abcdef.e 30.AA",
    "pgg1.0123456789abcdef.e30.A",
    "pgg1.0123456789abcdef.e30.AB",  # non-canonical: unused bits set
    "pgg1.0123456789abcdef.e31.AA",  # '{}' with the last char's unused bits set
    "pgg1.0123456789abcdef.e30.AA\n",
    " pgg1.0123456789abcdef.e30.AA",
    "pgg1.0123456789abcdef.e30.AA ",
]


@pytest.mark.parametrize("tok", MALFORMED_STRINGS)
def test_malformed_strings(tok: str) -> None:
    with pytest.raises(errors.TokenMalformed):
        parse_token(tok)
    with pytest.raises(errors.TokenMalformed):
        verify(tok)


def _with(**kw: Any) -> dict[str, Any]:
    return good_claims(**kw)


MALFORMED_PAYLOADS: list[Any] = [
    # not a JSON object
    "",
    "[]",
    '"x"',
    "1",
    "null",
    "{",
    '{"iat":1}x',
    "{}",
    # RFC 8259 violations Python's json would otherwise accept
    '{"iat":NaN}',
    '{"iat":Infinity}',
    # bad UTF-8, BOM
    b"\xff{}",
    b'{"jti":"\xc3("}',
    "\ufeff{}",
    # duplicate keys, even spelled differently
    '{"iat":1,"iat":2}',
    '{"iat":1767225600,"exp":1767226200,"jti":"a","ops":["truncate"],"obj":["*"],'
    '"once":false,"\\u0069at":1767225600}',
    # missing / unknown claims
    _with(iat=DROP),
    _with(exp=DROP),
    _with(jti=DROP),
    _with(ops=DROP),
    _with(obj=DROP),
    _with(once=DROP),
    _with(nbf=T0),
    _with(aud="x"),
    _with(Iat=T0),
    # integers: exact literals only
    _with(iat="1767225600"),
    _with(iat=True),
    _with(iat=None),
    _with(iat=-1),
    _with(exp=253402300800),
    _with(exp=10**30),
    '{"iat":1767225600.0,"exp":1767226200,"jti":"a","ops":["truncate"],"obj":["*"],"once":false}',
    '{"iat":1767225600,"exp":1.7672262e9,"jti":"a","ops":["truncate"],"obj":["*"],"once":false}',
    '{"iat":1767225600,"exp":1767226200E0,"jti":"a","ops":["truncate"],"obj":["*"],"once":false}',
    '{"iat":-0,"exp":1767226200,"jti":"a","ops":["truncate"],"obj":["*"],"once":false}',
    '{"iat":01767225600,"exp":1767226200,"jti":"a","ops":["truncate"],"obj":["*"],"once":false}',
    # jti
    _with(jti=""),
    _with(jti=5),
    _with(jti=None),
    _with(jti=["a"]),
    # once
    _with(once=0),
    _with(once="false"),
    _with(once=None),
    # ops
    _with(ops=[]),
    _with(ops="drop_table"),
    _with(ops=["drop_table", "drop_index"]),
    _with(ops=["DROP_TABLE"]),
    _with(ops=[None]),
    _with(ops=[["drop_table"]]),
    # obj
    _with(obj=[]),
    _with(obj="*"),
    _with(obj=[""]),
    _with(obj=["a..b"]),
    _with(obj=[".a"]),
    _with(obj=["a."]),
    _with(obj=["a.b.c.d"]),
    _with(obj=["*", 1]),
    # optional strings
    _with(db=None),
    _with(db=1),
    _with(sub=None),
    _with(sub=["x"]),
    _with(why=None),
    _with(why={"a": 1}),
    _with(why="a\x00b"),
    '{"iat":1767225600,"exp":1767226200,"jti":"\\ud800","ops":["truncate"],"obj":["*"],'
    '"once":false}',
]


@pytest.mark.parametrize("payload", MALFORMED_PAYLOADS)
def test_malformed_payloads_even_when_signed(payload: Any) -> None:
    if isinstance(payload, dict):
        payload = json.dumps(payload, separators=(",", ":"))
    tok = sign_raw(payload)
    with pytest.raises(errors.TokenMalformed):
        parse_token(tok)
    with pytest.raises(errors.TokenMalformed):
        verify(tok)


def test_accepted_payload_variants() -> None:
    """What a signer other than issue_token may produce, and the server must accept too."""
    base = '"jti":"a","ops":["truncate","truncate"],"obj":["*"],"once":true'
    for payload in (
        '{"iat":1767225600,"exp":1767226200,' + base + "}",
        ' {\n\t"exp" : 1767226200 ,"iat":1767225600,' + base + "}\r\n",
        '{"iat":1767225600,"exp":1767226200,' + base + ',"db":"","sub":"","why":""}',
        '{"iat":1767225600,"exp":1767226200,' + base + ',"why":"caf\\u00e9 \\ud83d\\ude00"}',
        '{"iat":1767225600,"exp":1767226200,' + base + ',"why":"café 😀"}',
        '{"iat":0,"exp":253402300799,' + base + "}",
    ):
        claims = verify(sign_raw(payload), op="truncate", obj="s.t")
        assert claims.once is True
    assert verify(sign_raw('{"iat":1767225600,"exp":1767226200,' + base + ',"why":""}')).why == ""


# --- glob semantics ---------------------------------------------------------------------------

GLOBS = json.loads((GOLDEN / "globs.json").read_text())


@pytest.mark.parametrize(("pattern", "obj", "expected"), GLOBS)
def test_glob_table(pattern: str, obj: str | list[str], expected: bool) -> None:
    assert object_matches(pattern, obj if isinstance(obj, str) else tuple(obj)) is expected


def _reference_segment(pattern: str, name: str) -> bool:
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, name, re.DOTALL) is not None


def _reference(pattern: str, obj: str) -> bool:
    if pattern == "*":
        return True
    segs, parts = pattern.split("."), obj.split(".")
    if "" in segs or len(segs) > 3 or len(parts) > 3:
        return False
    if len(segs) == 1:
        return len(parts) == 1 and _reference_segment(segs[0], parts[0])
    if len(segs) == 2:
        return len(parts) in (2, 3) and all(map(_reference_segment, segs, parts[:2]))
    return len(parts) == 3 and all(map(_reference_segment, segs, parts))


@given(
    st.text(alphabet="ab*?.", max_size=10),
    st.text(alphabet="ab.", max_size=10),
)
@example("a*b*", "aXb")
@example("**a", "a")
def test_glob_matches_reference(pattern: str, obj: str) -> None:
    assert object_matches(pattern, obj) is _reference(pattern, obj)


@given(st.text(alphabet="ab*?", min_size=1, max_size=60), st.text(alphabet="ab", max_size=63))
def test_glob_segment_is_fast_and_agrees(pattern: str, name: str) -> None:
    assert object_matches(f"s.{pattern}", f"s.{name}") is _reference_segment(pattern, name)


# --- property tests: nothing but a genuine token verifies -------------------------------------

VALID = make_token(ops=["drop_table"], objects=["app.*"], db="appdb", reason="r", jti="jti-1")
VALID_NOW = T0 + 1


def _only_token_errors(tok: str) -> None:
    try:
        verify(tok, now=VALID_NOW, op="drop_table", obj="app.t", db="appdb")
    except errors.TokenError:
        return
    raise AssertionError(f"mutated token verified: {tok!r}")


def test_valid_token_verifies() -> None:
    assert verify(VALID, now=VALID_NOW, op="drop_table", obj="app.t", db="appdb").jti == "jti-1"


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_single_character_change_fails(data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(VALID) - 1))
    ch = data.draw(st.characters(codec="utf-8").filter(lambda c: c != VALID[i]))
    _only_token_errors(VALID[:i] + ch + VALID[i + 1 :])


@settings(max_examples=300)
@given(st.integers(0, len(VALID) * 8 - 1))
def test_any_flipped_bit_fails(bit: int) -> None:
    raw = bytearray(VALID.encode("ascii"))
    raw[bit // 8] ^= 1 << (bit % 8)
    _only_token_errors(raw.decode("latin-1"))


@settings(max_examples=200)
@given(st.integers(0, len(VALID) - 1))
def test_truncation_fails(n: int) -> None:
    _only_token_errors(VALID[:n])


@settings(max_examples=200)
@given(st.integers(0, len(VALID)), st.text(min_size=1, max_size=4))
def test_insertion_fails(i: int, s: str) -> None:
    _only_token_errors(VALID[:i] + s + VALID[i:])


@settings(max_examples=200)
@given(st.integers(0, len(VALID) - 1), st.integers(1, 8))
def test_deletion_fails(i: int, n: int) -> None:
    _only_token_errors(VALID[:i] + VALID[i + n :])


@settings(max_examples=300)
@given(st.integers(0, 384 * 8 - 1))
def test_flipped_signature_bit_fails(bit: int) -> None:
    head, sig = VALID.rsplit(".", 1)
    raw = bytearray(b64url_decode(sig))
    assume(bit // 8 < len(raw))
    raw[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(errors.TokenBadSignature):
        verify(f"{head}.{b64url_encode(bytes(raw))}", now=VALID_NOW)


claim_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


@settings(max_examples=300)
@given(
    st.sampled_from(["iat", "exp", "jti", "ops", "obj", "once", "db", "sub", "why", "x"]),
    claim_values,
)
def test_edited_claim_without_resigning_fails(name: str, value: Any) -> None:
    kid_part, payload, sig = VALID.split(".")[1:]
    claims = json.loads(b64url_decode(payload))
    assume(claims.get(name, DROP) != value or type(claims.get(name)) is not type(value))
    claims[name] = value
    try:
        text = json.dumps(claims, separators=(",", ":"), sort_keys=True)
    except ValueError:
        return
    _only_token_errors(f"pgg1.{kid_part}.{b64url_encode(text.encode())}.{sig}")


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_random_strings(s: str) -> None:
    _only_token_errors(s)


b64url_text = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@settings(max_examples=300)
@given(
    st.sampled_from([KID, keys.kid(KEY_3072), "0" * 16]),
    b64url_text,
    b64url_text,
)
def test_random_structured_tokens(kid: str, payload: str, sig: str) -> None:
    _only_token_errors(f"pgg1.{kid}.{payload}.{sig}")


@settings(max_examples=100)
@given(st.binary(max_size=400))
def test_random_signatures_under_right_kid(sig: bytes) -> None:
    head = VALID.rsplit(".", 1)[0]
    _only_token_errors(f"{head}.{b64url_encode(sig)}")


# --- base64url ----------------------------------------------------------------------------------


@given(st.binary(max_size=64))
def test_b64url_round_trip(data: bytes) -> None:
    text = b64url_encode(data)
    assert "=" not in text
    assert b64url_decode(text) == data


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ ."))
def test_b64url_decode_is_strict_and_canonical(text: str) -> None:
    """Accepts exactly the strings b64url_encode can produce."""
    try:
        data = b64url_decode(text)
    except errors.TokenMalformed:
        padded = text + "=" * (-len(text) % 4)
        try:
            data = base64.urlsafe_b64decode(padded)
        except ValueError:
            return
        assert b64url_encode(data) != text
        return
    assert b64url_encode(data) == text


# --- keys ---------------------------------------------------------------------------------------


def test_kid_is_sha256_of_spki_der() -> None:
    import hashlib

    der = PUB.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert keys.kid(PUB) == keys.kid(KEY) == hashlib.sha256(der).hexdigest()[:16]


def test_public_numbers_for_db() -> None:
    row = keys.public_numbers_for_db(KEY_3072)
    n = KEY_3072.public_key().public_numbers().n
    assert (row.n, row.e, row.bits, row.k) == (str(n), 65537, 3072, 384)
    assert row.kid == keys.kid(KEY_3072)
    assert keys.load_public_key(row.pem).public_numbers().n == n


def test_write_private_key(tmp_path: Path) -> None:
    path = tmp_path / "approver.pem"
    old_umask = os.umask(0)  # even a permissive umask must not widen the mode
    try:
        keys.write_private_key(path, KEY)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keys.kid(keys.load_private_key(path)) == KID
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert os.listdir(tmp_path) == ["approver.pem"]
    with pytest.raises(errors.KeyFileError, match="exists"):
        keys.write_private_key(path, KEY_3072)
    assert keys.kid(keys.load_private_key(path)) == KID
    keys.write_private_key(path, KEY_3072, overwrite=True)
    assert keys.kid(keys.load_private_key(path)) == keys.kid(KEY_3072)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["approver.pem"]


def test_write_private_key_does_not_follow_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    link = tmp_path / "approver.pem"
    link.symlink_to(target)
    with pytest.raises(errors.KeyFileError):
        keys.write_private_key(link, KEY)
    assert not target.exists()


def test_generate_private_key() -> None:
    key = keys.generate_private_key(2048)
    assert key.key_size == 2048 and key.public_key().public_numbers().e == 65537
    for bad in (1024, 2047, 16385, "3072"):
        with pytest.raises(errors.KeyFileError):
            keys.generate_private_key(bad)  # type: ignore[arg-type]


def _pem(key: Any, *, fmt: Any = None, password: bytes | None = None) -> bytes:
    enc: Any = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return bytes(
        key.private_bytes(serialization.Encoding.PEM, fmt or serialization.PrivateFormat.PKCS8, enc)
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        (b"", "not a valid PEM private key"),
        (b"hello", "not a valid PEM private key"),
        (_pem(KEY, password=b"pw"), "encrypted"),
        (
            _pem(KEY, fmt=serialization.PrivateFormat.TraditionalOpenSSL, password=b"pw"),
            "encrypted",
        ),
        (keys.public_key_pem(KEY).encode(), "public key"),
        (_pem(ec.generate_private_key(ec.SECP256R1())), "not an RSA key"),
        (_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)), "too small"),
        (_pem(rsa.generate_private_key(public_exponent=3, key_size=2048)), "exponent"),
    ],
)
def test_load_private_key_errors(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "k.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(errors.KeyFileError, match=message):
        keys.load_private_key(path)


def test_load_private_key_pkcs1_and_directory(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(_pem(KEY, fmt=serialization.PrivateFormat.TraditionalOpenSSL))
    assert keys.kid(keys.load_private_key(path)) == KID
    with pytest.raises(errors.KeyFileError, match="directory"):
        keys.load_private_key(tmp_path)


def test_load_public_key_forms(tmp_path: Path) -> None:
    pem = keys.public_key_pem(KEY)
    pkcs1 = PUB.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    (tmp_path / "pub.pem").write_text(pem)
    for source in (
        pem,
        pem.encode(),
        pkcs1,
        tmp_path / "pub.pem",
        str(tmp_path / "pub.pem"),
        GOLDEN / "test-key-2048.pem",
        _pem(KEY),
    ):
        assert keys.kid(keys.load_public_key(source)) == KID
    with pytest.raises(errors.KeyFileError, match="encrypted"):
        keys.load_public_key(_pem(KEY, password=b"pw"))
    with pytest.raises(errors.KeyFileError, match="not found"):
        keys.load_public_key(tmp_path / "missing.pem")
    with pytest.raises(errors.KeyFileError):
        keys.load_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
