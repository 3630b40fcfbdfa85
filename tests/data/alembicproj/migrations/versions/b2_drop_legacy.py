"""drop accounts.legacy_code; a scratch table made and dropped in one revision

Revision ID: b2
Revises: a1
"""

import sqlalchemy as sa
from alembic import op

revision = "b2"
down_revision = "a1"


def upgrade() -> None:
    op.create_table("import_scratch", sa.Column("line", sa.Text))
    op.drop_table("import_scratch")
    op.drop_column("accounts", "legacy_code")


def downgrade() -> None:
    op.add_column("accounts", sa.Column("legacy_code", sa.Text))
