"""`pgguard check` without a database: parsing, state following, reports, the CLI, --from-check.

What the server does with the same statements is asserted in test_check_agreement.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from pgguard.check import AlembicSource, CheckOptions, DjangoSource, check, check_sql
from pgguard.check.fromcheck import scope_from_check
from pgguard.check.names import ident_path, shell_quote
from pgguard.cli import cli
from pgguard.errors import UsageError

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _no_foreign_django_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other tests in the same run may leave DJANGO_SETTINGS_MODULE set: it would win over
    the test project's manage.py, as in real life."""
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)


def refused(sql: str, **opts: object) -> list[tuple[int, str, str]]:
    report = check_sql([("m.sql", sql)], CheckOptions(**opts))  # type: ignore[arg-type]
    return [(r.line, r.op, r.object) for r in report.refusals]


def test_old_tables_are_refused_new_ones_in_the_same_transaction_are_not() -> None:
    sql = """
    BEGIN;
    CREATE TABLE scratch (a int);
    DROP TABLE scratch;
    COMMIT;
    DROP TABLE customers;
    ALTER TABLE orders DROP COLUMN note;
    TRUNCATE ONLY audit;
    """
    assert refused(sql) == [
        (6, "drop_table", "public.customers"),
        (7, "drop_column", "public.orders.note"),
        (8, "truncate", "public.audit"),
    ]


def test_a_table_made_in_an_earlier_transaction_with_rows_is_refused() -> None:
    sql = "CREATE TABLE t (a int);\nINSERT INTO t VALUES (1);\nDROP TABLE t;\n"
    assert refused(sql) == [(3, "drop_table", "public.t")]


def test_empty_table_rule_and_protect_empty() -> None:
    sql = "CREATE TABLE t (a int, b int);\nALTER TABLE t DROP COLUMN b;\nTRUNCATE t;\nDROP TABLE t;"
    assert refused(sql) == []
    assert refused(sql, protect_empty=True) == [
        (2, "drop_column", "public.t.b"),
        (3, "truncate", "public.t"),
        (4, "drop_table", "public.t"),
    ]
    # anything check cannot see into may have written rows
    for writer in (
        "DO $$ BEGIN END $$",
        "SELECT load_fixtures()",
        "INSERT INTO other VALUES (1)",
        "EXECUTE prepared_insert",
        "\\copy t from 'rows.csv'",
        "INSERT INTO logged (a) VALUES (1)",  # its DEFAULT runs code that may write anywhere
    ):
        pre = "CREATE TABLE logged (a int, b int DEFAULT audit_write());\n"
        assert refused(f"{pre}CREATE TABLE t (a int);\n{writer};\nDROP TABLE t;") == [
            (4, "drop_table", "public.t")
        ], writer


def test_rollback_and_savepoints_undo_what_they_undo() -> None:
    sql = """
    CREATE TABLE keep (a int);
    BEGIN;
    CREATE TABLE gone (a int);
    ROLLBACK;
    DROP TABLE gone;
    DROP TABLE keep;
    """
    # the rolled-back CREATE is undone: `gone` is an unknown (old) table again
    assert refused(sql) == [(6, "drop_table", "public.gone")]
    # a rolled-back INSERT leaves tuples in the heap: not empty any more for the server
    sql = """
    CREATE TABLE keep (a int);
    BEGIN;
    INSERT INTO keep VALUES (1);
    ROLLBACK;
    DROP TABLE keep;
    """
    assert refused(sql) == [(6, "drop_table", "public.keep")]
    sql = """
    BEGIN;
    CREATE TABLE s (a int);
    COMMIT;
    BEGIN;
    SAVEPOINT p;
    CREATE TABLE s2 (a int);
    ROLLBACK TO SAVEPOINT p;
    COMMIT;
    DROP TABLE s;
    DROP TABLE s2;
    """
    assert refused(sql) == [(11, "drop_table", "public.s2")]


