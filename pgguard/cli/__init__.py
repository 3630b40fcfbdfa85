"""The `pgguard` command line: parse, call one library function, render, pick the exit code.

stdout carries data (a token, ``--json``); everything meant for people goes to stderr. Exit
codes (README, "Exit codes"): 0 ok, 1 check failed / refused, 2 usage, 3 cannot connect or lacks
a privilege, 4 not installed; ``allow -- COMMAND`` exits with COMMAND's code.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .._version import __version__
from ..connect import connect
from ..durations import parse_duration
from ..errors import GuardRefused, KeyFileError, PgguardError, UsageError
from .signing import signer_options

err = Console(stderr=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])

DSN_HELP = (
    "libpq conninfo or postgresql:// URL; default $PGGUARD_DSN, then $DATABASE_URL, "
    "then libpq's PG* variables"
)


def dsn_option(f: F) -> F:
    return click.option("--dsn", metavar="DSN", help=DSN_HELP)(f)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="machine-readable output")(f)


class PgguardGroup(click.Group):
    """Maps every :class:`PgguardError` to its message and exit code, in one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PgguardError as e:
            _report_error(e)
            ctx.exit(e.exit_code)
        except psycopg.OperationalError as e:
            err.print(f"[red]pgguard: lost the connection to the database:[/] {e}".strip())
            ctx.exit(3)
        except psycopg.Error as e:
            refused = GuardRefused.from_diag(e)
            if refused is None:
                raise
            _report_error(refused)
            ctx.exit(refused.exit_code)
        return None


def _report_error(e: PgguardError) -> None:
    err.print(f"[red]error:[/] {e.message}", markup=True, soft_wrap=True)
    detail = getattr(e, "detail", None)
    if detail:
        err.print(f"detail: {detail}", markup=False, soft_wrap=True)
    if e.hint:
        err.print(f"hint: {e.hint}", markup=False, soft_wrap=True)


