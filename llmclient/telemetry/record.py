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
import time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic_core import PydanticSerializationError, to_json

if TYPE_CHECKING:
    from decimal import Decimal

    from llmclient.request import Request
    from llmclient.telemetry.context import CallContext
    from llmclient.telemetry.observe import Observation
    from llmclient.types import ToolCall

SCHEMA_VERSION = 1
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# What prompt_hash covers: the request as llmclient serialises it (field order fixed by the models,
# file contents included), so equal requests have equal hashes.
_ASKED = {"messages", "tools", "tool_choice", "response_format"}


class Lines(NamedTuple):
    day: str  # YYYY-MM-DD (UTC)
    telemetry: bytes  # JSON text, UTF-8, no newline
    prompt: bytes | None
    response: bytes | None
    summary: Summary  # what this call adds to the day's summary (`upkeep.Tally`)


class Summary(NamedTuple):
    model: str
    success: bool
    tokens: tuple[int, int] | None  # input, output
    cost: Decimal | None
    duration_ms: float


class Finished:
    """A finished call as its lines need it, taken on the call's thread: its `Observation` (values,
    the request, usage and cost: a few small objects) and the parts of the response and error the
    record keeps. `Observation` lets go of the response (its raw body) and the error (its
    traceback) once this is made: the garbage collector walks what waits for the writer. The
    hashes and JSON are made on the writer's thread."""

    __slots__ = ("obs", "model", "finish_reason", "request_id", "retries", "reasks", "answer", "error",
                 "store_prompts", "store_responses")

    def __init__(self, obs: Observation, *, store_prompts: bool, store_responses: bool) -> None:
        response, error = obs.response, obs.error
        self.obs = obs
        self.store_prompts, self.store_responses = store_prompts, store_responses
        self.error = None if error is None else _error(error)
        retries: tuple[Any, ...]
        if response is not None:
            self.model = response.provider + "/" + response.model
            self.finish_reason: str | None = response.finish_reason
            self.request_id = response_id(response.raw)
            retries = response.retries
            reasks = len(response.rejected)
            self.answer: tuple[Any, ...] | None = (response.text, response.reasoning, response.refusal, response.tool_calls)
        else:
            self.model, self.finish_reason, self.request_id, self.answer = obs.requested_model, None, None, None
            retries = tuple(getattr(error, "history", ()) or ())
            reasks = len(getattr(error, "attempts", ()) or ())
        self.reasks = obs.reasks if obs.reasks is not None else reasks
        self.retries = tuple((r.model, r.error, r.status_code, r.waited, r.message[:300]) for r in retries) if retries else ()


def lines(call: Finished, cwd: str) -> Lines:
    """The lines of one finished call; `cwd` is the process's working directory (the project).

    This runs once per call on the writer thread, whose CPU time a GIL-bound process pays on its
    calls' threads too, so it stays lean: bytes throughout (no str round trips), the timestamp's
    seconds formatted once a second, the summary a tuple."""
    obs = call.obs
    timestamp = _timestamp(obs.started_at)
    usage, cost, context, model, request, answer = obs.usage, obs.cost, obs.context, call.model, obs.request, call.answer
    started, ended, first_token = obs.started, obs.ended, obs.first_token
    duration_ms = round(((ended if ended is not None else started) - started) * 1000, 3)
    total = None if cost is None else cost.total
    prompt_hash = _hash(_asked_json(request)) if request is not None else None
    answer_json = _answer_json(*answer) if answer is not None else None
    response_hash = _hash(answer_json) if answer_json is not None else None
    success = obs.outcome == "ok"
    retries = call.retries
    text = _RECORD % (
        timestamp.encode(), obs.call_id.encode(), _identity(obs.kind, obs.mode, context, model, obs.requested_model, obs.profile),
        repr(duration_ms).encode(), b"null" if first_token is None else repr(round((first_token - started) * 1000, 3)).encode(),
        b"null" if usage is None else _TOKENS % (
            usage.input_tokens, usage.output_tokens, usage.input_tokens + usage.output_tokens,
            usage.cache_read_tokens, usage.cache_write_tokens, usage.reasoning_tokens),
        b"null" if total is None else _number(total).encode(), _SOURCES[None if cost is None else cost.source],
        _BOOLEANS[obs.cache_hit], _BOOLEANS[success], _string(obs.outcome), _string(call.finish_reason),
        _string(call.request_id), len(retries) + (answer is not None) + call.reasks,
        _encoded([{"model": m, "error": e, "status_code": status, "waited": waited, "message": message}
                  for m, e, status, waited, message in retries]) if retries else b"[]",
        call.reasks, _string(prompt_hash), _string(response_hash), _BOOLEANS[obs.replay], _process(cwd),
        b"null" if call.error is None else _encoded(call.error),
        _encoded(dict(context.tags)) if context.tags else b"null")
    prompt = response_line = None
    if call.store_prompts and request is not None and prompt_hash is not None:
        prompt = (b'{"timestamp":"%s","call_id":"%s","prompt_hash":"%s","request":%s}'
                  % (timestamp.encode(), obs.call_id.encode(), prompt_hash.encode(), _request_json(request)))
    if call.store_responses and answer_json is not None and response_hash is not None:
        response_line = (b'{"timestamp":"%s","call_id":"%s","response_hash":"%s","response":%s}'
                         % (timestamp.encode(), obs.call_id.encode(), response_hash.encode(), answer_json))
    summary = Summary(model, success, None if usage is None else (usage.input_tokens, usage.output_tokens), total,
                      duration_ms)
    return Lines(timestamp[:10], text, prompt, response_line, summary)


