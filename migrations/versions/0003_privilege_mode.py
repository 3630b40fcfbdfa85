"""Privilege mode: the owners pgguard took over, so uninstall can give them back.

Revision ID: 0003_privilege_mode
Revises: 0002_deploys
Create Date: 2026-11-29

In privilege mode install moves every guarded schema and what is in it to pgguard_owner. One row
per object it moved, with the owner it had (by name: oids of roles can be reused) and, for
schemas, whether PUBLIC could CREATE in it. Written by install only (first owner wins, so a
re-install never records pgguard_owner as an "original" owner); read by uninstall.
"""

from __future__ import annotations

from alembic import op

revision = "0003_privilege_mode"
down_revision = "0002_deploys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE pgguard.original_owners (
            classid        oid NOT NULL,
            objid          oid NOT NULL,
            kind           text NOT NULL,
            identity       text NOT NULL,
            owner_name     text NOT NULL,
            public_create  boolean NOT NULL DEFAULT false,
            recorded_at    timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (classid, objid)
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE pgguard.original_owners")
