"""The empty-table rule: why an override was granted, and which tables were empty at a drop's start.

Revision ID: 0004_empty_rule
Revises: 0003_privilege_mode
"""

from __future__ import annotations

from alembic import op

revision = "0004_empty_rule"
down_revision = "0003_privilege_mode"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- NULL: approved by the token in jti; 'empty': allowed without a token because the
        -- table held no row (the empty-table rule)
        ALTER TABLE pgguard.audit ADD COLUMN reason text;

        -- Tables that held no row when a DROP statement of transaction xid started (tag: that
        -- statement's command tag). sql_drop cannot measure a dropped table (its catalog rows
        -- are gone by then), so the ddl_command_start trigger measures first. Written only by
        -- that trigger's function, which measures for itself: a session cannot call it.
        CREATE TABLE pgguard.empty_at_start (
            xid   bigint NOT NULL,
            tag   text NOT NULL,
            relid oid NOT NULL,
            PRIMARY KEY (xid, tag, relid)
        );
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE pgguard.empty_at_start;
        ALTER TABLE pgguard.audit DROP COLUMN reason;
        """
    )
