"""Organization links: CRM organization ids and the Genesys ExternalOrganization records
syncd linked them to (externalcontacts: contacts reference organizations by Genesys id).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-08 04:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from syncd.store.schema import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organization_links",
        sa.Column("organization_id", sa.String(length=255), nullable=False),
        sa.Column("genesys_id", sa.String(length=255), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("intent_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "state IN ('synced', 'pending_create')", name=op.f("ck_organization_links_state")
        ),
        sa.CheckConstraint(
            "origin IN ('created', 'found')", name=op.f("ck_organization_links_origin")
        ),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_organization_links")),
        sa.UniqueConstraint("genesys_id", name=op.f("uq_organization_links_genesys_id")),
    )


def downgrade() -> None:
    op.drop_table("organization_links")
