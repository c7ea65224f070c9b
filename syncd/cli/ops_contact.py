"""`syncd contact EXTERNAL_ID`: the mirror row, the link and the ledger of one contact.

The one-stop answer to "why does this contact still have the old phone number?". Exit 0 when
syncd knows the contact anywhere, 6 (``NOT_FOUND``) when it is in none of the mirror, the
links and the ledger (a clean "no"), 2 for usage or configuration errors.
"""

from __future__ import annotations

from typing import Any

import click

from syncd.cli.context import AppContext, pass_app
from syncd.cli.formatting import format_option, plural, print_key_values, write_object
from syncd.cli.ops_common import fail, friendly_errors, open_database
from syncd.cli.ops_ledger_view import print_ledger
from syncd.exit_codes import ExitCode
from syncd.store.reports import ContactReport, contact_report, external_id_for_genesys_id

# Internal bookkeeping, not for people: shown in JSON, left out of the table.
_LINK_HIDDEN = ("external_id", "synced_content", "synced_hash", "rejected_hash")


@click.command("contact")
@click.argument("external_id")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    metavar="N",
    default=100,
    show_default=True,
    help="At most this many ledger entries, newest first; 0 = all.",
)
@format_option(("table", "json"))
@pass_app
@friendly_errors
def contact_cmd(app: AppContext, external_id: str, limit: int, fmt: str) -> None:
    """Everything syncd knows about one CRM contact: mirror row, link and ledger history.

    Exit status: 0 found, 6 unknown to syncd, 2 usage or configuration error.
    """
    db = open_database(app)
    with db.read() as conn:
        report = contact_report(conn, external_id, limit=limit or None)
        hint = None if report.found else external_id_for_genesys_id(conn, external_id)
    if not report.found:
        message = (
            f"no contact with external id {external_id!r} in the mirror, the links or the ledger"
        )
        if hint is not None:
            message += f"; {external_id!r} is the Genesys id of external id {hint!r}"
        raise fail(message, ExitCode.NOT_FOUND)
    if fmt == "json":
        write_object(_as_json(report))
        return
    _print_report(report)


def _as_json(report: ContactReport) -> dict[str, Any]:
    return {
        "external_id": report.external_id,
        "mirror": report.mirror,
        "link": report.link,
        "organization": report.organization,
        "ledger_total": report.ledger_total,
        "ledger": report.ledger,
    }


def _print_report(report: ContactReport) -> None:
    click.echo(f"Contact {report.external_id}")
    click.echo()
    if report.mirror is None:
        click.echo("Mirror: no row (never imported, or removed from crm_contacts)")
    else:
        print_key_values(
            [(k, v) for k, v in report.mirror.items() if k != "external_id"],
            title="Mirror (desired state)",
        )
    click.echo()
    if report.link is None:
        click.echo("Link: none (syncd has not created or adopted this contact in Genesys)")
    else:
        print_key_values(
            [(k, v) for k, v in report.link.items() if k not in _LINK_HIDDEN],
            title="Link (Genesys side)",
        )
    if report.organization is not None:
        click.echo()
        print_key_values(
            list(report.organization.items()),
            title="Organization record (Genesys side)",
        )
    click.echo()
    if not report.ledger:
        click.echo("Ledger: no entries")
        return
    shown, total = len(report.ledger), report.ledger_total
    which = f"newest {shown} of {total}" if shown < total else plural(total)
    print_ledger(report.ledger, title=f"Ledger ({which})")
