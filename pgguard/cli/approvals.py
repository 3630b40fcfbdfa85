"""`pgguard cosign`: a second approver adds a signature to a token (the two-person rule)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from ..errors import UsageError
from ..token import Claims
from . import cli, err
from .signing import interactive, make_signer, signer_options


def describe(claims: Claims, signed_by: tuple[str, ...] = ()) -> str:
    """What a token approves, for the approver to read before signing."""
    now = dt.datetime.now(dt.timezone.utc)
    left = int((claims.expires_at - now).total_seconds())
    when = f" (in {left // 60} min)" if left > 0 else " (EXPIRED)"
    lines = [
        f"  ops:      {', '.join(claims.ops)}",
        f"  objects:  {', '.join(claims.obj)}",
        f"  database: {claims.db or 'any'}",
        f"  expires:  {claims.expires_at:%Y-%m-%d %H:%M:%S} UTC{when}",
        f"  use:      {'one transaction' if claims.once else 'until it expires'}",
        f"  asked by: {claims.sub or '-'}",
        f"  reason:   {claims.why or '-'}",
    ]
    if signed_by:
        lines.append(f"  signed:   {', '.join(signed_by)}")
    return "\n".join(lines)


def confirm(question: str, yes: bool) -> None:
    """Ask on a terminal; without one, only --yes goes on (exit 2 otherwise)."""
    if yes:
        return
    if not interactive():
        raise UsageError("no terminal to confirm on: read what is approved above, then pass --yes")
    if not click.confirm(question, default=False, err=True):
        raise UsageError("not approved; nothing was signed")


@cli.command()
@click.argument("token", required=False)
@signer_options
@click.option("--yes", is_flag=True, help="do not ask for confirmation (no terminal)")
def cosign(
    token: str | None,
    key_file: Path | None,
    key_uri: str | None,
    sign_command: str | None,
    sign_public_key: Path | None,
    yes: bool,
) -> None:
    """Add your signature to a token: the two-person rule's second approval.

    TOKEN (or stdin when TOKEN is -) is a pgg1 token from `pgguard allow` or a pgg2 token that
    others signed; the result, printed alone on stdout, is a pgg2 token. Shows exactly what is
    being approved and asks for confirmation on a terminal. A key that already signed is
    refused: the server counts distinct keys.

    \b
    Example:
      pgguard cosign "$TOKEN" --key-file ~/.pgguard/bob.pem > token.txt
    """
    from .. import keys as keymod
    from ..multisig import cosign as add_signature
    from ..multisig import split_token

    if token is None or token == "-":
        if token is None and interactive():
            raise UsageError("give the TOKEN to sign (or - to read it from stdin)")
        token = sys.stdin.read().strip()
    multi = split_token(token.strip())
    signer = make_signer(key_file, key_uri, sign_command, sign_public_key)
    mine = keymod.kid(signer.public_key())
    if mine in multi.kids:  # before asking anyone to confirm
        raise UsageError(f"key {mine} already signed this token; another approval needs a new key")
    err.print("you are approving:", markup=False)
    err.print(describe(multi.claims, multi.kids), markup=False, soft_wrap=True)
    confirm("add your signature?", yes)
    out = add_signature(token.strip(), signer)
    click.echo(out)
    err.print(f"signed: {len(multi.kids) + 1} approvals on this token", markup=False)


@cli.command()
@click.option("--ttl", default="10m", show_default=True, help="lifetime asked for: 90s, 10m, 1h")
@click.option("--op", "ops", multiple=True, metavar="OP", help="operation (repeatable)")
@click.option("--object", "objects", multiple=True, metavar="PATTERN", help="glob (repeatable)")
@click.option("--once", is_flag=True, help="ask for a single-use token")
@click.option("--reason", help="why: shown to the approver, recorded in the audit trail")
@click.option("--db", help="the database the token will be for")
@click.option(
    "--from-check",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.json",
    help="ask for exactly what `pgguard check --json` found",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write the request here (default: stdout)",
)
def request(
    ttl: str,
    ops: tuple[str, ...],
    objects: tuple[str, ...],
    once: bool,
    reason: str | None,
    db: str | None,
    from_check: Path | None,
    out: Path | None,
) -> None:
    """Write an approval request for an approver to sign elsewhere; needs no key.

    The request (JSON: ops, objects, db, once, ttl, reason, who asked and when) goes to the
    approver, who runs `pgguard approve REQUEST` on their own machine and sends back the token,
    so the deploy environment never holds a key.

    \b
    Example:
      pgguard check migrations/ --json --db shop > check.json
      pgguard request --from-check check.json --reason "JIRA-123" --out req.json
    """
    import json as _json

    from ..durations import parse_duration
    from ..requests import make_request, write_request

    if from_check is not None:
        from ..check.fromcheck import merge_check_scope

        scope = merge_check_scope(from_check, ops, objects, once, db)
        ops, objects, once, db = scope.ops, scope.objects, scope.once, scope.db
    req = make_request(
        ops=ops, objects=objects, db=db, once=once, ttl=parse_duration(ttl), reason=reason
    )
    if out is None:
        click.echo(_json.dumps(req.to_json(), indent=2, sort_keys=True))
    else:
        write_request(out, req)
        err.print(f"wrote {out}: have an approver run `pgguard approve {out.name}`", markup=False)


@cli.command()
@click.argument("request_file", metavar="REQUEST", type=click.Path(dir_okay=False, path_type=Path))
@signer_options
@click.option("--yes", is_flag=True, help="do not ask for confirmation (no terminal)")
def approve(
    request_file: Path,
    key_file: Path | None,
    key_uri: str | None,
    sign_command: str | None,
    sign_public_key: Path | None,
    yes: bool,
) -> None:
    """Sign a request from `pgguard request`: shows what is asked, confirms, prints the token.

    The token goes alone to stdout (send it back to whoever asked); its lifetime starts now.
    Where the server needs two approvals, a second approver runs `pgguard cosign TOKEN`.

    \b
    Example:
      pgguard approve req.json --key 'pkcs11:token=YubiKey%20PIV;id=%02' > token.txt
    """
    from ..requests import read_request
    from ..token import issue_token, parse_token

    req = read_request(request_file)
    signer = make_signer(key_file, key_uri, sign_command, sign_public_key)
    err.print(f"{req.requested_by} asks (at {req.requested_at}) for:", markup=False)
    err.print(f"  ops:      {', '.join(req.ops)}", markup=False)
    err.print(f"  objects:  {', '.join(req.objects)}", markup=False)
    err.print(f"  database: {req.db or 'any'}", markup=False)
    err.print(f"  lifetime: {req.ttl} s from now", markup=False)
    err.print(f"  use:      {'one transaction' if req.once else 'until it expires'}", markup=False)
    err.print(f"  reason:   {req.reason or '-'}", markup=False)
    confirm("approve and sign?", yes)
    try:
        token = issue_token(
            signer,
            ttl=req.ttl,
            ops=list(req.ops),
            objects=list(req.objects),
            once=req.once,
            reason=req.reason,
            db=req.db,
        )
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from e
    click.echo(token)
    claims = parse_token(token).claims
    err.print(f"approved: token {claims.jti}, expires {claims.expires_at:%Y-%m-%d %H:%M:%S} UTC")
