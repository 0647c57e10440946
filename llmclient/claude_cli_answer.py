"""The Claude CLI's output as OpenAI chat-completion answers (no I/O): a finished run's `result`
object as one answer, stream-json lines as `chat.completion.chunk`s (`StreamTranslator`), its
stop reasons, usage and errors as llmclient reads them. The command and the process are
`llmclient.claude_cli` and `llmclient.claude_cli_process`; the formats are described there.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmclient.wire import WireFormatError, int_at

if TYPE_CHECKING:
    from llmclient.claude_cli import ClaudeCliPipeline


@dataclass
class Finished:
    """What a finished run gave: its exit status and everything it wrote."""

    returncode: int | None
    stdout: bytes
    stderr: bytes


class StreamTranslator:
    """stream-json lines in, chat.completion.chunk objects out (no I/O). Top-level turns only: a
    subagent's messages (`parent_tool_use_id` set) are not the answer."""

    def __init__(self, pipeline: ClaudeCliPipeline) -> None:
        self.pipeline = pipeline
        self.result: dict[str, Any] | None = None
        self.error_code: str | None = None
        self._model: str | None = None
        self._id = "claude-cli"
        self._created = int(time.time())
        self._partial = False  # text arrives as stream_event deltas, so whole assistant messages repeat it
        self._turn: str | None = None
        self._said = False  # text was sent in an earlier turn
        self._turn_said = False

    def feed(self, line: bytes) -> list[dict[str, Any]]:
        if not line.strip():
            return []
        try:
            message = json.loads(line)
        except ValueError as problem:
            raise self.pipeline.assembler.malformed(WireFormatError(f"a stream-json line is not JSON: {problem}"),
                                                    line) from problem
        if not isinstance(message, dict) or message.get("parent_tool_use_id"):
            return []
        kind = message.get("type")
        if kind == "system" and message.get("subtype") == "init":
            self._model = message.get("model") if isinstance(message.get("model"), str) else None
            self._id = str(message.get("session_id") or self._id)
        elif kind == "stream_event":
            self._partial = True
            return self._event(message.get("event"))
        elif kind == "assistant":
            return self._assistant(message)
        elif kind == "result":
            self.result = message
        return []

    def _event(self, event: Any) -> list[dict[str, Any]]:
        if not isinstance(event, dict):
            return []
        if event.get("type") == "message_start":
            started = event.get("message")
            self._new_turn(str(started.get("id")) if isinstance(started, dict) else None)
        delta = event.get("delta")
        if event.get("type") == "content_block_delta" and isinstance(delta, dict) and delta.get("type") == "text_delta":
            return self._text(str(delta.get("text") or ""))
        return []

    def _assistant(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        if isinstance(message.get("error"), str):  # the CLI's wording of a failure, not the answer's text
            self.error_code = message["error"]
            return []
        body = message.get("message")
        if not isinstance(body, dict):
            return []
        if isinstance(body.get("model"), str) and body["model"] != "<synthetic>":
            self._model = body["model"]
        if self._partial:
            return []
        self._new_turn(str(body.get("id")) if body.get("id") else None)
        content = body.get("content")
        texts = [block.get("text") or "" for block in content if isinstance(block, dict) and block.get("type") == "text"] \
            if isinstance(content, list) else []
        return [chunk for text in texts for chunk in self._text(str(text))]

    def _new_turn(self, turn: str | None) -> None:
        if turn is None or turn != self._turn:
            self._said = self._said or self._turn_said
            self._turn, self._turn_said = turn, False

    def _text(self, text: str) -> list[dict[str, Any]]:
        if not text:
            return []
        if self._said and not self._turn_said:
            text = "\n\n" + text  # a later turn after text of an earlier one
        self._turn_said = True
        return [self._chunk({"content": text})]

    def end(self, finished: Finished) -> list[dict[str, Any]]:
        """The closing chunk (finish reason, usage, cost) of a successful run, or its typed error."""
        self.pipeline.check(self.result, finished, self.error_code)
        result = self.result
        assert result is not None
        chunks = []
        if not (self._said or self._turn_said) and result.get("result"):
            chunks.append(self._chunk({"content": str(result["result"])}))
        final = self._chunk({}, finish_reason(result))
        final["claude_cli"] = result
        try:
            usage = openai_usage(result)
        except WireFormatError as problem:
            raise self.pipeline.assembler.malformed(problem, json.dumps(result)) from problem
        if usage is not None:
            final["usage"] = usage
        return [*chunks, final]

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created,
                "model": self._model or self.pipeline.model_id,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


# --- the answer ------------------------------------------------------------------------------------

# The CLI's stop reasons (Anthropic's) as the finish reasons the OpenAI decoder reads; the others
# are passed on as they are (end_turn, max_tokens, and unknown ones that decode as "other").
_FINISH = {"stop_sequence": "stop", "refusal": "content_filter", "tool_use": "other"}


def finish_reason(result: dict[str, Any]) -> str:
    reason = result.get("stop_reason")
    if not isinstance(reason, str) or not reason:
        return "end_turn"  # CLIs before stop_reason was reported: a successful result ended its turn
    return _FINISH.get(reason, reason)


def openai_usage(result: dict[str, Any]) -> dict[str, Any] | None:
    """The result's usage (Anthropic's buckets, summed over the turns) as OpenAI usage, with the
    CLI's `total_cost_usd` as `cost`; None when it reported no token counts."""
    usage = result.get("usage")
    if not isinstance(usage, dict):
        return None
    uncached, output = int_at(usage, "input_tokens"), int_at(usage, "output_tokens")
    if uncached is None and output is None:
        return None
    read = int_at(usage, "cache_read_input_tokens") or 0
    write = int_at(usage, "cache_creation_input_tokens") or 0
    prompt = (uncached or 0) + read + write
    mapped: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": output or 0,
                              "total_tokens": prompt + (output or 0),
                              "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": write}}
    if result.get("total_cost_usd") is not None:
        mapped["cost"] = result["total_cost_usd"]
    return mapped


