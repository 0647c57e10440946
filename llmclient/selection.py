"""`select_model(...)`: the catalogued models that meet a call's requirements, ranked, each with its
estimated cost per call and why it was ranked where it is or left out.

    >>> from llmclient import select_model
    >>> picked = select_model(budget_per_call=0.002, min_context=100_000, capabilities=["vision", "tools"],
    ...                       expected_input_tokens=3_000, expected_output_tokens=500, include_unkeyed=True)
    >>> picked.best.model, picked.best.estimated_cost     # doctest: +SKIP
    ('gemini/gemini-2.0-flash-lite', Decimal('0.000375'))

The cost is the price table's formula (`llmclient.pricing.cost`) on the expected tokens, with the
tier those tokens fall in. `prefer="cost"` ranks by it. The catalogue holds no measured speed or
quality, so those two orders are stated rules, not benchmarks: "speed" puts providers running
their own inference hardware (Groq, Cerebras) first, then small models (mini, nano, flash, haiku,
lite, small, 8b-class names), then the rest, reasoning models last; "quality" puts reasoning models
first, then the higher output price (a provider prices its strongest model highest). Each
candidate's `why` says which rule placed it.

Only models of providers llmclient calls directly (built in, or declared in the configuration) and
whose key is set are candidates (`include_unkeyed=True`: all of them); retired models never are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal, get_args

from llmclient import envfile, models, pricing
from llmclient.errors import InvalidRequestError
from llmclient.model_names import undated
from llmclient.models import ModelInfo
from llmclient.providers import REGISTRY, ProviderSpec
from llmclient.types import Usage

Preference = Literal["cost", "speed", "quality"]
PREFERENCES: tuple[Preference, ...] = get_args(Preference)
_FAST_HARDWARE = ("groq", "cerebras")
_SMALL = re.compile(r"(mini|nano|flash|haiku|lite|small|tiny|instant|\b[1-9]b\b|-[1-9]b\b|\b8x7b\b)", re.I)


@dataclass(frozen=True)
class Candidate:
    """One model considered: `estimated_cost` is USD for one call of the expected size (None:
    unpriced); `eligible` whether it meets every requirement; `why` the reasons, in order."""

    model: str
    info: ModelInfo
    estimated_cost: Decimal | None
    eligible: bool
    why: tuple[str, ...]


@dataclass(frozen=True)
class Selection:
    """`ranked`: the eligible candidates, best first; `excluded`: the others, each with its reason."""

    ranked: tuple[Candidate, ...]
    excluded: tuple[Candidate, ...]
    prefer: Preference
    requirements: dict[str, object] = field(default_factory=dict)

    @property
    def best(self) -> Candidate | None:
        return self.ranked[0] if self.ranked else None

    def __iter__(self) -> Iterator[Candidate]:
        return iter(self.ranked)

    def __len__(self) -> int:
        return len(self.ranked)


def select_model(*, budget_per_call: Decimal | float | str | None = None, min_context: int | None = None,
                 capabilities: Iterable[str] = (), prefer: Preference = "cost", expected_input_tokens: int = 1_000,
                 expected_output_tokens: int = 500, providers: Sequence[str] | None = None,
                 include_unkeyed: bool = False, include_free: bool = False, on: date | None = None) -> Selection:
    """Rank the catalogue's models for a call of `expected_input_tokens` in and
    `expected_output_tokens` out: a context window of at least `min_context` (and the input), an
    output limit of at least the output, every capability in `capabilities` (see
    `llmclient.models.CAPABILITIES`), an estimated cost within `budget_per_call` USD.

    A model the price table prices at $0 (a free tier, an experimental or preview offer, with rate
    limits and no service level) is a candidate only with `include_free=True`."""
    budget = None if budget_per_call is None else models.usd(budget_per_call, "budget_per_call must be USD per call >= 0 (e.g. 0.01)")
    wanted = models.capabilities(capabilities)
    if prefer not in PREFERENCES:
        raise InvalidRequestError(f"prefer must be one of {', '.join(PREFERENCES)}, got {prefer!r}")
    for name, value in (("expected_input_tokens", expected_input_tokens), ("expected_output_tokens", expected_output_tokens),
                        ("min_context", 0 if min_context is None else min_context)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidRequestError(f"{name} must be a number of tokens >= 0, got {value!r}")
    if providers is not None:
        unknown = sorted(set(providers) - set(REGISTRY))
        if unknown:
            raise InvalidRequestError(f"unknown provider(s) {', '.join(unknown)}; known: {', '.join(sorted(REGISTRY))}")
    usage = Usage(input_tokens=expected_input_tokens, output_tokens=expected_output_tokens)
    needed_context = max(min_context or 0, expected_input_tokens)
    today = on or date.today()
    eligible: list[Candidate] = []
    excluded: list[Candidate] = []
    for info in models.list_models():
        provider = info.provider
        if providers is not None and provider not in providers:
            continue
        cost = pricing.cost(provider, info.key.split("/", 1)[1], usage, on=today)
        estimated = cost.total.normalize() if cost is not None else None
        reasons = _exclusions(info, wanted, needed_context, expected_output_tokens, budget, estimated, include_unkeyed, today)
        if estimated == 0 and not include_free and info.input_price == 0:
            reasons.append("priced $0: a free, experimental or preview offer (include_free=True considers it)")
        target = excluded if reasons else eligible
        target.append(Candidate(info.key, info, estimated, not reasons, tuple(reasons)))
    ranked = sorted(_without_twins(eligible), key=_order(prefer))
    ranked = [_explained(c, prefer, position, today) for position, c in enumerate(ranked, 1)]
    requirements: dict[str, object] = {
        "budget_per_call": budget, "min_context": min_context, "capabilities": list(wanted), "prefer": prefer,
        "expected_input_tokens": expected_input_tokens, "expected_output_tokens": expected_output_tokens,
        "include_unkeyed": include_unkeyed, "include_free": include_free}
    return Selection(tuple(ranked), tuple(excluded), prefer, requirements)


def _without_twins(eligible: list[Candidate]) -> list[Candidate]:
    """Leave out a dated snapshot when its model's name is eligible at the same cost: the name is
    what a caller would use (it follows the provider's current snapshot)."""
    by_key = {c.model: c for c in eligible}
    return [c for c in eligible
            if undated(c.model) == c.model or undated(c.model) not in by_key
            or by_key[undated(c.model)].estimated_cost != c.estimated_cost]


def _exclusions(info: ModelInfo, wanted: Sequence[models.ModelCapability], context: int, output: int,
                budget: Decimal | None, estimated: Decimal | None, include_unkeyed: bool, today: date) -> list[str]:
    reasons = []
    spec = _provider(info.provider)
    if spec is None or spec.wire == "litellm" or spec.name == "mock":
        return [f"llmclient has no built-in provider {info.provider!r} (declare it in llmclient.toml "
                f"[providers.{info.provider}], or reach it as litellm/...)"]
    if not include_unkeyed and not spec.keyless and not envfile.getenv(spec.api_key_env):
        reasons.append(f"no key: {spec.api_key_env} is not set (include_unkeyed=True lists it anyway)")
    if info.retires is not None and info.retires <= today and info.retirement_confirmed:
        reasons.append(f"retired on {info.retires.isoformat()}")
    missing = [name for name in wanted if info.supports(name) is not True]
    if missing:
        unknown = [name for name in missing if info.supports(name) is None]
        reasons.append(f"lacks {', '.join(missing)}" + (f" ({', '.join(unknown)} not known)" if unknown else ""))
    if context and (info.context_window is None or info.context_window < context):
        window = "unknown" if info.context_window is None else f"{info.context_window:,}"
        reasons.append(f"context window {window} < {context:,} tokens")
    if output and (info.max_output_tokens is None or info.max_output_tokens < output):
        limit = "unknown" if info.max_output_tokens is None else f"{info.max_output_tokens:,}"
        reasons.append(f"output limit {limit} < {output:,} tokens")
    if budget is not None:
        if estimated is None:
            reasons.append("price unknown, so the budget cannot be checked")
        elif estimated > budget:
            reasons.append(f"estimated ${_money(estimated)} per call > budget ${_money(budget)}")
    return reasons


# What each exclusion reason is about, by how its text starts (for summaries of many).
REASON_KINDS = {"llmclient has no built-in provider": "not a built-in provider", "no key": "no key set",
                "retired": "retired", "lacks": "lacks a capability", "context window": "context window too small",
                "output limit": "output limit too low", "price unknown": "price unknown",
                "estimated": "over budget", "priced $0": "free tier"}


def reason_kind(reason: str) -> str:
    return next((kind for start, kind in REASON_KINDS.items() if reason.startswith(start)), reason)


def _provider(name: str) -> ProviderSpec | None:
    """The registered provider, or one the configuration declares (llmclient.toml [providers])."""
    from llmclient.config import get_config

    return REGISTRY.get(name) or get_config().provider_spec(name)


def _speed_tier(info: ModelInfo) -> tuple[int, str]:
    if info.reasoning:
        return 3, "a reasoning model (thinks before answering)"
    if info.provider in _FAST_HARDWARE:
        return 0, f"{info.provider} runs its own inference hardware"
    if _SMALL.search(info.key.split("/", 1)[1]):
        return 1, "a small model (by its name)"
    return 2, "a full-size model"


def _order(prefer: Preference) -> Callable[[Candidate], tuple[Any, ...]]:
    def by_cost(c: Candidate) -> tuple[Any, ...]:
        return (c.estimated_cost is None, c.estimated_cost or 0, c.model)

    def by_speed(c: Candidate) -> tuple[Any, ...]:
        return (_speed_tier(c.info)[0], *by_cost(c))

    def by_quality(c: Candidate) -> tuple[Any, ...]:
        return (not c.info.reasoning, -(c.info.output_price or 0), -(c.info.context_window or 0), c.model)

    return {"cost": by_cost, "speed": by_speed, "quality": by_quality}[prefer]


def _explained(candidate: Candidate, prefer: Preference, position: int, today: date) -> Candidate:
    cost = "price unknown" if candidate.estimated_cost is None else f"estimated ${_money(candidate.estimated_cost)} per call"
    if prefer == "cost":
        rule = cost
    elif prefer == "speed":
        rule = f"speed rule: {_speed_tier(candidate.info)[1]}; {cost}"
    else:
        output = candidate.info.output_price
        rule = ("quality rule: " + ("a reasoning model; " if candidate.info.reasoning else "")
                + (f"output ${_money(output)}/M tokens" if output is not None else "output price unknown") + f"; {cost}")
    if candidate.info.reasoning:
        rule += " (a reasoning model also bills its thinking as output: expect more)"
    if candidate.info.retires is not None and not candidate.info.retirement_confirmed and candidate.info.retires <= today:
        rule += f"; litellm's map gives {candidate.info.retires.isoformat()} as its shutdown date, which the provider's page does not confirm"
    return Candidate(candidate.model, candidate.info, candidate.estimated_cost, True,
                     (f"#{position} by {prefer}: meets every requirement; {rule}",))


def _money(value: Decimal) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "0") or value == 0 else f"{value:.2E}"
