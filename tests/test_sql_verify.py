"""The SQL primitives (sql/020_b64url.sql, sql/030_rsa_verify.sql) on a real server.

Each server gets one throwaway database holding only schema ``pgguard`` and these two files;
signatures come from ``cryptography``, never from code under test.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgguard import errors, keys
from pgguard.resources import sql_dir
from pgguard.token import b64url_decode, b64url_encode

SQL_FILES = ("020_b64url.sql", "030_rsa_verify.sql")
MSG = b"pgg1.0123456789abcdef.eyJ0ZXN0Ijp0cnVlfQ"
DIGEST_INFO_SHA256 = bytes.fromhex("3031300d060960864801650304020105000420")
VERIFY = "SELECT pgguard.rsa_verify_pkcs1_sha256(%s::numeric, %s, %s, %s)"
SERVER_TESTS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

#: one key per size, generated once per session
KEYS: dict[int, rsa.RSAPrivateKey] = {}


def key(bits: int) -> rsa.RSAPrivateKey:
    if bits not in KEYS:
        KEYS[bits] = keys.generate_private_key(bits)
    return KEYS[bits]


def load_primitives(conn: psycopg.Connection[Any]) -> None:
    """Create schema pgguard and run the two files, twice (they must be re-runnable)."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS pgguard")
    for _ in range(2):
        for name in SQL_FILES:
            conn.execute((sql_dir() / name).read_text())


@pytest.fixture(scope="module")
def conn(pg_server: Any) -> Iterator[psycopg.Connection[Any]]:
    """Autocommit superuser connection to a fresh database with only the primitives loaded."""
    dbname = pg_server.create_database()
    try:
        with psycopg.connect(pg_server.admin_dsn(dbname=dbname), autocommit=True) as c:
            load_primitives(c)
            yield c
    finally:
        pg_server.drop_database(dbname)


def sql_verify(
    conn: psycopg.Connection[Any], n: int | str, k: int, msg: bytes, sig: bytes
) -> bool | None:
    row = conn.execute(VERIFY, (str(n), k, msg, sig)).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def other_key(bits: int) -> rsa.RSAPrivateKey:
    """A second key of the same size (cached under -bits)."""
    if -bits not in KEYS:
        KEYS[-bits] = keys.generate_private_key(bits)
    return KEYS[-bits]


def numbers(priv: rsa.RSAPrivateKey) -> tuple[int, int]:
    n = priv.public_key().public_numbers().n
    return n, (n.bit_length() + 7) // 8


def sign(priv: rsa.RSAPrivateKey, msg: bytes = MSG) -> bytes:
    return priv.sign(msg, padding.PKCS1v15(), hashes.SHA256())


def raw_sign(priv: rsa.RSAPrivateKey, em: bytes) -> bytes:
    """Textbook RSA on an arbitrary block: what a forger would need the private key for."""
    n, k = numbers(priv)
    d = priv.private_numbers().d
    return pow(int.from_bytes(em, "big"), d, n).to_bytes(k, "big")


def expected_em(k: int, msg: bytes = MSG) -> bytes:
    return (
        b"\x00\x01"
        + b"\xff" * (k - 54)
        + b"\x00"
        + DIGEST_INFO_SHA256
        + hashlib.sha256(msg).digest()
    )


# --- valid signatures -----------------------------------------------------------------------


@pytest.mark.parametrize("bits", [2048, 3072, 4096])
def test_valid_signature(conn: psycopg.Connection[Any], bits: int) -> None:
    priv = key(bits)
    n, k = numbers(priv)
    for msg in (MSG, b"", b"\x00" * 1000):
        sig = sign(priv, msg)
        assert sql_verify(conn, n, k, msg, sig) is True
        assert sql_verify(conn, n, k, msg + b"x", sig) is False


def test_odd_sizes_and_leading_zero_signatures(conn: psycopg.Connection[Any]) -> None:
    """A modulus that is not a multiple of 8 bits, and signatures whose top byte is zero."""
    priv = rsa.generate_private_key(public_exponent=65537, key_size=2056)
    n, k = numbers(priv)
    assert k == 257
    assert sql_verify(conn, n, k, MSG, sign(priv)) is True
    priv = key(2048)
    n, k = numbers(priv)
    for i in range(2000):
        msg = MSG + str(i).encode()
        sig = sign(priv, msg)
        if sig[0] == 0:
            assert sql_verify(conn, n, k, msg, sig) is True
            break
    else:  # pragma: no cover - probability ~ (255/256)^2000
        pytest.skip("no signature with a leading zero byte found")


def test_raw_signature_of_expected_encoding(conn: psycopg.Connection[Any]) -> None:
    priv = key(3072)
    n, k = numbers(priv)
    assert raw_sign(priv, expected_em(k)) == sign(priv)
    assert sql_verify(conn, n, k, MSG, raw_sign(priv, expected_em(k))) is True


