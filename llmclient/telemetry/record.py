"""A finished call as the store's JSON line. Built on the store's writer thread, never the call's.

The record (`schema` 1), one object per line of `<dir>/<YYYY-MM-DD>/telemetry.jsonl` (UTC day of
`timestamp`):

    schema            1
    timestamp         when the call began (its request was sent), UTC, ISO 8601 with microseconds and "Z"
    call_id           32 hex digits; the same id is in prompts.jsonl / responses.jsonl and the hooks' events
    kind              "complete" | "stream" | "structured" | "stream_structured"
    mode              "sync" | "async"
    agent_name, operation, session_id, user_id
                      the call's context as the caller set it (keywords or `llmclient.context`), else null
    provider, model   who answered ("openai", "openai/gpt-4o-mini": the fallback's when one answered;
                      the model asked for when the call failed)
    requested_model   the model the Client was made for; `profile` the profile or alias name, if any
    duration_ms       the whole call: every attempt, wait and re-ask; a stream until its last event
    ttft_ms           a stream's time to its first event; null otherwise
    tokens            {input, output, total, cache_read, cache_write, reasoning}: `Usage`'s buckets over
                      every attempt that answered; null when the provider reported none, or when
                      the answer came from the response cache (no token was billed)
    cost_usd          a JSON number, the exact Decimal total in dollars; null when unknown (never 0);
                      0 for an answer from the response cache
    cost_source       "provider" (the provider reported the charge) | "price-table" | "cache" | null
    cache_hit         true when the answer came from the response cache (`llmclient.cache`): no request sent
    success           true when the call returned an answer
    outcome           "ok" | "error" | "abandoned" (a stream closed before its end)
    finish_reason     stop | length | tool_calls | content_filter | other; null on failure
    request_id        the provider's id of the answer (OpenAI/Anthropic/Cohere `id`, Gemini `responseId`)
    attempts          attempts made: every failed one (retries), the answer, and the refused answers
    retries           [{model, error, status_code, waited, message}] every failed attempt, in order
                      (on a failed call its last error too; a fallback skipped for a capability it
                      lacks, or no key, is listed with waited 0)
    reasks            answers refused and asked again (validators, structured output)
    prompt_hash       "sha256:<hex>" of the request's JSON as llmclient serialises it (messages with the
                      system turn and file contents, tools, tool_choice, response_format): equal
                      requests, equal hashes; null when the call failed before its request was built
    response_hash     "sha256:<hex>" of the answer's JSON ({text, reasoning, refusal, tool_calls} in that
                      order, compact), exactly the `response` object responses.jsonl holds
    replay            true when the answer came from a cassette
    llmclient_version, pid
    metadata          {project: the working directory's name, git_branch: its checkout's branch (read
                      from .git/HEAD, null outside a repository or on a detached HEAD),
                      error: {type, status_code, message} | null, tags: {...} from `context(tags=)`}

prompts.jsonl (with LLM_STORE_PROMPTS=true) holds {timestamp, call_id, prompt_hash, request} and
responses.jsonl (LLM_STORE_RESPONSES=true) {timestamp, call_id, response_hash, response}; file
contents there are replaced by their media type, size and sha256. No key is ever written: requests
hold none, and error messages have the keys in use masked before they are raised.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic_core import PydanticSerializationError, to_json

if TYPE_CHECKING:
    from llmclient.request import Request
    from llmclient.telemetry.observe import Observation
    from llmclient.types import ToolCall

SCHEMA_VERSION = 1
_COST = "\x00cost\x00"  # stands in for the cost, written as a JSON number of the exact Decimal
_COST_JSON = json.dumps(_COST)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# What prompt_hash covers: the request as llmclient serialises it (field order fixed by the models,
# file contents included), so equal requests have equal hashes.
_ASKED = {"messages", "tools", "tool_choice", "response_format"}


@dataclass(frozen=True, slots=True)
class Lines:
    day: str  # YYYY-MM-DD (UTC)
    telemetry: str
    prompt: str | None
    response: str | None
    summary: dict[str, Any]  # what this call adds to the day's summary


class Finished:
    """A finished call reduced, on the call's thread, to what its lines need: values, the request
    (a few small objects) and the answer's parts, never the whole response (its raw body). The
    hashes and JSON are made on the writer's thread. While records wait for the writer, the garbage
    collector walks what they hold, so they hold little."""

    __slots__ = ("started_at", "duration_ms", "ttft_ms", "call_id", "kind", "mode", "context", "requested_model",
                 "profile", "outcome", "replay", "model", "finish_reason", "request_id", "usage", "cost", "cost_source",
                 "retries", "reasks", "answer", "error", "request", "store_prompts", "store_responses", "cache_hit")

    def __init__(self, obs: Observation, *, store_prompts: bool, store_responses: bool) -> None:
        response, error, usage, cost = obs.response, obs.error, obs.usage, obs.cost
        ended = obs.ended if obs.ended is not None else obs.started
        self.started_at = obs.started_at
        self.duration_ms = round((ended - obs.started) * 1000, 3)
        self.ttft_ms = round((obs.first_token - obs.started) * 1000, 3) if obs.first_token is not None else None
        self.call_id, self.kind, self.mode, self.context = obs.call_id, obs.kind, obs.mode, obs.context
        self.requested_model, self.profile, self.outcome, self.replay = obs.requested_model, obs.profile, obs.outcome, obs.replay
        self.usage = None if usage is None else (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens,
                                                 usage.cache_write_tokens, usage.reasoning_tokens)
        self.cost = None if cost is None else cost.total
        self.cost_source = None if cost is None else cost.source
        self.error = None if error is None else _error(error)
        self.request = obs.request
        self.store_prompts, self.store_responses = store_prompts, store_responses
        self.cache_hit = obs.cache_hit
        if response is not None:
            self.model = f"{response.provider}/{response.model}"
            self.finish_reason: str | None = response.finish_reason
            self.request_id = response_id(response.raw)
            retries: tuple[Any, ...] = response.retries
            reasks = len(response.rejected)
            self.answer: tuple[Any, ...] | None = (response.text, response.reasoning, response.refusal, response.tool_calls)
        else:
            self.model, self.finish_reason, self.request_id, self.answer = obs.requested_model, None, None, None
            retries = tuple(getattr(error, "history", ()) or ())
            reasks = len(getattr(error, "attempts", ()) or ())
        self.reasks = obs.reasks if obs.reasks is not None else reasks
        self.retries = tuple((r.model, r.error, r.status_code, r.waited, r.message[:300]) for r in retries)


def lines(call: Finished, cwd: str) -> Lines:
    """The lines of one finished call; `cwd` is the process's working directory (the project)."""
    timestamp = datetime.fromtimestamp(call.started_at, timezone.utc).isoformat(timespec="microseconds")[:-6] + "Z"
    usage, cost, context, model = call.usage, call.cost, call.context, call.model
    request, answer = call.request, call.answer
    prompt_hash = _hash(request.model_dump_json(include=_ASKED)) if request is not None else None
    answer_json = _answer_json(*answer) if answer is not None else None
    response_hash = _hash(answer_json) if answer_json is not None else None
    record: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "timestamp": timestamp,
        "call_id": call.call_id,
        "kind": call.kind,
        "mode": call.mode,
        "agent_name": context.agent,
        "operation": context.operation,
        "session_id": context.session,
        "user_id": context.user,
        "provider": model.partition("/")[0],
        "model": model,
        "requested_model": call.requested_model,
        "profile": call.profile,
        "duration_ms": call.duration_ms,
        "ttft_ms": call.ttft_ms,
        "tokens": None if usage is None else {
            "input": usage[0], "output": usage[1], "total": usage[0] + usage[1],
            "cache_read": usage[2], "cache_write": usage[3], "reasoning": usage[4]},
        "cost_usd": None if cost is None else _COST,
        "cost_source": call.cost_source,
        "cache_hit": call.cache_hit,
        "success": call.outcome == "ok",
        "outcome": call.outcome,
        "finish_reason": call.finish_reason,
        "request_id": call.request_id,
        "attempts": len(call.retries) + (answer is not None) + call.reasks,
        "retries": [{"model": m, "error": e, "status_code": status, "waited": waited, "message": message}
                    for m, e, status, waited, message in call.retries],
        "reasks": call.reasks,
        "prompt_hash": prompt_hash,
        "response_hash": response_hash,
        "replay": call.replay,
        "llmclient_version": version(),
        "pid": os.getpid(),
        "metadata": {"project": _project(cwd), "git_branch": _git_branch(cwd), "error": call.error,
                     "tags": dict(context.tags) or None},
    }
    text = _encoded(record)
    if cost is not None:
        text = text.replace(_COST_JSON, _number(cost), 1)
    prompt = response_line = None
    if call.store_prompts and request is not None:
        prompt = (f'{{"timestamp":"{timestamp}","call_id":"{call.call_id}","prompt_hash":"{prompt_hash}",'
                  f'"request":{_request_json(request)}}}')
    if call.store_responses and answer_json is not None:
        response_line = (f'{{"timestamp":"{timestamp}","call_id":"{call.call_id}","response_hash":"{response_hash}",'
                         f'"response":{answer_json}}}')
    summary = {"model": model, "success": record["success"], "tokens": record["tokens"], "cost": cost,
               "duration_ms": call.duration_ms}
    return Lines(timestamp[:10], text, prompt, response_line, summary)


