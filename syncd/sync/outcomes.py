"""The intent protocol (invariants 1 and 2): an intent before each remote write, settled after.

1. **intent**, one transaction before the call: a ledger row ``outcome='pending'`` (op,
   externalId, genesys_id, fields) and the link state ``pending_create`` / ``pending_update``
   / ``pending_delete``;
2. the API call (one contact, or one entity of a bulk chunk);
3. **settlement**, one transaction: the ledger row's outcome, the link's new state, and the
   deletion of the change-log rows the write answers (so an unanswered change is never lost).

What each answer means is decided here and nowhere else (:func:`failure_verdict`):

| intent          | answer             | ledger outcome         | link state                 |
|-----------------|--------------------|------------------------|----------------------------|
| create/recreate | applied            | ok, its genesys_id     | synced                     |
| update/drift    | applied            | ok                     | synced, new synced content |
| delete          | applied, or 404    | ok (404: already gone) | removed                    |
| create/update   | 400, not retryable | rejected, API message  | failed + rejected_hash:    |
|                 |                    |                        | waits for new content      |
| update/drift    | 404                | failed 404             | ``relink`` to the contact  |
|                 |                    |                        | Genesys merged it into,    |
|                 |                    |                        | else a ``recreate``        |
| create          | outcome unknown    | pending, error noted   | pending_create: resolved   |
|                 |                    |                        | by lookup, never re-sent   |
| any             | 409, 429, 5xx,     | failed                 | failed, backs off          |
|                 | other; delete 400  |                        | (attempts, next_attempt_at)|

A crash between steps 1 and 3 leaves the intent pending; :mod:`syncd.sync.resolve` settles it
at the next run's start, with :func:`settle` too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from sqlalchemy.engine import Connection

from syncd.errors import (
    ApiEnvironmentError,
    ApiError,
    ApiNotFoundError,
    ApiValidationError,
    OutcomeUnknownError,
)
from syncd.logs import get_logger
from syncd.model import Contact
from syncd.store import changes, ledger, links
from syncd.store.links import Link
from syncd.sync.canonical import content_hash, is_display_text
from syncd.sync.context import WriteContext
from syncd.sync.plan import Item

log = get_logger("syncd.sync")

Kind = Literal["create", "update", "delete"]
Verdict = Literal["rejected", "recreate", "unknown", "failed"]
COUNTERS: dict[Kind, str] = {"create": "created", "update": "updated", "delete": "deleted"}
PENDING: dict[Kind, str] = {
    "create": "pending_create",
    "update": "pending_update",
    "delete": "pending_delete",
}


class Hooks:
    """Test seams between the protocol's steps (a crash is simulated by raising from one)."""

    def after_intent(self, external_id: str, op: str) -> None:
        """The intent is committed; the API call has not been made."""

    def after_write(self, external_id: str, op: str) -> None:
        """The API call succeeded; its outcome is not committed yet."""


# -- link states and ledger values ---------------------------------------------------------------


def delete_fields(link: Link) -> dict[str, Any] | None:
    """A delete's ``{field: [old, None]}``: what syncd last wrote, now removed."""
    content = link.synced_content or {}
    return {k: [v, None] for k, v in content.items() if v not in (None, [])} or None


def error_message(exc: ApiError) -> str:
    """The error as the ledger and the link keep it (with its HTTP status, bounded)."""
    status = f"HTTP {exc.status}: " if exc.status else ""
    return f"{status}{exc.message}"[:2000]


def synced_link(link: Link, contact: Contact, digest: str | None = None) -> Link:
    """``link`` once Genesys holds ``contact``: every retry and rejection mark cleared."""
    return link.evolve(
        state="synced",
        synced_content=contact.content(),
        synced_hash=digest or content_hash(contact),
        rejected_hash=None,
        attempts=0,
        next_attempt_at=None,
        last_error=None,
    )


def needs_refresh(link: Link, digest: str) -> bool:
    """Whether an unchanged contact's link still carries state that :func:`synced_link`
    would clear (so an unchanged row costs no write when there is nothing to clear)."""
    return (
        link.state != "synced"
        or link.synced_hash != digest
        or link.rejected_hash is not None
        or link.attempts != 0
        or link.last_error is not None
    )


@dataclass(frozen=True, slots=True)
class Removed:
    """The link's state after an applied delete: no link at all."""

    external_id: str


def settle(
    conn: Connection,
    intent: int | None,
    outcome: str,
    link: Link | Removed,
    *,
    change_ids: Sequence[int] = (),
    genesys_id: str | None = None,
    http_status: int | None = None,
    error: str | None = None,
    correlation_id: str | None = None,
) -> None:
    """Step 3 in the caller's transaction: the ledger row (when there is one), the link's new
    state, the change rows the write answers. The resolver uses it for outcomes learnt late."""
    if intent is not None:
        ledger.settle(
            conn,
            intent,
            outcome=outcome,
            genesys_id=genesys_id,
            http_status=http_status,
            error=error,
            correlation_id=correlation_id,
        )
    if isinstance(link, Removed):
        links.delete_link(conn, link.external_id)
    else:
        links.save_link(conn, link)
    changes.consume(conn, change_ids)


