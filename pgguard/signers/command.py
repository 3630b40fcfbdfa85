"""An external signer command: the bytes to sign on stdin, the signature on stdout.

The command is run by ``/bin/sh -c`` (so a KMS recipe can be a pipeline) with a time limit
(a hardware key may wait for a touch, a KMS for MFA). It must write the RSASSA-PKCS1-v1_5 /
SHA-256 signature either raw (exactly k bytes) or base64 (what most cloud CLIs print); anything
else, a non-zero exit, or a signature that does not verify against the configured public key
is an error and nothing is signed (the check is :func:`pgguard.signers.sign_checked`'s).
"""

from __future__ import annotations

import base64
import binascii
import subprocess
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import rsa

from pgguard.errors import SignerError

__all__ = ["DEFAULT_TIMEOUT", "CommandSigner"]

#: seconds a sign command may take (a touch on a hardware key, an MFA prompt)
DEFAULT_TIMEOUT = 120.0


@dataclass(frozen=True)
class CommandSigner:
    """Signs by running ``command``; ``public`` is the key the command is expected to use."""

    command: str
    public: rsa.RSAPublicKey = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT

    @property
    def description(self) -> str:
        """For messages."""
        return f"sign command {self.command!r}"

    def public_key(self) -> rsa.RSAPublicKey:
        """The configured public key."""
        return self.public

    def sign(self, data: bytes) -> bytes:
        """Run the command; decode its stdout (raw or base64)."""
        try:
            proc = subprocess.run(
                ["/bin/sh", "-c", self.command],
                input=data,
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise SignerError(
                f"{self.description}: no answer within {self.timeout:g}s; nothing was signed"
            ) from e
        except OSError as e:
            raise SignerError(f"{self.description}: cannot run it: {e.strerror or e}") from e
        if proc.returncode != 0:
            tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
            raise SignerError(
                f"{self.description}: exited with code {proc.returncode}; nothing was signed"
                + (": " + " / ".join(tail) if tail else "")
            )
        return _decode(proc.stdout, (self.public.key_size + 7) // 8)


def _decode(out: bytes, k: int) -> bytes:
    """Raw k bytes as they are; otherwise base64 (standard or url-safe, whitespace ignored)."""
    if len(out) == k:
        return out
    text = b"".join(out.split())
    for altchars in (None, b"-_"):
        try:
            raw = base64.b64decode(text + b"=" * (-len(text) % 4), altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(raw) == k:
            return raw
    return out  # wrong length: sign_checked reports it
