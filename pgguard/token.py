"""Override tokens, format ``pgg1``: issue (sign) and verify.

A token is ``pgg1.<kid>.<payload>.<sig>``. The server verifies it in SQL/plpgsql; this module
is the reference for the rules, and the server must apply *exactly* these, in this order
(the first failing rule decides the error).

Encoding (issuer)
    ``payload`` = base64url, no padding, of the UTF-8 bytes of
    ``json.dumps(claims, separators=(",", ":"), sort_keys=True, ensure_ascii=True)``, so the same
    inputs always give the same bytes (RSASSA-PKCS1-v1_5 is deterministic too: same key, time,
    claims and ``jti`` give the same token). ``sig`` = base64url, no padding, of the
    RSASSA-PKCS1-v1_5 / SHA-256 signature (exactly ``k`` bytes, ``k`` = modulus length in bytes)
    over the ASCII bytes ``pgg1.<kid>.<payload>``. ``kid`` = :func:`pgguard.keys.kid`.
    Claims always written: ``iat``, ``exp``, ``jti`` (22 base64url characters, 128 random bits),
    ``ops``, ``obj``, ``once``, ``sub`` (default ``user@host``). ``db`` is omitted when not
    given. ``why`` is omitted when the reason is ``None`` or empty (an empty reason carries no
    information; the verifier reports a missing ``why`` as ``None``).

1. Format → :class:`TokenMalformed`
    a. Exactly four ``.``-separated parts; the first is ``pgg1``; the kid matches
       ``[0-9a-f]{16}`` (lowercase only).
    b. ``payload`` and ``sig`` are *canonical* unpadded base64url: only ``[A-Za-z0-9_-]``,
       length % 4 ≠ 1, and the unused low bits of the last character are zero (when
       length % 4 = 2 the last character is one of ``AQgw``; when 3, one of
       ``AEIMQUYcgkosw048``). Both parts non-empty. Non-canonical encodings are rejected so a
       token has exactly one spelling (see ``pgguard.b64url_decode`` in SQL, which returns
       NULL for any of these).
    c. The payload bytes are valid UTF-8 and parse as one JSON value (RFC 8259; no ``NaN`` /
       ``Infinity``, no BOM; surrounding JSON whitespace is allowed) that is an object with no
       duplicate keys, also when spelled differently (``"iat"`` and ``"\\u0069at"``). (SQL:
       ``convert_from(…, 'UTF8')::json`` — ``json``, not ``jsonb`` — turning any error into
       malformed; duplicates: ``count(*)`` ≠ ``count(DISTINCT k)`` over ``json_object_keys``,
       which de-escapes and keeps duplicates; ``->>`` alone would silently take the last.)
    d. Keys are only ``iat exp jti ops obj once db sub why``; ``iat exp jti ops obj once`` are
       required. Unknown keys are rejected: a v1 verifier must never ignore a claim that
       might narrow a token (a new claim means a new version prefix).
    e. ``iat`` and ``exp``: a JSON integer literal — ``json_typeof`` is ``number`` and the raw
       text (``json ->>``) matches ``0|[1-9][0-9]*``, so ``1e9``, ``1.0``, ``-0``, ``-1``,
       ``true`` and strings are rejected (test the ``json`` text: ``jsonb`` turns ``1e3`` into
       ``1000``) — and at most 253402300799 (9999-12-31T23:59:59Z). ``exp > iat`` is *not*
       required.
    f. ``jti``: non-empty string. ``once``: ``true`` or ``false`` (``json_typeof`` boolean).
       ``db``, ``sub``, ``why``: strings when present (``null`` is rejected; may be empty).
       Every string (array elements included) must not contain U+0000 or an unpaired
       surrogate (``\\u0000``, ``\\ud800``), which PostgreSQL text cannot hold: SQL must
       de-escape every claim (``->>``), ``sub`` and ``why`` too, and treat the error as
       malformed. (One case Python cannot reproduce: a database whose encoding is not UTF8
       cannot de-escape characters it cannot represent, so the server calls such a token
       malformed. ``issue_token`` writes ASCII JSON, but ``why`` may escape any character.)
    g. ``ops``: non-empty array of strings, each one of ``drop_table drop_column truncate
       uninstall delete_rows update_rows unlogged`` (duplicates allowed). ``obj``: non-empty
       array of pattern strings; each pattern split on ``.`` has 1–3 segments, none empty.
2. Key → :class:`TokenUnknownKey` (no key with that kid) / :class:`TokenRevokedKey`.
3. Signature → :class:`TokenBadSignature`: the decoded ``sig`` must be exactly ``k`` bytes
   and verify as RSASSA-PKCS1-v1_5/SHA-256 over the ASCII bytes ``pgg1.<kid>.<payload>``
   (the first three parts exactly as they appear in the token).
4. Time (server clock, whole seconds, ``now`` truncated towards -∞):
   ``exp <= now`` → :class:`TokenExpired` (``expired_at`` = ``exp`` as an aware UTC datetime);
   ``iat > now + 60`` → :class:`TokenNotYetValid` (60 s leeway for the approver's clock).
5. Database: ``db`` present and ≠ the current database name (exact, case-sensitive) →
   :class:`TokenWrongDatabase`. (In :func:`verify_token`, ``db=None`` skips this check.)
6. Scope → :class:`TokenWrongScope`: the operation must be in ``ops``, and the object must
   match at least one pattern in ``obj`` (:func:`object_matches`). (In :func:`verify_token`,
   ``op=None`` / ``obj=None`` skip the respective check.)

``once`` is not checked here: the server records spent ``jti``\\ s (``TokenAlreadyUsed``).

Object names and glob semantics (:func:`object_matches`)
    Objects are ``schema.table`` (tables) and ``schema.table.column`` (columns), identifiers
    as stored (no quoting), or a single name (e.g. ``pgguard`` for ``uninstall``). A pattern is
    split on ``.`` into segments. Within a segment ``*`` matches any run of characters
    (including none) and ``?`` exactly one character; every other character is literal;
    matching is case-sensitive and covers the whole segment; no wildcard crosses a segment
    boundary. Then:

    ===================  =====================================================================
    pattern              matches
    ===================  =====================================================================
    exactly ``*``        everything
    1 segment            only a 1-segment object whose name matches (``pgguard``)
    2 segments ``s.t``   table ``s.t`` and every column ``s.t.c`` of a matching table
    3 segments           only columns
    ===================  =====================================================================

    Matching is defined on the object's *identifier tuple* ``(schema, table[, column])``,
    segment by segment; the server must match identifiers, not a joined string. An identifier
    may itself contain ``.`` (``CREATE TABLE s."a.b"``): as a tuple, ``s.*`` matches it and
    ``s.a`` does not. When an object is given as a string it is split on ``.``, which is the
    same thing for every identifier without a dot. (SQL: a segment matches with
    ``LIKE`` after escaping ``\\ % _`` and mapping ``*``→``%``, ``?``→``_``, under a
    deterministic collation, e.g. ``COLLATE "C"``.)
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import getpass
import json
import re
import secrets
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from pgguard import keys as _keys
from pgguard.errors import (
    TokenBadSignature,
    TokenExpired,
    TokenMalformed,
    TokenNotYetValid,
    TokenUnknownKey,
    TokenWrongDatabase,
    TokenWrongScope,
)
from pgguard.signers import Signer, sign_checked
from pgguard.signers.keyfile import KeySigner

__all__ = [
    "CLOCK_SKEW_LEEWAY",
    "DEFAULT_OPS",
    "DEFAULT_OBJECTS",
    "DEFAULT_TTL",
    "KNOWN_OPS",
    "PREFIX",
    "Claims",
    "ParsedToken",
    "b64url_decode",
    "b64url_encode",
    "covers",
    "issue_token",
    "object_matches",
    "parse_token",
    "validate_pattern",
    "verify_token",
]

PREFIX = "pgg1"
KNOWN_OPS = frozenset(
    {"drop_table", "drop_column", "truncate", "uninstall", "delete_rows", "update_rows", "unlogged"}
)
DEFAULT_OPS: tuple[str, ...] = ("drop_table", "drop_column", "truncate")
DEFAULT_OBJECTS: tuple[str, ...] = ("*",)
DEFAULT_TTL = 600
#: seconds an ``iat`` may lie in the server's future (approver clock skew)
CLOCK_SKEW_LEEWAY = 60
#: largest iat/exp accepted: 9999-12-31T23:59:59Z, representable on both sides
MAX_TIME = 253402300799

_REQUIRED = frozenset({"iat", "exp", "jti", "ops", "obj", "once"})
_OPTIONAL = frozenset({"db", "sub", "why"})
_KID_RE = re.compile(r"[0-9a-f]{16}")
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")
_INT_RE = re.compile(r"0|[1-9][0-9]*")
# Last character of a canonical encoding whose length % 4 is 2 or 3 (unused bits zero).
_CANONICAL_LAST = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}

Now: TypeAlias = dt.datetime | int | float | None
KeyLookup: TypeAlias = Mapping[str, rsa.RSAPublicKey] | Callable[[str], rsa.RSAPublicKey]


# --- base64url --------------------------------------------------------------------------------


def b64url_encode(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict, canonical base64url without padding; :class:`TokenMalformed` otherwise."""
    if not _B64URL_RE.fullmatch(text):
        raise TokenMalformed("token: invalid base64url character")
    rem = len(text) % 4
    if rem == 1:
        raise TokenMalformed("token: invalid base64url length")
    if rem and text[-1] not in _CANONICAL_LAST[rem]:
        raise TokenMalformed("token: non-canonical base64url")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as e:  # pragma: no cover - excluded by the checks above
        raise TokenMalformed("token: invalid base64url") from e


