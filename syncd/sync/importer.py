"""``syncd mirror import``: stream a CRM export into the mirror, batch by batch.

Every row is normalized with :func:`syncd.sync.canonical.normalize` and stored in canonical
form (trimmed NFC names, lower-cased email, E.164 phones in a stable order), so re-exporting
the same contact with a phone written differently is "unchanged" and costs nothing
downstream. Rows that cannot be read or sent are reported with their line and every reason;
the other rows still go in. With ``snapshot`` the file is the whole CRM: live mirror rows
whose id it does not contain are tombstoned, unless the delete guard holds them.

Memory stays flat whatever the file size: one batch of rows in Python, the ids seen so far
in a temporary table of the database (see :class:`syncd.store.mirror.MirrorImport`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from syncd.exit_codes import ExitCode
from syncd.logs import get_logger
from syncd.model import Contact
from syncd.store.db import Database
from syncd.store.mirror import MirrorImport, MirrorRow, TombstonePlan
from syncd.sync.canonical import (
    CONTROL_CHARS,
    ContentRules,
    RawContact,
    RejectedRow,
)
from syncd.sync.import_formats import Format, ImportFileError, ParsedRow, read_rows

__all__ = [
    "ImportFileError",
    "ImportOptions",
    "ImportReport",
    "Rejection",
    "import_mirror",
    "snapshot_hold_reason",
]

log = get_logger("syncd.mirror")

DEFAULT_BATCH_SIZE = 2000
# Control characters other than tab, CR and LF; canonical.normalize does not check every field.


@dataclass(frozen=True, slots=True)
class ImportOptions:
    fmt: Format
    snapshot: bool = False
    dry_run: bool = False
    allow_mass_delete: bool = False
    default_region: str = "US"
    profile: str = "reference"  # the wire profile's rules apply (names optional or not)
    phone_policy: str = "strict"  # [sync] phone_policy (lenient: display-text phones)
    max_delete_count: int = 100
    max_delete_percent: float = 10.0
    encoding: str = "utf-8"
    batch_size: int = DEFAULT_BATCH_SIZE

    @property
    def rules(self) -> ContentRules:
        return ContentRules.for_profile(self.profile, self.default_region, self.phone_policy)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A row that did not go in: where it is, whose it is (when readable) and why."""

    line: int
    external_id: str | None
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Duplicate:
    """An externalId met again; the last occurrence wins, as in a stream of upserts."""

    line: int
    external_id: str
    first_line: int


@dataclass(slots=True)
class ImportReport:
    """Counters of one import; in a dry run, what the import would have done."""

    dry_run: bool = False
    snapshot: bool = False
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    revived: int = 0  # un-deleted tombstones, also counted in ``updated``
    unchanged: int = 0
    rejected: int = 0
    duplicates: int = 0
    # rejected rows whose externalId could not be read at all, or that may have swallowed
    # other rows' (a broken multi-line CSV record)
    unidentified: int = 0
    tombstoned: int = 0
    missing: int = 0  # live mirror rows absent from a snapshot (tombstoned unless held)
    live_before: int = 0
    held_reason: str | None = None
    seconds: float = 0.0
    _started: float = field(default_factory=time.monotonic, repr=False)

    @property
    def accepted(self) -> int:
        return self.rows_read - self.rejected

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    @property
    def exit_code(self) -> ExitCode:
        """HELD when the delete guard held tombstones, PARTIAL when rows were rejected, else OK."""
        if self.held_reason is not None:
            return ExitCode.HELD
        return ExitCode.PARTIAL if self.rejected else ExitCode.OK


def snapshot_hold_reason(
    plan: TombstonePlan,
    *,
    live_before: int,
    accepted: int,
    unidentified: int,
    max_count: int,
    max_percent: float,
) -> str | None:
    """Why a snapshot's tombstones must be held (invariant 4), or None to let them through.

    A shrunken or empty source is treated as a fault, not as an instruction; so is a row
    whose externalId could not be read, since the contact it named might be one of those
    about to be tombstoned.
    """
    if plan.missing == 0:
        return None
    reasons = []
    if accepted == 0:
        reasons.append(f"the file has no valid rows while the mirror has {plan.live} live contacts")
    if unidentified:
        reasons.append(
            f"{unidentified} rejected row(s) had no readable externalId (or were broken CSV "
            "records over several lines, which may have swallowed other rows), so the file may "
            "name some of these contacts"
        )
    if plan.missing > max_count:
        reasons.append(f"{plan.missing} is more than sync.max_delete_count ({max_count})")
    base = max(live_before, plan.missing)
    percent = 100.0 * plan.missing / base
    if percent > max_percent:
        reasons.append(
            f"{plan.missing} is {percent:.1f}% of the {base} live contacts, more than "
            f"sync.max_delete_percent ({max_percent:g}%)"
        )
    return "; ".join(reasons) or None


def to_mirror_row(contact: Contact) -> MirrorRow:
    org = contact.organization
    return MirrorRow(
        external_id=contact.external_id,
        first_name=contact.first_name,
        last_name=contact.last_name,
        email=contact.email,
        phone_numbers=[{"number": p.number, "type": p.type} for p in contact.phone_numbers],
        organization_id=org.id if org else None,
        organization_name=org.name if org else None,
    )


def _control_reasons(raw: RawContact) -> list[str]:
    """Control characters in the fields canonical.normalize does not check for them."""
    reasons = []
    if raw.email and CONTROL_CHARS.search(raw.email):
        reasons.append("email: contains control characters")
    if any(CONTROL_CHARS.search(number) for number, _ in raw.phone_numbers):
        reasons.append("phoneNumbers: contains control characters")
    return reasons


