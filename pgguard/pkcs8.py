"""Passphrase-encrypted PKCS#8 (RFC 8018 PBES2: PBKDF2-HMAC-SHA256 + AES-256-CBC) for key files.

``cryptography``'s ``BestAvailableEncryption`` writes PBES2 with only 2,048 PBKDF2 rounds for
PKCS#8, which lets an attacker who copies the file try passphrases cheaply; its builder with a
round count exists only for OpenSSH and PKCS#12 formats. So the DER envelope is written here,
with :data:`ROUNDS` rounds, and read back by ``cryptography`` (and ``openssl``) as any
standard encrypted PKCS#8 file. Only encoding happens here; decryption is left to the library.
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

__all__ = ["ROUNDS", "encrypted_pem"]

#: PBKDF2-HMAC-SHA256 iterations (OWASP's 2023 figure): about 0.3 s per load on one core
ROUNDS = 600_000

# DER-encoded object identifiers (tag and length included)
_OID_PBES2 = bytes.fromhex("06092a864886f70d01050d")
_OID_PBKDF2 = bytes.fromhex("06092a864886f70d01050c")
_OID_HMAC_SHA256 = bytes.fromhex("06082a864886f70d0209")
_OID_AES256_CBC = bytes.fromhex("060960864801650304012a")
_NULL = b"\x05\x00"


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + body


def _seq(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _int(value: int) -> bytes:
    raw = value.to_bytes(value.bit_length() // 8 + 1, "big")  # leading 0 keeps it positive
    return _tlv(0x02, raw)


def encrypted_pem(key: rsa.RSAPrivateKey, passphrase: bytes, *, rounds: int = ROUNDS) -> bytes:
    """``key`` as an ``ENCRYPTED PRIVATE KEY`` PEM under ``passphrase``."""
    if not passphrase:
        raise ValueError("an empty passphrase protects nothing")
    plain = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    salt, iv = os.urandom(16), os.urandom(16)
    kek = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=rounds).derive(
        passphrase
    )
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    enc = Cipher(algorithms.AES(kek), modes.CBC(iv)).encryptor()
    ciphertext = enc.update(padded) + enc.finalize()
    params = _seq(
        _seq(
            _OID_PBKDF2,
            _seq(_tlv(0x04, salt), _int(rounds), _seq(_OID_HMAC_SHA256, _NULL)),
        ),
        _seq(_OID_AES256_CBC, _tlv(0x04, iv)),
    )
    der = _seq(_seq(_OID_PBES2, params), _tlv(0x04, ciphertext))
    body = base64.encodebytes(der).decode("ascii").replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
        + "\n".join(lines)
        + "\n-----END ENCRYPTED PRIVATE KEY-----\n"
    ).encode("ascii")
