"""Approver keys: RSA key pairs whose private half signs override tokens.

The private key stays with the approver (a file written here with mode 0600, a CI secret, later
a KMS); the database only ever holds the public half, as a :class:`PublicKeyRow`.

Only RSA keys of 2048 to 16384 bits with public exponent 65537 are accepted: the server-side
verifier (``sql/030_rsa_verify.sql``) hard-codes e = 65537 (16 squarings and one multiply), and
smaller moduli are not safe. Everything that goes wrong with a key file raises
:class:`~pgguard.errors.KeyFileError` with a message naming the file and the reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    PrivateKeyTypes,
    PublicKeyTypes,
)

from pgguard.errors import KeyFileError, KeyPassphraseNeeded, WrongPassphrase

__all__ = [
    "DEFAULT_BITS",
    "MAX_BITS",
    "MIN_BITS",
    "PUBLIC_EXPONENT",
    "PublicKeyRow",
    "generate_private_key",
    "is_encrypted_key_file",
    "kid",
    "load_private_key",
    "load_public_key",
    "private_key_pem",
    "public_key_pem",
    "public_numbers_for_db",
    "write_private_key",
]

#: key size used by ``pgguard keys create`` unless told otherwise
DEFAULT_BITS = 3072
#: smallest modulus accepted anywhere (generation, loading, registration)
MIN_BITS = 2048
#: largest modulus accepted: the SQL verifier refuses k > 2048 bytes (each verification's cost
#: grows with the square of the size; 16384 bits is already far beyond any need)
MAX_BITS = 16384
#: the only public exponent the SQL verifier supports
PUBLIC_EXPONENT = 65537

StrPath: TypeAlias = "str | os.PathLike[str]"

# Exclusive create that never follows a symlink planted at the path.
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True)
class PublicKeyRow:
    """The public half of an approver key, in the shape the database stores it.

    ``n`` is the modulus as a decimal string (it goes into a ``numeric`` column), ``k`` the
    modulus length in bytes (every valid signature is exactly ``k`` bytes), ``pem`` the
    SubjectPublicKeyInfo PEM for humans and for re-export.
    """

    kid: str
    n: str
    e: int
    bits: int
    k: int
    pem: str


def _check_rsa_public(key: PublicKeyTypes, what: str) -> rsa.RSAPublicKey:
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyFileError(f"{what}: not an RSA key ({type(key).__name__}); pgguard needs RSA")
    numbers = key.public_numbers()
    if key.key_size < MIN_BITS:
        raise KeyFileError(
            f"{what}: RSA key of {key.key_size} bits is too small; pgguard needs "
            f"at least {MIN_BITS} bits"
        )
    if key.key_size > MAX_BITS:
        raise KeyFileError(
            f"{what}: RSA key of {key.key_size} bits is too large; pgguard accepts at most "
            f"{MAX_BITS} bits"
        )
    if numbers.e != PUBLIC_EXPONENT:
        raise KeyFileError(
            f"{what}: RSA public exponent is {numbers.e}; pgguard supports only {PUBLIC_EXPONENT}"
        )
    return key


def _check_rsa_private(key: PrivateKeyTypes, what: str) -> rsa.RSAPrivateKey:
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFileError(f"{what}: not an RSA key ({type(key).__name__}); pgguard needs RSA")
    _check_rsa_public(key.public_key(), what)
    return key


def generate_private_key(bits: int = DEFAULT_BITS) -> rsa.RSAPrivateKey:
    """Generate a new approver key: RSA, ``bits`` bits (2048..16384), e = 65537."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise KeyFileError(f"key size must be {MIN_BITS}..{MAX_BITS} bits, not {bits!r}")
    return rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=bits)


def private_key_pem(key: rsa.RSAPrivateKey, passphrase: bytes | None = None) -> bytes:
    """The PKCS#8 PEM encoding of ``key``, encrypted under ``passphrase`` when one is given."""
    if passphrase is not None:
        from pgguard.pkcs8 import encrypted_pem

        return encrypted_pem(key, passphrase)
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def public_key_pem(key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> str:
    """The SubjectPublicKeyInfo PEM of ``key`` (the public half when given a private key)."""
    pub = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return pub.public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    ).decode("ascii")