def failure_verdict(kind: Kind, error: ApiError, *, retryable: bool = False) -> Verdict:
    """What a write that did not succeed means (the table of the module docstring).

    ``retryable`` is a bulk entity's flag: a 400 the server calls retryable backs off instead
    of waiting for new content. A 409 has no meaning of its own: the resource's state may
    change, so the row backs off and is diffed again.
    """
    if kind == "create" and isinstance(error, OutcomeUnknownError):
        return "unknown"
    if kind == "update" and isinstance(error, ApiNotFoundError):
        return "recreate"
    if kind != "delete" and isinstance(error, ApiValidationError) and not retryable:
        return "rejected"
    return "failed"


# -- intents -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Intent:
    """One remote write of one row; ``id`` is its ledger row once :meth:`IntentProtocol.begin`
    has written it. ``genesys_id`` is the target (update, delete) or, for a re-create, the
    contact deleted in Genesys that it replaces."""

    kind: Kind
    op: str
    item: Item
    genesys_id: str | None = None
    contact: Contact | None = None
    fields: dict[str, Any] | None = None
    id: int = 0

    @property
    def external_id(self) -> str:
        return self.item.external_id

    @property
    def new_state(self) -> Contact:
        """The contact as the write sends it (creates and updates have one)."""
        assert self.contact is not None
        return self.contact

    @property
    def link(self) -> Link:
        """The row's link before the intent (updates and deletes have one)."""
        assert self.item.link is not None
        return self.item.link

    @classmethod
    def create(
        cls,
        item: Item,
        contact: Contact,
        fields: dict[str, Any],
        op: str = "create",
        replaces: str | None = None,
    ) -> Intent:
        return cls("create", op, item, replaces, contact, fields)

    @classmethod
    def update(
        cls, item: Item, genesys_id: str, contact: Contact, fields: dict[str, Any], op: str
    ) -> Intent:
        return cls("update", op, item, genesys_id, contact, fields)

    @classmethod
    def delete(cls, item: Item, genesys_id: str) -> Intent:
        intent = cls("delete", "delete", item, genesys_id)
        # Invariant 3: only what is ours (a link that holds this very id) is ever deleted.
        assert intent.link.genesys_id == genesys_id
        intent.fields = delete_fields(intent.link)
        return intent


def display_text_warning(intent: Intent) -> str | None:
    """The ledger's warning for a write that sends phone numbers as display text (the
    lenient phone policy): Genesys stores them, but cannot search or dial by them."""
    if intent.contact is None or "phone_numbers" not in (intent.fields or {}):
        return None
    texts = [p.number for p in intent.contact.phone_numbers if is_display_text(p.number)]
    if not texts:
        return None
    shown = ", ".join(repr(t) for t in texts)
    return (
        f"warning: phone number(s) {shown} cannot be read as a number: sent as display text, "
        "which Genesys stores but cannot search or dial (fix it in the CRM, or set "
        '[sync] phone_policy = "strict" to reject such rows)'
    )


class Acknowledged(Protocol):
    """What an applied write answered (a ``WriteResult`` or an ``ok`` ``BulkItemResult``)."""

    @property
    def genesys_id(self) -> str | None: ...

    @property
    def status(self) -> int | None: ...

    @property
    def correlation_id(self) -> str | None: ...


