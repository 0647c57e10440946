"""llmclient/data/model_overrides.json, the hand-written part of the model catalogue: read and checked.

Two sections, each entry citing the provider's page (`source`, a URL) and the day it was checked (`as_of`):

* `providers`: per provider, which litellm flags that provider's entries maintain, so that a flag
  litellm leaves out means "no" (`absent_means_false`, read only for entries litellm describes fully:
  see models_sources.maintained), and what holds for every model of the provider that no source says
  otherwise about (`fill`: e.g. Anthropic's Messages API takes no audio or video at all).
* `models`: per `<provider>/<model>` key, fields that replace what the sources say (a null erases a
  wrong value back to unknown), or a whole record for a model neither source has.

A false flag makes the runtime refuse a call before sending it, so every false here must be citable;
the checks below refuse a malformed entry with a message naming it rather than ship a guess.
"""

from __future__ import annotations

import datetime
from typing import Any

from models_sources import CAPABILITIES, FIELDS, LIMITS, MODALITIES

FLAG_FIELDS = MODALITIES + CAPABILITIES
ENTRY_FIELDS = {*LIMITS, "input", *CAPABILITIES, "deprecated", "retires", "replacement", "source", "as_of"}
RULE_FIELDS = {"absent_means_false", "fill", "source", "as_of"}
TOP_FIELDS = {"version", "about", "providers", "models"}


class OverrideError(ValueError):
    """A malformed entry of the overrides file; the message names the entry and the field."""


def _fail(where: str, message: str) -> OverrideError:
    return OverrideError(f"model_overrides.json: {where}: {message}")


def _date(value: Any, where: str, field: str) -> str:
    try:
        if isinstance(value, str) and len(value) == 10:
            datetime.date.fromisoformat(value)
            return value
    except ValueError:
        pass
    raise _fail(where, f"{field} = {value!r} is not a YYYY-MM-DD date")


def _cited(entry: dict[str, Any], where: str) -> None:
    source = entry.get("source")
    if not isinstance(source, str) or "http" not in source:
        raise _fail(where, "missing source: cite the provider's page (a URL)")
    if "as_of" not in entry:
        raise _fail(where, "missing as_of: the day the source was checked")
    _date(entry["as_of"], where, "as_of")


def _flat(entry: dict[str, Any], where: str, allowed: set[str]) -> dict[str, Any]:
    """The record fields of an entry written in the catalogue's shape (modalities under `input`)."""
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise _fail(where, f"unknown field {unknown[0]!r} (known: {', '.join(sorted(allowed))})")
    out: dict[str, Any] = {}
    for field, value in entry.items():
        if field in ("source", "as_of"):
            continue
        if field == "input":
            if not isinstance(value, dict):
                raise _fail(where, f"input = {value!r} is not an object of {', '.join(MODALITIES)}")
            for name, flag in value.items():
                if name not in MODALITIES:
                    raise _fail(where, f"unknown field 'input.{name}' (known: {', '.join(MODALITIES)})")
                out[name] = _flag(flag, where, f"input.{name}")
        elif field in LIMITS:
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise _fail(where, f"{field} = {value!r} is not a positive integer (or null)")
            out[field] = value
        elif field in CAPABILITIES:
            out[field] = _flag(value, where, field)
        elif field in ("deprecated", "retires"):
            out[field] = None if value is None else _date(value, where, field)
        elif field == "replacement":
            if value is not None and (not isinstance(value, str) or "/" not in value):
                raise _fail(where, f"replacement = {value!r} is not a '<provider>/<model>' key (or null)")
            out[field] = value
    return out


def _flag(value: Any, where: str, field: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise _fail(where, f"{field} = {value!r} is not true, false or null")
    return value


def check(data: Any) -> dict[str, Any]:
    """The overrides file checked and flattened: {"version", "providers": {name: rule}, "models": {key:
    (fields, source)}}. Raises OverrideError naming the first malformed entry."""
    if not isinstance(data, dict):
        raise _fail("top level", "expected an object")
    unknown = sorted(set(data) - TOP_FIELDS)
    if unknown:
        raise _fail("top level", f"unknown field {unknown[0]!r}")
    if not isinstance(data.get("version"), str) or not data["version"]:
        raise _fail("top level", "missing version (a string, bumped on every edit)")
    providers: dict[str, dict[str, Any]] = {}
    for name, rule in (data.get("providers") or {}).items():
        where = f"providers[{name!r}]"
        if not isinstance(rule, dict):
            raise _fail(where, "expected an object")
        unknown = sorted(set(rule) - RULE_FIELDS)
        if unknown:
            raise _fail(where, f"unknown field {unknown[0]!r} (known: {', '.join(sorted(RULE_FIELDS))})")
        _cited(rule, where)
        absent = rule.get("absent_means_false", [])
        if not isinstance(absent, list) or any(field not in FLAG_FIELDS for field in absent):
            raise _fail(where, f"absent_means_false = {absent!r}: name fields among {', '.join(FLAG_FIELDS)}")
        fill = _flat(rule.get("fill", {}), f"{where}.fill", {"input", *CAPABILITIES})
        providers[name] = {"absent_means_false": list(absent), "fill": fill, "source": rule["source"]}
    models: dict[str, tuple[dict[str, Any], str]] = {}
    for key, entry in (data.get("models") or {}).items():
        where = f"models[{key!r}]"
        if "/" not in key:
            raise _fail(where, "a key is '<provider>/<model>'")
        if not isinstance(entry, dict):
            raise _fail(where, "expected an object")
        _cited(entry, where)
        fields = _flat(entry, where, ENTRY_FIELDS)
        if not fields:
            raise _fail(where, f"no field to set (fields: {', '.join(FIELDS)})")
        models[key] = fields, entry["source"]
    return {"version": data["version"], "providers": providers, "models": models}
