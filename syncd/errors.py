"""The one exception tree of syncd.

    SyncdError                      root: anything syncd raises on purpose
    ├── UserError                   print the message (no traceback), exit USAGE (2)
    │   ├── ConfigError             the configuration file or environment is wrong
    │   ├── SchemaError             the database schema is missing or out of date
    │   └── LockHeldError           another writer (daemon or `syncd sync`) holds the sync lock
    ├── DatabaseError               the database failed underneath us (connection lost, locked...)
    ├── InputError                  a mirror import file or row cannot be read
    └── ApiError                    the Genesys API call failed (raised by `syncd.genesys`)
        ├── ApiValidationError      400: the server rejected the content; retry only when it changes
        ├── ApiAuthError            401 after one token renewal, or 403
        ├── ApiNotFoundError        404
        ├── ApiConflictError        409
        ├── ApiRateLimitedError     429 that outlived the retry policy
        ├── ApiUnavailableError     5xx, timeouts, connection errors after the retry budget
        ├── ApiProtocolError        the server answered something that is not the documented shape
        └── OutcomeUnknownError     a non-idempotent write may or may not have been applied

Lower-level errors are translated at the layer boundary with ``raise Mapped(...) from exc``.
"""

from __future__ import annotations

from syncd.exit_codes import ExitCode


class SyncdError(Exception):
    """Root of every exception syncd raises on purpose."""


class UserError(SyncdError):
    """A problem the operator can fix: the CLI prints the message and exits ``USAGE``."""

    exit_code = ExitCode.USAGE


class ConfigError(UserError):
    """The configuration is invalid; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str] | str, *, source: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        head = f"invalid configuration in {source}" if source else "invalid configuration"
        body = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{head}:\n{body}")


class SchemaError(UserError):
    """The database schema is not at the version this syncd expects."""


class LockHeldError(UserError):
    """Another process holds the single-writer sync lock."""


class DatabaseError(SyncdError):
    """The database failed underneath an operation (not a programming error)."""


class InputError(SyncdError):
    """An import file (or one of its rows) cannot be read."""


class ApiError(SyncdError):
    """A Genesys API call failed. ``status`` is the HTTP status when there was one."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        correlation_id: str | None = None,
        method: str | None = None,
        route: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.correlation_id = correlation_id
        self.method = method
        self.route = route


class ApiValidationError(ApiError):
    """400: the request content was rejected; resending the same content cannot succeed."""


class ApiAuthError(ApiError):
    """401 after a token renewal, or 403: credentials or permissions are wrong."""


class ApiNotFoundError(ApiError):
    """404: the resource does not exist (deleted by hand, or never created)."""


class ContactMergedError(ApiNotFoundError):
    """The contact was merged into another in Genesys: the id no longer names a live contact.

    Raised for a read that answers the surviving contact, or the merged-away record
    (``mergedTo``), instead of the contact asked for; ``survivor`` is the live contact's id.
    """

    def __init__(self, genesys_id: str, survivor: str, **kw: object) -> None:
        message = f"contact {genesys_id} was merged into {survivor} in Genesys"
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.survivor = survivor


class ApiConflictError(ApiError):
    """409: the request conflicts with the resource's state."""


class ApiRateLimitedError(ApiError):
    """429 that outlived the retry policy."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ApiUnavailableError(ApiError):
    """The service is failing (5xx, timeouts, connection errors) beyond the retry budget."""


class ApiEnvironmentError(ApiError):
    """A 400 about something outside the contact's content: the organization record it
    references, a division, syncd's external source. The same content may succeed once that
    is fixed in Genesys, so the row backs off and is retried instead of waiting for the CRM
    to change it. ``cause`` names what to fix."""

    MARK = "fix in Genesys"  # in every message, so that stored errors can be told apart
    ORGANIZATION = "the organization record"  # the cause when a referenced record is missing

    def __init__(self, message: str, *, cause: str, **kw: object) -> None:
        super().__init__(f"{message} [{self.MARK}: {cause}]", **kw)  # type: ignore[arg-type]
        self.cause = cause


class OrganizationPendingError(ApiEnvironmentError):
    """A contact names a CRM organization that has no Genesys record yet (its create failed,
    or its outcome is unknown): the contact is not sent, and backs off until the record is
    found or created (a contact referencing a missing organization is a 400 in Genesys)."""

    def __init__(self, organization_id: str, reason: str = "") -> None:
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"organization {organization_id!r} has no Genesys record yet{why}; the contact "
            "waits for it",
            cause=ApiEnvironmentError.ORGANIZATION,
        )
        self.organization_id = organization_id


class ApiProtocolError(ApiError):
    """The server answered with a body that does not match the documented shape."""


class OutcomeUnknownError(ApiError):
    """A non-idempotent write (a create) may or may not have been applied.

    Never re-send it blindly: look the contact up first (invariant 1, no duplicates).
    """
