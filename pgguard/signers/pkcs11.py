"""A key inside a PKCS#11 token, named by an RFC 7512 ``pkcs11:`` URI.

``pkcs11:token=YubiKey%20PIV;object=approver?module-path=/usr/lib/x86_64-linux-gnu/libykcs11.so``

Path attributes used: ``token`` (label), ``serial``, ``object`` (key label), ``id`` (key id,
percent-encoded bytes); others (``manufacturer``, ``model``, ``type``, ``library-*``,
``slot-*``) are accepted and ignored, as RFC 7512 allows. Query attributes: ``module-path``
(else ``$PGGUARD_PKCS11_MODULE``), ``pin-value`` (discouraged: it ends up in shell history),
``pin-source`` (``file:`` URI or path of a file holding the PIN). Otherwise the PIN comes from
the caller's ``pin`` callback (the CLI: ``$PGGUARD_PKCS11_PIN``, else a prompt on a terminal).

The private key never leaves the token: the token computes the signature with
``CKM_SHA256_RSA_PKCS`` (PKCS#1 v1.5 over SHA-256, hashed inside). Needs the optional
``python-pkcs11`` package (``pip install 'pgguard[pkcs11]'``).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from cryptography.hazmat.primitives.asymmetric import rsa

from pgguard.errors import SignerError, UsageError

__all__ = ["Pkcs11Uri", "Pkcs11Signer", "parse_uri"]

_PATH_ATTRS = frozenset(
    {
        "token", "manufacturer", "serial", "model", "library-manufacturer",
        "library-description", "library-version", "object", "type", "id",
        "slot-manufacturer", "slot-description", "slot-id",
    }
)  # fmt: skip
_PCT_OK = re.compile(r"(?:[^%]|%[0-9A-Fa-f]{2})*")
_QUERY_ATTRS = frozenset({"module-path", "module-name", "pin-value", "pin-source"})


@dataclass(frozen=True)
class Pkcs11Uri:
    """The parts of a ``pkcs11:`` URI pgguard uses."""

    uri: str
    token: str | None = None
    serial: str | None = None
    object: str | None = None
    id: bytes | None = None
    type: str | None = None
    module_path: str | None = None
    pin_value: str | None = field(default=None, repr=False)
    pin_source: str | None = None


def _pct(value: str, what: str, uri: str) -> bytes:
    # RFC 7512: values are percent-encoded UTF-8; a stray '%' is an error, not a literal
    if not _PCT_OK.fullmatch(value):
        raise UsageError(f"{uri}: bad percent-encoding in {what}")
    return unquote_to_bytes(value)


def parse_uri(uri: str) -> Pkcs11Uri:
    """Parse an RFC 7512 URI; :class:`UsageError` for anything malformed or ambiguous."""
    if not uri.startswith("pkcs11:"):
        raise UsageError(f"{uri!r}: not a pkcs11: URI")
    rest = uri[len("pkcs11:") :]
    path, _, query = rest.partition("?")
    values: dict[str, bytes] = {}
    for part, sep, allowed in ((path, ";", _PATH_ATTRS), (query, "&", _QUERY_ATTRS)):
        if not part:
            continue
        for item in part.split(sep):
            name, eq, value = item.partition("=")
            if not eq or not name:
                raise UsageError(f"{uri}: expected name=value, got {item!r}")
            if name not in allowed and not name.startswith("x-"):
                raise UsageError(f"{uri}: unknown attribute {name!r}")
            if name in values:
                raise UsageError(f"{uri}: attribute {name!r} given twice")
            values[name] = _pct(value, name, uri)

    def text(name: str) -> str | None:
        raw = values.get(name)
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UsageError(f"{uri}: attribute {name!r} is not UTF-8") from e

    kind = text("type")
    if kind not in (None, "private", "public"):
        raise UsageError(f"{uri}: type={kind} cannot sign; use type=private or leave it out")
    if values.get("object") is None and values.get("id") is None:
        raise UsageError(f"{uri}: name the key with object=LABEL or id=%XX…")
    return Pkcs11Uri(
        uri=uri,
        token=text("token"),
        serial=text("serial"),
        object=text("object"),
        id=values.get("id"),
        type=kind,
        module_path=text("module-path"),
        pin_value=text("pin-value"),
        pin_source=text("pin-source"),
    )


@functools.cache
def _load_library(path: str) -> Any:
    try:
        import pkcs11
    except ImportError as e:  # pragma: no cover - the dev extra installs it
        raise SignerError(
            "PKCS#11 needs the python-pkcs11 package: pip install 'pgguard[pkcs11]'"
        ) from e
    try:
        return pkcs11.lib(path)
    except pkcs11.exceptions.PKCS11Error as e:
        raise SignerError(f"cannot load PKCS#11 module {path}: {e}") from e


def _redact(uri: str) -> str:
    head, sep, query = uri.partition("?")
    if not sep:
        return uri
    parts = ["pin-value=***" if p.startswith("pin-value=") else p for p in query.split("&")]
    return head + "?" + "&".join(parts)


@dataclass
class Pkcs11Signer:
    """Signs inside a PKCS#11 token. ``pin`` is asked for only when signing."""

    uri: Pkcs11Uri
    pin: Callable[[], str] | None = field(default=None, repr=False)
    module_path: str | None = None
    _public: rsa.RSAPublicKey | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_uri(
        cls, uri: str, *, pin: Callable[[], str] | None = None, module_path: str | None = None
    ) -> Pkcs11Signer:
        """Parse ``uri``; the module comes from the URI, ``module_path`` or the environment."""
        return cls(parse_uri(uri), pin=pin, module_path=module_path)

    @property
    def description(self) -> str:
        """For messages (the PIN never appears)."""
        return _redact(self.uri.uri)

    def _module(self) -> str:
        path = self.uri.module_path or self.module_path or os.environ.get("PGGUARD_PKCS11_MODULE")
        if not path:
            raise UsageError(
                f"{self.description}: no PKCS#11 module: add ?module-path=/path/to/module.so "
                "or set $PGGUARD_PKCS11_MODULE"
            )
        return path

    def _token(self) -> Any:
        import pkcs11

        lib = _load_library(self._module())
        kwargs: dict[str, Any] = {}
        if self.uri.token is not None:
            kwargs["token_label"] = self.uri.token
        if self.uri.serial is not None:
            kwargs["token_serial"] = self.uri.serial.encode("utf-8")
        try:
            return lib.get_token(**kwargs)
        except pkcs11.exceptions.NoSuchToken as e:
            raise SignerError(f"{self.description}: no such token is present") from e
        except pkcs11.exceptions.MultipleTokensReturned as e:
            raise SignerError(
                f"{self.description}: more than one token matches; add token=LABEL or serial="
            ) from e

    def _find(self, session: Any, object_class: Any) -> Any:
        import pkcs11

        try:
            return session.get_key(
                object_class=object_class,
                key_type=pkcs11.KeyType.RSA,
                label=self.uri.object,
                id=self.uri.id,
            )
        except pkcs11.exceptions.NoSuchKey:
            return None
        except pkcs11.exceptions.MultipleObjectsReturned as e:
            raise SignerError(
                f"{self.description}: more than one key matches; add id=… to the URI"
            ) from e

    def _pin(self) -> str:
        if self.uri.pin_value is not None:
            return self.uri.pin_value
        if self.uri.pin_source is not None:
            src = self.uri.pin_source.removeprefix("file://").removeprefix("file:")
            try:
                with open(src, encoding="utf-8") as f:
                    return f.readline().rstrip("\r\n")
            except OSError as e:
                raise SignerError(f"{self.description}: cannot read pin-source {src}") from e
        if self.pin is None:
            raise UsageError(f"{self.description}: the token needs a PIN and none was given")
        return self.pin()

    def public_key(self) -> rsa.RSAPublicKey:
        """Read from the token's public key object (or the private key's public attributes)."""
        if self._public is not None:
            return self._public
        import pkcs11
        from pkcs11 import Attribute, ObjectClass

        try:
            with self._token().open() as session:
                obj = self._find(session, ObjectClass.PUBLIC_KEY)
                if obj is None:
                    obj = self._find(session, ObjectClass.PRIVATE_KEY)
                if obj is None:
                    raise SignerError(
                        f"{self.description}: no RSA key with that label/id is visible "
                        "without logging in (is the URI right?)"
                    )
                n = int.from_bytes(obj[Attribute.MODULUS], "big")
                exp = int.from_bytes(obj[Attribute.PUBLIC_EXPONENT], "big")
        except pkcs11.exceptions.PKCS11Error as e:
            raise SignerError(f"{self.description}: {type(e).__name__} {e}".rstrip()) from e
        self._public = rsa.RSAPublicNumbers(exp, n).public_key()
        return self._public

    def sign(self, data: bytes) -> bytes:
        """Log in with the PIN and sign with CKM_SHA256_RSA_PKCS inside the token."""
        import pkcs11
        from pkcs11 import Mechanism, ObjectClass

        token = self._token()
        pin = self._pin()
        try:
            with token.open(user_pin=pin) as session:
                key = self._find(session, ObjectClass.PRIVATE_KEY)
                if key is None:
                    raise SignerError(f"{self.description}: no RSA private key matches")
                return bytes(key.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS))
        except (pkcs11.exceptions.PinIncorrect, pkcs11.exceptions.PinLenRange) as e:
            raise SignerError(
                f"{self.description}: wrong PIN; nothing was signed",
                hint="tokens lock after a few wrong PINs: check $PGGUARD_PKCS11_PIN",
            ) from e
        except pkcs11.exceptions.PinLocked as e:
            raise SignerError(f"{self.description}: the PIN is locked; nothing was signed") from e
        except pkcs11.exceptions.PKCS11Error as e:
            raise SignerError(
                f"{self.description}: signing failed: {type(e).__name__} {e}".rstrip()
            ) from e