# A reason may quote the value it is about; a 1 MiB value must not become a 1 MiB message.
MAX_REASON = 300


def _bounded(reason: str) -> str:
    if len(reason) <= MAX_REASON:
        return reason
    suffix = f"... ({len(reason):,} characters in all)"
    return reason[: MAX_REASON - len(suffix)] + suffix


def validate(parsed: ParsedRow, rules: ContentRules) -> MirrorRow | list[str]:
    """The mirror row for a parsed row, or every reason it cannot go in (each bounded)."""
    reasons = list(parsed.reasons)
    if parsed.raw is not None:
        reasons.extend(_control_reasons(parsed.raw))
        try:
            contact = rules.normalize(parsed.raw)
        except RejectedRow as exc:
            reasons.extend(exc.reasons)
        else:
            if not reasons:
                return to_mirror_row(contact)
    return [_bounded(r) for r in dict.fromkeys(reasons)] or ["cannot be read"]


class _Batch:
    """The rows between two flushes: accepted rows by id (last wins) and every id seen."""

    def __init__(self) -> None:
        self.rows: dict[str, MirrorRow] = {}
        self.seen: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.seen)


def import_mirror(
    db: Database,
    stream: IO[bytes],
    options: ImportOptions,
    *,
    on_reject: Callable[[Rejection], None] | None = None,
    on_duplicate: Callable[[Duplicate], None] | None = None,
    on_progress: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Import ``stream`` into the mirror and return what happened (see ImportReport).

    Raises ImportFileError before writing anything if the file cannot be used at all.
    """
    report = ImportReport(dry_run=options.dry_run, snapshot=options.snapshot)
    rows = read_rows(stream, options.fmt, encoding=options.encoding)  # checks the header
    log.info(
        "mirror.import.started",
        format=options.fmt,
        snapshot=options.snapshot,
        dry_run=options.dry_run,
    )
    with MirrorImport(db, dry_run=options.dry_run) as mirror:
        batch = _Batch()

        def flush() -> None:
            nonlocal batch
            if not len(batch):
                return
            outcome = mirror.apply_batch(list(batch.rows.values()), list(batch.seen.items()))
            report.inserted += outcome.inserted
            report.updated += outcome.updated
            report.revived += outcome.revived
            report.unchanged += outcome.unchanged
            for line, external_id, first_line in outcome.repeats:
                _duplicate(Duplicate(line, external_id, first_line))
            batch = _Batch()
            if on_progress is not None:
                report.seconds = time.monotonic() - report._started
                on_progress(report)

        def _duplicate(dup: Duplicate) -> None:
            report.duplicates += 1
            if on_duplicate is not None:
                on_duplicate(dup)

        for parsed in rows:
            report.rows_read += 1
            result = validate(parsed, options.rules)
            external_id = (
                result.external_id if isinstance(result, MirrorRow) else parsed.external_id
            )
            if isinstance(result, list):
                report.rejected += 1
                if parsed.unidentified:
                    report.unidentified += 1
                rejection = Rejection(parsed.line, external_id, tuple(result))
                log.debug(
                    "mirror.import.rejected",
                    line=parsed.line,
                    external_id=external_id,
                    reasons=result,
                )
                if on_reject is not None:
                    on_reject(rejection)
            if external_id is None:
                continue
            if external_id in batch.seen:
                _duplicate(Duplicate(parsed.line, external_id, batch.seen[external_id]))
            else:
                batch.seen[external_id] = parsed.line
            if isinstance(result, MirrorRow):
                batch.rows[external_id] = result
            if len(batch) >= options.batch_size:
                flush()
        flush()
        if options.snapshot:
            _tombstone(mirror, report, options)
    report.seconds = time.monotonic() - report._started
    _log_finished(report)
    return report


def _tombstone(mirror: MirrorImport, report: ImportReport, options: ImportOptions) -> None:
    def hold(plan: TombstonePlan) -> str | None:
        # Rows this import inserted or revived were not live before it; dry runs wrote none.
        written = 0 if options.dry_run else report.inserted + report.revived
        report.live_before = max(plan.live - written, plan.missing)
        if options.allow_mass_delete:
            return None
        return snapshot_hold_reason(
            plan,
            live_before=report.live_before,
            accepted=report.accepted,
            unidentified=report.unidentified,
            max_count=options.max_delete_count,
            max_percent=options.max_delete_percent,
        )

    outcome = mirror.tombstone_missing(hold)
    report.missing = outcome.plan.missing
    report.tombstoned = outcome.tombstoned
    report.held_reason = outcome.held_reason
    if outcome.held_reason is not None:
        log.warning(
            "mirror.import.held",
            missing=outcome.plan.missing,
            live=outcome.plan.live,
            reason=outcome.held_reason,
        )


def _log_finished(report: ImportReport) -> None:
    log.info(
        "mirror.import.finished",
        dry_run=report.dry_run,
        snapshot=report.snapshot,
        rows_read=report.rows_read,
        inserted=report.inserted,
        updated=report.updated,
        revived=report.revived,
        unchanged=report.unchanged,
        rejected=report.rejected,
        duplicates=report.duplicates,
        tombstoned=report.tombstoned,
        held=report.held_reason is not None,
        seconds=round(report.seconds, 3),
        rows_per_second=round(report.rows_per_second, 1),
    )
