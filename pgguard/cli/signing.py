"""Where the CLI gets an approver's signer: key file, PKCS#11 URI or external command.

Shared by `allow`, `cosign` and `approve`. Secrets come from the environment
(``$PGGUARD_KEY_PASSPHRASE``, ``$PGGUARD_PKCS11_PIN``) or from a prompt, and a prompt only
when stdin is a terminal: a script without them fails with exit 2 instead of hanging.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import KeyPassphraseNeeded, UsageError
from ..signers import Signer

F = TypeVar("F", bound=Callable[..., Any])

PASSPHRASE_ENV = "PGGUARD_KEY_PASSPHRASE"
PIN_ENV = "PGGUARD_PKCS11_PIN"


def _warn(text: str) -> None:
    from . import err  # the package imports this module while it is being built

    err.print(f"[yellow]warning:[/] {text}", soft_wrap=True)


def interactive() -> bool:
    """Whether a person can be asked: stdin is a terminal."""
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def signer_options(f: F) -> F:
    """--key-file / --key / --sign-command (+ --public-key), one of which names the signer."""
    f = click.option(
        "--public-key",
        "sign_public_key",
        envvar="PGGUARD_SIGN_PUBLIC_KEY",
        type=click.Path(dir_okay=False, path_type=Path),
        help="with --sign-command: the public key the command signs for (PEM)",
    )(f)
    f = click.option(
        "--sign-command",
        envvar="PGGUARD_SIGN_COMMAND",
        metavar="CMD",
        help="external signer: gets the bytes on stdin, writes the RSASSA-PKCS1-v1_5 SHA-256 "
        "signature (raw or base64) on stdout (default $PGGUARD_SIGN_COMMAND)",
    )(f)
    f = click.option(
        "--key",
        "key_uri",
        envvar="PGGUARD_KEY",
        metavar="URI",
        help="a key in a PKCS#11 token: 'pkcs11:token=…;object=…' (RFC 7512; default $PGGUARD_KEY)",
    )(f)
    f = click.option(
        "--key-file",
        envvar="PGGUARD_KEY_FILE",
        type=click.Path(dir_okay=False, path_type=Path),
        help="approver private key file (default $PGGUARD_KEY_FILE)",
    )(f)
    return f


def read_passphrase(path: Path) -> bytes:
    """The passphrase for an encrypted key file: the environment, else a prompt."""
    env = os.environ.get(PASSPHRASE_ENV)
    if env:
        return env.encode("utf-8")
    if not interactive():
        raise KeyPassphraseNeeded(
            f"{path}: private key is encrypted, and there is no terminal to ask for its passphrase",
            hint=f"set ${PASSPHRASE_ENV}, or run on a terminal",
        )
    value: str = click.prompt(
        f"passphrase for {path}", hide_input=True, err=True, show_default=False
    )
    return value.encode("utf-8")


def new_passphrase(path: Path, no_passphrase: bool) -> bytes | None:
    """The passphrase a new key file is encrypted with (``None`` with --no-passphrase)."""
    if no_passphrase:
        _warn(
            f"{path} will not be encrypted: whoever can read the file "
            "(a script, an agent with shell access, a backup) can approve destructive changes"
        )
        return None
    env = os.environ.get(PASSPHRASE_ENV)
    if env:
        return env.encode("utf-8")
    if not interactive():
        raise UsageError(
            f"{path}: a new key file is encrypted, and there is no terminal to ask for a "
            "passphrase",
            hint=f"set ${PASSPHRASE_ENV}, or pass --no-passphrase for a key kept in a secret store",
        )
    value: str = click.prompt(
        f"passphrase for {path}",
        hide_input=True,
        confirmation_prompt="repeat it",
        err=True,
    )
    if not value:
        raise UsageError("an empty passphrase protects nothing; use --no-passphrase to say so")
    return value.encode("utf-8")


def read_pin(description: str) -> str:
    """A PKCS#11 user PIN: the environment, else a prompt."""
    env = os.environ.get(PIN_ENV)
    if env:
        return env
    if not interactive():
        raise UsageError(
            f"{description}: the token needs its PIN, and there is no terminal to ask",
            hint=f"set ${PIN_ENV}, or run on a terminal",
        )
    value: str = click.prompt(f"PIN for {description}", hide_input=True, err=True)
    return value


def make_signer(
    key_file: Path | None,
    key_uri: str | None,
    sign_command: str | None,
    sign_public_key: Path | None,
) -> Signer:
    """The one signer the options name (exactly one of them), ready to sign."""
    from .. import keys as keymod

    given = [n for n, v in (("--key-file", key_file), ("--key", key_uri),
                            ("--sign-command", sign_command)) if v]  # fmt: skip
    if not given:
        raise UsageError(
            "no approver key: pass --key-file, --key pkcs11:… or --sign-command "
            "(or set $PGGUARD_KEY_FILE, $PGGUARD_KEY or $PGGUARD_SIGN_COMMAND)"
        )
    if len(given) > 1:
        raise UsageError(f"give one signer, not {' and '.join(given)}")
    if sign_command:
        from ..signers.command import CommandSigner

        if sign_public_key is None:
            raise UsageError(
                "--sign-command needs --public-key FILE (the public half of the key it uses)"
            )
        return CommandSigner(sign_command, keymod.load_public_key(sign_public_key))
    if key_uri:
        from ..signers.pkcs11 import Pkcs11Signer

        if not key_uri.startswith("pkcs11:"):
            raise UsageError(f"--key {key_uri!r}: expected a pkcs11: URI (a file: --key-file)")
        signer = Pkcs11Signer.from_uri(key_uri)
        signer.pin = lambda: read_pin(signer.description)
        return signer
    assert key_file is not None
    from ..signers.keyfile import from_key_file

    encrypted = keymod.is_encrypted_key_file(key_file)
    passphrase = read_passphrase(key_file) if encrypted else None
    loaded = from_key_file(key_file, passphrase)
    if loaded.unencrypted_file:
        _warn(
            f"key file {key_file} is not encrypted: any process that can "
            "read it (a script, an agent with shell access, a backup) can approve destructive "
            "changes; re-create it with a passphrase, or keep it in a token or KMS "
            "(README: Where the approver key lives)"
        )
    return loaded
