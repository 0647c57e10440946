"""Replay of the shared reference traffic (real recorded provider interactions) through the public API.

Every cassette in `../shared/reference-traffic/` is replayed with `Client(...).complete` or
`.stream` under `use_cassette(..., mode="replay")`, and the result is compared with the case's
`expected.json`, which was computed from the raw body by an independent conversion script. The
normalised values we expect are derived here from the raw numbers by the usage semantics the
corpus README documents, not by llmclient's code.

Run directly for the table: `python -m tests.reference_traffic`.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import defaultdict
from decimal import Decimal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

import llmclient
from llmclient import Client, LLMError, ProviderSpec, Response, register_provider, use_cassette
from llmclient.policies.retry import NO_RETRY

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("LLMCLIENT_REFERENCE_TRAFFIC", REPO.parent / "shared" / "reference-traffic"))
FIELDS = ("text", "tool_calls", "finish", "usage", "error")

# The finish reasons of the contract, from each wire format's documented values.
FINISH = {
    "openai_chat_completions": {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "content_filter": "content_filter"},
    "anthropic_messages": {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls", "refusal": "content_filter"},
    "gemini": {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter", "PROHIBITED_CONTENT": "content_filter"},
    "cohere_v2_chat": {"COMPLETE": "stop", "STOP_SEQUENCE": "stop", "MAX_TOKENS": "length", "TOOL_CALL": "tool_calls"},
}
# The error class the contract assigns: by HTTP status; an error event inside a 200 stream by its type.
ERROR_CLASS = {400: "BadRequestError", 401: "AuthenticationError", 404: "NotFoundError", 429: "RateLimitError"}
ERROR_TYPE_CLASS = {"invalid_request_error": "BadRequestError", "rate_limit_error": "RateLimitError", "overloaded_error": "OverloadedError"}


@dataclass
class Case:
    provider: str
    name: str
    cassette: Path
    expected: dict[str, Any]
    request: dict[str, Any]
    response_body: str

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.name}"

    @property
    def endpoint(self) -> str:
        return str(self.expected["endpoint"])


@dataclass
class Outcome:
    case: Case
    fields: dict[str, bool] = field(default_factory=dict)
    detail: dict[str, str] = field(default_factory=dict)
    response: Response | None = None


def cases() -> list[Case]:
    found = []
    for cassette in sorted(CORPUS.glob("*/*.yaml")):
        expected = json.loads(cassette.with_name(cassette.name[: -len(".yaml")] + ".expected.json").read_text())
        interaction = yaml.load(cassette.read_text(), Loader=yaml.CSafeLoader)["interactions"][0]
        found.append(
            Case(
                provider=cassette.parent.name,
                name=cassette.name[: -len(".yaml")],
                cassette=cassette,
                expected=expected,
                request=interaction["request"],
                response_body=interaction["response"]["body"]["string"],
            )
        )
    return found


# --- routing: which Client reaches the recorded endpoint ---------------------------------------

_BUILTIN_HOSTS = {spec.name: urlsplit(spec.base_url).hostname for spec in llmclient.providers.BUILTIN_PROVIDERS}


def client_for(case: Case) -> Client:
    uri = case.request["uri"]
    parts = urlsplit(uri)
    body = json.loads(case.request["body"]) if case.request.get("body") else {}
    if case.endpoint.startswith("gemini"):
        model = re.search(r"/models/([^:/]+):", parts.path).group(1)  # type: ignore[union-attr]
    else:
        model = body.get("model") or "unknown-model"
    if case.provider in _BUILTIN_HOSTS and parts.hostname == _BUILTIN_HOSTS[case.provider]:
        return Client(f"{case.provider}/{model}", retry=NO_RETRY)  # each recording is one attempt
    # Not built in: the provider is a registry row, as a user would add it.
    base = f"{parts.scheme}://{parts.netloc}{parts.path[: -len('/chat/completions')]}"
    query = {k: v for k, v in parse_qsl(parts.query) if k not in ("key", "api_key")}
    spec = ProviderSpec(name=case.provider, base_url=base, default_query=query,
                        api_key_env=re.sub(r"\W", "_", case.provider).upper() + "_API_KEY")
    register_provider(spec, replace=True)
    return Client(f"{case.provider}/{model}", retry=NO_RETRY)


# --- what the contract says the result must be ---------------------------------------------------

def expected_usage(case: Case) -> dict[str, int] | None:
    raw = case.expected["usage"]
    if raw is None or all(value is None for value in raw.values()):
        return None
    n = {key: value or 0 for key, value in raw.items()}
    endpoint = case.endpoint
    if endpoint == "anthropic_messages":
        iterations = _anthropic_iterations(case)
        if iterations:  # billed for every iteration
            return {
                "input_tokens": sum(i["input_tokens"] + i.get("cache_read_input_tokens", 0) + i.get("cache_creation_input_tokens", 0) for i in iterations),
                "output_tokens": sum(i["output_tokens"] for i in iterations),
                "cache_read_tokens": sum(i.get("cache_read_input_tokens", 0) for i in iterations),
                "cache_write_tokens": sum(i.get("cache_creation_input_tokens", 0) for i in iterations),
                "reasoning_tokens": n["reasoning_tokens"],
            }
        n["input_tokens"] += n["cache_read_tokens"] + n["cache_write_tokens"]
    elif endpoint.startswith("gemini"):
        n["input_tokens"] += _gemini_tool_use_prompt(case)
        n["output_tokens"] += n["reasoning_tokens"]
    return n


def _payloads(case: Case) -> list[Any]:
    if not case.expected["stream"]:
        return [json.loads(case.response_body)]
    lines = case.response_body.replace("\r\n", "\n").split("\n")
    return [json.loads(line[5:]) for line in lines if line.startswith("data:") and line[5:].strip() != "[DONE]"]


def _anthropic_iterations(case: Case) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for payload in _payloads(case):
        usage = payload.get("usage") or (payload.get("message") or {}).get("usage") or {}
        found = usage.get("iterations") or found
    return found


def _gemini_tool_use_prompt(case: Case) -> int:
    last = [p["usageMetadata"] for p in _payloads(case) if "usageMetadata" in p]
    return int(last[-1].get("toolUsePromptTokenCount", 0)) if last else 0


def expected_finish(case: Case) -> str:
    raw = case.expected["finish_reason"]
    table = FINISH["gemini" if case.endpoint.startswith("gemini") else case.endpoint]
    reason = table.get(raw, "other") if raw else "other"
    return "tool_calls" if reason == "stop" and case.expected["tool_calls"] else reason


def expected_error_class(case: Case) -> str | None:
    error = case.expected["error"]
    if error is None:
        return None
    if case.expected["status"] >= 400:
        return ERROR_CLASS[case.expected["status"]]
    return ERROR_TYPE_CLASS[error["type"]]


# --- replay and compare --------------------------------------------------------------------------

def replay(case: Case) -> Outcome:
    outcome = Outcome(case)
    response = error = None
    # The recorded request was another client's; this replays its answer to "Hello" (tests/test_request_fidelity.py
    # checks the request half): match the endpoint, not the body.
    with use_cassette(case.cassette, mode="replay", match="endpoint") as cassette:
        client = client_for(case)
        try:
            if case.expected["stream"]:
                stream = client.stream("Hello")
                deltas = "".join(event.text for event in stream if event.kind == "text")
                response = stream.response
                if deltas != response.text:
                    outcome.detail["stream"] = "the deltas do not add up to response.text"
            else:
                response = client.complete("Hello")
        except LLMError as exc:
            error = exc
        played = cassette.all_played
    outcome.response = response
    expected_class = expected_error_class(case)
    got_class = type(error).__name__ if error else None
    outcome.fields["error"] = got_class == expected_class and played
    if got_class != expected_class:
        outcome.detail["error"] = f"expected {expected_class}, got {got_class}: {str(error)[:300]}"
    if response is None:
        for name in FIELDS[:-1]:  # an error case is right on these when it raised as it should
            outcome.fields[name] = expected_class is not None and got_class == expected_class
        return outcome
    usage = response.usage.model_dump(exclude={"iterations", "tool_uses", "total_tokens"}) if response.usage else None
    calls = [{"name": c.name, "arguments": c.arguments} for c in response.tool_calls]
    checks = {
        "text": (response.text, case.expected["text"]),
        "tool_calls": (calls, case.expected["tool_calls"]),
        "finish": ((response.finish_reason, response.raw_finish_reason), (expected_finish(case), case.expected["finish_reason"])),
        "usage": (usage, expected_usage(case)),
    }
    for name, (got, want) in checks.items():
        outcome.fields[name] = got == want and "stream" not in outcome.detail
        if got != want:
            outcome.detail[name] = f"expected {str(want)[:160]!r}, got {str(got)[:160]!r}"
    return outcome


def run() -> tuple[list[Outcome], float]:
    started = time.perf_counter()
    outcomes = [replay(case) for case in cases()]
    for case in {o.case.provider for o in outcomes} - set(_BUILTIN_HOSTS):
        llmclient.unregister_provider(case)
    return outcomes, time.perf_counter() - started


def report(outcomes: list[Outcome], seconds: float) -> dict[str, Any]:
    table: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for o in outcomes:
        cell = table[o.case.provider][o.case.expected["scenario"]]
        cell["cases"] += 1
        for name in FIELDS:
            cell[name] += o.fields[name]
    total = len(outcomes)
    rates = {name: sum(o.fields[name] for o in outcomes) / total for name in FIELDS}
    return {
        "cases": total,
        "seconds": round(seconds, 2),
        "rates": rates,
        "table": {p: {s: dict(c) for s, c in sorted(sc.items())} for p, sc in sorted(table.items())},
        "failures": {o.case.key: o.detail for o in outcomes if not all(o.fields.values())},
    }


def render(summary: dict[str, Any]) -> str:
    lines = [f"reference traffic: {summary['cases']} cases in {summary['seconds']} s",
             "provider             scenario            cases " + " ".join(f"{f:>10}" for f in FIELDS)]
    for provider, scenarios in summary["table"].items():
        for scenario, cell in scenarios.items():
            lines.append(f"{provider:<20} {scenario:<19} {cell['cases']:>5} "
                         + " ".join(f"{cell[f]:>10}" for f in FIELDS))
    lines.append("pass rate" + " " * 32 + " ".join(f"{summary['rates'][f]:>10.2%}" for f in FIELDS))
    return "\n".join(lines)


if __name__ == "__main__":
    results, elapsed = run()
    summary = report(results, elapsed)
    print(render(summary))
    for key, detail in summary["failures"].items():
        print(key, detail)


def expected_cost_total(outcome: Outcome) -> Decimal | None:
    """The formula on the normalised usage, at the per-token prices the cost says it used; the
    split of 1-hour cache writes comes from the recorded body. Independent of pricing.py's code."""
    response = outcome.response
    if response is None or response.usage is None or response.cost is None or response.cost.prices is None:
        return None
    usage, prices = response.usage, response.cost.prices
    if usage.iterations and any(step.model and step.model != response.model for step in usage.iterations):
        return None  # priced per iteration at several models' prices: checked by unit tests
    hour = 0
    for payload in _payloads(outcome.case):
        found = _find(payload, "ephemeral_1h_input_tokens")
        hour = found if isinstance(found, int) else hour
    hour = min(hour, usage.cache_write_tokens)
    read = prices.cache_read if prices.cache_read is not None else prices.input
    write = prices.cache_write if prices.cache_write is not None else prices.input
    uncached = usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens
    if uncached < 0 and prices.cache_read is None and prices.cache_write is None:
        uncached, read, write = usage.input_tokens, Decimal(0), Decimal(0)
    reasoning = prices.reasoning if prices.reasoning is not None else prices.output
    uses = recorded_tool_uses(outcome.case)
    tools = sum((fee * uses.get(kind, 0) for kind, fee in (prices.tool_fees or {}).items()), Decimal(0))
    return (uncached * prices.input + usage.cache_read_tokens * read
            + (usage.cache_write_tokens - hour) * write + hour * (prices.cache_write_1h or write)
            + (usage.output_tokens - usage.reasoning_tokens) * prices.output + usage.reasoning_tokens * reasoning
            + tools)


