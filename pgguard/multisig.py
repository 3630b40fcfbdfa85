"""Multi-signature tokens, format ``pgg2``, for the two-person rule.

``pgg2.<payload>.<kid1>.<sig1>.<kid2>.<sig2>[.<kid>.<sig>…]``

- ``payload``: exactly as in ``pgg1`` (same claims, same canonical encoding, same rules).
- 2 to :data:`MAX_SIGNATURES` signatures, ordered by ``kid`` strictly ascending (so a token has
  one spelling and a key signs it at most once; anything else is malformed).
- ``sig_i`` is the ``pgg1`` signature of key ``kid_i`` over the same payload: RSASSA-PKCS1-v1_5 /
  SHA-256 over the ASCII bytes ``pgg1.<kid_i>.<payload>``. So ``pgguard allow`` keeps printing
  ``pgg1`` tokens, and :func:`cosign` turns one into ``pgg2`` by adding a signature; every
  signature means the same thing ("this key approves this payload") in both formats.

Verification (:func:`verify_multi`, and the server's ``pgguard.multisig_verify``): format and
claims (``pgg1`` rule 1) → for each signature in order: unknown or revoked key → it does not
count; registered live key whose signature does not verify → :class:`TokenBadSignature` for the
whole token; no signature counts → the first signature's key error (as ``pgg1``) → time,
database and scope (``pgg1`` rules 4–6) → fewer counting keys than required →
:class:`~pgguard.errors.TokenInsufficientApprovals`. A ``pgg1`` token is one approval.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from pgguard import keys as _keys
from pgguard.errors import (
    TokenBadSignature,
    TokenInsufficientApprovals,
    TokenMalformed,
    TokenUnknownKey,
    UsageError,
)
from pgguard.signers import Signer, sign_checked
from pgguard.token import (
    PREFIX,
    Claims,
    KeyLookup,
    Now,
    b64url_decode,
    b64url_encode,
    parse_token,
    verify_token,
)

__all__ = ["MAX_SIGNATURES", "PREFIX2", "MultiToken", "cosign", "split_token", "verify_multi"]

PREFIX2 = "pgg2"
#: most signatures a token may carry (each costs one RSA verification on the server)
MAX_SIGNATURES = 8
_KID_RE = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class MultiToken:
    """A ``pgg1`` or ``pgg2`` token split into its payload and its signatures."""

    payload: str
    claims: Claims
    #: (kid, signature bytes), in token order
    signatures: tuple[tuple[str, bytes], ...]

    @property
    def kids(self) -> tuple[str, ...]:
        """The keys that signed, in token order."""
        return tuple(kid for kid, _ in self.signatures)

    def signing_input(self, kid: str) -> bytes:
        """What key ``kid`` signs: ``pgg1.<kid>.<payload>``."""
        return f"{PREFIX}.{kid}.{self.payload}".encode("ascii")

    def as_pgg1(self, kid: str, sig: bytes) -> str:
        """One signature as a stand-alone ``pgg1`` token."""
        return f"{PREFIX}.{kid}.{self.payload}.{b64url_encode(sig)}"

    def encode(self) -> str:
        """``pgg1`` for one signature, ``pgg2`` (sorted by kid) for more."""
        if len(self.signatures) == 1:
            return self.as_pgg1(*self.signatures[0])
        sigs = sorted(self.signatures)
        return ".".join(
            [PREFIX2, self.payload, *(f"{kid}.{b64url_encode(sig)}" for kid, sig in sigs)]
        )


def split_token(token: str) -> MultiToken:
    """Split a ``pgg1`` or ``pgg2`` token; :class:`TokenMalformed` for anything else."""
    if not isinstance(token, str):
        raise TokenMalformed("token: not a string")
    if not token.startswith(PREFIX2 + "."):
        parsed = parse_token(token)
        payload = token.split(".")[2]
        return MultiToken(payload, parsed.claims, ((parsed.kid, parsed.signature),))
    parts = token.split(".")
    count, odd = divmod(len(parts) - 2, 2)
    if odd or not 2 <= count <= MAX_SIGNATURES:
        raise TokenMalformed(
            f"token: expected {PREFIX2}.<payload>.<kid>.<signature>… with 2 to "
            f"{MAX_SIGNATURES} signatures"
        )
    payload = parts[1]
    sigs: list[tuple[str, bytes]] = []
    for i in range(count):
        kid, sig = parts[2 + 2 * i], parts[3 + 2 * i]
        if not _KID_RE.fullmatch(kid) or not sig:
            raise TokenMalformed("token: a key id or signature is not valid")
        if sigs and kid <= sigs[-1][0]:
            raise TokenMalformed("token: signatures must be ordered by key id, one per key")
        sigs.append((kid, b64url_decode(sig)))
    # the payload rules are pgg1's: check them on the first signature's pgg1 form
    claims = parse_token(f"{PREFIX}.{sigs[0][0]}.{payload}.{b64url_encode(sigs[0][1])}").claims
    return MultiToken(payload, claims, tuple(sigs))


def cosign(token: str, signer: Signer) -> str:
    """Add ``signer``'s signature to ``token`` (``pgg1`` or ``pgg2``); returns a ``pgg2`` token.

    Raises :class:`UsageError` when that key already signed, or the token is full;
    :class:`~pgguard.errors.SignerError` when the signer fails (nothing is added).
    """
    multi = split_token(token)
    kid = _keys.kid(signer.public_key())
    if kid in multi.kids:
        raise UsageError(f"key {kid} already signed this token; another approval needs another key")
    if len(multi.signatures) >= MAX_SIGNATURES:
        raise UsageError(f"the token already carries {MAX_SIGNATURES} signatures")
    sig = sign_checked(signer, multi.signing_input(kid))
    return MultiToken(multi.payload, multi.claims, (*multi.signatures, (kid, sig))).encode()


def verify_multi(
    token: str,
    *,
    keys: KeyLookup,
    required: int = 1,
    op: str | None = None,
    obj: str | Sequence[str] | None = None,
    db: str | None = None,
    now: Now = None,
) -> tuple[Claims, tuple[str, ...]]:
    """Verify a ``pgg1`` or ``pgg2`` token by the module's rules: its claims and counting kids."""
    multi = split_token(token)
    lookup: Callable[[str], rsa.RSAPublicKey] = (
        keys if callable(keys) else (lambda kid: _from_mapping(keys, kid))
    )
    counted: list[str] = []
    first_error: TokenUnknownKey | None = None
    for kid, sig in multi.signatures:
        try:
            pub = lookup(kid)
        except TokenUnknownKey as e:  # TokenRevokedKey too
            first_error = first_error or e
            continue
        if len(sig) != (pub.key_size + 7) // 8:
            raise TokenBadSignature(f"token: signature by key {kid} has the wrong length")
        try:
            pub.verify(sig, multi.signing_input(kid), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise TokenBadSignature(f"token: signature by key {kid} does not verify") from None
        counted.append(kid)
    if not counted:
        assert first_error is not None
        raise first_error
    # time, database and scope: pgg1's rules on one signature that counted
    kid = counted[0]
    sig = dict(multi.signatures)[kid]
    claims = verify_token(multi.as_pgg1(kid, sig), keys=lookup, op=op, obj=obj, db=db, now=now)
    if len(counted) < required:
        raise TokenInsufficientApprovals(
            f"token: carries {len(counted)} of the {required} approvals needed",
            present=len(counted),
            needed=required,
        )
    return claims, tuple(counted)


def _from_mapping(keys: object, kid: str) -> rsa.RSAPublicKey:
    try:
        key = keys[kid]  # type: ignore[index]
    except KeyError:
        raise TokenUnknownKey(f"token: no registered key with kid {kid}", kid=kid) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise TypeError(f"key lookup returned {type(key).__name__}, not an RSA public key")
    return key
