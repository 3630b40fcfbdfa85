"""Privilege mode takes every ownable object of a guarded schema, not only tables, functions
and types: operators, collations, conversions, text search configurations and dictionaries,
statistics objects. Their owner could otherwise drop them with CASCADE and take the columns
and indexes built on them along. Moved at install, reported by status when they drift, given
back at uninstall.
"""

from __future__ import annotations

from typing import Any

import psycopg
from guardhelp import claims, payload_of, private_key, register_key, sign
from privhelp import ddl_error, error_of, make_platform
from psycopg import sql

from pgguard.health import status
from pgguard.removal import uninstall

OBJECTS = """
CREATE FUNCTION public.eqf(int, int) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 = $2';
CREATE OPERATOR public.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = public.eqf);
CREATE COLLATION public.plain FROM "C";
CREATE CONVERSION public.latin_up FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8;
CREATE TEXT SEARCH CONFIGURATION public.words (COPY = pg_catalog.english);
CREATE TEXT SEARCH DICTIONARY public.bare (TEMPLATE = pg_catalog.simple);
CREATE STATISTICS public.tenant_stats ON id, name FROM public.tenants;
ALTER TABLE public.tenants ADD COLUMN label text COLLATE public.plain;
"""
# (kind as ownership_drift names it, what ALTER ... OWNER takes, catalog, owner column, name)
KINDS = [
    ("operator", "OPERATOR public.===(integer, integer)", "pg_operator", "oprowner", "==="),
    ("collation", "COLLATION public.plain", "pg_collation", "collowner", "plain"),
    ("conversion", "CONVERSION public.latin_up", "pg_conversion", "conowner", "latin_up"),
    (
        "text search configuration",
        "TEXT SEARCH CONFIGURATION public.words",
        "pg_ts_config",
        "cfgowner",
        "words",
    ),
    (
        "text search dictionary",
        "TEXT SEARCH DICTIONARY public.bare",
        "pg_ts_dict",
        "dictowner",
        "bare",
    ),
    (
        "statistics",
        "STATISTICS public.tenant_stats",
        "pg_statistic_ext",
        "stxowner",
        "tenant_stats",
    ),
]
NAME_COLUMN = {
    "pg_operator": "oprname",
    "pg_collation": "collname",
    "pg_conversion": "conname",
    "pg_ts_config": "cfgname",
    "pg_ts_dict": "dictname",
    "pg_statistic_ext": "stxname",
}


def _owner(conn: psycopg.Connection[Any], catalog: str, column: str, name: str) -> str:
    row = conn.execute(
        sql.SQL("SELECT {}::regrole::text FROM {} WHERE {} = %s").format(
            sql.Identifier(column),
            sql.Identifier("pg_catalog", catalog),
            sql.Identifier(NAME_COLUMN[catalog]),
        ),
        (name,),
    ).fetchone()
    assert row is not None, name
    return str(row[0])


def test_other_object_kinds(pg_server: Any, make_db: Any) -> None:
    p = make_platform(pg_server, make_db)
    try:
        own = p.connect("owner")
        own.execute(OBJECTS)
        p.install()
        for _kind, _alter, catalog, column, name in KINDS:
            assert _owner(own, catalog, column, name) == "pgguard_owner", name
        assert status(own).healthy, status(own).problems
        # the installing credential no longer owns the collation: no CASCADE through it
        e = error_of(own, "DROP COLLATION public.plain CASCADE")
        assert e.sqlstate == "42501"
        app = p.connect("app", autocommit=False)
        e = ddl_error(app, "DROP COLLATION public.plain CASCADE")
        assert e.sqlstate == "PGG01" and 'drop column "public.tenants.label"' in str(e)

        # drift is reported, and a re-install takes the object back
        admin = p.admin()
        admin.autocommit = True
        for kind, alter, _catalog, _column, _name in KINDS:
            admin.execute(
                sql.SQL("ALTER {} OWNER TO {}").format(sql.SQL(alter), sql.Identifier(p.owner))
            )
            drift = {r[0] for r in own.execute("SELECT kind FROM pgguard.ownership_drift()")}
            assert kind in drift, (kind, drift)
            st = status(own)
            assert not st.healthy and any("not owned by pgguard_owner" in x for x in st.problems)
        assert {r[0] for r in admin.execute("SELECT kind FROM pgguard.ownership_drift()")} == {
            k[0] for k in KINDS
        }
        p.install()
        for _kind, _alter, catalog, column, name in KINDS:
            assert _owner(own, catalog, column, name) == "pgguard_owner", name

        # uninstall gives them back to the credential that had them
        key = private_key(0)
        kid = register_key(admin, key)
        tok = sign(key, kid, payload_of(claims(ops=["uninstall"], obj=["pgguard"])))
        app.rollback()
        uninstall(own, token=tok)
        for _kind, _alter, catalog, column, name in KINDS:
            assert _owner(own, catalog, column, name) == p.owner, name
    finally:
        p.close()
