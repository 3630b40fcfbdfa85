"""Signers: whatever holds an approver's private key, behind one small interface.

A :class:`Signer` knows its public key and signs bytes with RSASSA-PKCS1-v1_5 / SHA-256 (the
one signature the server verifies). Three kinds:

- :class:`~pgguard.signers.keyfile.KeySigner`: a private key in memory, usually from a PEM file
  (encrypted by default; :func:`~pgguard.signers.keyfile.from_key_file`);
- :class:`~pgguard.signers.pkcs11.Pkcs11Signer`: a key inside a PKCS#11 token (YubiKey PIV,
  Nitrokey, SoftHSM, a cloud HSM), named by an RFC 7512 ``pkcs11:`` URI; the private key never
  leaves the device;
- :class:`~pgguard.signers.command.CommandSigner`: an external command (a cloud KMS CLI, Vault,
  ``openssl pkeyutl``) that reads the bytes on stdin and writes the signature on stdout.

:func:`sign_checked` verifies every signature against the signer's public key before it is
used, so a signer that returns garbage (or signs with another key) fails with
:class:`~pgguard.errors.SignerError` and nothing is issued.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from pgguard import keys as _keys
from pgguard.errors import SignerError

__all__ = ["Signer", "sign_checked"]


@runtime_checkable
class Signer(Protocol):
    """Holds (or reaches) one approver private key."""

    @property
    def description(self) -> str:
        """What this signer is, for messages (``key file approver.pem``, ``pkcs11:…``)."""
        ...

    def public_key(self) -> rsa.RSAPublicKey:
        """The public half; its kid names the signer in tokens."""
        ...

    def sign(self, data: bytes) -> bytes:
        """RSASSA-PKCS1-v1_5 / SHA-256 signature over ``data`` (the signer hashes)."""
        ...


def sign_checked(signer: Signer, data: bytes) -> bytes:
    """``signer.sign(data)``, verified against ``signer.public_key()``; :class:`SignerError` if not.

    The length must be exactly the modulus length in bytes, as the server requires.
    """
    pub = signer.public_key()
    _keys.public_numbers_for_db(pub)  # RSA >= 2048, e = 65537 (KeyFileError otherwise)
    sig = signer.sign(data)
    k = (pub.key_size + 7) // 8
    kid = _keys.kid(pub)
    if not isinstance(sig, bytes) or len(sig) != k:
        size = len(sig) if isinstance(sig, bytes) else type(sig).__name__
        raise SignerError(
            f"{signer.description}: returned {size} bytes, not a {k}-byte RSA signature "
            f"for key {kid}; nothing was signed"
        )
    try:
        pub.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise SignerError(
            f"{signer.description}: its signature does not verify against key {kid} "
            "(wrong key, wrong algorithm, or garbage output); nothing was signed",
            hint="the signer must produce RSASSA-PKCS1-v1_5 with SHA-256 over the bytes given",
        ) from None
    return sig
