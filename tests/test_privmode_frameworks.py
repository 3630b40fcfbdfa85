"""Frameworks route their schema changes through the executor: Django (its schema editor) and
Alembic (`pgguard.sqlalchemy.route_ddl` in env.py), as the app role of a privilege-mode
install. Real Django and Alembic projects, real subprocesses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from guardhelp import claims, payload_of, private_key, register_key, sign
from privhelp import Platform, make_platform, owner_of

DATA = Path(__file__).parent / "data"

ENV_PY = """\
import os

from alembic import context
from sqlalchemy import create_engine, pool

from pgguard.sqlalchemy import apply_env_token, route_ddl


def run_migrations_online() -> None:
    engine = create_engine(os.environ["LEDGER_DB_URL"], poolclass=pool.NullPool)
    with engine.connect() as connection:
        apply_env_token(connection)
        route_ddl(connection)  # neither helper leaves a transaction open
        context.configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
"""


@pytest.fixture
def platform(pg_server: Any, make_db: Any) -> Iterator[Platform]:
    p = make_platform(pg_server, make_db)
    p.install()
    yield p
    p.close()


def _sa_url(p: Platform) -> str:
    from psycopg.conninfo import conninfo_to_dict

    d = conninfo_to_dict(p.server.dsn(p.dbname, p.app, p.app_password))
    return (
        f"postgresql+psycopg://{d['user']}:{d['password']}@{d['host']}:{d.get('port', 5432)}"
        f"/{d['dbname']}"
    )


def test_alembic_through_the_executor(platform: Platform, tmp_path: Path) -> None:
    proj = tmp_path / "ledger"
    shutil.copytree(DATA / "alembicproj", proj)
    (proj / "migrations" / "env.py").write_text(ENV_PY)
    env = {**os.environ, "LEDGER_DB_URL": _sa_url(platform)}
    env.pop("PGGUARD_TOKEN", None)
    alembic = [sys.executable, "-m", "alembic", "-c", str(proj / "alembic.ini")]

    res = subprocess.run([*alembic, "upgrade", "a1"], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    app = platform.connect("app")
    for rel in ("public.accounts", "public.entries", "public.alembic_version"):
        assert owner_of(app, rel) == "pgguard_owner", rel

    res = subprocess.run([*alembic, "upgrade", "head"], env=env, capture_output=True, text=True)
    assert res.returncode != 0
    assert 'refusing to drop column "public.accounts.legacy_code"' in res.stderr
    assert app.execute("SELECT version_num FROM public.alembic_version").fetchone() == ("a1",)

    kid = register_key(platform.admin(), private_key(0))
    tok = sign(
        private_key(0),
        kid,
        payload_of(claims(ops=["drop_column"], obj=["public.accounts.legacy_code"])),
    )
    res = subprocess.run(
        [*alembic, "upgrade", "head"],
        env={**env, "PGGUARD_TOKEN": tok},
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert app.execute("SELECT version_num FROM public.alembic_version").fetchone() == ("b2",)
    res = subprocess.run([*alembic, "downgrade", "base"], env=env, capture_output=True, text=True)
    assert res.returncode != 0 and "pgguard: refusing to drop table" in res.stderr
    assert app.execute("SELECT count(*) FROM public.entries").fetchone() == (1,)


def _django_project(p: Platform, tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    proj = tmp_path / "shop"
    shutil.copytree(DATA / "djangoproj", proj)
    settings = proj / "shopsite" / "settings.py"
    settings.write_text(
        settings.read_text().replace(
            '"ENGINE": "django.db.backends.postgresql"', '"ENGINE": "pgguard.django"'
        )
    )
    from psycopg.conninfo import conninfo_to_dict

    d = conninfo_to_dict(p.server.dsn(p.dbname, p.app, p.app_password))
    env = {
        **os.environ,
        "SHOP_DB_NAME": p.dbname,
        "SHOP_DB_USER": p.app,
        "SHOP_DB_PASSWORD": p.app_password or "",
        "SHOP_DB_HOST": str(d["host"]),
        "SHOP_DB_PORT": str(d.get("port", 5432)),
    }
    env.pop("PGOPTIONS", None)
    return [sys.executable, str(proj / "manage.py")], env


def test_django_migrations_through_the_executor(platform: Platform, tmp_path: Path) -> None:
    manage, env = _django_project(platform, tmp_path)

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*manage, *args], env={**env, **extra}, capture_output=True, text=True, timeout=300
        )

    res = run("migrate", "shop", "0001")  # additive, with data (RunPython): no token
    assert res.returncode == 0, res.stderr
    app = platform.connect("app")
    for rel in ("public.shop_product", "public.shop_coupon", "public.django_migrations"):
        assert owner_of(app, rel) == "pgguard_owner", rel
    app.execute("INSERT INTO public.shop_coupon (code) VALUES ('X')")
    coupons = app.execute("SELECT count(*) FROM public.shop_coupon").fetchone()
    products = app.execute("SELECT count(*) FROM public.shop_product").fetchone()

    res = run("migrate")  # RemoveField + DeleteModel
    assert res.returncode != 0
    assert "pgguard: refusing to" in res.stderr
    assert app.execute("SELECT count(*) FROM public.shop_coupon").fetchone() == coupons

    res = run("flush", "--no-input")
    assert res.returncode != 0
    assert app.execute("SELECT count(*) FROM public.shop_product").fetchone() == products

    kid = register_key(platform.admin(), private_key(0))
    tok = sign(
        private_key(0),
        kid,
        payload_of(
            claims(
                ops=["drop_table", "drop_column"],
                obj=["public.shop_coupon", "public.shop_product.sku"],
            )
        ),
    )
    res = run("migrate", PGOPTIONS=f"-c pgguard.token={tok}")
    assert res.returncode == 0, res.stderr
    assert app.execute("SELECT to_regclass('public.shop_coupon')").fetchone() == (None,)

    res = run("migrate", "shop", "zero")
    assert res.returncode != 0 and "pgguard: refusing to" in res.stderr
    assert app.execute("SELECT count(*) FROM public.shop_product").fetchone() == products
