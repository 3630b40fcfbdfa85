"""End to end with the real frameworks: `pgguard check` predicts what `migrate` / `alembic` are
then refused on in a guarded database, and its allow line lets exactly that through.

The Django project (tests/data/djangoproj: a shared tenant model and a shop app) and the
Alembic project (tests/data/alembicproj) run as the app role that owns their tables, through
their own command lines, with the token only ever in PGOPTIONS as `pgguard allow -- COMMAND`
puts it there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from pgguard.check import AlembicSource, CheckOptions, DjangoSource, check

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _no_foreign_django_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other tests in the same run may leave DJANGO_SETTINGS_MODULE set: it would win over
    the test project's manage.py, as in real life."""
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)


DJANGO = DATA / "djangoproj"
ALEMBIC = DATA / "alembicproj"
PGGUARD = [sys.executable, "-m", "pgguard"]


def _opts() -> CheckOptions:
    # the guarded test template is installed with protect_empty=True (tests/conftest.py)
    return CheckOptions(protect_empty=True)


def _run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> Any:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture
def approver(tmp_path: Path, guarded_db_dsn: str) -> dict[str, str]:
    """An approver key registered in the guarded database; env for `pgguard allow`."""
    key, pub = tmp_path / "approver.pem", tmp_path / "approver.pub"
    drop = ("PGOPTIONS", "PGGUARD_TOKEN", "DJANGO_SETTINGS_MODULE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    res = _run(
        [
            *PGGUARD,
            "keys",
            "create",
            "--out",
            str(key),
            "--public-out",
            str(pub),
            "--bits",
            "2048",
            "--no-passphrase",
        ],  # fmt: skip
        env,
    )
    assert res.returncode == 0, res.stderr
    res = _run([*PGGUARD, "keys", "add", str(pub), "--dsn", guarded_db_dsn], env)
    assert res.returncode == 0, res.stderr
    env["PGGUARD_KEY_FILE"] = str(key)
    return env


def _report_file(tmp_path: Path, report: Any, name: str) -> Path:
    f = tmp_path / name
    f.write_text(json.dumps(report.to_json()))
    return f


def test_django_migrate_is_refused_as_check_predicts(
    tmp_path: Path, approver: dict[str, str], app_role: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = conninfo_to_dict(app_role.dsn)
    env = dict(approver)
    env.update(
        SHOP_DB_NAME=str(params["dbname"]),
        SHOP_DB_USER=str(params["user"]),
        SHOP_DB_PASSWORD=str(params.get("password", "")),
        SHOP_DB_HOST=str(params["host"]),
        SHOP_DB_PORT=str(params["port"]),
    )
    manage = [sys.executable, "manage.py"]
    res = _run([*manage, "migrate", "shop", "0001"], env, DJANGO)
    assert res.returncode == 0, res.stderr

    # the deploy: 0002 drops a column and a table that hold rows; check reads what is applied
    for k in ("SHOP_DB_NAME", "SHOP_DB_USER", "SHOP_DB_PASSWORD", "SHOP_DB_HOST", "SHOP_DB_PORT"):
        monkeypatch.setenv(k, env[k])
    report = check([DJANGO], _opts(), django=DjangoSource(unapplied=True))
    assert report.files == 1  # only 0002 is left to run
    predicted = [(Path(r.file).name, r.op, r.object) for r in report.refusals]
    assert predicted == [
        ("0002_remove_sku_delete_coupon.py", "drop_column", "public.shop_product.sku"),
        ("0002_remove_sku_delete_coupon.py", "drop_table", "public.shop_coupon"),
    ]
    res = _run([*manage, "migrate"], env, DJANGO)
    assert res.returncode != 0
    assert 'pgguard: refusing to drop column "public.shop_product.sku"' in res.stderr
    # approving only the first is not enough: the second is refused next
    res = _run(
        [
            *PGGUARD,
            "allow",
            "--op",
            "drop_column",
            "--object",
            "public.shop_product.sku",
            "--",
            *manage,
            "migrate",
        ],
        env,
        DJANGO,
    )
    assert res.returncode != 0
    assert 'pgguard: refusing to drop table "public.shop_coupon"' in res.stderr
    # check's allow line lets exactly that migration through
    checked = _report_file(tmp_path, report, "check.json")
    res = _run(
        [*PGGUARD, "allow", "--from-check", str(checked), "--", *manage, "migrate"], env, DJANGO
    )
    assert res.returncode == 0, res.stderr
    with app_role.connect() as conn:
        cols = conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = "
            "'shop_product'::regclass AND attnum > 0 AND NOT attisdropped"
        )
        assert "sku" not in {r[0] for r in cols}
        assert conn.execute("SELECT to_regclass('shop_coupon')").fetchone() == (None,)

    # flush and sqlflush | psql: TRUNCATE of every table, refused; check says so too
    res = _run([*manage, "flush", "--noinput", "--traceback"], env, DJANGO)  # shows the cause
    assert res.returncode != 0 and "pgguard: refusing to truncate table" in res.stderr
    res = _run([*manage, "sqlflush"], env, DJANGO)
    flush_sql = tmp_path / "flush.sql"
    flush_sql.write_text(res.stdout)
    flushed = check([flush_sql], _opts())
    assert {r.object for r in flushed.refusals} >= {
        "public.shop_product",
        "public.customers_tenant",
    }
    with app_role.connect() as conn, pytest.raises(psycopg.Error) as e:
        conn.execute(res.stdout)  # type: ignore[call-overload]
    assert e.value.sqlstate == "PGG01"

    # migrate shop zero: predicted, refused, then approved by check's line
    # (0002 backwards re-creates shop_coupon empty: refused only where empty tables are protected)
    report = check([DJANGO], _opts(), django=DjangoSource(targets=(("shop", "zero"),)))
    expected = [("drop_table", "public.shop_product")]
    if _opts().protect_empty:
        expected.insert(0, ("drop_table", "public.shop_coupon"))
    assert [(r.op, r.object) for r in report.refusals] == expected
    res = _run([*manage, "migrate", "shop", "zero"], env, DJANGO)
    assert res.returncode != 0
    assert f'pgguard: refusing to drop table "{expected[0][1]}"' in res.stderr
    checked = _report_file(tmp_path, report, "zero.json")
    res = _run(
        [*PGGUARD, "allow", "--from-check", str(checked), "--", *manage, "migrate", "shop", "zero"],
        env,
        DJANGO,
    )
    assert res.returncode == 0, res.stderr