# --- object patterns --------------------------------------------------------------------------


def validate_pattern(pattern: str) -> None:
    """Raise :class:`TokenMalformed` unless ``pattern`` has 1–3 non-empty ``.`` segments."""
    if not isinstance(pattern, str):
        raise TokenMalformed("token: object pattern must be a string")
    segments = pattern.split(".")
    if len(segments) > 3:
        raise TokenMalformed(f"token: object pattern {pattern!r} has more than 3 segments")
    if any(s == "" for s in segments):
        raise TokenMalformed(f"token: object pattern {pattern!r} has an empty segment")


def _segment_matches(pattern: str, name: str) -> bool:
    """Glob-match one whole segment: ``*`` any run, ``?`` one character, the rest literal.

    The classic two-pointer matcher (backtrack only to the last ``*``): O(len(pattern) *
    len(name)) at worst, with no regular expression that a pattern could blow up.
    """
    p = s = 0
    star = -1
    mark = 0
    while s < len(name):
        if p < len(pattern) and pattern[p] == "*":
            star, mark = p, s
            p += 1
        elif p < len(pattern) and (pattern[p] == "?" or pattern[p] == name[s]):
            p += 1
            s += 1
        elif star >= 0:
            mark += 1
            p, s = star + 1, mark
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def object_matches(pattern: str, obj: str | Sequence[str]) -> bool:
    """Whether glob ``pattern`` covers ``obj`` (see the module docstring for the table).

    ``obj`` is an identifier tuple ``(schema, table)`` / ``(schema, table, column)`` /
    ``(name,)``, or a string split on ``.``. Objects with 0 or more than 3 parts match only
    the pattern ``*``. An invalid pattern matches nothing.
    """
    if pattern == "*":
        return True
    parts = tuple(obj.split(".")) if isinstance(obj, str) else tuple(obj)
    segments = pattern.split(".")
    if not 1 <= len(parts) <= 3 or not 1 <= len(segments) <= 3 or "" in segments:
        return False
    if len(segments) == 1:
        return len(parts) == 1 and _segment_matches(segments[0], parts[0])
    if len(parts) == 1:
        return False
    if len(segments) == 2:
        return _segment_matches(segments[0], parts[0]) and _segment_matches(segments[1], parts[1])
    return len(parts) == 3 and all(
        _segment_matches(p, n) for p, n in zip(segments, parts, strict=True)
    )


