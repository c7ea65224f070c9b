"""Variants: the production behaviours of External Contacts that are *unconfirmed*.

Where Genesys' documentation does not settle how the real service behaves, the emulator
can play every plausible answer, so syncd can be proven correct under each of them. The
defaults are what ``genesys-cloud-facts.md`` leans to. They are switchable at run time
(``POST /__emulator/variants``) and start from ``EmulatorConfig.variants``; a reset goes
back to the configured ones. Each is described in ``docs/externalcontacts.md``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

CHOICES: dict[str, tuple[Any, ...]] = {
    # POST /contacts (or bulk add) naming an ExternalId another contact already claims.
    "claimed_external_id": ("duplicate", "reject", "merge"),
    # GET of a contact's externalOrganization without expand=externalOrganization.
    "organization_read": ("reference", "name"),
    # "strict" (the default) is production: a contact may name only an existing organization
    # record. "legacy" accepts an embedded {id, name} without one (an older client's shape).
    "organization_check": ("strict", "legacy"),
    # GET /contacts/{id} of a merged-away id.
    "merged_contact_get": ("canonical", "unresolved", "not_found"),
    # The status of a bulk request over its entity limit.
    "bulk_limit_status": (413, 400),
}


@dataclass
class Variants:
    identifier_lookup_lag_ms: float = 0.0  # the identifier lookup is immediately consistent
    claimed_external_id: str = "duplicate"
    organization_read: str = "reference"
    organization_check: str = "strict"  # production; "legacy" for a client sending {id, name}
    merged_contact_get: str = "canonical"
    bulk_enrich_max_entities: int = 10  # the SDK docstring: "up to 10 Enrich operations"
    bulk_limit_status: int = 413

    def updated(self, changes: dict[str, Any]) -> Variants:
        """A copy with ``changes``; ValueError (and nothing changed) if any is invalid."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown variants: {', '.join(unknown)}")
        new = Variants(**asdict(self))
        for name, value in changes.items():
            if name in CHOICES:
                if value not in CHOICES[name] or isinstance(value, bool):
                    options = ", ".join(repr(choice) for choice in CHOICES[name])
                    raise ValueError(f"{name} must be one of {options}")
            elif name == "identifier_lookup_lag_ms":
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ValueError(f"{name} must be a non-negative number")
                value = float(value)
            elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer")
            setattr(new, name, value)
        return new

    def describe(self) -> dict[str, Any]:
        return asdict(self)
