"""Create customers.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("balance", sa.Numeric(12, 2), nullable=False),
        sa.UniqueConstraint("email", name="uq_customers_email"),
        mysql_charset="utf8mb4",
    )


def downgrade() -> None:
    op.drop_table("customers")
