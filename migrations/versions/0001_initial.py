"""Initial schema: mirror, change log (filled by triggers), links, ledger, runs, requests, status.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 18:20:16.076903
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from syncd.store.schema import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The mirror change log is written by the database itself, so ETL jobs writing crm_contacts
# with plain SQL are seen by the next incremental run. An UPDATE that changes no synced column
# (only updated_at, or nothing) is not logged.
_CONTENT_COLUMNS = (
    "first_name",
    "last_name",
    "email",
    "phone_numbers",
    "organization_id",
    "organization_name",
    "deleted",
)

_SQLITE_TRIGGERS = [
    """CREATE TRIGGER trg_crm_contacts_insert AFTER INSERT ON crm_contacts
    BEGIN
        INSERT INTO mirror_changes (external_id, op) VALUES (NEW.external_id, 'I');
    END""",
    """CREATE TRIGGER trg_crm_contacts_update AFTER UPDATE ON crm_contacts
    WHEN OLD.external_id IS NOT NEW.external_id OR """  # noqa: S608 (constant column names)
    + " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in _CONTENT_COLUMNS)
    + """
    BEGIN
        INSERT INTO mirror_changes (external_id, op)
            SELECT OLD.external_id, 'D' WHERE OLD.external_id IS NOT NEW.external_id;
        INSERT INTO mirror_changes (external_id, op) VALUES (NEW.external_id, 'U');
    END""",
    """CREATE TRIGGER trg_crm_contacts_delete AFTER DELETE ON crm_contacts
    BEGIN
        INSERT INTO mirror_changes (external_id, op) VALUES (OLD.external_id, 'D');
    END""",
]

_POSTGRES_TRIGGERS = [
    """CREATE FUNCTION syncd_log_mirror_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO mirror_changes (external_id, op) VALUES (NEW.external_id, 'I');
            RETURN NEW;
        ELSIF TG_OP = 'UPDATE' THEN
            IF OLD.external_id IS DISTINCT FROM NEW.external_id THEN
                INSERT INTO mirror_changes (external_id, op) VALUES (OLD.external_id, 'D');
            END IF;
            INSERT INTO mirror_changes (external_id, op) VALUES (NEW.external_id, 'U');
            RETURN NEW;
        ELSE
            INSERT INTO mirror_changes (external_id, op) VALUES (OLD.external_id, 'D');
            RETURN OLD;
        END IF;
    END
    $$""",
    """CREATE TRIGGER trg_crm_contacts_insert AFTER INSERT ON crm_contacts
    FOR EACH ROW EXECUTE FUNCTION syncd_log_mirror_change()""",
    """CREATE TRIGGER trg_crm_contacts_update AFTER UPDATE ON crm_contacts
    FOR EACH ROW WHEN (OLD.external_id IS DISTINCT FROM NEW.external_id OR """
    + " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in _CONTENT_COLUMNS)
    + """)
    EXECUTE FUNCTION syncd_log_mirror_change()""",
    """CREATE TRIGGER trg_crm_contacts_delete AFTER DELETE ON crm_contacts
    FOR EACH ROW EXECUTE FUNCTION syncd_log_mirror_change()""",
]


def _create_triggers() -> None:
    dialect = op.get_bind().dialect.name
    statements = _POSTGRES_TRIGGERS if dialect == "postgresql" else _SQLITE_TRIGGERS
    for statement in statements:
        op.execute(statement)


def _drop_triggers() -> None:
    dialect = op.get_bind().dialect.name
    for name in ("trg_crm_contacts_insert", "trg_crm_contacts_update", "trg_crm_contacts_delete"):
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON crm_contacts")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS syncd_log_mirror_change()")


def upgrade() -> None:

    op.create_table(
        "contact_links",
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("genesys_id", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("origin", sa.String(length=16), server_default="created", nullable=False),
        sa.Column("synced_hash", sa.String(length=64), nullable=True),
        sa.Column(
            "synced_content",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=True,
        ),
        sa.Column("rejected_hash", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "updated_at", UTCDateTime(), server_default=sa.func.current_timestamp(), nullable=False
        ),
        sa.CheckConstraint(
            "origin IN ('created', 'adopted')", name=op.f("ck_contact_links_origin")
        ),
        sa.CheckConstraint(
            "state IN ('synced', 'pending_create', 'pending_update', 'pending_delete', "
            "'failed', 'held')",
            name=op.f("ck_contact_links_state"),
        ),
        sa.PrimaryKeyConstraint("external_id", name=op.f("pk_contact_links")),
        sa.UniqueConstraint("genesys_id", name=op.f("uq_contact_links_genesys_id")),
    )
    with op.batch_alter_table("contact_links", schema=None) as batch_op:
        batch_op.create_index(
            "ix_contact_links_state_next_attempt_at", ["state", "next_attempt_at"], unique=False
        )

    op.create_table(
        "crm_contacts",
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("first_name", sa.Text(), nullable=True),
        sa.Column("last_name", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column(
            "phone_numbers", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("organization_id", sa.Text(), nullable=True),
        sa.Column("organization_name", sa.Text(), nullable=True),
        sa.Column("deleted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "updated_at", UTCDateTime(), server_default=sa.func.current_timestamp(), nullable=False
        ),
        sa.PrimaryKeyConstraint("external_id", name=op.f("pk_crm_contacts")),
    )
    op.create_table(
        "daemon_status",
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
        sa.Column("is_leader", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="starting", nullable=False),
        sa.Column("next_incremental_at", UTCDateTime(), nullable=True),
        sa.Column("next_full_at", UTCDateTime(), nullable=True),
        sa.Column(
            "current_run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_daemon_status")),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=True),
        sa.Column(
            "fencing_token",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            server_default="0",
            nullable=False,
        ),
        sa.Column("acquired_at", UTCDateTime(), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "mirror_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("op", sa.String(length=1), nullable=False),
        sa.Column(
            "changed_at", UTCDateTime(), server_default=sa.func.current_timestamp(), nullable=False
        ),
        sa.CheckConstraint("op IN ('I', 'U', 'D')", name=op.f("ck_mirror_changes_op")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mirror_changes")),
    )
    with op.batch_alter_table("mirror_changes", schema=None) as batch_op:
        batch_op.create_index("ix_mirror_changes_external_id", ["external_id"], unique=False)

    op.create_table(
        "remote_snapshot",
        sa.Column("genesys_id", sa.String(length=255), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column(
            "content", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("genesys_id", name=op.f("pk_remote_snapshot")),
    )
    with op.batch_alter_table("remote_snapshot", schema=None) as batch_op:
        batch_op.create_index("ix_remote_snapshot_external_id", ["external_id"], unique=False)

    op.create_table(
        "sync_runs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("dry_run", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("instance_id", sa.String(length=64), nullable=True),
        sa.Column("created", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated", sa.Integer(), server_default="0", nullable=False),
        sa.Column("deleted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unchanged", sa.Integer(), server_default="0", nullable=False),
        sa.Column("adopted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("held", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rejected", sa.Integer(), server_default="0", nullable=False),
        sa.Column("api_calls", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rate_limited", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('incremental', 'full', 'targeted')", name=op.f("ck_sync_runs_kind")
        ),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'partial', 'failed', 'held', 'interrupted')",
            name=op.f("ck_sync_runs_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_runs")),
    )
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.create_index("ix_sync_runs_started_at", ["started_at"], unique=False)

    op.create_table(
        "ledger",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("genesys_id", sa.String(length=255), nullable=True),
        sa.Column("op", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column(
            "fields", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("correlation_id", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["sync_runs.id"],
            name=op.f("fk_ledger_run_id_sync_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger")),
    )
    with op.batch_alter_table("ledger", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_at", ["at"], unique=False)
        batch_op.create_index("ix_ledger_external_id_at", ["external_id", "at"], unique=False)
        batch_op.create_index("ix_ledger_genesys_id", ["genesys_id"], unique=False)
        batch_op.create_index("ix_ledger_outcome_at", ["outcome", "at"], unique=False)
        batch_op.create_index("ix_ledger_run_id_at", ["run_id", "at"], unique=False)

    op.create_table(
        "sync_requests",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "external_ids", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("allow_mass_delete", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=True),
        sa.Column("claimed_at", UTCDateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('incremental', 'full', 'targeted')", name=op.f("ck_sync_requests_kind")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'done', 'failed', 'cancelled')",
            name=op.f("ck_sync_requests_status"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["sync_runs.id"],
            name=op.f("fk_sync_requests_run_id_sync_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_requests")),
    )
    with op.batch_alter_table("sync_requests", schema=None) as batch_op:
        batch_op.create_index("ix_sync_requests_status", ["status"], unique=False)
    _create_triggers()


def downgrade() -> None:
    _drop_triggers()

    with op.batch_alter_table("sync_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_requests_status")

    op.drop_table("sync_requests")
    with op.batch_alter_table("ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_run_id_at")
        batch_op.drop_index("ix_ledger_outcome_at")
        batch_op.drop_index("ix_ledger_genesys_id")
        batch_op.drop_index("ix_ledger_external_id_at")
        batch_op.drop_index("ix_ledger_at")

    op.drop_table("ledger")
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_runs_started_at")

    op.drop_table("sync_runs")
    with op.batch_alter_table("remote_snapshot", schema=None) as batch_op:
        batch_op.drop_index("ix_remote_snapshot_external_id")

    op.drop_table("remote_snapshot")
    with op.batch_alter_table("mirror_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_mirror_changes_external_id")

    op.drop_table("mirror_changes")
    op.drop_table("leases")
    op.drop_table("daemon_status")
    op.drop_table("crm_contacts")
    with op.batch_alter_table("contact_links", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_links_state_next_attempt_at")

    op.drop_table("contact_links")
