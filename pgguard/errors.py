"""One error hierarchy for pgguard.

Every class knows the CLI exit code it maps to (see the README's exit-code table); the CLI turns
any :class:`PgguardError` into its message on stderr and that exit code. Driver errors are
wrapped at the library boundary with ``raise ... from e``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

#: SQLSTATE of every refusal raised by the server-side guard.
REFUSAL_SQLSTATE = "PGG01"


class PgguardError(Exception):
    """pgguard failed."""

    exit_code: int = 1

    def __init__(self, message: str | None = None, *, hint: str | None = None) -> None:
        self.message = message or (self.__doc__ or "pgguard failed").strip()
        self.hint = hint
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class UsageError(PgguardError):
    """The command was called wrongly."""

    exit_code = 2


class ConnectError(PgguardError):
    """Could not connect to the database."""

    exit_code = 3


class PrivilegeError(PgguardError):
    """The connected role lacks a privilege this command needs."""

    exit_code = 3


class UnsupportedServer(PgguardError):
    """This PostgreSQL server is not supported (pgguard needs PostgreSQL 14 or newer)."""

    exit_code = 3


class NotInstalled(PgguardError):
    """pgguard is not installed in this database."""

    exit_code = 4


class NewerSchemaInstalled(PgguardError):
    """The database holds a newer pgguard schema than this package knows; upgrade pgguard."""

    exit_code = 1


class InstallError(PgguardError):
    """Installing pgguard failed; the database is as it was before this step."""

    exit_code = 1


class KeyFileError(PgguardError):
    """A key file could not be read or written."""

    exit_code = 2


class KeyPassphraseNeeded(KeyFileError):
    """The key file is encrypted and no passphrase was given."""


class WrongPassphrase(KeyFileError):
    """The passphrase does not decrypt the key file."""


class SignerError(PgguardError):
    """A signer (key file, PKCS#11 token, external command) could not produce a valid signature.

    Nothing was signed: a signature that does not verify against the signer's public key is
    never put into a token.
    """

    exit_code = 2


# --- tokens ---------------------------------------------------------------------------------


class TokenError(PgguardError):
    """The override token was not accepted."""

    exit_code = 1
    #: short machine-readable reason, the same words the server uses in its DETAIL
    reason: str = "invalid"


class TokenMissing(TokenError):
    """No override token was presented."""

    reason = "none"


class TokenMalformed(TokenError):
    """The override token is malformed."""

    reason = "malformed"


class TokenBadSignature(TokenError):
    """The override token's signature does not verify."""

    reason = "bad_signature"


class TokenUnknownKey(TokenError):
    """The override token was signed by a key this database does not know."""

    reason = "unknown_key"

    def __init__(self, message: str | None = None, *, kid: str | None = None) -> None:
        super().__init__(message)
        self.kid = kid


class TokenRevokedKey(TokenUnknownKey):
    """The override token was signed by a revoked key."""

    reason = "revoked_key"


class TokenExpired(TokenError):
    """The override token has expired."""

    reason = "expired"

    def __init__(self, message: str | None = None, *, expired_at: dt.datetime | None = None):
        super().__init__(message)
        self.expired_at = expired_at


class TokenNotYetValid(TokenError):
    """The override token was issued in the future (check the approver's clock)."""

    reason = "not_yet_valid"


class TokenWrongDatabase(TokenError):
    """The override token is for another database."""

    reason = "wrong_database"


class TokenWrongScope(TokenError):
    """The override token does not cover this operation or object."""

    reason = "wrong_scope"

    def __init__(
        self, message: str | None = None, *, op: str | None = None, obj: str | None = None
    ) -> None:
        super().__init__(message)
        self.op = op
        self.obj = obj


class TokenInsufficientApprovals(TokenError):
    """The token carries fewer approvals (distinct live registered keys) than the op needs."""

    reason = "approvals"

    def __init__(self, message: str | None = None, *, present: int = 0, needed: int = 2) -> None:
        super().__init__(message)
        self.present = present
        self.needed = needed


class TokenAlreadyUsed(TokenError):
    """The single-use override token was already used."""

    reason = "already_used"


# --- refusals raised by the server ----------------------------------------------------------

_MESSAGE_RE = re.compile(
    r"^pgguard: refusing to (?P<verb>drop table|drop column|truncate table|truncate|uninstall"
    r'|alter|drop|disable|replace|rename)\S* ?"?(?P<obj>[^"]*)"?'
)
_OP_BY_VERB = {
    "drop table": "drop_table",
    "drop column": "drop_column",
    "truncate": "truncate",
    "truncate table": "truncate",
}


class GuardRefused(PgguardError):
    """The server refused a destructive statement (SQLSTATE PGG01)."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        op: str | None,
        obj: str | None,
        detail: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.op = op
        self.obj = obj
        self.detail = detail
        self.reason = detail

    @classmethod
    def from_diag(cls, exc: BaseException) -> GuardRefused | None:
        """Build from a psycopg error carrying SQLSTATE PGG01; ``None`` for any other error.

        The server puts the op in the error's ``schema``-independent fields we control: the
        message names the object, and the op travels as ``op=<op>`` in the constraint-name
        diagnostic field so it survives translation of the message text.
        """
        diag: Any = getattr(exc, "diag", None)
        if diag is None or getattr(diag, "sqlstate", None) != REFUSAL_SQLSTATE:
            return None
        message = diag.message_primary or str(exc)
        op = None
        obj = None
        constraint = getattr(diag, "constraint_name", None) or ""
        if constraint.startswith("op="):
            op = constraint[3:]
        obj = getattr(diag, "table_name", None) or None
        schema = getattr(diag, "schema_name", None)
        column = getattr(diag, "column_name", None)
        if obj and schema:
            obj = f"{schema}.{obj}"
        if obj and column:
            obj = f"{obj}.{column}"
        if op is None or obj is None:
            m = _MESSAGE_RE.match(message)
            if m:
                op = op or _OP_BY_VERB.get(m.group("verb"), "uninstall")
                obj = obj or m.group("obj") or None
        return cls(message, op=op, obj=obj, detail=diag.message_detail, hint=diag.message_hint)
