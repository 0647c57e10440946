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
                      every attempt that answered; null when the provider reported none
    cost_usd          a JSON number, the exact Decimal total in dollars; null when unknown (never 0)
    cost_source       "provider" (the provider reported the charge) | "price-table" | null
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
    response_hash     "sha256:<hex>" of the answer's JSON (text, reasoning, refusal, tool calls)
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
    from llmclient.types import Response

SCHEMA_VERSION = 1
_COST = "\x00cost\x00"  # stands in for the cost, written as a JSON number of the exact Decimal
_COST_JSON = json.dumps(_COST)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# What the hashes cover: the request and the answer as llmclient serialises them (field order
# fixed by the models, file contents included), so equal requests have equal hashes.
_ASKED = {"messages", "tools", "tool_choice", "response_format"}
_ANSWERED = {"text", "reasoning", "refusal", "tool_calls"}


@dataclass(frozen=True, slots=True)
class Lines:
    day: str  # YYYY-MM-DD (UTC)
    telemetry: str
    prompt: str | None
    response: str | None
    summary: dict[str, Any]  # what this call adds to the day's summary


def lines(obs: Observation, *, store_prompts: bool, store_responses: bool) -> Lines:
    timestamp = datetime.fromtimestamp(obs.started_at, timezone.utc).isoformat(timespec="microseconds")[:-6] + "Z"
    cwd = os.getcwd()
    response, error, usage, cost = obs.response, obs.error, obs.usage, obs.cost
    request = obs.request
    prompt_hash = _hash(request.model_dump_json(include=_ASKED)) if request is not None else None
    response_hash = _hash(response.model_dump_json(include=_ANSWERED)) if response is not None else None
    retries = response.retries if response is not None else tuple(getattr(error, "history", ()) or ())
    if obs.reasks is not None:
        reasks = obs.reasks
    else:
        reasks = len(response.rejected) if response is not None else len(getattr(error, "attempts", ()) or ())
    model = f"{response.provider}/{response.model}" if response is not None else obs.requested_model
    ended = obs.ended if obs.ended is not None else obs.started
    record: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "timestamp": timestamp,
        "call_id": obs.call_id,
        "kind": obs.kind,
        "mode": obs.mode,
        "agent_name": obs.context.agent,
        "operation": obs.context.operation,
        "session_id": obs.context.session,
        "user_id": obs.context.user,
        "provider": model.partition("/")[0],
        "model": model,
        "requested_model": obs.requested_model,
        "profile": obs.profile,
        "duration_ms": round((ended - obs.started) * 1000, 3),
        "ttft_ms": round((obs.first_token - obs.started) * 1000, 3) if obs.first_token is not None else None,
        "tokens": None if usage is None else {
            "input": usage.input_tokens, "output": usage.output_tokens, "total": usage.total_tokens,
            "cache_read": usage.cache_read_tokens, "cache_write": usage.cache_write_tokens,
            "reasoning": usage.reasoning_tokens},
        "cost_usd": None if cost is None else _COST,
        "cost_source": None if cost is None else cost.source,
        "success": obs.outcome == "ok",
        "outcome": obs.outcome,
        "finish_reason": response.finish_reason if response is not None else None,
        "request_id": response_id(response.raw) if response is not None else None,
        "attempts": len(retries) + (response is not None) + reasks,
        "retries": [{"model": r.model, "error": r.error, "status_code": r.status_code, "waited": r.waited,
                     "message": r.message[:300]} for r in retries],
        "reasks": reasks,
        "prompt_hash": prompt_hash,
        "response_hash": response_hash,
        "replay": obs.replay,
        "llmclient_version": version(),
        "pid": os.getpid(),
        "metadata": {"project": _project(cwd), "git_branch": _git_branch(cwd),
                     "error": _error(error) if error is not None else None,
                     "tags": dict(obs.context.tags) or None},
    }
    text = _encoded(record)
    if cost is not None:
        text = text.replace(_COST_JSON, _number(cost.total), 1)
    prompt = response_line = None
    if store_prompts and request is not None:
        request_json = _request_json(request)
        prompt = f'{{"timestamp":"{timestamp}","call_id":"{obs.call_id}","prompt_hash":"{prompt_hash}","request":{request_json}}}'
    if store_responses and response is not None:
        response_json = _response_json(response)
        response_line = (f'{{"timestamp":"{timestamp}","call_id":"{obs.call_id}","response_hash":"{response_hash}",'
                         f'"response":{response_json}}}')
    summary = {"model": model, "success": record["success"], "tokens": record["tokens"],
               "cost": None if cost is None else cost.total, "duration_ms": record["duration_ms"]}
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


def _response_json(response: Response) -> str:
    return _canonical({"text": response.text, "reasoning": response.reasoning, "refusal": response.refusal,
                       "tool_calls": [call.model_dump(mode="json") for call in response.tool_calls]})


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
