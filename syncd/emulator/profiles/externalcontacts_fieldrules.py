"""Enrich ``fieldRules``: how a submitted contact combines with the stored one.

``{defaultAction, defaultArrayAction, rules: [{field, action, arrayAction}]}`` as the SDK's
EnrichFieldRules has it. Actions: ``PreferProvided`` (the default: a non-null submitted
value wins, a null or omitted one keeps the stored value), ``AlwaysUseProvided`` (the
submitted value, even null: it clears) and ``PreferExisting`` (the stored value unless it is
empty). Array actions, when both sides have items: ``Fill`` (the default: stored items,
then the submitted ones not already there, cut at the field's limit), ``Extend`` (the same,
but over the limit is a 400) and ``Replace`` (the submitted list). A rule's ``field`` is
``$.<field>`` or ``$.<field>.<sub>`` (a sub-field of an object such as ``$.address.city``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from syncd.emulator.profiles._common import Content, Invalid

ACTIONS = ("PreferProvided", "AlwaysUseProvided", "PreferExisting")
ARRAY_ACTIONS = ("Fill", "Extend", "Replace")
_PATH = re.compile(r"\$\.([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?")


@dataclass(frozen=True)
class FieldRules:
    default_action: str = "PreferProvided"
    default_array_action: str = "Fill"
    rules: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # path -> rule

    def action(self, path: str, parent: str | None = None) -> str:
        for key in (path, parent):
            if key is not None and key in self.rules:
                return self.rules[key][0]
        return self.default_action

    def array_action(self, path: str) -> str:
        rule = self.rules.get(path)
        return rule[1] if rule is not None and rule[1] else self.default_array_action


def parse_rules(raw: Any, *, where: str = "fieldRules") -> FieldRules:
    """The rules of a request (absent: the defaults); Invalid names the bad entry."""
    if raw is None:
        return FieldRules()
    if not isinstance(raw, dict) or set(raw) - {"defaultAction", "defaultArrayAction", "rules"}:
        raise Invalid([(where, "invalid.value", f"{where} must be an EnrichFieldRules object")])
    default = _choice(raw.get("defaultAction"), ACTIONS, f"{where}.defaultAction")
    array = _choice(raw.get("defaultArrayAction"), ARRAY_ACTIONS, f"{where}.defaultArrayAction")
    rules: dict[str, tuple[str, str | None]] = {}
    for position, rule in enumerate(raw.get("rules") or []):
        at = f"{where}.rules[{position}]"
        path = rule.get("field") if isinstance(rule, dict) else None
        if not isinstance(path, str) or not _PATH.fullmatch(path):
            raise Invalid([(at, "invalid.value", f"{at}.field must be a path such as $.title")])
        action = _choice(rule.get("action"), ACTIONS, f"{at}.action") or "PreferProvided"
        rules[path] = (action, _choice(rule.get("arrayAction"), ARRAY_ACTIONS, f"{at}.arrayAction"))
    return FieldRules(default or "PreferProvided", array or "Fill", rules)


def _choice(value: Any, options: tuple[str, ...], where: str) -> str | None:
    if value is None:
        return None
    if value not in options:
        raise Invalid([(where, "invalid.value", f"{where} must be one of {', '.join(options)}")])
    return str(value)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _pick(action: str, existing: Any, provided: Any) -> Any:
    if action == "AlwaysUseProvided":
        return provided
    if action == "PreferExisting":
        return provided if _empty(existing) else existing
    return existing if _empty(provided) else provided


def combine(
    existing: Content,
    provided: Content,
    rules: FieldRules,
    *,
    fields: tuple[str, ...],
    list_fields: frozenset[str],
    limits: dict[str, int],
) -> Content:
    """The content after combining ``provided`` into ``existing``, field by field."""
    out: Content = {}
    for name in fields:
        path = f"$.{name}"
        old, new = existing.get(name), provided.get(name)
        if name in list_fields and not _empty(old) and not _empty(new):
            value = _combine_lists(name, old, new, rules.array_action(path), limits.get(name))
        elif isinstance(old, dict) and isinstance(new, dict) and _has_sub_rules(rules, path):
            keys = list(dict.fromkeys([*old, *new]))
            sub = {
                k: _pick(rules.action(f"{path}.{k}", path), old.get(k), new.get(k)) for k in keys
            }
            value = {k: v for k, v in sub.items() if v is not None} or None
        else:
            value = _pick(rules.action(path), old, new)
        if not _empty(value):
            out[name] = value
    return out


def _has_sub_rules(rules: FieldRules, path: str) -> bool:
    return any(key.startswith(path + ".") for key in rules.rules)


def _combine_lists(name: str, old: Any, new: Any, action: str, limit: int | None) -> Any:
    if action == "Replace":
        return new
    merged = list(old) + [item for item in new if item not in old]
    if limit is not None and len(merged) > limit:
        if action == "Extend":
            message = f"{name} would have more than {limit} entries"
            raise Invalid([(f"contact.{name}", "invalid.value", message)])
        merged = merged[:limit]
    return merged
