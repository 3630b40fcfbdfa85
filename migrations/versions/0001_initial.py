"""pgguard's own tables: installation, settings, keys, audit, spent tokens, bookkeeping.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Plain SQL on purpose: these tables are read by plpgsql in sql/, and the SQL is the clearest
statement of what the server relies on. Privileges are set by sql/900_privileges.sql, which
runs after every migration.
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE pgguard.installation (
            singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            package_version text NOT NULL,
            installed_at    timestamptz NOT NULL DEFAULT now(),
            installed_by    text NOT NULL DEFAULT session_user,
            upgraded_at     timestamptz,
            -- digest of the sql/ files last applied: equal means a re-install has nothing to do
            sql_sha256      text NOT NULL,
            -- NULL while existing tables are still being given their TRUNCATE guard
            completed_at    timestamptz
        );

        CREATE TABLE pgguard.settings (
            name  text PRIMARY KEY,
            value jsonb NOT NULL
        );

        CREATE TABLE pgguard.keys (
            kid        text PRIMARY KEY CHECK (kid ~ '^[0-9a-f]{16}$'),
            n          numeric NOT NULL,
            e          integer NOT NULL CHECK (e = 65537),
            k          integer NOT NULL CHECK (k >= 256),
            bits       integer NOT NULL,
            public_pem text NOT NULL,
            comment    text,
            added_at   timestamptz NOT NULL DEFAULT now(),
            added_by   text NOT NULL DEFAULT session_user,
            revoked_at timestamptz,
            revoked_by text
        );

        CREATE TABLE pgguard.audit (
            id               bigserial PRIMARY KEY,
            at               timestamptz NOT NULL DEFAULT clock_timestamp(),
            kind             text NOT NULL CHECK (kind IN ('override', 'refusal')),
            op               text NOT NULL,
            object           text NOT NULL,
            command_tag      text,
            session_user_name text NOT NULL DEFAULT session_user,
            application_name text DEFAULT current_setting('application_name', true),
            client_addr      inet DEFAULT inet_client_addr(),
            xid              bigint,
            jti              text,
            kid              text,
            sub              text,
            why              text,
            detail           text
        );
        CREATE INDEX audit_at_idx ON pgguard.audit (at);

        CREATE TABLE pgguard.spent_tokens (
            jti     text PRIMARY KEY,
            kid     text NOT NULL,
            xid     bigint NOT NULL,
            used_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            exp     timestamptz NOT NULL
        );

        -- tables created by the transaction xid: the only exemption a session gets without a
        -- token. Written only by pgguard.note_created_tables(), which reads the server's own
        -- pg_event_trigger_ddl_commands() and so cannot be called to fake an entry.
        CREATE TABLE pgguard.created_tables (
            xid   bigint NOT NULL,
            relid oid NOT NULL,
            PRIMARY KEY (xid, relid)
        );

        -- when each partition or inheritance child was put under its current parent, so a
        -- token for the parent covers only the children it had when the token was issued:
        -- attaching a table under an approved parent must not stretch the approval to it.
        -- Written only by pgguard.note_attachments() (server event-trigger data). No row: the
        -- link predates pgguard.
        CREATE TABLE pgguard.attachments (
            relid       oid NOT NULL,
            parent      oid NOT NULL,
            attached_at timestamptz NOT NULL,
            PRIMARY KEY (relid, parent)
        );

        -- the name each table (and each of its columns) had when last seen, and when a table or
        -- column got its current name: a token issued before a rename or schema move does not
        -- cover the object under its new name (else renaming a table to match an approved
        -- glob would stretch the approval). Written only from event-trigger data.
        CREATE TABLE pgguard.relation_names (
            relid oid PRIMARY KEY,
            path  text NOT NULL,
            cols  text[] NOT NULL
        );
        CREATE TABLE pgguard.renames (
            relid      oid NOT NULL,
            attnum     smallint NOT NULL,  -- 0: the table itself (name or schema)
            renamed_at timestamptz NOT NULL,
            PRIMARY KEY (relid, attnum)
        );

        -- one number per refusal, drawn even though the refused transaction rolls back
        -- (sequences are not transactional): log lines carry it, so `pgguard audit` can tell
        -- the guard's own lines from ones any session could RAISE LOG itself
        CREATE SEQUENCE pgguard.refusal_seq;

        -- signatures already verified, so a statement touching 1,000 tables verifies once
        CREATE TABLE pgguard.verified_tokens (
            token_sha256 bytea PRIMARY KEY,
            kid          text NOT NULL,
            claims       jsonb NOT NULL,
            exp          timestamptz NOT NULL
        );
        CREATE INDEX verified_tokens_exp_idx ON pgguard.verified_tokens (exp);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP SEQUENCE pgguard.refusal_seq;
        DROP TABLE pgguard.renames, pgguard.relation_names;
        DROP TABLE pgguard.attachments;
        DROP TABLE pgguard.verified_tokens, pgguard.created_tables, pgguard.spent_tokens,
                   pgguard.audit, pgguard.keys, pgguard.settings, pgguard.installation;
        """
    )