def recorded_tool_uses(case: Case) -> dict[str, int]:
    """Built-in tool uses as the recorded body states them (read here, not by llmclient's decoders):
    Anthropic `server_tool_use.web_search_requests` (its last report), Gemini's distinct
    `groundingMetadata.webSearchQueries` (and one grounded prompt), Groq Compound's distinct
    `executed_tools` runs of type "search"."""
    searches: int | None = None
    queries: set[str] = set()
    runs: set[Any] = set()
    for payload in _payloads(case):
        found = _find(payload, "web_search_requests")
        searches = found if isinstance(found, int) else searches
        for chunk in payload if isinstance(payload, list) else [payload]:
            for candidate in (chunk.get("candidates") or []) if isinstance(chunk, dict) else []:
                queries.update((candidate.get("groundingMetadata") or {}).get("webSearchQueries") or [])
            for choice in (chunk.get("choices") or []) if isinstance(chunk, dict) else []:
                part = choice.get("message") or choice.get("delta") or {}
                runs.update(run.get("index", i) for i, run in enumerate(part.get("executed_tools") or [])
                            if run.get("type") == "search")
    if queries:
        return {"web_search": len(queries), "grounded_prompt": 1}
    if runs:
        return {"web_search": len(runs)}
    return {"web_search": searches} if searches else {}