@contextmanager
def _connection(dsn: str | None) -> Iterator[psycopg.Connection[Any]]:
    conn = connect(dsn)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr (only when stderr is a terminal)."""
    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    task = bar.add_task(label, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


@click.group(cls=PgguardGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pgguard")
def cli() -> None:
    """Make PostgreSQL itself refuse DROP TABLE, DROP COLUMN and TRUNCATE.

    An override is a short-lived token signed by an approver's private key and verified by the
    server: `pgguard allow` issues one, the session presents it as the `pgguard.token` setting.
    """


# --- install / status / uninstall ----------------------------------------------------------


@cli.command()
@dsn_option
@click.option(
    "--exclude-schema",
    "exclude_schemas",
    multiple=True,
    metavar="NAME",
    help="leave this schema unguarded (repeatable; replaces the stored list)",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="register this approver key's public half; a missing file is created (mode 0600)",
)
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="register a public key file (PEM; repeatable)",
)
@click.option(
    "--no-passphrase",
    is_flag=True,
    help="with --key-file naming a new file: write it unencrypted",
)
@click.option(
    "--require-approvals",
    type=int,
    metavar="N",
    help="two-person rule: a token needs signatures of N distinct registered keys",
)
@click.option(
    "--for-op",
    "for_ops",
    multiple=True,
    metavar="OP",
    help="with --require-approvals: only for this op (repeatable; default every op)",
)
@click.option(
    "--protect-empty/--allow-empty",
    "protect_empty",
    default=None,
    help="refuse dropping or truncating a table that holds no row, like any other table "
    "(default: --allow-empty, which lets the server let those through, audited; the stored "
    "choice is kept when neither is given)",
)
@click.option("--batch-size", default=200, show_default=True, help="tables per transaction")
@click.option(
    "--lock-timeout", default="2s", show_default=True, help="wait per table before retrying it"
)
@click.option(
    "--mode",
    type=click.Choice(["event-triggers", "privileges"]),
    help="default: event triggers where this role may create them, else privileges",
)
@click.option(
    "--app-role",
    metavar="NAME",
    help="privilege mode: the app's role (created, password printed once, if missing)",
)
@click.option(
    "--owner-role",
    metavar="NAME",
    help="privilege mode: use this existing role as the protected owner (Heroku credential)",
)
@json_option
def install(
    dsn: str | None,
    exclude_schemas: Sequence[str],
    key_file: Path | None,
    public_keys: Sequence[Path],
    no_passphrase: bool,
    require_approvals: int | None,
    for_ops: Sequence[str],
    protect_empty: bool | None,
    batch_size: int,
    lock_timeout: str,
    mode: str | None,
    app_role: str | None,
    owner_role: str | None,
    as_json: bool,
) -> None:
    """Install pgguard in a database, or upgrade it in place.

    Safe to re-run: a no-op when current; finishes an interrupted install. Event-trigger mode
    needs a role that may create event triggers (a superuser, rds_superuser,
    cloudsqlsuperuser, neon_superuser, or Supabase's postgres role). Where none exists
    (Render, Heroku, DigitalOcean, Aiven, Fly) privilege mode protects by ownership:

    \b
      pgguard install --dsn "$OWNER_DSN" --mode privileges --app-role app_rw

    Example:
      pgguard install --dsn postgresql://postgres@db/app --key-file approver.pem
    """
    from .. import keys as keymod
    from ..installer import install as do_install
    from .signing import new_passphrase, read_passphrase

    if for_ops and require_approvals is None:
        raise UsageError("--for-op goes with --require-approvals N")
    rows = [keymod.public_numbers_for_db(keymod.load_public_key(p)) for p in public_keys]
    if key_file is not None:
        if key_file.exists():
            encrypted = keymod.is_encrypted_key_file(key_file)
            private = keymod.load_private_key(
                key_file, read_passphrase(key_file) if encrypted else None
            )
        else:
            passphrase = new_passphrase(key_file, no_passphrase)
            private = keymod.generate_private_key()
            keymod.write_private_key(key_file, private, passphrase=passphrase)
            err.print(
                f"created approver key {key_file} (kid {keymod.kid(private)}); keep it safe",
                soft_wrap=True,
            )
        rows.append(keymod.public_numbers_for_db(private.public_key()))
    with _connection(dsn) as conn, _progress("guarding tables") as progress:
        report = do_install(
            conn,
            exclude_schemas=list(exclude_schemas) or None,
            protect_empty=protect_empty,
            public_keys=rows,
            batch_size=batch_size,
            lock_timeout=lock_timeout,
            progress=progress,
            mode=mode,
            app_role=app_role,
            owner_role=owner_role,
        )
        if require_approvals is not None:
            from ..approvals import set_required_approvals

            policy = set_required_approvals(conn, require_approvals, for_ops)
            err.print(
                "approvals needed: "
                + ", ".join(f"{op} {n}" for op, n in policy.per_op)
                + (", " if policy.per_op else "")
                + f"other ops {policy.default}"
            )
    if report.app_password and not as_json:
        # shown once, never stored: the app's credential
        err.print(f'created app role "{report.app_role}"; its password (shown once, store it now):')
        click.echo(report.app_password)
    if as_json:
        data = {
            "action": report.action,
            "package_version": report.package_version,
            "previous_version": report.previous_version,
            "migrations_applied": list(report.migrations_applied),
            "tables_total": report.tables_total,
            "tables_attached": report.tables_attached,
            "tables_healed": report.tables_healed,
            "problems": [{"table": p.table, "reason": p.reason} for p in report.problems],
            "keys_added": list(report.keys_added),
            "excluded_schemas": list(report.excluded_schemas),
            "protect_empty": report.protect_empty,
            "seconds": round(report.seconds, 3),
            "complete": report.complete,
            "mode": report.mode,
            "app_role": report.app_role,
            # only when install created the role: shown once, never stored
            "app_password": report.app_password,
        }
        _emit_json(data)
    else:
        done = (
            f"{report.tables_attached} table(s) guarded now, {report.tables_healed} healed, "
            f"{report.seconds:.1f}s"
        )
        if report.action == "unchanged" and not (report.tables_total or report.keys_added):
            err.print(f"pgguard {report.package_version} is installed and current: nothing to do")
        else:
            err.print(f"pgguard {report.package_version} {report.action} ({done})")
        for kid in report.keys_added:
            err.print(f"registered approver key {kid}")
        for p in report.problems:
            err.print(f"[yellow]not guarded:[/] {p.table}: {p.reason}")
    if report.problems:
        err.print("[yellow]some tables are not guarded yet; run pgguard install again[/]")
        sys.exit(1)


@cli.command()
@dsn_option
@json_option
def status(dsn: str | None, as_json: bool) -> None:
    """Health check: exit 0 healthy, 1 degraded, 4 not installed.

    \b
    Example (a deploy's health gate):
      pgguard status --json --dsn "$DATABASE_URL" | jq .healthy
    """
    from ..health import status as read_status

    with _connection(dsn) as conn:
        st = read_status(conn)
    if as_json:
        _emit_json(st.to_json())
    else:
        word = "[green]healthy[/]" if st.healthy else "[red]degraded[/]"
        err.print(f"pgguard {st.installed_version} in database {st.database}: {word}")
        for t in st.event_triggers:
            mark = "ok" if t.ok else "PROBLEM"
            err.print(f"  event trigger {t.name}: {t.enabled or 'missing'} ({mark})")
        err.print(
            f"  tables protected: {st.tables_protected}, unprotected: {st.tables_unprotected_count}"
        )
        for tb in st.tables_unprotected:
            err.print(f"    {tb.table}: {tb.state}")
        if st.excluded_schemas:
            err.print(f"  excluded schemas: {', '.join(st.excluded_schemas)}")
        err.print(f"  approver keys: {st.keys_live} live, {st.keys_revoked} revoked")
        for lim in st.row_limits:
            err.print(
                f"  row-loss limit: {lim.table} {lim.op} {lim.max_rows} rows or"
                f" {lim.max_fraction:g} of the table ({lim.enabled})",
                markup=False,
            )
        err.print(
            f"  overrides in the last 24h: {st.overrides_24h}; refusals since install: "
            f"{st.refusals_total} (details: pgguard audit)"
        )
        for p in st.problems:
            err.print(f"  [red]problem:[/] {p}")
        for n in st.notes:
            err.print(f"  note: {n}")
    sys.exit(0 if st.healthy else 1)


@cli.command()
@dsn_option
@click.option(
    "--token",
    envvar="PGGUARD_TOKEN",
    help="override token with op uninstall (default $PGGUARD_TOKEN)",
)
@click.option("--yes", is_flag=True, help="confirm when no approver key is registered")
def uninstall(dsn: str | None, token: str | None, yes: bool) -> None:
    """Remove every object pgguard created; user data is untouched.

    Needs a token with op uninstall: pgguard allow --op uninstall --object pgguard -- pgguard
    uninstall. Where no approver key is registered, the installing superuser confirms with --yes.

    \b
    Example:
      pgguard allow --op uninstall --object pgguard --once -- pgguard uninstall --dsn "$ADMIN_DSN"
    """
    from ..removal import uninstall as do_uninstall

    with _connection(dsn) as conn, _progress("removing guards") as progress:
        report = do_uninstall(conn, token=token, force=yes, progress=progress)
    err.print(f"pgguard removed ({report.guards_removed} TRUNCATE guard(s), {report.seconds:.1f}s)")
    if report.roles_kept:
        err.print(f"kept role(s) {', '.join(report.roles_kept)}: other databases still use them")


# --- tokens ---------------------------------------------------------------------------------


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--ttl", default="10m", show_default=True, help="lifetime: 90s, 10m, 1h, …")
@click.option(
    "--op",
    "ops",
    multiple=True,
    type=click.Choice(
        ["drop_table", "drop_column", "truncate", "uninstall", "delete_rows", "update_rows"]
    ),
    help="operation to approve (repeatable; default drop_table, drop_column, truncate)",
)
@click.option(
    "--object",
    "objects",
    multiple=True,
    metavar="PATTERN",
    help="schema.table or schema.table.column glob (repeatable; default *)",
)
@click.option("--once", is_flag=True, help="valid for one transaction only")
@click.option("--reason", help="why: recorded in the audit trail")
@click.option("--db", help="valid only in this database")
@click.option(
    "--from-check",
    "from_check",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.json",
    help="approve exactly what `pgguard check --json` found (its ops, objects, --once, --db)",
)
@signer_options
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def allow(
    ttl: str,
    ops: Sequence[str],
    objects: Sequence[str],
    once: bool,
    reason: str | None,
    db: str | None,
    key_file: Path | None,
    key_uri: str | None,
    sign_command: str | None,
    sign_public_key: Path | None,
    from_check: Path | None,
    command: Sequence[str],
) -> None:
    """Sign an override token; offline, needs no database.

    Without COMMAND the token alone goes to stdout. With `-- COMMAND ARGS…`, COMMAND runs with
    PGOPTIONS extended by `-c pgguard.token=…` and PGGUARD_TOKEN set, and its exit code is
    pgguard's. The key: --key-file (an encrypted file asks for its passphrase, or reads
    $PGGUARD_KEY_PASSPHRASE), --key 'pkcs11:token=…;object=…' (PIN from a prompt or
    $PGGUARD_PKCS11_PIN), or --sign-command CMD --public-key FILE. Where the server needs two
    approvals, a second approver adds theirs with `pgguard cosign`.

    \b
    Example:
      pgguard allow --key-file approver.pem --op drop_table --object public.old_orders \\
          --once --reason "JIRA-123" -- python manage.py migrate
    """
    from ..token import DEFAULT_OBJECTS, DEFAULT_OPS, issue_token
    from .signing import make_signer

    if from_check is not None:
        from ..check.fromcheck import merge_check_scope

        scope = merge_check_scope(from_check, ops, objects, once, db)
        ops, objects, once, db = scope.ops, scope.objects, scope.once, scope.db
    signer = make_signer(key_file, key_uri, sign_command, sign_public_key)
    try:
        token = issue_token(
            signer,
            ttl=parse_duration(ttl),
            ops=list(ops) or list(DEFAULT_OPS),
            objects=list(objects) or list(DEFAULT_OBJECTS),
            once=once,
            reason=reason,
            db=db,
        )
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from e
    expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=parse_duration(ttl))
    err.print(
        f"token for {', '.join(ops or DEFAULT_OPS)} on {', '.join(objects or DEFAULT_OBJECTS)}"
        f"{' in database ' + db if db else ''}, expires {expires:%Y-%m-%d %H:%M:%S} UTC"
        f"{', single use' if once else ''}",
        markup=False,
    )
    args = list(command)
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        click.echo(token)
        return
    run_with_token(args, token)


def run_with_token(args: Sequence[str], token: str) -> NoReturn:
    """Replace this process with ``args``, the token in PGOPTIONS and PGGUARD_TOKEN.

    exec, not a child process: the command gets the terminal's signals itself (psql cancels a
    query on Ctrl-C and goes on), its exit code is ours by construction, and no parent can die
    leaving it running with the token.
    """
    env = dict(os.environ)
    existing = env.get("PGOPTIONS", "").rstrip()
    if (len(existing) - len(existing.rstrip("\\"))) % 2:
        raise UsageError("PGOPTIONS ends with a lone backslash, which would swallow the token")
    # token characters need no escaping in PGOPTIONS ([A-Za-z0-9_.-]); what was there stays
    extra = f"-c pgguard.token={token}"
    env["PGOPTIONS"] = f"{existing} {extra}" if existing else extra
    env["PGGUARD_TOKEN"] = token
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(args[0], list(args), env)
    except FileNotFoundError as e:
        raise UsageError(f"command not found: {shlex.quote(args[0])}") from e
    except PermissionError as e:
        raise UsageError(f"cannot run {shlex.quote(args[0])}: {e.strerror}") from e


@cli.group()
def keys() -> None:
    """Approver keys: create a private key, register, list and revoke public keys.

    \b
    Rotation, for example:
      pgguard keys create --out new.pem --public-out new.pub
      pgguard keys add new.pub --comment "alice, 2026" && pgguard keys revoke OLD_KID
    """


@keys.command("create")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="where to write the private key (mode 0600; never overwritten)",
)
@click.option("--bits", default=3072, show_default=True, help="RSA key size (2048 or more)")
@click.option(
    "--public-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="also write the public half here (PEM), for `keys add` or `install --public-key`",
)
@click.option(
    "--no-passphrase",
    is_flag=True,
    help="write the key unencrypted (for a key kept in a CI secret store)",
)
def keys_create(out: Path, bits: int, public_out: Path | None, no_passphrase: bool) -> None:
    """Create an approver private key, encrypted; prints its kid. Needs no database.

    The passphrase is asked for on a terminal (twice), or read from $PGGUARD_KEY_PASSPHRASE;
    without either (a script) this fails with exit 2 unless --no-passphrase says the file is
    protected some other way.

    \b
    Example:
      pgguard keys create --out ~/.pgguard/approver.pem --public-out approver.pub
    """
    from .. import keys as keymod
    from .signing import new_passphrase

    if out.exists() or out.is_symlink():  # before asking for a passphrase in vain
        raise KeyFileError(f"{out}: file exists; refusing to overwrite a key file")
    passphrase = new_passphrase(out, no_passphrase)
    private = keymod.generate_private_key(bits)
    if public_out is not None:  # first: a failure here must not leave a private key behind
        keymod.write_public_key(public_out, private)
    try:
        keymod.write_private_key(out, private, passphrase=passphrase)
    except BaseException:
        if public_out is not None:
            public_out.unlink(missing_ok=True)
        raise
    click.echo(keymod.kid(private))
    state = "encrypted" if passphrase else "NOT encrypted"
    err.print(
        f"wrote private key {out} (mode 0600, {state}): keep it with the approver, never in the DB"
    )


@keys.command("add")
@click.argument(
    "public_key_file",
    required=False,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--key",
    "key_uri",
    metavar="URI",
    help="register the public half of the key in a PKCS#11 token ('pkcs11:…'; no PIN needed)",
)
@click.option("--comment", help="who holds this key")
@dsn_option
def keys_add(
    public_key_file: Path | None, key_uri: str | None, comment: str | None, dsn: str | None
) -> None:
    """Register a public key (a private key file works too: only its public half is stored).

    \b
    Examples:
      pgguard keys add approver.pub --comment "alice"
      pgguard keys add --key 'pkcs11:token=YubiKey%20PIV;id=%02?module-path=libykcs11.so'
    """
    from .. import keys as keymod
    from ..keystore import add_keys

    if (public_key_file is None) == (key_uri is None):
        raise UsageError("give a PUBLIC_KEY_FILE or --key pkcs11:…, one of them")
    if key_uri is not None:
        from ..signers.pkcs11 import Pkcs11Signer

        public = Pkcs11Signer.from_uri(key_uri).public_key()
    else:
        assert public_key_file is not None
        public = keymod.load_public_key(public_key_file)
    row = keymod.public_numbers_for_db(public)
    with _connection(dsn) as conn:
        added = add_keys(conn, [row], comment=comment)
    click.echo(row.kid)
    err.print(f"registered key {row.kid}" if added else f"key {row.kid} was already registered")


@keys.command("list")
@dsn_option
@json_option
def keys_list(dsn: str | None, as_json: bool) -> None:
    """List registered keys, live and revoked.

    \b
    Example:
      pgguard keys list --json --dsn "$ADMIN_DSN"
    """
    from ..keystore import list_keys

    with _connection(dsn) as conn:
        rows = list_keys(conn)
    if as_json:
        _emit_json(
            [
                {
                    "kid": k.kid,
                    "bits": k.bits,
                    "comment": k.comment,
                    "added_at": k.added_at.isoformat(),
                    "added_by": k.added_by,
                    "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
                    "revoked_by": k.revoked_by,
                }
                for k in rows
            ]
        )
        return
    table = Table("kid", "bits", "added", "by", "revoked", "comment")
    for k in rows:
        table.add_row(
            k.kid,
            str(k.bits),
            f"{k.added_at:%Y-%m-%d %H:%M}",
            k.added_by,
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "",
            k.comment or "",
        )
    Console().print(table)


@keys.command("revoke")
@click.argument("kid")
@dsn_option
def keys_revoke(kid: str, dsn: str | None) -> None:
    """Revoke a key: tokens it signed stop working at once.

    \b
    Example:
      pgguard keys revoke 3e4ea96de181b4e4 --dsn "$ADMIN_DSN"
    """
    from ..keystore import revoke_key

    with _connection(dsn) as conn:
        key = revoke_key(conn, kid)
    err.print(f"key {key.kid} revoked at {key.revoked_at:%Y-%m-%d %H:%M:%S %Z}")


# --- audit / demo ---------------------------------------------------------------------------


@cli.command()
@dsn_option
@click.option("--since", default="24h", show_default=True, help="how far back: 1h, 7d, …")
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="read refusals from this server log file instead of asking the server",
)
@json_option
def audit(dsn: str | None, since: str, log_file: Path | None, as_json: bool) -> None:
    """Overrides and refusals: who, what, when, with which token.

    \b
    Example:
      pgguard audit --since 7d --json | jq '.entries[] | select(.kind == "override")'
    """
    from ..audit import read_audit

    with _connection(dsn) as conn:
        report = read_audit(
            conn, since=dt.timedelta(seconds=parse_duration(since)), log_file=log_file
        )
    if as_json:
        _emit_json({"entries": [e.to_json() for e in report.entries], "sources": report.sources})
        return
    table = Table("at", "kind", "op", "object", "user", "jti", "sub", "why / detail")
    for e in report.entries:
        table.add_row(
            f"{e.at:%Y-%m-%d %H:%M:%S}",
            e.kind,
            e.op,
            e.object,
            e.session_user or "",
            e.jti or "",
            e.sub or "",
            (f"SUSPECT: {e.suspect}" if e.suspect else (e.why or e.detail or "")),
        )
    Console().print(table)
    for name, state in report.sources.items():
        err.print(f"{name}: {state}")


@cli.command()
@dsn_option
@click.option("--pg-version", default=None, type=int, help="major of the throwaway server")
def demo(dsn: str | None, pg_version: int | None) -> None:
    """The whole story end to end, against --dsn or a throwaway local server.

    \b
    Example:
      pgguard demo                 # starts and removes its own PostgreSQL
    """
    from ..demo import run_demo

    sys.exit(run_demo(dsn, pg_version=pg_version, say=lambda text: err.print(text, soft_wrap=True)))


# Commands that live in their own modules register themselves on `cli` when imported; one
# import line each keeps this file from becoming everyone's merge conflict.
from . import _commands  # noqa: E402,F401


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="pgguard")


if __name__ == "__main__":  # pragma: no cover
    main()