def _encoded(record: dict[str, Any]) -> str:
    try:
        return to_json(record).decode()  # pydantic-core's encoder: a sixth of the json module's time
    except PydanticSerializationError:  # e.g. a lone surrogate in an error message: the json module escapes it
        return _ENCODER.encode(record)


def _number(value: Any) -> str:
    """A Decimal as a JSON number: its exact digits, no exponent."""
    text = format(value, "f")
    return text if text not in ("NaN", "Infinity", "-Infinity") else "null"


def _hash(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def _request_json(request: Request) -> str:
    """What was asked, canonically: messages (the system turn among them; file contents as their
    digest), tools, tool_choice, response_format."""
    dumped = request.model_dump(mode="json", include={"messages", "tools", "tool_choice", "response_format"},
                                exclude_none=True)
    for message in dumped.get("messages", ()):
        content = message.get("content")
        if isinstance(content, list):
            message["content"] = [_without_data(part) for part in content]
    return _canonical(dumped)


def _without_data(part: dict[str, Any]) -> dict[str, Any]:
    if part.get("type") != "file" or not part.get("data"):
        return part
    data = part["data"]
    return {**{k: v for k, v in part.items() if k != "data"},
            "sha256": hashlib.sha256(data.encode("ascii", "replace")).hexdigest(), "data_chars": len(data)}


def _answer_json(text: str, reasoning: str | None, refusal: str | None, tool_calls: list[ToolCall]) -> str:
    """The answer, canonically (keys in this fixed order, compact): what response_hash covers and
    responses.jsonl holds."""
    return _encoded({"text": text, "reasoning": reasoning, "refusal": refusal,
                     "tool_calls": [call.model_dump(mode="json") for call in tool_calls] if tool_calls else []})


def response_id(raw: dict[str, Any]) -> str | None:
    for source in (raw, *(raw.get("chunks") or ())[:3]):
        if isinstance(source, dict):
            found = source.get("id") or source.get("responseId")
            if found is None and isinstance(source.get("message"), dict):  # Anthropic message_start
                found = source["message"].get("id")
            if isinstance(found, str):
                return found[:200]
    return None


def _error(error: BaseException) -> dict[str, Any]:
    message = getattr(error, "message", None) or str(error)
    return {"type": type(error).__name__, "status_code": getattr(error, "status_code", None),
            "message": str(message)[:500]}


@cache
def version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llmclient")
    except PackageNotFoundError:
        return "unknown"


@cache
def _project(cwd: str) -> str:
    return Path(cwd).name


@cache
def _git_branch(directory: str) -> str | None:
    """The branch checked out where the process runs, from .git/HEAD (no subprocess)."""
    path = Path(directory)
    for folder in (path, *path.parents):
        git = folder / ".git"
        try:
            if git.is_file():  # a worktree or submodule: "gitdir: <path>"
                target = git.read_text(encoding="utf-8").strip().removeprefix("gitdir:").strip()
                git = (folder / target).resolve()
            if git.is_dir():
                head = (git / "HEAD").read_text(encoding="utf-8").strip()
                return head.removeprefix("ref: refs/heads/") if head.startswith("ref: refs/heads/") else None
        except OSError:
            return None
    return None