def write_private_key(
    path: StrPath,
    key: rsa.RSAPrivateKey,
    *,
    overwrite: bool = False,
    passphrase: bytes | None = None,
) -> Path:
    """Write ``key`` to ``path`` as PKCS#8 PEM, mode 0600, atomically.

    With ``passphrase`` the PEM is encrypted (PBES2, PBKDF2-HMAC-SHA256 with
    :data:`pgguard.pkcs8.ROUNDS` rounds, AES-256-CBC): a copy of the file alone approves nothing.

    The PEM is written to a new temporary file in the same directory, created with mode 0600
    (``O_CREAT | O_EXCL``; the process umask can only remove bits), flushed to disk, and then
    put in place in one step: a hard link when ``overwrite`` is false (which fails if ``path``
    exists, so an existing key is never replaced, even by a concurrent writer), ``os.replace``
    otherwise. The key is therefore never readable by anyone but the owner, and ``path`` is
    either absent or complete. Returns the path written.
    """
    _check_rsa_private(key, "refusing to write key")
    target = Path(path)
    if target.exists() and not overwrite:
        raise KeyFileError(f"{target}: file exists; refusing to overwrite a key file")
    directory = target.parent
    if not directory.is_dir():
        raise KeyFileError(f"{target}: directory {directory} does not exist")
    if passphrase is not None and not passphrase:
        raise KeyFileError(f"{target}: an empty passphrase protects nothing")
    data = private_key_pem(key, passphrase)
    tmp = directory / f".{target.name}.{secrets.token_hex(8)}.tmp"
    try:
        fd = os.open(tmp, _CREATE_FLAGS, 0o600)
    except OSError as e:
        raise KeyFileError(f"{target}: cannot create key file: {e.strerror or e}") from e
    try:
        try:
            # Mode was set at creation; fchmod again in case the file system ignored it.
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)
            except FileExistsError as e:
                raise KeyFileError(
                    f"{target}: file exists; refusing to overwrite a key file"
                ) from e
            except OSError:
                # No hard links on this file system: fall back to an exclusive create. The
                # file is still 0600 from its first instant; only atomicity of content is lost.
                _write_exclusive(target, data)
    except KeyFileError:
        raise
    except OSError as e:
        raise KeyFileError(f"{target}: cannot write key file: {e.strerror or e}") from e
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _fsync_dir(directory)
    return target


def _write_exclusive(target: Path, data: bytes) -> None:
    try:
        fd = os.open(target, _CREATE_FLAGS, 0o600)
    except FileExistsError as e:
        raise KeyFileError(f"{target}: file exists; refusing to overwrite a key file") from e
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_public_key(path: StrPath, key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> Path:
    """Write the public half as PEM to a new file (never over an existing file or a symlink)."""
    target = Path(path)
    try:
        fd = os.open(target, _CREATE_FLAGS, 0o644)
    except FileExistsError as e:
        raise KeyFileError(f"{target}: file exists; refusing to overwrite it") from e
    except OSError as e:
        raise KeyFileError(f"{target}: cannot create it: {e.strerror}") from e
    try:
        os.write(fd, public_key_pem(key).encode("ascii"))
    finally:
        os.close(fd)
    return target


def _fsync_dir(directory: Path) -> None:
    # Best effort: make the new directory entry durable (not possible on every platform).
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _read(path: StrPath, what: str) -> bytes:
    p = Path(path)
    try:
        return p.read_bytes()
    except FileNotFoundError as e:
        raise KeyFileError(f"{p}: {what} not found") from e
    except IsADirectoryError as e:
        raise KeyFileError(f"{p}: is a directory, not a {what}") from e
    except PermissionError as e:
        raise KeyFileError(f"{p}: permission denied reading {what}") from e
    except OSError as e:
        raise KeyFileError(f"{p}: cannot read {what}: {e.strerror or e}") from e


def _is_encrypted_pem(data: bytes) -> bool:
    return b"ENCRYPTED PRIVATE KEY" in data or b"Proc-Type: 4,ENCRYPTED" in data


def is_encrypted_key_file(path: StrPath) -> bool:
    """Whether ``path`` holds a passphrase-encrypted PEM private key (KeyFileError: unreadable)."""
    return _is_encrypted_pem(_read(path, "key file"))


def load_private_key(path: StrPath, passphrase: bytes | None = None) -> rsa.RSAPrivateKey:
    """Load an approver's private key from a PEM file (PKCS#8 or PKCS#1, encrypted or not).

    An encrypted file needs ``passphrase``: without one :class:`KeyPassphraseNeeded`, with a
    wrong one :class:`WrongPassphrase` (both :class:`KeyFileError`). Raises
    :class:`KeyFileError` when the file is missing or unreadable, holds a public key or
    something else, or is not RSA ≥ 2048 bits with e = 65537. A passphrase given for an
    unencrypted file is ignored (the caller warns about such files).
    """
    data = _read(path, "key file")
    where = str(path)
    encrypted = _is_encrypted_pem(data)
    if encrypted and passphrase is None:
        raise KeyPassphraseNeeded(
            f"{where}: private key is encrypted and no passphrase was given",
            hint="type it when asked on a terminal, or set $PGGUARD_KEY_PASSPHRASE",
        )
    if b"-----BEGIN" in data and b"PRIVATE KEY-----" not in data:
        if b"PUBLIC KEY-----" in data:
            raise KeyFileError(f"{where}: holds a public key; signing needs the private key")
        raise KeyFileError(f"{where}: not a PEM private key")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase if encrypted else None)
    except TypeError as e:  # cryptography: "Password was not given but private key is encrypted"
        raise KeyPassphraseNeeded(
            f"{where}: private key is encrypted and no passphrase was given"
        ) from e
    except (ValueError, UnsupportedAlgorithm) as e:
        if encrypted:
            raise WrongPassphrase(
                f"{where}: wrong passphrase (or a damaged key file); nothing was signed"
            ) from e
        raise KeyFileError(f"{where}: not a valid PEM private key") from e
    return _check_rsa_private(key, where)