def test_alembic_upgrade_downgrade_and_drop_all(
    tmp_path: Path, approver: dict[str, str], app_role: Any
) -> None:
    params = conninfo_to_dict(app_role.dsn)
    url = (
        f"postgresql+psycopg://{params['user']}:{params.get('password', '')}"
        f"@{params['host']}:{params['port']}/{params['dbname']}"
    )
    env = dict(approver, LEDGER_DB_URL=url)
    alembic = [sys.executable, "-m", "alembic", "-c", str(ALEMBIC / "alembic.ini")]
    res = _run([*alembic, "upgrade", "a1"], env)
    assert res.returncode == 0, res.stderr

    report = check([ALEMBIC], _opts(), alembic=AlembicSource(from_rev="a1"))
    assert [(r.op, r.object) for r in report.refusals] == [
        ("drop_column", "public.accounts.legacy_code")
    ]
    res = _run([*alembic, "upgrade", "head"], env)
    assert res.returncode != 0
    assert 'refusing to drop column "public.accounts.legacy_code"' in res.stderr
    checked = _report_file(tmp_path, report, "up.json")
    res = _run(
        [*PGGUARD, "allow", "--from-check", str(checked), "--", *alembic, "upgrade", "head"], env
    )
    assert res.returncode == 0, res.stderr

    report = check([ALEMBIC], _opts(), alembic=AlembicSource(downgrade=True))
    assert sorted(r.object for r in report.refusals) == ["public.accounts", "public.entries"]
    res = _run([*alembic, "downgrade", "base"], env)
    assert res.returncode != 0 and "pgguard: refusing to drop table" in res.stderr

    # SQLAlchemy's metadata.drop_all(): Python, not SQL; the server refuses it all the same
    from sqlalchemy import MetaData, create_engine
    from sqlalchemy.exc import DBAPIError

    engine = create_engine(url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        with pytest.raises(DBAPIError) as e:
            meta.drop_all(engine)
        assert getattr(e.value.orig, "sqlstate", None) == "PGG01"
    finally:
        engine.dispose()

    checked = _report_file(tmp_path, report, "down.json")
    res = _run(
        [*PGGUARD, "allow", "--from-check", str(checked), "--", *alembic, "downgrade", "base"], env
    )
    assert res.returncode == 0, res.stderr


def test_django_tenant_schema_follows_search_path(
    tmp_path: Path, approver: dict[str, str], app_role: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Schema-per-tenant (as django-tenants runs migrations): the session's search_path puts
    the tables in the tenant's schema; `--search-path` tells check the same."""
    tenant = app_role.create_schema("acme")
    params = conninfo_to_dict(app_role.dsn)
    env = dict(approver)
    env.update(
        SHOP_DB_NAME=str(params["dbname"]),
        SHOP_DB_USER=str(params["user"]),
        SHOP_DB_PASSWORD=str(params.get("password", "")),
        SHOP_DB_HOST=str(params["host"]),
        SHOP_DB_PORT=str(params["port"]),
        PGOPTIONS=f"-c search_path={tenant},public",
    )
    manage = [sys.executable, "manage.py"]
    res = _run([*manage, "migrate", "shop", "0001"], env, DJANGO)
    assert res.returncode == 0, res.stderr
    opts = CheckOptions(protect_empty=_opts().protect_empty, search_path=(tenant, "public"))
    for k in (
        "SHOP_DB_NAME",
        "SHOP_DB_USER",
        "SHOP_DB_PASSWORD",
        "SHOP_DB_HOST",
        "SHOP_DB_PORT",
        "PGOPTIONS",
    ):
        monkeypatch.setenv(k, env[k])
    report = check([DJANGO], opts, django=DjangoSource(unapplied=True))
    assert [(r.op, r.object) for r in report.refusals] == [
        ("drop_column", f"{tenant}.shop_product.sku"),
        ("drop_table", f"{tenant}.shop_coupon"),
    ]
    res = _run([*manage, "migrate"], env, DJANGO)
    assert res.returncode != 0
    assert f'pgguard: refusing to drop column "{tenant}.shop_product.sku"' in res.stderr
    checked = _report_file(tmp_path, report, "tenant.json")
    res = _run(
        [*PGGUARD, "allow", "--from-check", str(checked), "--", *manage, "migrate"], env, DJANGO
    )
    assert res.returncode == 0, res.stderr