# The line, written as bytes with the values in place (a record has ~40 fields, and a dict of them
# encoded costs the writer about twice this): the fields in the order the module's docstring gives.
_RECORD = (b'{"schema":%d,"timestamp":"%%s","call_id":"%%s",%%s,"duration_ms":%%s,"ttft_ms":%%s,"tokens":%%s,'
           b'"cost_usd":%%s,"cost_source":%%s,"cache_hit":%%s,"success":%%s,"outcome":%%s,"finish_reason":%%s,'
           b'"request_id":%%s,"attempts":%%d,"retries":%%s,"reasks":%%d,"prompt_hash":%%s,"response_hash":%%s,'
           b'"replay":%%s,%%s"error":%%s,"tags":%%s}}' % SCHEMA_VERSION)
_TOKENS = b'{"input":%d,"output":%d,"total":%d,"cache_read":%d,"cache_write":%d,"reasoning":%d}'
_BOOLEANS = {False: b"false", True: b"true"}
_SOURCES = {None: b"null", "provider": b'"provider"', "price-table": b'"price-table"', "cache": b'"cache"'}
_identities: dict[tuple[Any, ...], bytes] = {}  # who made the call and for what: repeats from call to call


def _identity(kind: str, mode: str, context: CallContext, model: str, requested_model: str, profile: str | None) -> bytes:
    """The fields from kind to profile, encoded (once per distinct combination)."""
    key = (kind, mode, context, model, requested_model, profile)
    found = _identities.get(key)
    if found is None:
        if len(_identities) >= 4096:  # many sessions or users: start over rather than grow without end
            _identities.clear()
        found = _identities[key] = _encoded({
            "kind": kind, "mode": mode, "agent_name": context.agent, "operation": context.operation,
            "session_id": context.session, "user_id": context.user, "provider": model.partition("/")[0],
            "model": model, "requested_model": requested_model, "profile": profile})[1:-1]
    return found


@cache
def _process_cached(cwd: str, pid: int) -> bytes:
    return _encoded({"llmclient_version": version(), "pid": pid, "metadata": {
        "project": _project(cwd), "git_branch": _git_branch(cwd)}})[1:-2] + b","


def _process(cwd: str) -> bytes:
    """The fields from llmclient_version into metadata, up to its "error" (a forked child has its own pid)."""
    return _process_cached(cwd, os.getpid())


def _string(value: str | None) -> bytes:
    """A JSON string (or null)."""
    if value is None:
        return b"null"
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return b'"' + value.encode() + b'"'
    return _encoded(value)


_second: tuple[int, str] = (-1, "")  # the last second formatted, and its text: calls come many a second


def _timestamp(started_at: float) -> str:
    """ISO 8601 UTC with microseconds and "Z"."""
    global _second
    seconds, micros = divmod(round(started_at * 1_000_000), 1_000_000)
    formatted = _second  # one read: another store's writer may replace it meanwhile
    if formatted[0] != seconds:
        formatted = _second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{formatted[1]}.{micros:06d}Z"


def _encoded(value: Any) -> bytes:
    try:
        return to_json(value)  # pydantic-core's encoder: a sixth of the json module's time
    except PydanticSerializationError:  # e.g. a lone surrogate in an error message: the json module escapes it
        return _ENCODER.encode(value).encode("utf-8", "backslashreplace")


def _asked_json(request: Request) -> bytes:
    """What prompt_hash covers (see `_ASKED`)."""
    try:
        return type(request).__pydantic_serializer__.to_json(request, include=_ASKED)
    except PydanticSerializationError:  # a lone surrogate (the call failed on it): the json module takes it
        return _ENCODER.encode(request.model_dump(mode="json", include=_ASKED)).encode("utf-8", "surrogatepass")


def _number(value: Any) -> str:
    """A Decimal as a JSON number: its exact digits, no exponent."""
    text = format(value, "f")
    return text if text not in ("NaN", "Infinity", "-Infinity") else "null"


def _hash(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def _request_json(request: Request) -> bytes:
    """What was asked, canonically: messages (the system turn among them; file contents as their
    digest), tools, tool_choice, response_format."""
    dumped = request.model_dump(mode="json", include={"messages", "tools", "tool_choice", "response_format"},
                                exclude_none=True)
    for message in dumped.get("messages", ()):
        content = message.get("content")
        if isinstance(content, list):
            message["content"] = [_without_data(part) for part in content]
    return _canonical(dumped).encode("utf-8", "backslashreplace")


def _without_data(part: dict[str, Any]) -> dict[str, Any]:
    if part.get("type") != "file" or not part.get("data"):
        return part
    data = part["data"]
    return {**{k: v for k, v in part.items() if k != "data"},
            "sha256": hashlib.sha256(data.encode("ascii", "replace")).hexdigest(), "data_chars": len(data)}


def _answer_json(text: str, reasoning: str | None, refusal: str | None, tool_calls: list[ToolCall]) -> bytes:
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