def load_public_key(path_or_pem: StrPath | bytes) -> rsa.RSAPublicKey:
    """Load an approver's public key.

    ``path_or_pem`` is PEM text (``str`` or ``bytes`` containing ``-----BEGIN``) or the path of
    a file holding it. A public PEM (SubjectPublicKeyInfo or PKCS#1 ``RSA PUBLIC KEY``) is used
    as is; an unencrypted private PEM yields its public half.
    """
    if isinstance(path_or_pem, bytes):
        data, where = path_or_pem, "public key"
    elif isinstance(path_or_pem, str) and "-----BEGIN" in path_or_pem:
        data, where = path_or_pem.encode("utf-8"), "public key"
    else:
        data, where = _read(path_or_pem, "key file"), str(path_or_pem)
    if b"PRIVATE KEY-----" in data:
        if _is_encrypted_pem(data):
            raise KeyFileError(
                f"{where}: private key is encrypted; give the public key file instead"
            )
        try:
            priv = serialization.load_pem_private_key(data, password=None)
        except TypeError as e:
            raise KeyFileError(
                f"{where}: private key is encrypted; give the public key file instead"
            ) from e
        except (ValueError, UnsupportedAlgorithm) as e:
            raise KeyFileError(f"{where}: not a valid PEM key") from e
        return _check_rsa_private(priv, where).public_key()
    try:
        pub = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise KeyFileError(f"{where}: not a valid PEM public key") from e
    return _check_rsa_public(pub, where)


def _spki_der(key: rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(
        encoding=serialization.Encoding.DER,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )


def kid(public_key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> str:
    """Key id: the first 16 hex digits (lowercase) of SHA-256 over the DER SubjectPublicKeyInfo.

    A private key is accepted too and identified by its public half.
    """
    pub = public_key.public_key() if isinstance(public_key, rsa.RSAPrivateKey) else public_key
    return hashlib.sha256(_spki_der(pub)).hexdigest()[:16]


def public_numbers_for_db(public_key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> PublicKeyRow:
    """The row the database stores for ``public_key`` (validated: RSA ≥ 2048, e = 65537)."""
    pub = public_key.public_key() if isinstance(public_key, rsa.RSAPrivateKey) else public_key
    pub = _check_rsa_public(pub, "public key")
    numbers = pub.public_numbers()
    bits = numbers.n.bit_length()
    return PublicKeyRow(
        kid=kid(pub),
        n=str(numbers.n),
        e=numbers.e,
        bits=bits,
        k=(bits + 7) // 8,
        pem=public_key_pem(pub),
    )