def _find(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        if key in value:
            return value[key]
        for item in value.values():
            found = _find(item, key)
            if found is not None:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _find(item, key)
            if found is not None:
                return found
    return None


def cost_report(outcomes: list[Outcome]) -> dict[str, Any]:
    """Per provider: interactions with usage, how many priced, how many match the formula; and
    for OpenRouter cases that report a cost, ours against theirs."""
    per: dict[str, dict[str, int]] = defaultdict(lambda: {"with_usage": 0, "priced": 0, "formula_checked": 0, "formula_exact": 0})
    mismatches, unpriced, provider_costs = [], [], []
    for o in outcomes:
        r = o.response
        if r is None or r.usage is None:
            continue
        row = per[o.case.provider]
        row["with_usage"] += 1
        if r.cost is None:
            unpriced.append(f"{o.case.key} ({r.model})")
            continue
        row["priced"] += 1
        if r.cost.source == "provider":
            ours = r.cost.computed_total
            gap = None if ours is None or not r.cost.total else float(abs(ours - r.cost.total) / r.cost.total)
            provider_costs.append({"case": o.case.key, "model": r.model, "reported": str(r.cost.total),
                                   "computed": None if ours is None else str(ours.normalize()), "gap": gap})
            continue
        expected = expected_cost_total(o)
        if expected is None:
            continue
        row["formula_checked"] += 1
        if expected == r.cost.total:
            row["formula_exact"] += 1
        else:
            mismatches.append(f"{o.case.key}: expected {expected}, got {r.cost.total}")
    totals = {key: sum(row[key] for row in per.values()) for key in ("with_usage", "priced", "formula_checked", "formula_exact")}
    return {"per_provider": {p: dict(v) for p, v in sorted(per.items())}, "totals": totals,
            "priced_rate": totals["priced"] / max(totals["with_usage"], 1), "unpriced": unpriced,
            "formula_mismatches": mismatches, "provider_reported": provider_costs}
