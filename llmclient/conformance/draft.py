"""Drafts an expected-values fixture from a cassette's raw response bodies (`--draft-expected`).

Each recorded answer is decoded with the target's wire module (JSON or SSE), its usage put in our
buckets and priced from the dated price table, the arithmetic written out; error answers are
classified as the client would. No Client call, no replay. A draft starts with `"draft": true`: the
runner fails its cell until a person has checked every value and deleted `draft` and `draft_note`.

Zero-request scenarios (`interactions == 0`) are skipped: they have no cassette, and the error they
expect is the contract's (their description names it), which a person writes by hand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from email.utils import parsedate_to_datetime
from itertools import product
from pathlib import Path
from typing import Any

import yaml

from llmclient import pricing
from llmclient.assemble import Assembler
from llmclient.conformance.scenarios import Scenario
from llmclient.conformance.targets import Target
from llmclient.errors import APIError, ConfigurationError, MalformedResponseError, classify
from llmclient.types import Usage
from llmclient.wire import Codec, Decoded, StreamErrorEvent, WireFormatError, codec, first_of, int_at, normalise_finish
from llmclient.wire.sse import SSEParser

NOTE = ("drafted by llmclient conformance --draft-expected from {cassette}; check every value against the cassette "
        "body and the cited price, then delete draft and draft_note")
_SHAPE_ERRORS = (WireFormatError, KeyError, IndexError, TypeError, AttributeError, ValueError)
_FENCED = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


@dataclass
class _Answer:
    """One recorded provider answer, decoded: an answer (`decoded`) or an error."""

    status: int
    on: date | None  # the response's Date header
    decoded: Decoded | None = None
    error: APIError | None = None
    deltas: list[str] = field(default_factory=list)
    fragments: int = 0  # streamed tool-call argument fragments (non-empty)
    usage: Usage | None = None  # in our buckets


def draft_fixture(target: Target, scenario: Scenario, cassettes: Path, fixtures: Path, *, overwrite: bool = False) -> Path:
    """Write `fixtures/<provider>/<scenario>.json` drafted from `cassettes/<provider>/<scenario>.yaml`."""
    out = fixtures / target.provider / f"{scenario.name}.json"
    cassette = cassettes / target.provider / f"{scenario.name}.yaml"
    shown = f"{cassettes.name}/{target.provider}/{scenario.name}.yaml"
    if out.exists() and not overwrite:
        raise ConfigurationError(f"{out} exists: check it by hand, or draft with overwrite (--overwrite) to replace it")
    if scenario.interactions == 0:  # nothing recorded: the expected error is the contract's
        raise ConfigurationError(f"{scenario.name} makes no request, so there is no cassette to draft {out} from: write "
                                 f"the error the contract assigns by hand ({scenario.description})")
    if not cassette.is_file():
        raise ConfigurationError(f"no cassette at {cassette}: record it (llmclient conformance --record) or author it "
                                 f"(conformance/AUTHORING.md in llmclient's repository) before drafting {out}")
    model = target.model_for(scenario.requires, scenario.model)
    answers = [_decode(target, model, item) for item in _interactions(cassette)]
    if not answers:
        raise ConfigurationError(f"{cassette}: no POST interaction to draft from: record or author its answers")
    head: dict[str, Any] = {"draft": True, "draft_note": NOTE.format(cassette=shown)}
    body = _error(answers, shown, cassette) if scenario.kind == "error" else _answers(target, model, scenario, answers, shown, cassette)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**head, **body}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def draft_all(targets: Iterable[Target], scenarios: Iterable[Scenario], cassettes: Path, fixtures: Path,
              overwrite: bool = False) -> list[tuple[str, str, Path | str]]:
    """Draft every (target, scenario) cell: (provider, scenario, the path written, or why not: "skipped: ..."
    where there is nothing to draft, "failed: ..." where a cassette could not be drafted from)."""
    done: list[tuple[str, str, Path | str]] = []
    for target, scenario in product(targets, scenarios):
        missing = sorted(scenario.requires - target.spec.capabilities)
        if missing:
            done.append((target.provider, scenario.name, f"skipped: unsupported (capability not declared: {', '.join(missing)})"))
            continue
        expected = (cassettes / target.provider / f"{scenario.name}.yaml").is_file() and scenario.interactions > 0 and (
            overwrite or not (fixtures / target.provider / f"{scenario.name}.json").exists())
        try:
            done.append((target.provider, scenario.name, draft_fixture(target, scenario, cassettes, fixtures, overwrite=overwrite)))
        except ConfigurationError as exc:
            done.append((target.provider, scenario.name, f"{'failed' if expected else 'skipped'}: {exc.message}"))
    return done


def _interactions(cassette: Path) -> list[dict[str, Any]]:
    """The cassette's interactions with a POST request (a GET is the client fetching a file URL)."""
    try:
        data = yaml.safe_load(cassette.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{cassette}: not valid YAML ({exc}): fix or re-record it before drafting") from exc
    items = data.get("interactions") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(
            isinstance(item, dict) and isinstance(item.get("response"), dict) and isinstance(item.get("request"), dict)
            and isinstance((item["response"].get("status") or {}).get("code"), int)
            and isinstance(item["response"].get("body"), dict) for item in items):
        raise ConfigurationError(f"{cassette}: not a vcrpy cassette (expected `interactions: [{{request: ..., response: "
                                 f"{{status: {{code, message}}, headers, body: {{string}}}}}}]`): fix or re-record it")
    return [item for item in items if str(item["request"].get("method", "POST")).upper() == "POST"]


def _decode(target: Target, model: str, item: dict[str, Any]) -> _Answer:
    response = item["response"]
    headers = {str(k).lower(): str(v[0] if isinstance(v, list) and v else v) for k, v in (response.get("headers") or {}).items()}
    raw = response["body"].get("string")
    body = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw or b"")
    try:  # the day the provider answered: the call is priced at that day's price
        on = parsedate_to_datetime(headers["date"]).date() if headers.get("date") else None
    except (TypeError, ValueError):
        on = None
    answer = _Answer(status=response["status"]["code"], on=on)
    provider, wire = target.spec.name, codec(target.spec.wire)
    text = body.decode("utf-8", errors="replace")
    if answer.status >= 400:
        try:
            payload: Any = json.loads(text)
        except ValueError:
            payload = None
        answer.error = classify(answer.status, payload, headers=headers, provider=provider, model=model, body_text=text)
        return answer
    sse = "event-stream" in headers.get("content-type", "") or text.lstrip().startswith(("data:", "event:", ":"))
    try:  # a 2xx body: an answer, or an error inside it
        answer.decoded = _stream(wire, body, answer) if sse else wire.decode(json.loads(body))
        answer.usage = wire.usage(answer.decoded.raw_usage) if answer.decoded.raw_usage else None
    except StreamErrorEvent as event:  # an error object with status 200, or an error event in the stream
        answer.error = classify(None, event.payload, provider=provider, model=model, body_text=str(event.payload))
    except _SHAPE_ERRORS as problem:
        # Worded as the client words it (so its message_contains holds at replay); `_answers` names the interaction.
        answer.error = Assembler(target.spec, model).malformed(problem, body)
    return answer


