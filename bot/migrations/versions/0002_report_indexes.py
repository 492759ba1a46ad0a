"""report indexes: campaigns by (org, form, period) for ledgers, stats and compliance

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""
from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Ledgers, /stats, /missing and /compliance select one form's campaigns of some branches in a period
    # (org_id IN … AND form_key = … AND period LIKE '2026-%'), then join responses on their unique
    # (campaign_id, member_id) key.
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index("ix_campaigns_org_form_period", ["org_id", "form_key", "period"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index("ix_campaigns_org_form_period")