def test_temporary_tables_shadow_and_are_never_refused() -> None:
    sql = "CREATE TEMP TABLE users (a int);\nDROP TABLE users;\nDROP TABLE users;\n"
    # the first DROP takes the temporary table, the second the real one
    assert refused(sql) == [(3, "drop_table", "public.users")]


def test_cascades_renames_search_path_and_quoting() -> None:
    sql = """
    CREATE SCHEMA rep;
    CREATE TABLE rep.daily (a int);
    INSERT INTO rep.daily VALUES (1);
    DROP SCHEMA rep CASCADE;
    DROP SCHEMA legacy CASCADE;
    ALTER TABLE "Users" RENAME TO people;
    DROP TABLE people;
    SET search_path TO tenant1, public;
    TRUNCATE "Select";
    """
    report = check_sql([("m.sql", sql)])
    got = [(r.op, r.object, r.pattern) for r in report.refusals]
    assert got == [
        ("drop_table", "rep.daily", "rep.daily"),
        ("drop_table", "legacy.*", "legacy.*"),
        ("drop_table", "public.people", "public.people"),
        ("truncate", 'tenant1."Select"', "tenant1.Select"),
    ]
    assert report.refusals[2].note and "rename" in report.refusals[2].note
    assert report.allow == (
        "pgguard allow --op drop_table --op truncate --object 'legacy.*' --object public.people"
        " --object rep.daily --object tenant1.Select"
    )


def test_excluded_schemas_and_search_path_option() -> None:
    sql = "DROP TABLE scratch.t;\nTRUNCATE t;"
    assert refused(sql, exclude_schemas=("scratch",), search_path=("app",)) == [
        (2, "truncate", "app.t")
    ]


def test_inheritance_partitions_and_fk_cascade() -> None:
    sql = """
    CREATE TABLE parent (id int PRIMARY KEY, color text);
    CREATE TABLE child (extra int) INHERITS (parent);
    CREATE TABLE ref (p int REFERENCES parent (id));
    INSERT INTO child VALUES (1, 'red', 2);
    INSERT INTO ref VALUES (1);
    ALTER TABLE parent DROP COLUMN color;
    TRUNCATE parent CASCADE;
    """
    assert refused(sql) == [
        (7, "drop_column", "public.parent.color"),
        (7, "drop_column", "public.child.color"),
        # the parent's own heap holds no row: its own TRUNCATE trigger lets it through
        (8, "truncate", "public.child"),
        (8, "truncate", "public.ref"),
    ]


def test_types_dropped_with_cascade_take_their_columns() -> None:
    sql = """
    CREATE TYPE mood AS ENUM ('a');
    CREATE TABLE f (m mood);
    INSERT INTO f VALUES ('a');
    DROP TYPE mood CASCADE;
    DROP TYPE old_type CASCADE;
    """
    assert refused(sql) == [(5, "drop_column", "public.f.m"), (6, "drop_column", "*.*.*")]


def test_guard_trigger_tampering_and_unlogged() -> None:
    # SET UNLOGGED has no empty-table exemption; a table made in the same transaction has
    assert refused("CREATE TABLE e (a int);\nALTER TABLE e SET UNLOGGED;") == [
        (2, "unlogged", "public.e")
    ]
    assert refused("BEGIN;\nCREATE TABLE e (a int);\nALTER TABLE e SET UNLOGGED;\nCOMMIT;") == []
    # an unlogged table is not made unlogged again; SET LOGGED makes the next one count
    sql = "CREATE UNLOGGED TABLE u (a int);\nALTER TABLE u SET UNLOGGED;\nALTER TABLE u SET LOGGED;"
    assert refused(sql + "\nALTER TABLE u SET UNLOGGED;") == [(4, "unlogged", "public.u")]
    sql = """
    ALTER TABLE t DISABLE TRIGGER ALL;
    DROP TRIGGER pgguard_truncate_guard ON t;
    ALTER TABLE t SET UNLOGGED;
    """
    assert refused(sql) == [
        (2, "uninstall", "public.t"),
        (3, "uninstall", "public.t"),
        (4, "unlogged", "public.t"),
    ]