def _stream(wire: Codec, body: bytes, answer: _Answer) -> Decoded:
    parser = SSEParser()
    decoder = wire.StreamDecoder()
    for event in parser.feed(body) + parser.close():
        for piece in decoder.feed(event):
            if piece.kind == "text":
                answer.deltas.append(piece.text)
            elif piece.kind == "tool_call" and piece.tool_call is not None and piece.tool_call.arguments:
                answer.fragments += 1
    return decoder.finish()


def _error(answers: list[_Answer], shown: str, cassette: Path) -> dict[str, Any]:
    error = next((answer.error for answer in answers if answer.error is not None), None)
    if error is None:
        raise ConfigurationError(f"{cassette}: an error scenario, but every answer in it decodes as a response: "
                                 f"is this the right cassette?")
    where = (f"HTTP {error.status_code}" if error.status_code is not None else "a 200 response that cannot be decoded"
             if isinstance(error, MalformedResponseError) else "an error event inside a 200 response")
    return {"source": f"drafted from the response in {shown} and llmclient's error classification",
            "error": type(error).__name__, "status_code": error.status_code, "retry_after": error.retry_after,
            "message_contains": error.message if len(error.message) <= 60 else error.message[:60].rsplit(" ", 1)[0],
            "note": f"{where}, error type {error.error_type!r} -> {type(error).__name__}; retry_after as the "
                    f"classification reads it (retry-after / retry-after-ms header, the body's retry delay, the message)"}


