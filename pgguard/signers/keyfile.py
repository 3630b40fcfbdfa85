"""A key held in this process: the private key from a PEM file (or any ``RSAPrivateKey``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from pgguard import keys as _keys

__all__ = ["KeySigner", "from_key_file"]


@dataclass(frozen=True)
class KeySigner:
    """Signs with a private key in memory."""

    key: rsa.RSAPrivateKey = field(repr=False)
    description: str = "private key"
    #: whether the file it came from was stored without a passphrase
    unencrypted_file: bool = False

    def public_key(self) -> rsa.RSAPublicKey:
        """The public half."""
        return self.key.public_key()

    def sign(self, data: bytes) -> bytes:
        """PKCS#1 v1.5 / SHA-256."""
        return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def from_key_file(path: str | os.PathLike[str], passphrase: bytes | None = None) -> KeySigner:
    """Load a key file (see :func:`pgguard.keys.load_private_key` for the errors)."""
    encrypted = _keys.is_encrypted_key_file(path)
    key = _keys.load_private_key(path, passphrase)
    return KeySigner(key, description=f"key file {os.fspath(path)}", unencrypted_file=not encrypted)
