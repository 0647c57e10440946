"""JSON mode: `response_format={"type": "json_object"}` on complete/acomplete/stream/astream.

What a JSON-mode call does, for every provider:
- one system line asking for only JSON is added after the caller's own system messages (so the
  system text ends with it); OpenAI also requires the word "JSON" in the messages in this mode,
  which it supplies. When the system text already mentions JSON (the caller's own instructions, or
  the line itself on a re-ask or a Request built from an earlier one) nothing is added;
- the provider's native JSON mode is sent where its wire has one (OpenAI-compatible
  `response_format`, Gemini `responseMimeType`, Cohere `response_format`, litellm's); Anthropic and
  the Claude CLI have none, and Gemini's and Cohere's do not go with tools, so there the option
  is not sent and the instruction does the work;
- the answer's text is checked with `validators.is_json` before the caller's own validators (an
  answer calling tools is not: it is not the final answer), and a refused answer is sent back with
  the parse error and asked again (`complete(max_retries=...)`, default 2; `Response.rejected`,
  `total_usage` and `total_cost` include the refused answers).
A stream cannot be asked again once its text is delivered: it gets the instruction and the native
mode, and when its text is not JSON at the end, iteration raises `SchemaValidationError` (with the
one attempt) after the last event; `stream.response` still holds the answer. Nor can an item of a
provider's batch (`llmclient.batches`): one whose text is not JSON is that item's
`SchemaValidationError`, its answer in `attempts` and its cost in the batch's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from llmclient.errors import SchemaValidationError
from llmclient.policies.reask import exhausted_error
from llmclient.providers import ProviderSpec
from llmclient.request import Request
from llmclient.streaming import AsyncStream, Stream
from llmclient.types import Attempt, Message, Response, StreamEvent
from llmclient.validators import is_json

INSTRUCTION = "Answer with only one valid JSON object: no prose and no code fence around it."
_NO_NATIVE_JSON = frozenset({"anthropic", "claude-cli"})  # wires with no "any JSON object" mode
# Wires whose JSON mode cannot go with tools: Gemini answers 400 "Function calling with a response
# mime type: 'application/json' is unsupported"; Cohere's v2 reference says of response_format
# "not supported when used in combinations with the `documents` or `tools` parameters".
_NO_JSON_WITH_TOOLS = frozenset({"gemini", "cohere"})


def wanted(request: Request) -> bool:
    """Whether the call asks for JSON mode (`response_format={"type": "json_object"}`)."""
    return request.response_format is not None and request.response_format.type == "json_object"


def with_instruction(request: Request) -> Request:
    """The request with the JSON instruction as a system message after the caller's leading
    system messages; unchanged when it is not a JSON-mode request or its system text mentions JSON."""
    if not wanted(request) or "json" in (request.system or "").lower():
        return request
    messages = request.messages
    at = next((i for i, message in enumerate(messages) if message.role != "system"), len(messages))
    return request.model_copy(update={"messages": [*messages[:at], Message.system(INSTRUCTION), *messages[at:]]})


def for_wire(request: Request, spec: ProviderSpec) -> Request:
    """What `spec`'s wire is sent: a JSON-mode request without `response_format` where the wire
    has no native JSON-object mode, or none that goes with the call's tools (the instruction and
    the check stand in for it)."""
    if wanted(request) and (spec.wire in _NO_NATIVE_JSON or spec.wire in _NO_JSON_WITH_TOOLS and request.tools):
        return request.model_copy(update={"response_format": None})
    return request


def not_json(response: Response, provider: str, model: str, what: str) -> SchemaValidationError | None:
    """The error (saying `what`) for an answer that cannot be asked again when its text is not
    JSON (an answer calling tools is not the final answer: not checked); None when it is JSON."""
    if response.tool_calls:
        return None
    error = is_json(response.text)
    if error is None:
        return None
    attempt = Attempt(response=response, raw=response.text, error=error)
    return exhausted_error(provider, model, what, "JSON mode", [attempt])


def _checked(response: Response | None, provider: str, model: str) -> None:
    error = None if response is None else not_json(response, provider, model,
                                                   "the streamed answer is not JSON (a stream cannot be asked again)")
    if error is not None:
        raise error


class JsonStream(Stream):
    """A JSON-mode stream: after the last event, raises `SchemaValidationError` when the text is
    not JSON."""

    def _events(self) -> Iterator[StreamEvent]:
        yield from super()._events()
        _checked(self._response, self._assembler.spec.name, self._assembler.model_id)


class AsyncJsonStream(AsyncStream):
    """`JsonStream` for asyncio."""

    async def _events(self) -> AsyncIterator[StreamEvent]:
        async for event in super()._events():
            yield event
        _checked(self._response, self._assembler.spec.name, self._assembler.model_id)