def _answers(target: Target, model: str, scenario: Scenario, answers: list[_Answer], shown: str,
             cassette: Path) -> dict[str, Any]:
    drafted: list[dict[str, Any]] = []
    retries: list[dict[str, Any]] = []
    notes: list[str] = []
    citations: list[str] = []
    attempt = 0  # within the current call: its failed attempts are retries of it
    for index, answer in enumerate(answers):
        attempt += 1
        if answer.error is not None:
            policy = scenario.retry
            if not policy.retryable(answer.error) or attempt >= policy.max_attempts:  # the call fails for good
                why = (f"cannot be decoded as {target.spec.wire}" if isinstance(answer.error, MalformedResponseError)
                       else "cannot be drafted as an answer")
                raise ConfigurationError(f"{cassette}: interaction {index + 1} {why} "
                                         f"({type(answer.error).__name__}: {answer.error.message[:200]})")
            waited = (max(0.0, min(answer.error.retry_after, policy.max_wait)) if answer.error.retry_after is not None
                      else min(policy.max_backoff, policy.initial_backoff * 2 ** (attempt - 1)))
            retries.append({"error": type(answer.error).__name__, "status_code": answer.error.status_code, "waited": round(waited, 6)})
            how = "its retry_after" if answer.error.retry_after is not None else f"backoff step {attempt}" + (
                " (jittered: the ceiling)" if policy.jitter else ", no jitter")
            notes.append(f"attempt {attempt}: HTTP {answer.status} -> {type(answer.error).__name__}, waited {waited:g} s ({how})")
            continue
        assert answer.decoded is not None
        if retries:
            notes.append(f"attempt {attempt}: the answer")
        attempt = 0
        response, citation = _response(target, model, answer)
        drafted.append(response)
        citations += [citation] if citation not in citations else []
    if attempt or not drafted:
        raise ConfigurationError(f"{cassette}: its last interaction is an error no answer follows: is this the right cassette?")
    out: dict[str, Any] = {"source": f"drafted from the response bodies in {shown}; price: {'; '.join(citations)}",
                           **(drafted[0] if len(drafted) == 1 else {"responses": drafted})}
    if scenario.kind == "stream":
        out["deltas"] = answers[-1].deltas
        if answers[-1].fragments:
            out["min_tool_fragments"] = answers[-1].fragments
    if scenario.name.startswith("structured"):
        out["value"] = _value(answers[-1].decoded)
        notes += [] if out["value"] is not None else ["value: the final answer carries no JSON object: write it by hand"]
    out.update({"retries": retries} if retries else {}, **({"note": "; ".join(notes)} if notes else {}))
    return out


def _response(target: Target, model: str, answer: _Answer) -> tuple[dict[str, Any], str]:
    decoded = answer.decoded
    assert decoded is not None
    wire, usage = codec(target.spec.wire), answer.usage
    out: dict[str, Any] = {
        "text": decoded.text,
        "finish_reason": normalise_finish(wire.FINISH_REASONS, decoded.raw_finish_reason, bool(decoded.tool_calls)),
        "raw_finish_reason": decoded.raw_finish_reason,
        "tool_calls": [{"name": call.name, "arguments": call.arguments} for call in decoded.tool_calls],
        "usage": None if usage is None else usage.model_dump(exclude={"iterations", "tool_uses", "total_tokens"}),
    }
    priced_by = target.spec.name
    if target.spec.wire == "litellm" and "/" in model:  # litellm's model strings name the provider that answers
        priced_by = model.split("/", 1)[0]
    priced_model = decoded.model or model.removeprefix(priced_by + "/")
    on = answer.on or date.today()
    day = f"{on} ({'the Date header' if answer.on else 'no Date header: today'})"
    total, formula, citation, extra = _cost(priced_by, priced_model, usage, decoded, on, target.spec.base_url or None)
    reported = (decoded.raw_usage or {}).get("cost")
    if isinstance(reported, (int, float, str)) and not isinstance(reported, bool) and usage is not None:
        extra = {**extra, "computed_cost": None if total is None else _fmt(total)}
        total = Decimal(str(reported))
        formula = f"{formula}; the provider reported usage.cost {_fmt(total)}: that is the cost"
        out.update(cost=_fmt(total), cost_source="provider", **extra)
    else:
        out.update(cost=None if total is None else _fmt(total), cost_source=None if total is None else "price-table", **extra)
    out["cost_formula"] = formula
    return out, f"{citation}, priced on {day}"