# --- rejections -------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [2048, 3072, 4096])
def test_rejections(conn: psycopg.Connection[Any], bits: int) -> None:
    priv = key(bits)
    n, k = numbers(priv)
    sig = sign(priv)
    s = int.from_bytes(sig, "big")
    cases = {
        "flipped first bit": bytes([sig[0] ^ 0x80]) + sig[1:],
        "flipped last bit": sig[:-1] + bytes([sig[-1] ^ 1]),
        "flipped middle byte": sig[: k // 2] + bytes([sig[k // 2] ^ 0xFF]) + sig[k // 2 + 1 :],
        "truncated": sig[:-1],
        "truncated front": sig[1:],
        "extended": sig + b"\x00",
        "zero-extended": b"\x00" + sig,
        "empty": b"",
        "zero": bytes(k),
        "one": (1).to_bytes(k, "big"),
        "n - 1": (n - 1).to_bytes(k, "big"),
        "n": n.to_bytes(k, "big"),
        "all ff": b"\xff" * k,
        "another key's signature": sign(other_key(bits)),
    }
    if s + n < 256**k:
        cases["s + n (same value mod n)"] = (s + n).to_bytes(k, "big")
    for name, bad in cases.items():
        assert sql_verify(conn, n, k, MSG, bad) is False, name
    assert sql_verify(conn, n, k, b"other message", sig) is False


def test_wrong_key_parameters(conn: psycopg.Connection[Any]) -> None:
    priv = key(2048)
    n, k = numbers(priv)
    sig = sign(priv)
    assert sql_verify(conn, n, k, MSG, sig) is True
    assert sql_verify(conn, n, k + 1, MSG, b"\x00" + sig) is False  # k longer than n
    assert sql_verify(conn, n, k - 1, MSG, sig[1:]) is False  # k shorter than n
    assert sql_verify(conn, n + 2, k, MSG, sig) is False  # another modulus
    assert sql_verify(conn, f"{n}.5", k, MSG, sig) is False  # not an integer
    assert sql_verify(conn, f"{n}.000", k, MSG, sig) is True  # integral, with a scale
    assert sql_verify(conn, -n, k, MSG, sig) is False


def test_small_keys_refused_even_with_valid_signature(conn: psycopg.Connection[Any]) -> None:
    priv = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    n, k = numbers(priv)
    assert sql_verify(conn, n, k, MSG, sign(priv)) is False


def test_strict_nulls(conn: psycopg.Connection[Any]) -> None:
    n, k = numbers(key(2048))
    row = conn.execute(
        "SELECT pgguard.rsa_verify_pkcs1_sha256(NULL, %s, %s, %s),"
        " pgguard.rsa_verify_pkcs1_sha256(%s::numeric, %s, NULL, %s),"
        " pgguard.b64url_decode(NULL), pgguard.bytea_to_numeric(NULL)",
        (k, MSG, b"x", str(n), k, b"x"),
    ).fetchone()
    assert row == (None, None, None, None)


def _near_miss_encodings(k: int, msg: bytes = MSG) -> dict[str, bytes]:
    """Blocks a lenient PKCS#1 parser might accept: the verifier must take only the exact one."""
    h = hashlib.sha256(msg).digest()
    good = expected_em(k, msg)
    sha1_info = bytes.fromhex("3021300906052b0e03021a05000414")
    no_null = bytes.fromhex("302f300b0609608648016503040201") + bytes.fromhex("0420")
    ps = k - 3 - len(DIGEST_INFO_SHA256) - 32
    return {
        "block type 2": b"\x00\x02" + good[2:],
        "no leading zero": b"\x01\x01" + good[2:],
        "short padding, garbage after digest": b"\x00\x01"
        + b"\xff" * (ps - 8)
        + b"\x00"
        + DIGEST_INFO_SHA256
        + h
        + b"\x00" * 8,
        "padding byte not ff": b"\x00\x01\xfe" + good[3:],
        "separator not zero": good[: 2 + ps] + b"\x01" + good[3 + ps :],
        "DigestInfo without NULL parameters": b"\x00\x01"
        + b"\xff" * (ps + 2)
        + b"\x00"
        + no_null
        + h,
        "SHA-1 DigestInfo": b"\x00\x01"
        + b"\xff" * (k - 3 - len(sha1_info) - 32)
        + b"\x00"
        + sha1_info
        + h,
        "bare digest": b"\x00\x01" + b"\xff" * (k - 3 - 32) + b"\x00" + h,
        "flipped digest bit": good[:-1] + bytes([good[-1] ^ 1]),
        "digest of another message": expected_em(k, msg + b"!"),
    }


def test_near_miss_encodings_rejected(conn: psycopg.Connection[Any]) -> None:
    """Signed with the private key, so only the encoding check can reject them."""
    priv = key(2048)
    n, k = numbers(priv)
    for name, em in _near_miss_encodings(k).items():
        assert len(em) == k, name
        assert sql_verify(conn, n, k, MSG, raw_sign(priv, em)) is False, name


@SERVER_TESTS
@given(st.data())
def test_random_signature_mutations_never_verify(
    conn: psycopg.Connection[Any], data: st.DataObject
) -> None:
    priv = key(2048)
    n, k = numbers(priv)
    sig = bytearray(sign(priv))
    positions = data.draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=4, unique=True))
    for pos in positions:
        sig[pos] ^= data.draw(st.integers(1, 255))
    assert sql_verify(conn, n, k, MSG, bytes(sig)) is False