def main_model(result: dict[str, Any]) -> str | None:
    """The model that wrote most of the answer (`modelUsage` also lists helper models)."""
    models = result.get("modelUsage")
    if not isinstance(models, dict) or not models:
        return None

    def written(name: str) -> float:
        entry = models[name]
        value = entry.get("outputTokens") if isinstance(entry, dict) else None
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
    main: str = max(models, key=written)
    return main


def said(result: dict[str, Any] | None) -> str:
    if result is None:
        return ""
    errors = result.get("errors")
    said = [str(item) for item in errors] if isinstance(errors, list) else []
    if isinstance(result.get("result"), str) and result["result"].strip():
        said.insert(0, result["result"].strip())
    return "; ".join(said)


# Classification is `llmclient.errors.classify`'s (status first, then error type, then its text
# checks); what follows reads only what is particular to the CLI, for it to classify.

# The assistant message's `error` (the Agent SDK's AssistantMessageError) as error types classify() knows.
ERROR_CODES = {"authentication_failed": "authentication_error", "rate_limit": "rate_limit_error",
               "invalid_request": "invalid_request_error", "server_error": "api_error",
               "billing_error": "billing_error"}

# The CLI words an API failure as "API Error: <status> <body>": the status the API answered, which
# classify() reads as an embedded status (the CLI's exit is no HTTP answer: `status_code` stays None).
_API_STATUS = re.compile(r"API Error:?\s*\(?(\d{3})\b")

# What the CLI says with no status at all: its login prompts ("Please run /login", "not logged in",
# an expired OAuth token), its plan's usage limit, its overload and prompt-length notices. These are
# Claude Code's own words, not an API's error body, so they are read here and not in llmclient.errors.
_CLI_WORDS = (
    (re.compile(r"invalid api key|/login|not logged in|authenticat|unauthori[sz]ed|oauth token|\b401\b", re.I),
     "authentication_error"),
    (re.compile(r"rate.?limit|usage limit|too many requests|\b429\b", re.I), "rate_limit_error"),
    (re.compile(r"overloaded|\b529\b", re.I), "overloaded_error"),
    (re.compile(r"prompt is too long|context (window|length)", re.I), "context_length_exceeded"),
)


def status_in_words(text: str) -> int | None:
    """The API status in the CLI's "API Error: <status> ..." message, if any."""
    found = _API_STATUS.search(text)
    status = int(found.group(1)) if found else None
    return status if status is not None and 400 <= status < 600 else None


def type_in_words(text: str) -> str | None:
    """The error type the CLI's own wording of a failure stands for, if any."""
    return next((kind for pattern, kind in _CLI_WORDS if pattern.search(text)), None)


def excerpt(text: str, limit: int = 2000) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."
