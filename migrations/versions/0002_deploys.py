"""Deploy records: one row per `pgguard deploy` (or `snapshot` + `verify`).

Revision ID: 0002_deploys
Revises: 0001
Create Date: 2026-11-29

Written only by pgguard.deploy_begin() / pgguard.deploy_end() (sql/097_deploys.sql, SECURITY
DEFINER), which fill in who and when themselves; read by members of pgguard_auditor.
"""

from __future__ import annotations

from alembic import op

revision = "0002_deploys"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE pgguard.deploys (
            id                bigserial PRIMARY KEY,
            started_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
            finished_at       timestamptz,
            session_user_name text NOT NULL DEFAULT session_user,
            application_name  text DEFAULT current_setting('application_name', true),
            client_addr       inet DEFAULT inet_client_addr(),
            command           text,
            -- the restore point: where to recover to if the deploy lost data
            restore_time      timestamptz NOT NULL,
            restore_lsn       pg_lsn,
            restore_txid      bigint,
            -- 'running' until verified; then 'ok' | 'loss' | 'failed' (COMMAND failed, no loss)
            outcome           text NOT NULL DEFAULT 'running'
                              CHECK (outcome IN ('running', 'ok', 'loss', 'failed')),
            exit_code         integer,
            summary           jsonb
        );
        CREATE INDEX deploys_started_at_idx ON pgguard.deploys (started_at);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE pgguard.deploys")