@SERVER_TESTS
@given(st.binary(min_size=256, max_size=256))
def test_random_signatures_never_verify(conn: psycopg.Connection[Any], sig: bytes) -> None:
    n, k = numbers(key(2048))
    assert sql_verify(conn, n, k, MSG, sig) is False


@SERVER_TESTS
@given(st.binary(max_size=64))
def test_valid_signature_over_random_messages(conn: psycopg.Connection[Any], msg: bytes) -> None:
    priv = key(2048)
    n, k = numbers(priv)
    assert sql_verify(conn, n, k, msg, sign(priv, msg)) is True


# --- b64url_decode and bytea_to_numeric ---------------------------------------------------------


def _sql_b64(conn: psycopg.Connection[Any], text: str) -> bytes | None:
    row = conn.execute("SELECT pgguard.b64url_decode(%s)", (text,)).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", b""),
        ("AA", b"\x00"),
        ("AAA", b"\x00\x00"),
        ("AAAA", b"\x00\x00\x00"),
        ("_-8", b"\xff\xef"),
        ("e30", b"{}"),
        ("A", None),
        ("AAAAA", None),
        ("AB", None),
        ("AAB", None),
        ("AA==", None),
        ("AA=", None),
        ("+/8", None),
        ("A A", None),
        ("AA\n", None),
        (" AA", None),
        ("AA.", None),
        ("ÄA", None),
        ("A\u200bA", None),
    ],
)
def test_b64url_decode_table(
    conn: psycopg.Connection[Any], text: str, expected: bytes | None
) -> None:
    assert _sql_b64(conn, text) == expected


@SERVER_TESTS
@given(st.binary(max_size=80))
def test_b64url_decode_round_trip(conn: psycopg.Connection[Any], data: bytes) -> None:
    assert _sql_b64(conn, b64url_encode(data)) == data


@SERVER_TESTS
@given(st.text(alphabet="AQEgw8_-=+/ .xyz09", max_size=12))
def test_b64url_decode_agrees_with_python(conn: psycopg.Connection[Any], text: str) -> None:
    try:
        expected: bytes | None = b64url_decode(text)
    except errors.TokenMalformed:
        expected = None
    assert _sql_b64(conn, text) == expected


@SERVER_TESTS
@given(st.binary(max_size=600))
def test_bytea_to_numeric(conn: psycopg.Connection[Any], data: bytes) -> None:
    row = conn.execute("SELECT pgguard.bytea_to_numeric(%s)::text", (data,)).fetchone()
    assert row is not None and row[0] == str(int.from_bytes(data, "big"))


def test_bytea_to_numeric_edges(conn: psycopg.Connection[Any]) -> None:
    for data in (b"", b"\x00", b"\x00" * 7, b"\x00" * 8, b"\xff" * 7, b"\xff" * 8, b"\xff" * 512):
        row = conn.execute("SELECT pgguard.bytea_to_numeric(%s)::text", (data,)).fetchone()
        assert row is not None and row[0] == str(int.from_bytes(data, "big")), data


def test_power_of_256_is_exact(conn: psycopg.Connection[Any]) -> None:
    """The key-size check relies on power(256::numeric, k) being exact for k up to 2048."""
    row = conn.execute(
        "SELECT bool_and(power(256::numeric, k) = pgguard.bytea_to_numeric("
        "   decode('01' || repeat('00', k), 'hex')))"
        " FROM generate_series(250, 2050) AS k"
    ).fetchone()
    assert row == (True,)


def test_functions_are_pinned_and_immutable(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        "SELECT p.proname, p.provolatile, p.proisstrict, p.proparallel, p.prosecdef,"
        "       p.proconfig"
        " FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace"
        " WHERE s.nspname = 'pgguard' ORDER BY 1"
    ).fetchall()
    assert [r[0] for r in rows] == ["b64url_decode", "bytea_to_numeric", "rsa_verify_pkcs1_sha256"]
    for name, volatile, strict, parallel, secdef, config in rows:
        assert (volatile, strict, parallel, secdef) == ("i", True, "s", False), name
        assert config == ["search_path=pg_catalog, pgguard, pg_temp"], name