# --- claims -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claims:
    """The verified (or parsed) claims of a token."""

    iat: int
    exp: int
    jti: str
    ops: tuple[str, ...]
    obj: tuple[str, ...]
    once: bool
    db: str | None = None
    sub: str | None = None
    why: str | None = None

    @property
    def issued_at(self) -> dt.datetime:
        """``iat`` as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.iat, dt.timezone.utc)

    @property
    def expires_at(self) -> dt.datetime:
        """``exp`` as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.exp, dt.timezone.utc)

    def to_json(self) -> dict[str, Any]:
        """The claims as written in the payload (optional claims omitted when ``None``)."""
        out: dict[str, Any] = {
            "iat": self.iat,
            "exp": self.exp,
            "jti": self.jti,
            "ops": list(self.ops),
            "obj": list(self.obj),
            "once": self.once,
        }
        for name in ("db", "sub", "why"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def covers(claims: Claims, op: str, obj: str | Sequence[str]) -> bool:
    """Whether ``claims`` allow ``op`` on ``obj``: ``op`` in ops and ``obj`` matches a pattern."""
    return op in claims.ops and any(object_matches(p, obj) for p in claims.obj)


@dataclass(frozen=True)
class ParsedToken:
    """A token split and decoded, its signature not yet checked."""

    kid: str
    claims: Claims
    #: the ASCII bytes ``pgg1.<kid>.<payload>`` the signature covers
    signing_input: bytes
    signature: bytes


class _IntLiteral:
    """A JSON number kept as its source text, so ``1e3`` and ``1000`` stay distinct."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _reject_constant(name: str) -> Any:
    raise TokenMalformed(f"token: invalid JSON constant {name}")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise TokenMalformed(f"token: duplicate claim {key!r}")
        out[key] = value
    return out


def _check_str(value: Any, name: str, *, empty_ok: bool = True) -> str:
    if not isinstance(value, str):
        raise TokenMalformed(f"token: claim {name!r} must be a string")
    if not empty_ok and value == "":
        raise TokenMalformed(f"token: claim {name!r} must not be empty")
    if "\x00" in value:
        raise TokenMalformed(f"token: claim {name!r} contains NUL")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise TokenMalformed(f"token: claim {name!r} contains an unpaired surrogate") from e
    return value


def _check_time(value: Any, name: str) -> int:
    if not isinstance(value, _IntLiteral) or not _INT_RE.fullmatch(value.text):
        raise TokenMalformed(f"token: claim {name!r} must be a non-negative integer")
    if len(value.text) > 12 or int(value.text) > MAX_TIME:
        raise TokenMalformed(f"token: claim {name!r} is out of range")
    return int(value.text)


def _check_str_list(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise TokenMalformed(f"token: claim {name!r} must be a non-empty list of strings")
    return tuple(_check_str(v, name) for v in value)


def _claims_from_json(raw: Any) -> Claims:
    if not isinstance(raw, dict):
        raise TokenMalformed("token: payload is not a JSON object")
    names = set(raw)
    if missing := _REQUIRED - names:
        raise TokenMalformed(f"token: missing claim(s) {', '.join(sorted(missing))}")
    if unknown := names - _REQUIRED - _OPTIONAL:
        raise TokenMalformed(f"token: unknown claim(s) {', '.join(sorted(unknown))}")
    ops = _check_str_list(raw["ops"], "ops")
    for op in ops:
        if op not in KNOWN_OPS:
            raise TokenMalformed(f"token: unknown operation {op!r}")
    obj = _check_str_list(raw["obj"], "obj")
    for pattern in obj:
        validate_pattern(pattern)
    once = raw["once"]
    if not isinstance(once, bool):
        raise TokenMalformed("token: claim 'once' must be true or false")
    optional = {n: _check_str(raw[n], n) if n in raw else None for n in ("db", "sub", "why")}
    return Claims(
        iat=_check_time(raw["iat"], "iat"),
        exp=_check_time(raw["exp"], "exp"),
        jti=_check_str(raw["jti"], "jti", empty_ok=False),
        ops=ops,
        obj=obj,
        once=once,
        **optional,
    )


def parse_token(token: str) -> ParsedToken:
    """Split and decode ``token`` and check its claims (rule 1); the signature is not checked.

    Raises :class:`TokenMalformed` only.
    """
    if not isinstance(token, str):
        raise TokenMalformed("token: not a string")
    parts = token.split(".")
    if len(parts) != 4:
        raise TokenMalformed("token: expected 4 dot-separated parts")
    prefix, kid, payload, sig = parts
    if prefix != PREFIX:
        raise TokenMalformed(f"token: unknown format {prefix[:8]!r} (expected {PREFIX!r})")
    if not _KID_RE.fullmatch(kid):
        raise TokenMalformed("token: key id must be 16 lowercase hex digits")
    if not payload or not sig:
        raise TokenMalformed("token: empty payload or signature")
    payload_bytes = b64url_decode(payload)
    signature = b64url_decode(sig)
    try:
        text = payload_bytes.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TokenMalformed("token: payload is not UTF-8") from e
    try:
        raw = json.loads(
            text,
            object_pairs_hook=_unique_object,
            parse_int=_IntLiteral,
            parse_float=_IntLiteral,
            parse_constant=_reject_constant,
        )
    except (ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise TokenMalformed("token: payload is not valid JSON") from e
    claims = _claims_from_json(raw)
    signing_input = f"{prefix}.{kid}.{payload}".encode("ascii")
    return ParsedToken(kid=kid, claims=claims, signing_input=signing_input, signature=signature)


# --- time -------------------------------------------------------------------------------------


def _unix_now(now: Now) -> int:
    """Whole Unix seconds (floor) for ``now``; ``None`` is the current time."""
    if now is None:
        now = dt.datetime.now(dt.timezone.utc)
    if isinstance(now, dt.datetime):
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be an aware datetime (e.g. datetime.now(timezone.utc))")
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
        return (now - epoch) // dt.timedelta(seconds=1)
    if isinstance(now, bool) or not isinstance(now, (int, float)):
        raise TypeError("now must be a datetime or Unix seconds")
    return int(now // 1)


# --- issue ------------------------------------------------------------------------------------


def _default_sub() -> str:
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment nor the password database
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _as_list(value: str | Iterable[str], what: str) -> list[str]:
    items = [value] if isinstance(value, str) else list(value)
    if not items:
        raise ValueError(f"{what} must not be empty")
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{what} must be strings, not {type(item).__name__}")
    return items


def _as_signer(key: rsa.RSAPrivateKey | Signer) -> Signer:
    if isinstance(key, rsa.RSAPrivateKey):
        return KeySigner(key)
    if isinstance(key, Signer):
        return key
    raise TypeError(
        "key must be an RSA private key or a pgguard.signers.Signer "
        "(see pgguard.keys.load_private_key, pgguard.signers)"
    )


def issue_token(
    key: rsa.RSAPrivateKey | Signer,
    *,
    ttl: int | dt.timedelta = DEFAULT_TTL,
    ops: str | Iterable[str] = DEFAULT_OPS,
    objects: str | Iterable[str] = DEFAULT_OBJECTS,
    once: bool = False,
    reason: str | None = None,
    db: str | None = None,
    sub: str | None = None,
    now: Now = None,
    jti: str | None = None,
) -> str:
    """Sign an override token with ``key``: a private key, or any :class:`~pgguard.signers.Signer`
    (encrypted key file, PKCS#11 token, external command).

    ``ttl`` is seconds or a timedelta (whole seconds, at least 1): ``exp = iat + ttl`` with
    ``iat`` = ``now`` in whole Unix seconds. ``ops`` and ``objects`` keep the given order.
    ``jti`` defaults to 128 random bits, base64url; ``sub`` to ``user@host``. Raises
    ``ValueError``/``TypeError`` for bad arguments and :class:`~pgguard.errors.KeyFileError`
    for an unusable key, :class:`~pgguard.errors.SignerError` when the signer fails or its
    signature does not verify against its public key (so nothing unverifiable is ever handed
    out); the result always passes :func:`parse_token`.
    """
    signer = _as_signer(key)
    pub = signer.public_key()
    _keys.public_numbers_for_db(pub)  # validates size and exponent (KeyFileError)
    if isinstance(ttl, dt.timedelta):
        ttl_s = ttl // dt.timedelta(seconds=1)
    elif isinstance(ttl, int) and not isinstance(ttl, bool):
        ttl_s = ttl
    else:
        raise TypeError("ttl must be seconds (int) or a timedelta")
    if ttl_s < 1:
        raise ValueError("ttl must be at least one second")
    op_list = _as_list(ops, "ops")
    for op in op_list:
        if op not in KNOWN_OPS:
            raise ValueError(f"unknown operation {op!r}; known: {', '.join(sorted(KNOWN_OPS))}")
    obj_list = _as_list(objects, "objects")
    for pattern in obj_list:
        try:
            validate_pattern(pattern)
        except TokenMalformed as e:
            raise ValueError(str(e).removeprefix("token: ")) from None
    iat = _unix_now(now)
    claims = Claims(
        iat=iat,
        exp=iat + ttl_s,
        jti=secrets.token_urlsafe(16) if jti is None else jti,
        ops=tuple(op_list),
        obj=tuple(obj_list),
        once=bool(once),
        db=db,
        sub=_default_sub() if sub is None else sub,
        why=reason or None,
    )
    payload_json = json.dumps(
        claims.to_json(), separators=(",", ":"), sort_keys=True, ensure_ascii=True
    )
    signing_input = f"{PREFIX}.{_keys.kid(pub)}.{b64url_encode(payload_json.encode('ascii'))}"
    signature = sign_checked(signer, signing_input.encode("ascii"))
    token = f"{signing_input}.{b64url_encode(signature)}"
    try:
        parse_token(token)  # refuse to hand out a token the verifier would call malformed
    except TokenMalformed as e:
        raise ValueError(str(e).removeprefix("token: ")) from None
    return token


# --- verify -----------------------------------------------------------------------------------


def _lookup(keys: KeyLookup, kid: str) -> rsa.RSAPublicKey:
    if callable(keys):
        key = keys(kid)
    else:
        try:
            key = keys[kid]
        except KeyError:
            raise TokenUnknownKey(f"token: no registered key with kid {kid}", kid=kid) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise TypeError(f"key lookup returned {type(key).__name__}, not an RSA public key")
    return key


def verify_token(
    token: str,
    *,
    keys: KeyLookup,
    op: str | None = None,
    obj: str | Sequence[str] | None = None,
    db: str | None = None,
    now: Now = None,
) -> Claims:
    """Verify ``token`` by the rules in the module docstring and return its claims.

    ``keys`` maps kid → public key, or is a callable that returns the key or raises
    :class:`TokenUnknownKey` / :class:`TokenRevokedKey`. ``op``, ``obj`` and ``db`` are
    checked only when given. Raises a :class:`~pgguard.errors.TokenError` subclass and
    nothing else for any token string (bad arguments may raise ``TypeError``/``ValueError``).
    """
    current = _unix_now(now)
    parsed = parse_token(token)
    key = _lookup(keys, parsed.kid)
    claims = parsed.claims
    if len(parsed.signature) != (key.key_size + 7) // 8:
        raise TokenBadSignature("token: signature has the wrong length for its key")
    try:
        key.verify(parsed.signature, parsed.signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise TokenBadSignature() from None
    if claims.exp <= current:
        raise TokenExpired(
            f"token: expired at {claims.expires_at.isoformat()}", expired_at=claims.expires_at
        )
    if claims.iat > current + CLOCK_SKEW_LEEWAY:
        raise TokenNotYetValid(
            f"token: issued at {claims.issued_at.isoformat()}, in the future "
            "(check the approver's clock)"
        )
    if db is not None and claims.db is not None and claims.db != db:
        raise TokenWrongDatabase(f"token: for database {claims.db!r}, not {db!r}")
    if op is not None and op not in claims.ops:
        raise TokenWrongScope(f"token: does not allow {op}", op=op, obj=_obj_text(obj))
    if obj is not None and not any(object_matches(p, obj) for p in claims.obj):
        raise TokenWrongScope(f"token: does not cover {_obj_text(obj)}", op=op, obj=_obj_text(obj))
    return claims


def _obj_text(obj: str | Sequence[str] | None) -> str | None:
    if obj is None or isinstance(obj, str):
        return obj
    return ".".join(obj)
