"""Signers end to end: encrypted key files, an external sign command, a PKCS#11 token (SoftHSM2).

Each kind signs a token the real server accepts; each way to fail (wrong passphrase, no
terminal, garbage from the command, wrong PIN) exits 2 with a clear message and prints no
token. The PKCS#11 tests initialise a fresh SoftHSM2 token and generate an RSA-3072 key inside
it, so the private key never exists as a file. Terminal prompts are driven through a real pty.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tokenhelp import (
    DETAIL_NONE,
    Conn,
    approver_key,
    clean_env,
    count,
    refused,
    register,
    run_cli,
)

from pgguard import errors, keys, pkcs8
from pgguard.signers import sign_checked
from pgguard.signers.command import CommandSigner
from pgguard.signers.keyfile import KeySigner, from_key_file
from pgguard.signers.pkcs11 import Pkcs11Signer, parse_uri
from pgguard.token import issue_token, parse_token, verify_token

SOFTHSM_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
)
OPENSSL_RECIPE = (
    "openssl dgst -sha256 -binary | openssl pkeyutl -sign -inkey {key} -pkeyopt digest:sha256"
)


def _require(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing (.ci/run installs it)", pytrace=False)
    pytest.skip(f"{what} is not installed")


# --- encrypted key files -----------------------------------------------------------------------


def test_encrypted_key_file_round_trip(tmp_path: Path) -> None:
    key = approver_key("a")
    path = keys.write_private_key(tmp_path / "k.pem", key, passphrase=b"correct horse")
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert keys.is_encrypted_key_file(path)
    assert keys.kid(keys.load_private_key(path, b"correct horse")) == keys.kid(key)
    with pytest.raises(errors.WrongPassphrase, match="wrong passphrase"):
        keys.load_private_key(path, b"wrong")
    with pytest.raises(errors.KeyPassphraseNeeded, match="encrypted"):
        keys.load_private_key(path)
    with pytest.raises(errors.KeyFileError, match="empty passphrase"):
        keys.write_private_key(tmp_path / "e.pem", key, passphrase=b"")
    # a standard PKCS#8 file (openssl reads it) with a KDF far stronger than the library default
    out = subprocess.run(
        ["openssl", "asn1parse", "-in", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert "PBES2" in out and "PBKDF2" in out and "aes-256-cbc" in out
    assert f"INTEGER           :{pkcs8.ROUNDS:06X}" in out
    signer = from_key_file(path, b"correct horse")
    assert not signer.unencrypted_file
    assert from_key_file(keys.write_private_key(tmp_path / "p.pem", key)).unencrypted_file


def test_keys_create_without_terminal_needs_a_passphrase(tmp_path: Path) -> None:
    out = tmp_path / "k.pem"
    proc = run_cli("keys", "create", "--out", str(out), "--bits", "2048")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "no terminal to ask for a passphrase" in proc.stderr
    assert "PGGUARD_KEY_PASSPHRASE" in proc.stderr and "--no-passphrase" in proc.stderr
    assert not out.exists()

    made = run_cli(
        "keys", "create", "--out", str(out), "--bits", "2048",
        env={"PGGUARD_KEY_PASSPHRASE": "s3cret"},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "encrypted" in made.stderr and "NOT" not in made.stderr
    kid = made.stdout.strip()
    assert keys.kid(keys.load_private_key(out, b"s3cret")) == kid

    plain = run_cli("keys", "create", "--out", str(tmp_path / "p.pem"), "--no-passphrase")
    assert plain.returncode == 0, plain.stderr
    assert "will not be encrypted" in plain.stderr and "NOT encrypted" in plain.stderr


def test_allow_with_encrypted_key_file(tmp_path: Path) -> None:
    key = approver_key("a")
    path = keys.write_private_key(tmp_path / "k.pem", key, passphrase=b"s3cret")
    marker = tmp_path / "ran"

    none = run_cli("allow", "--key-file", str(path), "--", "touch", str(marker))
    assert none.returncode == 2 and none.stdout == ""
    assert "encrypted, and there is no terminal" in none.stderr
    assert "PGGUARD_KEY_PASSPHRASE" in none.stderr

    wrong = run_cli(
        "allow", "--key-file", str(path), "--", "touch", str(marker),
        env={"PGGUARD_KEY_PASSPHRASE": "nope"},
    )  # fmt: skip
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert "wrong passphrase" in wrong.stderr and "nothing was signed" in wrong.stderr
    assert not marker.exists()

    ok = run_cli("allow", "--key-file", str(path), env={"PGGUARD_KEY_PASSPHRASE": "s3cret"})
    assert ok.returncode == 0, ok.stderr
    assert parse_token(ok.stdout.strip()).kid == keys.kid(key)
    assert "not encrypted" not in ok.stderr


def test_allow_warns_about_an_unencrypted_key_file(tmp_path: Path) -> None:
    path = keys.write_private_key(tmp_path / "plain.pem", approver_key("a"))
    proc = run_cli("allow", "--key-file", str(path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("pgg1.")
    assert f"key file {path} is not encrypted" in proc.stderr
    assert "agent with shell access" in proc.stderr


def _on_terminal(args: list[str], answers: list[str], timeout: float = 60) -> tuple[int, str]:
    """Run ``pgguard ARGS`` on a new pty, typing each answer after the next prompt appears."""
    env = clean_env()
    pid, fd = pty.fork()
    if pid == 0:  # child: the pty is its controlling terminal and stdin/stdout/stderr
        try:
            os.execve(sys.executable, [sys.executable, "-m", "pgguard", *args], env)
        finally:
            os._exit(127)
    seen = b""
    pending = list(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            # click writes "prompt:" and getpass then the final " ", after it has turned echo
            # off and flushed pending input: typing before that space would be thrown away
            if pending and seen.endswith(b": "):
                seen += b"\n"  # so the same prompt is not answered twice
                os.write(fd, pending.pop(0).encode() + b"\n")
        else:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), seen.decode("utf-8", "replace")


def test_passphrase_prompts_on_a_terminal(tmp_path: Path) -> None:
    out = tmp_path / "t.pem"
    code, screen = _on_terminal(
        ["keys", "create", "--out", str(out), "--bits", "2048"], ["hunter22", "hunter22"]
    )
    assert code == 0, screen
    assert "passphrase for" in screen and "repeat it" in screen
    assert "hunter22" not in screen  # not echoed
    kid = keys.kid(keys.load_private_key(out, b"hunter22"))
    code, screen = _on_terminal(["allow", "--key-file", str(out)], ["hunter22"])
    assert code == 0, screen
    token = next(line for line in screen.splitlines() if line.startswith("pgg1."))
    assert parse_token(token.strip()).kid == kid
    code, screen = _on_terminal(["allow", "--key-file", str(out)], ["wrong"])
    assert code == 2 and "wrong passphrase" in screen and "pgg1." not in screen


# --- sign command ---------------------------------------------------------------------------


@pytest.fixture
def plain_key(tmp_path: Path) -> tuple[Path, Path, rsa.RSAPrivateKey]:
    """An unencrypted key file for openssl and its public half."""
    if shutil.which("openssl") is None:
        _require("openssl")
    key = approver_key("cmd")
    private = keys.write_private_key(tmp_path / "cmd.pem", key)
    public = keys.write_public_key(tmp_path / "cmd.pub", key)
    return private, public, key


def test_sign_command_with_openssl_pkeyutl(
    plain_key: tuple[Path, Path, rsa.RSAPrivateKey], guarded_admin: Conn, app_role: Any
) -> None:
    private, public, key = plain_key
    register(guarded_admin, key)
    proc = run_cli(
        "allow", "--sign-command", OPENSSL_RECIPE.format(key=private), "--public-key", str(public),
        "--op", "truncate", "--object", "public.t",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip()
    assert verify_token(token, keys={keys.kid(key): key.public_key()}).ops == ("truncate",)
    conn = app_role.connect()
    conn.execute("CREATE TABLE public.t (id int)")
    conn.execute("INSERT INTO public.t VALUES (1)")
    assert refused(conn, "TRUNCATE public.t").detail == DETAIL_NONE
    conn.execute("SET pgguard.token = %s" % psycopg.sql.quote(token))  # noqa: UP031
    conn.execute("TRUNCATE public.t")
    assert count(conn, "SELECT count(*) FROM public.t") == 0


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("echo garbage", "not a 256-byte RSA signature"),
        ("head -c 256 /dev/zero", "does not verify against key"),
        ("exit 3", "exited with code 3"),
        ("echo no KMS credentials >&2; exit 1", "no KMS credentials"),
    ],
)
def test_sign_command_failures_sign_nothing(
    plain_key: tuple[Path, Path, rsa.RSAPrivateKey], tmp_path: Path, command: str, message: str
) -> None:
    _, public, _ = plain_key
    marker = tmp_path / "ran"
    proc = run_cli(
        "allow", "--sign-command", command, "--public-key", str(public), "--", "touch", str(marker)
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert message in proc.stderr
    assert "nothing was signed" in proc.stderr
    assert not marker.exists()


def test_sign_command_signing_with_another_key_is_refused(
    plain_key: tuple[Path, Path, rsa.RSAPrivateKey], tmp_path: Path
) -> None:
    _, public, _ = plain_key
    other = keys.write_private_key(tmp_path / "other.pem", approver_key("b"))
    signer = CommandSigner(OPENSSL_RECIPE.format(key=other), keys.load_public_key(public))
    with pytest.raises(errors.SignerError, match="does not verify"):
        issue_token(signer)
    with pytest.raises(errors.UsageError, match="--public-key"):
        from pgguard.cli.signing import make_signer

        make_signer(None, None, "cat", None)


def test_sign_command_base64_output(plain_key: tuple[Path, Path, rsa.RSAPrivateKey]) -> None:
    private, public, key = plain_key
    signer = CommandSigner(
        OPENSSL_RECIPE.format(key=private) + " | base64", keys.load_public_key(public)
    )
    token = issue_token(signer, now=1767225600, jti="x", sub="s")
    assert token == issue_token(KeySigner(key), now=1767225600, jti="x", sub="s")
    assert len(sign_checked(signer, b"abc")) == 256


# --- PKCS#11 (SoftHSM2) ---------------------------------------------------------------------

PIN = "4321"
LABEL = "pgguard-test"


@pytest.fixture(scope="session")
def softhsm() -> Iterator[dict[str, Any]]:
    """A fresh SoftHSM2 token with an RSA-3072 key pair generated inside it."""
    module = next((m for m in SOFTHSM_MODULES if os.path.exists(m)), None)
    if module is None or shutil.which("softhsm2-util") is None:
        _require("SoftHSM2 (Debian package softhsm2)")
    assert module is not None
    import pkcs11

    root = tempfile.mkdtemp(prefix="pgguard-softhsm-")
    (Path(root) / "tokens").mkdir()
    conf = Path(root) / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root}/tokens\nobjectstore.backend = file\n")
    old = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)  # read by the module when it is loaded
    try:
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", LABEL,
             "--pin", PIN, "--so-pin", "87654321"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        token = pkcs11.lib(module).get_token(token_label=LABEL)
        with token.open(rw=True, user_pin=PIN) as session:
            pub, _ = session.generate_keypair(
                pkcs11.KeyType.RSA, 3072, label="approver", id=b"\x01", store=True
            )
            n = int.from_bytes(pub[pkcs11.Attribute.MODULUS], "big")
            # a second key under another label, so a URI naming one key is tested as exact
            session.generate_keypair(
                pkcs11.KeyType.RSA, 2048, label="other", id=b"\x02", store=True
            )
        public = rsa.RSAPublicNumbers(65537, n).public_key()
        uri = f"pkcs11:token={LABEL};object=approver;type=private?module-path={module}"
        yield {"module": module, "uri": uri, "public": public, "conf": str(conf)}
    finally:
        if old is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = old
        shutil.rmtree(root, ignore_errors=True)


def test_pkcs11_uri_parsing() -> None:
    u = parse_uri("pkcs11:token=My%20Token;object=ap%3Bprover;id=%01%ff?module-path=/x.so")
    assert (u.token, u.object, u.id, u.module_path) == (
        "My Token",
        "ap;prover",
        b"\x01\xff",
        "/x.so",
    )
    assert parse_uri("pkcs11:id=%02;x-vendor=1").id == b"\x02"
    for bad, message in [
        ("pkcs11:token=a", "object=LABEL or id="),
        ("pkcs11:object=a;object=b", "given twice"),
        ("pkcs11:object=a;colour=red", "unknown attribute"),
        ("pkcs11:object=a%2", "percent-encoding"),
        ("pkcs11:object=a;type=secret-key", "cannot sign"),
        ("file:key.pem", "not a pkcs11: URI"),
        ("pkcs11:object", "name=value"),
    ]:
        with pytest.raises(errors.UsageError, match=message):
            parse_uri(bad)
    signer = Pkcs11Signer.from_uri("pkcs11:object=a?pin-value=1234&module-path=/m.so")
    assert "1234" not in signer.description and "pin-value=***" in signer.description


def test_pkcs11_signs_inside_the_token(softhsm: dict[str, Any]) -> None:
    signer = Pkcs11Signer.from_uri(softhsm["uri"], pin=lambda: PIN)
    assert keys.kid(signer.public_key()) == keys.kid(softhsm["public"])
    assert signer.public_key().key_size == 3072
    token = issue_token(signer, ops="truncate", objects="public.t")
    claims = verify_token(token, keys={keys.kid(softhsm["public"]): softhsm["public"]})
    assert claims.ops == ("truncate",)
    bad = Pkcs11Signer.from_uri(softhsm["uri"], pin=lambda: "0000")
    with pytest.raises(errors.SignerError, match="wrong PIN"):
        issue_token(bad)
    missing = Pkcs11Signer.from_uri(softhsm["uri"].replace("object=approver", "object=nope"))
    with pytest.raises(errors.SignerError, match="no RSA key"):
        missing.public_key()


def test_pkcs11_cli_register_allow_and_server_accepts(
    softhsm: dict[str, Any], guarded_db_dsn: str, app_role: Any, tmp_path: Path
) -> None:
    env = {"SOFTHSM2_CONF": softhsm["conf"]}
    added = run_cli("keys", "add", "--key", softhsm["uri"], "--dsn", guarded_db_dsn, env=env)
    assert added.returncode == 0, added.stderr
    kid = keys.kid(softhsm["public"])
    assert added.stdout.strip() == kid

    conn = app_role.connect()
    conn.execute("CREATE TABLE public.t (id int)")
    conn.execute("INSERT INTO public.t VALUES (1), (2)")

    marker = tmp_path / "ran"
    wrong = run_cli(
        "allow", "--key", softhsm["uri"], "--", "touch", str(marker),
        env={**env, "PGGUARD_PKCS11_PIN": "0000"},
    )  # fmt: skip
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert "wrong PIN; nothing was signed" in wrong.stderr
    assert not marker.exists()
    no_pin = run_cli("allow", "--key", softhsm["uri"], env=env)
    assert no_pin.returncode == 2 and "PGGUARD_PKCS11_PIN" in no_pin.stderr

    ok = run_cli(
        "allow", "--key", softhsm["uri"], "--op", "truncate", "--object", "public.t", "--once",
        env={**env, "PGGUARD_PKCS11_PIN": PIN},
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    token = ok.stdout.strip()
    assert parse_token(token).kid == kid
    conn.execute("SELECT set_config('pgguard.token', %s, false)", (token,))
    conn.execute("TRUNCATE public.t")
    assert count(conn, "SELECT count(*) FROM public.t") == 0


def test_private_key_never_written_for_pkcs11(softhsm: dict[str, Any]) -> None:
    # the key is marked sensitive and not extractable: the token refuses to hand it out
    import pkcs11

    token = pkcs11.lib(softhsm["module"]).get_token(token_label=LABEL)
    with token.open(user_pin=PIN) as session:
        priv = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label="approver")
        assert priv[pkcs11.Attribute.SENSITIVE] is True
        assert priv[pkcs11.Attribute.EXTRACTABLE] is False
        with pytest.raises(pkcs11.exceptions.PKCS11Error):
            priv[pkcs11.Attribute.PRIVATE_EXPONENT]


def test_load_public_key_rejects_encrypted_private_pem(tmp_path: Path) -> None:
    pem = approver_key("a").private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    path = tmp_path / "enc.pem"
    path.write_bytes(pem)
    with pytest.raises(errors.KeyFileError, match="give the public key file"):
        keys.load_public_key(path)
