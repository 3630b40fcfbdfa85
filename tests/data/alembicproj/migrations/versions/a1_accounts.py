"""accounts and entries

Revision ID: a1
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "a1"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("legacy_code", sa.Text),
    )
    op.create_table(
        "entries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id")),
        sa.Column("cents", sa.BigInteger, nullable=False),
    )
    op.execute("INSERT INTO accounts (id, name, legacy_code) VALUES (1, 'cash', 'C1')")
    op.execute("INSERT INTO entries (id, account_id, cents) VALUES (1, 1, 500)")


def downgrade() -> None:
    op.drop_table("entries")
    op.drop_table("accounts")
