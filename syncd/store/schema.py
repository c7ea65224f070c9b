"""The tables, declared once with SQLAlchemy Core; Alembic migrations must produce exactly this.

Constraint names follow ``NAMING_CONVENTION`` so that migrations can refer to them by name on
both SQLite (batch mode) and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # written by an ETL job or a trigger as text
            value = datetime.fromisoformat(value)
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


BigID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ExternalId = sa.String(255)
# JSONB on PostgreSQL: it has equality, which the mirror change trigger needs.
JSONType = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

LINK_STATES = ("synced", "pending_create", "pending_update", "pending_delete", "failed", "held")
RUN_KINDS = ("incremental", "full", "targeted")
RUN_STATUSES = ("running", "succeeded", "partial", "failed", "held", "interrupted")
REQUEST_STATUSES = ("pending", "running", "done", "failed", "cancelled")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


crm_contacts = sa.Table(
    "crm_contacts",
    metadata,
    sa.Column("external_id", ExternalId, primary_key=True),
    sa.Column("first_name", sa.Text),
    sa.Column("last_name", sa.Text),
    sa.Column("email", sa.Text),
    sa.Column("phone_numbers", JSONType),
    sa.Column("organization_id", sa.Text),
    sa.Column("organization_name", sa.Text),
    sa.Column(
        "deleted", sa.Boolean(create_constraint=False), nullable=False, server_default=sa.false()
    ),
    sa.Column(
        "updated_at", UTCDateTime, nullable=False, server_default=sa.func.current_timestamp()
    ),
)

# Filled by triggers on crm_contacts (see the initial migration), consumed by deleting the rows
# processed: no watermark, so ETL writers committing out of order cannot hide a change.
mirror_changes = sa.Table(
    "mirror_changes",
    metadata,
    sa.Column("id", BigID, primary_key=True, autoincrement=True),
    sa.Column("external_id", ExternalId, nullable=False),
    sa.Column("op", sa.String(1), nullable=False),
    sa.Column(
        "changed_at", UTCDateTime, nullable=False, server_default=sa.func.current_timestamp()
    ),
    sa.CheckConstraint("op IN ('I', 'U', 'D')", name="op"),
    sa.Index("ix_mirror_changes_external_id", "external_id"),
)

sync_runs = sa.Table(
    "sync_runs",
    metadata,
    sa.Column("id", BigID, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column(
        "dry_run", sa.Boolean(create_constraint=False), nullable=False, server_default=sa.false()
    ),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("instance_id", sa.String(64)),
    sa.Column("created", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated", sa.Integer, nullable=False, server_default="0"),
    sa.Column("deleted", sa.Integer, nullable=False, server_default="0"),
    sa.Column("unchanged", sa.Integer, nullable=False, server_default="0"),
    sa.Column("adopted", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("held", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rejected", sa.Integer, nullable=False, server_default="0"),
    sa.Column("api_calls", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rate_limited", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.Text),
    sa.CheckConstraint(_in("kind", RUN_KINDS), name="kind"),
    sa.CheckConstraint(_in("status", RUN_STATUSES), name="status"),
    sa.Index("ix_sync_runs_started_at", "started_at"),
)

contact_links = sa.Table(
    "contact_links",
    metadata,
    sa.Column("external_id", ExternalId, primary_key=True),
    sa.Column("genesys_id", sa.String(255), unique=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("origin", sa.String(16), nullable=False, server_default="created"),
    sa.Column("synced_hash", sa.String(64)),
    sa.Column("synced_content", JSONType),
    sa.Column("rejected_hash", sa.String(64)),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column(
        "updated_at", UTCDateTime, nullable=False, server_default=sa.func.current_timestamp()
    ),
    sa.CheckConstraint(_in("state", LINK_STATES), name="state"),
    sa.CheckConstraint("origin IN ('created', 'adopted')", name="origin"),
    sa.Index("ix_contact_links_state_next_attempt_at", "state", "next_attempt_at"),
)

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", BigID, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("run_id", BigID, sa.ForeignKey("sync_runs.id", ondelete="SET NULL")),
    sa.Column("external_id", ExternalId),
    sa.Column("genesys_id", sa.String(255)),
    sa.Column("op", sa.String(16), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("fields", JSONType),
    sa.Column("http_status", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("correlation_id", sa.String(128)),
    sa.Index("ix_ledger_at", "at"),
    sa.Index("ix_ledger_run_id_at", "run_id", "at"),
    sa.Index("ix_ledger_external_id_at", "external_id", "at"),
    sa.Index("ix_ledger_genesys_id", "genesys_id"),
    sa.Index("ix_ledger_outcome_at", "outcome", "at"),
)

sync_requests = sa.Table(
    "sync_requests",
    metadata,
    sa.Column("id", BigID, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("external_ids", JSONType),
    sa.Column(
        "allow_mass_delete",
        sa.Boolean(create_constraint=False),
        nullable=False,
        server_default=sa.false(),
    ),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("requested_by", sa.String(128)),
    sa.Column("claimed_at", UTCDateTime),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("run_id", BigID, sa.ForeignKey("sync_runs.id", ondelete="SET NULL")),
    sa.Column("exit_code", sa.Integer),
    sa.Column("error", sa.Text),
    sa.CheckConstraint(_in("kind", RUN_KINDS), name="kind"),
    sa.CheckConstraint(_in("status", REQUEST_STATUSES), name="status"),
    sa.Index("ix_sync_requests_status", "status"),
)

daemon_status = sa.Table(
    "daemon_status",
    metadata,
    sa.Column("instance_id", sa.String(64), primary_key=True),
    sa.Column("hostname", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("heartbeat_at", UTCDateTime, nullable=False),
    sa.Column(
        "is_leader", sa.Boolean(create_constraint=False), nullable=False, server_default=sa.false()
    ),
    sa.Column("state", sa.String(16), nullable=False, server_default="starting"),
    sa.Column("next_incremental_at", UTCDateTime),
    sa.Column("next_full_at", UTCDateTime),
    sa.Column("current_run_id", BigID),
)

# One row per named lock. The holder renews ``expires_at``; a stale lease may be taken over,
# and every takeover increments ``fencing_token`` so a deposed holder can tell.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(128)),
    sa.Column("fencing_token", BigID, nullable=False, server_default="0"),
    sa.Column("acquired_at", UTCDateTime),
    sa.Column("expires_at", UTCDateTime),
)

# One row per CRM organization id that syncd linked to a Genesys ExternalOrganization record
# (externalcontacts): ``name`` is the name the record was last given or seen with. A create
# whose answer was lost is ``pending_create`` (no ``genesys_id``) until a lookup settles it.
organization_links = sa.Table(
    "organization_links",
    metadata,
    sa.Column("organization_id", ExternalId, primary_key=True),
    sa.Column("genesys_id", sa.String(255), unique=True),
    sa.Column("name", sa.Text),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Column("intent_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("state IN ('synced', 'pending_create')", name="state"),
    sa.CheckConstraint("origin IN ('created', 'found')", name="origin"),
)

# What the last full reconcile listed from Genesys, streamed page by page (never a dict in RAM).
remote_snapshot = sa.Table(
    "remote_snapshot",
    metadata,
    sa.Column("genesys_id", sa.String(255), primary_key=True),
    sa.Column("external_id", ExternalId),
    sa.Column("content", JSONType, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("run_id", BigID, nullable=False),
    sa.Index("ix_remote_snapshot_external_id", "external_id"),
)