def test_unparsed_statements_are_reported_and_the_rest_still_checked() -> None:
    sql = "-- é é é\nSELECT 'é';\nDROP TABEL x;\n\\connect other\nSELECT 1;\nDROP TABLE y;\n"
    report = check_sql([("m.sql", sql)])
    assert [(u.line, u.error) for u in report.unparsed] == [
        (3, 'syntax error at or near "TABEL"'),
        (4, "not checked: psql meta-command"),
    ]
    assert [(r.line, r.object) for r in report.refusals] == [(6, "public.y")]


def test_names_match_the_servers_spelling() -> None:
    assert ident_path("public", "users") == "public.users"
    assert ident_path("public", "User", "select") == 'public."User"."select"'
    assert ident_path("s", "name", "a b") == 's.name."a b"'  # `name` is unreserved
    assert shell_quote("public.x") == "public.x"
    assert shell_quote("public.User's") == "'public.User'\"'\"'s'"


def test_directories_run_in_version_order(tmp_path: Path) -> None:
    (tmp_path / "V10__drop.sql").write_text("DROP TABLE t;\n")
    (tmp_path / "V2__create.sql").write_text("CREATE TABLE t (a int);\n")
    report = check([tmp_path])
    assert report.files == 2 and report.statements == 2
    assert report.refusals == ()  # created (empty) by V2, dropped by V10


def test_alembic_project_maps_statements_to_revision_lines() -> None:
    proj = DATA / "alembicproj"
    report = check([proj])
    assert report.refusals == ()  # one transaction: nothing old is touched
    report = check([proj], alembic=AlembicSource(from_rev="a1"))
    assert [(Path(r.file).name, r.line, r.op, r.object) for r in report.refusals] == [
        ("b2_drop_legacy.py", 17, "drop_column", "public.accounts.legacy_code")
    ]
    report = check([proj / "alembic.ini"], alembic=AlembicSource(downgrade=True))
    assert [(Path(r.file).name, r.line, r.object) for r in report.refusals] == [
        ("a1_accounts.py", 32, "public.entries"),
        ("a1_accounts.py", 33, "public.accounts"),
    ]


def test_django_project_in_plan_order_with_runpython_not_checked() -> None:
    proj = DATA / "djangoproj"
    report = check([proj / "manage.py"])
    assert [(Path(r.file).name, r.line, r.op, r.object) for r in report.refusals] == [
        ("0002_remove_sku_delete_coupon.py", 8, "drop_column", "public.shop_product.sku"),
        ("0002_remove_sku_delete_coupon.py", 9, "drop_table", "public.shop_coupon"),
    ]
    assert [(Path(u.file).name, u.line) for u in report.unparsed] == [("0001_initial.py", 40)]
    assert "Python code" in report.unparsed[0].error
    report = check([proj], django=DjangoSource(targets=(("shop", "zero"),)))
    assert [(r.op, r.object) for r in report.refusals] == [("drop_table", "public.shop_product")]


