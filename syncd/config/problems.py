"""Turning what is wrong with a configuration into one line per problem, all at once.

Each line names the dotted key and what is allowed there. A wrong value is quoted only for
type errors and never under a secret-looking key; control characters are shown escaped.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ValidationError

from syncd.config.sections import Settings

_SECRET_KEY = re.compile(r"secret|password|token", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _format_loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys allowed at ``loc``'s parent, for the 'unknown key' message."""
    current: type[BaseModel] = model
    for part in loc[:-1]:
        field = current.model_fields.get(str(part))
        if field is None or not isinstance(field.annotation, type):
            return []
        if not issubclass(field.annotation, BaseModel):
            return []
        current = field.annotation
    return list(current.model_fields)


def format_validation_error(exc: ValidationError) -> list[str]:
    """One human line per problem, naming the dotted key (never quoting a secret's value)."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        key = _format_loc(loc)
        secret = any(_SECRET_KEY.search(str(part)) for part in loc)
        kind = err["type"]
        if kind == "extra_forbidden":
            allowed = _allowed_keys(Settings, loc)
            hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
            problems.append(f"{key}: unknown key{hint}")
        elif kind == "missing":
            problems.append(f"{key}: required key is missing")
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            got = err.get("input")
            if (
                kind
                in (
                    "int_parsing",
                    "int_type",
                    "float_parsing",
                    "float_type",
                    "bool_type",
                    "bool_parsing",
                    "string_type",
                    "literal_error",
                    "model_type",
                )
                and not secret
            ):
                msg = f"{msg} (got {got!r})"
            problems.append(f"{key}: {msg}")
    # One line per problem: a key or a validator's message may hold a raw control character.
    return [_CONTROL.sub(lambda m: ascii(m.group())[1:-1], p) for p in problems]


def control_character_problems(data: object, loc: tuple[str, ...] = ()) -> list[str]:
    """Keys whose string value holds a control character: no setting can use one (a NUL in a
    path or URL fails far from the file, a newline in a header splits it)."""
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in control_character_problems(v, (*loc, str(k)))]
    if isinstance(data, list):
        return [
            p for i, v in enumerate(data) for p in control_character_problems(v, (*loc, str(i)))
        ]
    if isinstance(data, str) and (found := _CONTROL.search(data)):
        key = _CONTROL.sub(lambda m: ascii(m.group())[1:-1], _format_loc(loc))
        return [f"{key}: contains the control character {found.group()!a}"]
    return []