class IntentProtocol:
    """Steps 1 and 3 for the writers of one run (single calls and bulk chunks alike)."""

    def __init__(self, ctx: WriteContext, hooks: Hooks | None = None) -> None:
        self.ctx, self.hooks = ctx, hooks or Hooks()

    def begin(self, intents: Sequence[Intent]) -> None:
        """Step 1 for ``intents`` in one transaction; each gets its ledger row's id."""
        ctx = self.ctx
        now = ctx.clock()
        with ctx.db.write() as conn:
            for intent in intents:
                if intent.kind == "create":
                    pending = Link(intent.external_id, PENDING["create"], origin="created")
                    pending = pending.evolve(next_attempt_at=now + ctx.options.create_grace)
                else:
                    pending = intent.link.evolve(state=PENDING[intent.kind])
                replaces = intent.genesys_id if intent.kind == "create" else None
                note = f"re-creating {replaces}, deleted in Genesys" if replaces else None
                entry = ctx.entry(
                    intent.op,
                    "pending",
                    external_id=intent.external_id,
                    genesys_id=intent.genesys_id,
                    fields=intent.fields,
                    error="; ".join(filter(None, (note, display_text_warning(intent)))) or None,
                )
                intent.id = ledger.append(conn, entry)
                links.save_link(conn, pending)
        for intent in intents:
            self.hooks.after_intent(intent.external_id, intent.op)

    def applied(self, done: Sequence[tuple[Intent, Acknowledged]]) -> None:
        """Step 3 for writes the API applied, in one transaction."""
        if not done:
            return
        for intent, _ack in done:
            self.hooks.after_write(intent.external_id, intent.op)
        with self.ctx.db.write() as conn:
            for intent, ack in done:
                gone = intent.kind == "delete" and ack.status == 404
                settle(
                    conn,
                    intent.id,
                    "ok",
                    self._applied_link(intent, ack),
                    change_ids=intent.item.change_ids,
                    genesys_id=ack.genesys_id if intent.kind == "create" else None,
                    http_status=ack.status,
                    error="already gone" if gone else None,
                    correlation_id=ack.correlation_id,
                )
        for intent, _ack in done:
            self.ctx.succeeded(COUNTERS[intent.kind])

    @staticmethod
    def _applied_link(intent: Intent, ack: Acknowledged) -> Link | Removed:
        if intent.kind == "delete":
            return Removed(intent.external_id)
        if intent.kind == "create":
            base = Link(intent.external_id, PENDING["create"], origin="created")
            return synced_link(base.evolve(genesys_id=ack.genesys_id), intent.new_state)
        return synced_link(intent.link, intent.new_state)

    def failed(
        self,
        intent: Intent,
        error: ApiError,
        *,
        retryable: bool = False,
        correlation_id: str | None = None,
    ) -> Verdict:
        """Step 3 for a write that did not succeed, as :func:`failure_verdict` says; on
        ``"recreate"`` the caller sends the re-create. ``correlation_id`` is the request's,
        for an error that carries none (a bulk entity)."""
        verdict = failure_verdict(intent.kind, error, retryable=retryable)
        cid = error.correlation_id or correlation_id
        if verdict == "unknown":
            self.unknown(intent, error)
        elif verdict == "recreate":
            with self.ctx.db.write() as conn:
                ledger.settle(
                    conn,
                    intent.id,
                    outcome="failed",
                    http_status=404,
                    error="the contact was deleted in Genesys; re-creating it",
                    correlation_id=cid,
                )
        elif verdict == "rejected":
            self._rejected(intent, error, cid)
        else:
            base = Link(intent.external_id, "failed") if intent.kind == "create" else intent.link
            self.back_off(intent.item, error, base, intent.id, cid)
        return verdict

    def unknown(self, intent: Intent, error: ApiError | None) -> None:
        """A create that may have been applied: it stays ``pending_create``, its intent noted,
        and is resolved by lookup at the next run's start (never re-sent blindly)."""
        message = error_message(error) if error else "outcome unknown"
        self.ctx.tally["failed"] += 1
        with self.ctx.db.write() as conn:
            ledger.note(conn, intent.id, error=message)
            changes.consume(conn, intent.item.change_ids)
        log.warning("sync.create.outcome_unknown", external_id=intent.external_id, error=message)

    def _rejected(self, intent: Intent, error: ApiError, correlation_id: str | None) -> None:
        """400: the content cannot succeed; the row waits until the mirror changes it."""
        self.ctx.tally["rejected"] += 1
        message = error_message(error)
        base = Link(intent.external_id, "failed") if intent.kind == "create" else intent.link
        link = base.evolve(
            state="failed",
            rejected_hash=content_hash(intent.new_state),
            next_attempt_at=None,
            attempts=0,
            last_error=f"rejected by Genesys: {message}",
        )
        with self.ctx.db.write() as conn:
            settle(
                conn,
                intent.id,
                "rejected",
                link,
                change_ids=intent.item.change_ids,
                http_status=error.status or 400,
                error=message,
                correlation_id=correlation_id,
            )

    def back_off(
        self,
        item: Item,
        error: ApiError,
        base: Link,
        intent: int | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """A transient or unexpected failure (of the write, or of a read made on its way):
        this row alone backs off; the run aborts only on failures every row would meet."""
        ctx = self.ctx
        ctx.tally["failed"] += 1
        if isinstance(error, ApiEnvironmentError):  # the run's note says so (run_record)
            ctx.tally["blocked"] += 1
        message = error_message(error)
        attempts = (item.link.attempts if item.link else 0) + 1
        retry_at = ctx.clock() + ctx.options.backoff(attempts)
        link = base.evolve(
            state="failed", attempts=attempts, next_attempt_at=retry_at, last_error=message
        )
        with ctx.db.write() as conn:
            settle(
                conn,
                intent,
                "failed",
                link,
                change_ids=item.change_ids,
                http_status=error.status,
                error=message,
                correlation_id=correlation_id or error.correlation_id,
            )
        log.info(
            "sync.row.failed",
            external_id=item.external_id,
            error=message,
            retry_at=retry_at.isoformat(),
        )
        if ctx.on_row_failed is not None:
            ctx.on_row_failed(item, error)
        ctx.abort_if_hopeless(error, message)