def test_cli_json_shape_and_exit_codes(tmp_path: Path) -> None:
    bad = tmp_path / "V1__bad.sql"
    bad.write_text('DROP TABLE "Old";\nALTER TABLE t DROP COLUMN c;\n')
    good = tmp_path / "ok.sql"
    good.write_text("CREATE TABLE x (a int);\n")
    runner = CliRunner()
    res = runner.invoke(cli, ["check", str(bad), "--json", "--once", "--db", "shop"])
    assert res.exit_code == 1, res.output
    data = json.loads(res.stdout)
    assert set(data) == {"files", "statements", "refusals", "unparsed", "allow"}
    assert data["files"] == 1 and data["statements"] == 2 and data["unparsed"] == []
    assert data["refusals"][0] == {
        "file": str(bad),
        "line": 1,
        "op": "drop_table",
        "object": 'public."Old"',
        "statement": 'DROP TABLE "Old"',
    }
    assert data["allow"] == (
        "pgguard allow --op drop_column --op drop_table --object public.Old"
        " --object public.t.c --once --db shop"
    )
    res = runner.invoke(cli, ["check", str(good)])
    assert res.exit_code == 0 and "nothing here will be refused" in res.output
    assert runner.invoke(cli, ["check", str(tmp_path / "missing.sql")]).exit_code == 2
    res = runner.invoke(cli, ["check", str(good), "--django-target", "a b c"])
    assert res.exit_code == 2
    # a path that holds nothing to check must not pass a CI step silently
    (tmp_path / "empty").mkdir()
    res = runner.invoke(cli, ["check", str(tmp_path / "empty")])
    assert res.exit_code == 2 and "nothing to check" in res.stderr
    (tmp_path / "settings.py").write_text("X = 1\n")
    assert runner.invoke(cli, ["check", str(tmp_path / "settings.py")]).exit_code == 2


def test_github_annotations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "m.sql"
    f.write_text("SELECT 1;\nDROP TABLE t;\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    res = CliRunner().invoke(cli, ["check", str(f)])
    assert f"::error file={f},line=2::pgguard will refuse drop_table of public.t" in res.stderr


def test_allow_from_check_signs_exactly_the_reported_scope(tmp_path: Path) -> None:
    from pgguard import keys
    from pgguard.token import verify_token

    sql = tmp_path / "m.sql"
    sql.write_text("DROP TABLE a;\nALTER TABLE b DROP COLUMN c;\n")
    runner = CliRunner()
    report = tmp_path / "check.json"
    res = runner.invoke(cli, ["check", str(sql), "--json", "--db", "shop"])
    report.write_text(res.stdout)
    key_file = tmp_path / "approver.pem"
    assert (
        runner.invoke(
            cli, ["keys", "create", "--out", str(key_file), "--bits", "2048", "--no-passphrase"]
        ).exit_code
        == 0
    )
    res = runner.invoke(cli, ["allow", "--from-check", str(report), "--key-file", str(key_file)])
    assert res.exit_code == 0, res.output
    token = res.stdout.strip()
    pub = keys.load_private_key(key_file).public_key()
    claims = verify_token(token, keys={keys.kid(pub): pub})
    assert sorted(claims.ops) == ["drop_column", "drop_table"]
    assert sorted(claims.obj) == ["public.a", "public.b.c"]
    assert claims.db == "shop" and claims.once is False
    # nothing to approve, not a report, or --op on top: usage errors
    empty = tmp_path / "empty.json"
    empty.write_text(
        json.dumps({"files": 0, "statements": 0, "refusals": [], "unparsed": [], "allow": None})
    )
    assert scope_from_check(empty) is None
    for args in (
        ["--from-check", str(empty)],
        ["--from-check", str(sql)],
        ["--from-check", str(report), "--op", "truncate"],
    ):
        res = runner.invoke(cli, ["allow", *args, "--key-file", str(key_file)])
        assert res.exit_code == 2, (args, res.output)
    with pytest.raises(UsageError):
        scope_from_check(tmp_path / "nope.json")
    assert os.environ.get("PGGUARD_TOKEN") is None


def test_readme_documents_the_json_shape() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme[readme.index("### `check --json`") :]
    for key in (
        "files",
        "statements",
        "refusals",
        "unparsed",
        "allow",
        "line",
        "op",
        "object",
        "statement",
        "error",
    ):
        assert f'"{key}"' in section, key


def test_a_broken_alembic_project_is_a_usage_error(tmp_path: Path) -> None:
    import shutil

    proj = tmp_path / "proj"
    shutil.copytree(DATA / "alembicproj", proj)
    with (proj / "migrations" / "env.py").open("a") as f:
        f.write("raise RuntimeError('env.py is broken')\n")
    res = CliRunner().invoke(cli, ["check", str(proj)])
    assert res.exit_code == 2
    assert "RuntimeError: env.py is broken" in res.stderr
