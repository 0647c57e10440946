"""The model catalogue: what each model takes and how much — context window, max output tokens,
input modalities, tool and output capabilities, deprecation and retirement — with its prices from
the price table.

A router's calls to another provider's model get that model's entry with what the router changes
for every model it serves (OpenRouter parses PDFs for any model; Hugging Face's API takes no file,
audio or video parts). `llmclient/data/models.json` is built by `scripts/build_models.py` from litellm's model map,
pydantic's genai-prices and hand-checked overrides (each citing the provider's page), shipped in the
package and read on first use. Its keys are the price table's (`<provider>/<model id>`) and a name
resolves to one with the same rules (`llmclient.model_names`): dated snapshots, aliases, OpenRouter
and Hugging Face serving an upstream's model. A field the sources do not state is None (unknown),
never a guessed False: only an explicit False refuses a call (`llmclient.model_checks`).

Users add entries, or correct shipped ones field by field, with a JSON file named by
`LLMCLIENT_MODELS` (the same shape).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from llmclient import price_table
from llmclient.errors import ConfigurationError, InvalidRequestError
from llmclient.model_names import Names, undated, user_table

CATALOGUE = Path(__file__).with_name("data") / "models.json"

ModelCapability = Literal["vision", "pdf", "audio", "video", "tools", "parallel_tools", "structured_output",
                          "reasoning", "prompt_caching"]
CAPABILITIES: tuple[ModelCapability, ...] = get_args(ModelCapability)
# The catalogue's field of each capability: input modalities sit under "input".
_INPUTS: Mapping[str, str] = {"vision": "image", "pdf": "pdf", "audio": "audio", "video": "video"}
_MILLION = Decimal(1_000_000)


class ModelInfo(BaseModel):
    """One catalogued model. `model` is the name asked for, `key` the catalogue entry that
    describes it (a dated snapshot, or an upstream's model behind a router, shares its entry).
    Every capability is True, False, or None when no source states it. `retires_source` says whose
    date `retires` is: "provider" (the provider's deprecation page, cited in `source`) or "litellm"
    (its model map alone; None for an entry of a user's `LLMCLIENT_MODELS` file, which is trusted).

    `context_window` is the most input tokens the model takes; `input_price` / `output_price`
    are USD per million tokens from the price table's row in force today (None: unpriced)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    key: str
    context_window: int | None = None
    max_output_tokens: int | None = None
    vision: bool | None = None
    pdf: bool | None = None
    audio: bool | None = None
    video: bool | None = None
    tools: bool | None = None
    parallel_tools: bool | None = None
    structured_output: bool | None = None
    reasoning: bool | None = None
    prompt_caching: bool | None = None
    deprecated: date | None = None
    retires: date | None = None
    retires_source: Literal["provider", "litellm"] | None = None
    replacement: str | None = None
    input_price: Decimal | None = None
    output_price: Decimal | None = None
    source: str = ""

    @property
    def provider(self) -> str:
        return self.model.split("/", 1)[0]

    @property
    def retirement_confirmed(self) -> bool:
        """Whether `retires` is the provider's own date (or the user's), not only litellm's."""
        return self.retires is not None and self.retires_source != "litellm"

    def supports(self, capability: ModelCapability) -> bool | None:
        """True, False, or None when the catalogue does not know."""
        value: bool | None = getattr(self, capability)
        return value

    @property
    def capabilities(self) -> tuple[ModelCapability, ...]:
        return tuple(name for name in CAPABILITIES if self.supports(name))


# ModelInfo's fields an entry states as they are (the input modalities sit under "input"; the
# prices come from the price table).
_ENTRY_FIELDS = tuple(name for name in ModelInfo.model_fields
                      if name not in {"model", "key", "source", "input_price", "output_price", *_INPUTS})


class _Catalogue:
    def __init__(self, entries: dict[str, dict[str, Any]], version: str, routers: dict[str, dict[str, Any]]) -> None:
        self.entries = entries
        self.version = version
        self.routers = routers  # router -> {"fill": facts true of every model it serves, "source"}
        self.names = Names.of(entries, price_table.aliases())


@cache
def _catalogue() -> _Catalogue:
    data = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    entries: dict[str, dict[str, Any]] = dict(data["models"])
    example = '{"models": {"<provider>/<model>": {"context_window": ..., "input": {"image": true}, "tools": true}}}'
    for key, entry in user_table("LLMCLIENT_MODELS", example, lambda key, entry: _info(key, key, entry)).items():
        shipped = entries.get(key, {})  # a user's entry corrects the shipped one field by field
        entries[key] = {**shipped, **entry, "input": {**(shipped.get("input") or {}), **(entry.get("input") or {})}}
    return _Catalogue(entries, str(data["version"]), dict(data.get("routers", {})))


def _info(asked: str, key: str, entry: Mapping[str, Any], base_url: str | None = None) -> ModelInfo:
    fields = {name: entry.get(name) for name in _ENTRY_FIELDS}
    inputs = entry.get("input") or {}
    fields.update({capability: inputs.get(kind) for capability, kind in _INPUTS.items()})
    provider, _, model_id = asked.partition("/")
    priced = price_table.resolve(provider, model_id, base_url)  # the asked name's own price (a snapshot's may differ)
    row = price_table.row_for(priced) if priced else None
    if row is not None:
        fields.update(input_price=_per_million(row.prices["input"]), output_price=_per_million(row.prices["output"]))
    try:
        return ModelInfo(model=asked, key=key, source=str(entry.get("source", "")), **fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ConfigurationError(f"model entry {key}: {where}: {error['msg']} (got {error.get('input')!r})") from exc


def _per_million(price: Decimal) -> Decimal:
    """USD per token as USD per million tokens, without trailing zeros or an exponent (0.15, 10)."""
    value = (price * _MILLION).normalize()
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value


def version() -> str:
    """The shipped catalogue's version (its sources and their versions)."""
    return _catalogue().version


def info(model: str, *, base_url: str | None = None) -> ModelInfo | None:
    """What the catalogue knows of `"<provider>/<model id>"`; None for a model it does not list.

    `base_url` matters for routers that name their upstream in it (Hugging Face)."""
    if not isinstance(model, str) or "/" not in model.strip("/"):
        raise InvalidRequestError(f"models.info() takes '<provider>/<model id>', got {model!r}"
                                  + _bare_hint(model if isinstance(model, str) else ""))
    provider, _, model_id = model.partition("/")
    catalogue = _catalogue()
    key = catalogue.names.resolve(provider, model_id, base_url)
    if key is None:
        return None
    entry = catalogue.entries[key]
    router = catalogue.routers.get(provider)
    if router is not None and not key.startswith(provider + "/"):  # the upstream's model, through the router
        fill = router["fill"]
        entry = {**entry, **{k: v for k, v in fill.items() if k not in _INPUTS.values()},
                 "input": {**(entry.get("input") or {}), **{k: v for k, v in fill.items() if k in _INPUTS.values()}},
                 "source": f"{entry.get('source', '')}; through {provider}: {router['source']}"}
    return _info(model, key, entry, base_url)  # built each time: prices change (set_price, a new day)


def _bare_hint(name: str) -> str:
    catalogue = _catalogue()
    found = [key for key in price_table.sold_as(name) if catalogue.names.resolve(*key.split("/", 1)) is not None]
    return f"; did you mean {found[0]}?" if found else ""


def list_models(*, provider: str | None = None, supports: Iterable[str] = (), min_context: int | None = None,
                max_input_price: Decimal | float | str | None = None) -> list[ModelInfo]:
    """Catalogued models (dated snapshots folded into their model) that have every capability in
    `supports`, take at least `min_context` input tokens and cost at most `max_input_price` USD per
    million input tokens (an unpriced model is left out by a price limit), cheapest input first."""
    wanted = capabilities(supports)
    if min_context is not None and (isinstance(min_context, bool) or not isinstance(min_context, int) or min_context < 0):
        raise InvalidRequestError(f"min_context must be a number of tokens >= 0, got {min_context!r}")
    limit = None if max_input_price is None else usd(max_input_price, "max_input_price must be USD per million input tokens >= 0")
    catalogue = _catalogue()
    found = []
    for key, entry in catalogue.entries.items():
        if provider is not None and not key.startswith(provider.rstrip("/") + "/"):
            continue
        plain = undated(key)
        if plain != key and plain in catalogue.entries and entry == {**catalogue.entries[plain], "source": entry.get("source")}:
            continue  # a snapshot described exactly as its model: listed once
        model = _info(key, key, entry)
        if any(model.supports(name) is not True for name in wanted):
            continue
        if min_context is not None and (model.context_window is None or model.context_window < min_context):
            continue
        if limit is not None and (model.input_price is None or model.input_price > limit):
            continue
        found.append(model)
    return sorted(found, key=lambda m: (m.input_price is None, m.input_price or 0, m.key))


def capabilities(names: Iterable[str]) -> tuple[ModelCapability, ...]:
    """Validated capability names; an unknown one is an InvalidRequestError listing the valid ones."""
    if isinstance(names, str):
        names = [part.strip() for part in names.split(",") if part.strip()]
    out: list[ModelCapability] = []
    for name in names:
        if name not in CAPABILITIES:
            raise InvalidRequestError(f"unknown capability {name!r}; valid capabilities: {', '.join(CAPABILITIES)}")
        out.append(name)
    return tuple(out)


def usd(value: Decimal | float | str, wanted: str) -> Decimal:
    """A dollar amount >= 0 given as a number or a decimal string; else an InvalidRequestError
    saying `wanted` and what was given."""
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        amount = Decimal(-1)
    if isinstance(value, bool) or not amount.is_finite() or amount < 0:
        raise InvalidRequestError(f"{wanted}, got {value!r}")
    return amount
