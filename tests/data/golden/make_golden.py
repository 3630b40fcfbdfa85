"""Regenerate ``vectors.json`` and ``globs.json`` from the committed test keys.

Run ``python tests/data/golden/make_golden.py`` only when the token format changes on purpose:
the golden files pin the exact bytes both verifiers (Python and SQL) must agree on, and
``tests/test_golden.py`` fails when the code no longer reproduces them. The keys are generated
only if missing (``--new-keys`` replaces them); they are TEST keys, public in this repository,
and must never be registered on a real database.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pgguard import keys, multisig, token
from pgguard.signers.keyfile import KeySigner

HERE = Path(__file__).resolve().parent
KEY_FILES = {"test-3072": "test-key-3072.pem", "test-2048": "test-key-2048.pem"}
KEY_BITS = {"test-3072": 3072, "test-2048": 2048}
T0 = 1767225600  # 2026-01-01T00:00:00Z

VECTORS: list[dict[str, Any]] = [
    {
        "name": "defaults-3072",
        "key": "test-3072",
        "issue": {
            "now": T0,
            "ttl": 600,
            "sub": "alice@build-host",
            "jti": "q3Vh0cZP1t4oX9lMBd2JwA",
        },
    },
    {
        "name": "scoped-once-3072",
        "key": "test-3072",
        "issue": {
            "now": T0 + 3600,
            "ttl": 900,
            "ops": ["drop_column", "drop_table"],
            "objects": ["app.users.legacy_*", "app.audit_?"],
            "once": True,
            "reason": "drop legacy columns (JIRA-123)",
            "db": "appdb",
            "sub": "bob@laptop",
            "jti": "3b1f0c9e2d4a7b6c8e0f1a2b3c4d5e6f",
        },
    },
    {
        "name": "uninstall-2048",
        "key": "test-2048",
        "issue": {
            "now": T0 + 86400,
            "ttl": 60,
            "ops": ["uninstall"],
            "objects": ["pgguard"],
            "reason": "décommission — café ☕",
            "db": "appdb",
            "sub": "root@db-01",
            "jti": "Zm9vYmFyYmF6cXV4cXV1eA",
        },
    },
    {
        "name": "truncate-2048",
        "key": "test-2048",
        "issue": {
            "now": T0 + 7200,
            "ttl": 3600,
            "ops": ["truncate"],
            "objects": ["staging.*", "public.import_??", 'public."odd%_name'],
            "sub": "ci@runner-7",
            "jti": "AAAAAAAAAAAAAAAAAAAAAA",
        },
    },
]

# Verification outcomes shared with the server: expect is "ok" or TokenError.reason.
CHECKS: list[dict[str, Any]] = [
    {"vector": "defaults-3072", "now": T0, "op": "drop_table", "obj": "public.t", "db": "x"},
    {"vector": "defaults-3072", "now": T0 + 599, "op": "truncate", "obj": "a.b"},
    {
        "vector": "defaults-3072",
        "now": T0 + 600,
        "op": "truncate",
        "obj": "a.b",
        "expect": "expired",
    },
    {"vector": "defaults-3072", "now": T0 - 60, "op": "drop_column", "obj": "a.b.c"},
    {
        "vector": "defaults-3072",
        "now": T0 - 61,
        "op": "drop_column",
        "obj": "a.b.c",
        "expect": "not_yet_valid",
    },
    {
        "vector": "defaults-3072",
        "now": T0,
        "op": "uninstall",
        "obj": "pgguard",
        "expect": "wrong_scope",
    },
    {
        "vector": "defaults-3072",
        "now": T0,
        "op": "drop_table",
        "obj": "public.t",
        "revoked": True,
        "expect": "revoked_key",
    },
    {
        "vector": "defaults-3072",
        "now": T0,
        "op": "drop_table",
        "obj": "public.t",
        "registered": ["test-2048"],
        "expect": "unknown_key",
    },
    {
        "vector": "scoped-once-3072",
        "now": T0 + 3600,
        "op": "drop_column",
        "obj": "app.users.legacy_email",
        "db": "appdb",
    },
    {
        "vector": "scoped-once-3072",
        "now": T0 + 3600,
        "op": "drop_column",
        "obj": "app.users.email",
        "db": "appdb",
        "expect": "wrong_scope",
    },
    {
        "vector": "scoped-once-3072",
        "now": T0 + 3600,
        "op": "drop_table",
        "obj": "app.audit_1",
        "db": "appdb",
    },
    {
        "vector": "scoped-once-3072",
        "now": T0 + 3600,
        "op": "drop_column",
        "obj": "app.audit_1.payload",
        "db": "appdb",
    },
    {
        "vector": "scoped-once-3072",
        "now": T0 + 3600,
        "op": "drop_table",
        "obj": "app.audit_12",
        "db": "appdb",
        "expect": "wrong_scope",
    },
    {
        "vector": "scoped-once-3072",
        "now": T0 + 3600,
        "op": "drop_table",
        "obj": "app.users",
        "db": "appdb",
        "expect": "wrong_scope",
    },
    {
        "vector": "scoped-once-3072",
        "now": T0 + 3600,
        "op": "truncate",
        "obj": "app.audit_1",
        "db": "appdb",
        "expect": "wrong_scope",
    },
    {
        "vector": "scoped-once-3072",
        "now": T0 + 3600,
        "op": "drop_table",
        "obj": "app.audit_1",
        "db": "otherdb",
        "expect": "wrong_database",
    },
    {
        "vector": "scoped-once-3072",
        "now": T0 + 3600,
        "op": "drop_table",
        "obj": "app.audit_1",
        "db": "AppDB",
        "expect": "wrong_database",
    },
    {
        "vector": "scoped-once-3072",
        "now": T0 + 4500,
        "op": "drop_table",
        "obj": "app.audit_1",
        "db": "otherdb",
        "expect": "expired",
    },
    {
        "vector": "uninstall-2048",
        "now": T0 + 86400,
        "op": "uninstall",
        "obj": "pgguard",
        "db": "appdb",
    },
    {
        "vector": "uninstall-2048",
        "now": T0 + 86400,
        "op": "uninstall",
        "obj": "pgguard_x",
        "db": "appdb",
        "expect": "wrong_scope",
    },
    {"vector": "truncate-2048", "now": T0 + 7200, "op": "truncate", "obj": "staging.events"},
    {"vector": "truncate-2048", "now": T0 + 7200, "op": "truncate", "obj": "public.import_01"},
    {
        "vector": "truncate-2048",
        "now": T0 + 7200,
        "op": "truncate",
        "obj": "public.import_1",
        "expect": "wrong_scope",
    },
    {"vector": "truncate-2048", "now": T0 + 7200, "op": "truncate", "obj": 'public."odd%_name'},
    {
        "vector": "truncate-2048",
        "now": T0 + 7200,
        "op": "truncate",
        "obj": 'public."oddX_name',
        "expect": "wrong_scope",
    },
    {
        "vector": "truncate-2048",
        "now": T0 + 7200,
        "op": "truncate",
        "obj": 'public."odd%Xname',
        "expect": "wrong_scope",
    },
    {
        "vector": "truncate-2048",
        "now": T0 + 7200,
        "op": "drop_table",
        "obj": "staging.events",
        "expect": "wrong_scope",
    },
]

# Glob semantics table: [pattern, object (string, or identifier list), matches?].
GLOBS: list[list[Any]] = [
    ["*", "public.t", True],
    ["*", "public.t.c", True],
    ["*", "pgguard", True],
    ["*", ["s", "a.b"], True],
    ["public.t", "public.t", True],
    ["public.t", "public.t.c", True],
    ["public.t", "public.t2", False],
    ["public.t", "public.T", False],
    ["public.t", "Public.t", False],
    ["public.t", "public", False],
    ["public.t", "other.t", False],
    ["public.*", "public.t", True],
    ["public.*", "public.t.c", True],
    ["public.*", "public", False],
    ["public.*", "publicx.t", False],
    ["*.*", "a.b", True],
    ["*.*", "a.b.c", True],
    ["*.*", "pgguard", False],
    ["*.t", "a.t", True],
    ["*.t", "a.t.c", True],
    ["*.t", "a.x.t", False],
    ["app.*.c", "app.t.c", True],
    ["app.*.c", "app.t", False],
    ["app.t.*", "app.t.c", True],
    ["app.t.*", "app.t", False],
    ["*.*.*", "a.b.c", True],
    ["*.*.*", "a.b", False],
    ["public.t?", "public.t1", True],
    ["public.t?", "public.t", False],
    ["public.t?", "public.t12", False],
    ["public.t?", "public.t1.c", True],
    ["p*c.t", "public.t", True],
    ["p*c.t", "pc.t", True],
    ["p*c.t", "public2.t", False],
    ["pub*", "public.t", False],
    ["pub*", "public", True],
    ["pgguard", "pgguard", True],
    ["pgguard", "pgguard.t", False],
    ["pgguard", "pgguardx", False],
    ["*", ["a", "b", "c", "d"], True],
    ["a.*", "a.b.c.d", False],
    ["a.b.c", "a.b.c.d", False],
    ["s.*", ["s", "a.b"], True],
    ["s.a", ["s", "a.b"], False],
    ["s.a", "s.a.b", True],
    ["s.a?b", ["s", "a.b"], True],
    ["s.%", "s.x", False],
    ["s.%", "s.%", True],
    ["s._", "s.x", False],
    ["s._", "s._", True],
    ["s.a\\b", "s.a\\b", True],
    ["s.a\\b", "s.ab", False],
    ["s.[ab]", "s.a", False],
    ["s.[ab]", "s.[ab]", True],
    ["s.*", "s.", True],
    ["s.?", "s.", False],
    ["s.??", "s.é☕", True],
    ["s.?", "s.é", True],
    ["s.Ä*", "s.ä", False],
    ["s.*x*y*", "s.axbyc", True],
    ["s.*x*y*", "s.aybxc", False],
    ["s.**", "s.t", True],
    ["s.*?", "s.", False],
    ["s.*?", "s.t", True],
]


# Multi-signature (pgg2) vectors: a v1 vector's token cosigned by other test keys, in order.
MULTI: list[dict[str, Any]] = [
    {"name": "defaults-3072+2048", "base": "defaults-3072", "cosigners": ["test-2048"]},
    {"name": "truncate-2048+3072", "base": "truncate-2048", "cosigners": ["test-3072"]},
]


def _key(name: str, new: bool) -> Any:
    path = HERE / KEY_FILES[name]
    if new or not path.exists():
        keys.write_private_key(path, keys.generate_private_key(KEY_BITS[name]), overwrite=True)
    return keys.load_private_key(path)


def build(new_keys: bool = False) -> tuple[dict[str, Any], list[list[Any]]]:
    """The golden documents, as dicts (written by :func:`main`, compared by the tests)."""
    private = {name: _key(name, new_keys) for name in KEY_FILES}
    out: dict[str, Any] = {
        "comment": "pgguard token format v1 golden vectors; generated by make_golden.py. "
        "TEST KEYS ONLY: never register them on a real database.",
        "keys": {},
        "vectors": [],
        "checks": [],
    }
    for name, key in private.items():
        row = keys.public_numbers_for_db(key)
        out["keys"][name] = {
            "file": KEY_FILES[name],
            "kid": row.kid,
            "bits": row.bits,
            "k": row.k,
            "n": row.n,
            "e": row.e,
        }
    for vec in VECTORS:
        tok = token.issue_token(private[vec["key"]], **vec["issue"])
        parsed = token.parse_token(tok)
        payload = tok.split(".")[2]
        out["vectors"].append(
            {
                **vec,
                "claims": parsed.claims.to_json(),
                "payload_json": token.b64url_decode(payload).decode("ascii"),
                "signing_input": parsed.signing_input.decode("ascii"),
                "token": tok,
            }
        )
    for check in CHECKS:
        out["checks"].append({"expect": "ok", "db": None, "revoked": False, **check})
    by_name = {v["name"]: v for v in out["vectors"]}
    out["multi"] = []
    for m in MULTI:
        tok = by_name[m["base"]]["token"]
        for cosigner in m["cosigners"]:
            tok = multisig.cosign(tok, KeySigner(private[cosigner]))
        out["multi"].append({**m, "kids": list(multisig.split_token(tok).kids), "token": tok})
    return out, GLOBS


def main() -> None:
    """Write the golden files next to this script."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--new-keys", action="store_true", help="replace the test keys")
    args = parser.parse_args()
    vectors, globs = build(args.new_keys)
    (HERE / "vectors.json").write_text(json.dumps(vectors, indent=2, ensure_ascii=False) + "\n")
    (HERE / "globs.json").write_text(
        "[\n" + ",\n".join("  " + json.dumps(g, ensure_ascii=False) for g in globs) + "\n]\n"
    )


if __name__ == "__main__":
    main()