def _cost(provider: str, model: str, usage: Usage | None, decoded: Decoded, on: date,
          base_url: str | None) -> tuple[Decimal | None, str, str, dict[str, Any]]:
    """(total, the arithmetic, the price row cited, extra keys) from the table row in force on `on`."""
    if usage is None:
        return None, "no usage reported: no cost", "none (no usage)", {}
    key = pricing.resolve(provider, model, base_url)
    row = pricing.row_for(key, on) if key else None
    if row is None:
        return None, f"no price for {provider}/{model} in the table {pricing.table_version()}", f"none for {provider}/{model}", {}
    citation = f"{row.key} row of llmclient/data/prices.json {pricing.table_version()} ({row.source}, as of {row.as_of})"
    others = sorted({step.model for step in usage.iterations if step.model and step.model != model})
    if others:
        return None, f"iterations ran on {', '.join(others)}: price each at its own model's row by hand", citation, {}
    prices, threshold, tier = dict(row.prices), None, decoded.service_tier
    for above, tier_prices in row.tiers:
        if usage.input_tokens > above:
            prices.update(tier_prices)
            threshold = above
    applied = threshold is None and tier in ("batch", "priority", "flex") and tier in row.service_tiers
    if applied:
        prices.update(row.service_tiers[str(tier)])
    read, write = prices.get("cache_read", prices["input"]), prices.get("cache_write", prices["input"])
    uncached = usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens
    if uncached < 0:
        if "cache_read" in prices or "cache_write" in prices:
            return None, (f"cache reads {usage.cache_read_tokens} + writes {usage.cache_write_tokens} exceed input "
                          f"{usage.input_tokens}: the buckets overlap, no exact cost"), citation, {}
        uncached, read, write = usage.input_tokens, Decimal(0), Decimal(0)
        prices.pop("cache_write_1h", None)
    hour = max(0, min(first_of(int_at(decoded.raw_usage, "cache_creation", "ephemeral_1h_input_tokens")), usage.cache_write_tokens))
    apart = usage.reasoning_tokens if "reasoning" in prices else 0  # reasoning priced apart from output
    terms = [("uncached input", uncached, prices["input"]), ("cache reads", usage.cache_read_tokens, read),
             ("cache writes", usage.cache_write_tokens - hour, write), ("1-hour cache writes", hour, prices.get("cache_write_1h", write)),
             ("output", usage.output_tokens - apart, prices["output"]), ("reasoning", apart, prices.get("reasoning", prices["output"]))]
    terms = [(name, tokens, price) for name, tokens, price in terms if tokens or name in ("uncached input", "output")]
    total = sum((Decimal(tokens) * price for _, tokens, price in terms), Decimal(0))
    notes = [f"{usage.input_tokens} input tokens: the tier above {threshold}" if threshold is not None else "",
             f"service tier {tier}, as the response reports" if applied else "",
             f"output includes {usage.reasoning_tokens} reasoning tokens" if usage.reasoning_tokens and not apart else ""]
    formula = (" + ".join(f"{name} {tokens} x {_fmt(price)}" for name, tokens, price in terms) + " = "
               + " + ".join(_fmt(Decimal(tokens) * price) for _, tokens, price in terms) + f" = {_fmt(total)}"
               + "".join(f" ({note})" for note in notes if note))
    return total, formula, citation, {"price_tier": threshold} if threshold is not None else {}


def _value(decoded: Decoded | None) -> Any:
    """The JSON object the final answer carries: its first tool call's arguments, else its text."""
    if decoded is None or decoded.tool_calls:
        return decoded.tool_calls[0].arguments if decoded else None
    fenced = _FENCED.search(decoded.text)
    try:
        value = json.loads(fenced.group(1) if fenced else decoded.text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _fmt(value: Decimal) -> str:
    return format(value.normalize(), "f")
