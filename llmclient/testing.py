"""Test doubles for code that uses llmclient: a mock provider, and provider faults on demand.

    with MockProvider() as mock:  # as a pytest fixture: the same, with `yield mock`
        mock.reply("Paris.", input_tokens=12, output_tokens=2)
        assert Client("mock/any-model").complete("Capital of France?").text == "Paris."

    with use_cassette("cassettes/openai/text.yaml"), simulate_errors(status(503), timeout()):
        Client("openai/gpt-4o-mini").complete(...)  # two failed attempts, then the recorded reply

Both answer inside llmclient's HTTP layer (`transport.interceptor`, set when this module is
imported), before the network and before a cassette replay, so each request (each retry too)
takes the next queued answer. Their bytes are decoded like a provider's: usage, tool calls, stream
assembly and error classification are the library's own. Faults use the target provider's wire
format (OpenAI, Anthropic, Gemini with its RetryInfo, Cohere). To see one fault as it was queued,
call with `retry=RetryPolicy(max_attempts=1)`.

Active doubles form one process-wide stack, not a context variable, so threads started inside a
`with` block are served too. A block that ends with answers unused raises AssertionError unless
`allow_unused=True`: the code made fewer calls than the test expected, and a warning would pass.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal, Self

import httpx

from llmclient import transport
from llmclient.errors import ConfigurationError
from llmclient.providers import MOCK_PROVIDER, REGISTRY, ProviderSpec, register_provider
from llmclient.types import ToolCall
from llmclient.wire import codec

__all__ = ["ErrorSimulator", "Fault", "MockProvider", "disconnect", "malformed", "simulate_errors", "status", "timeout"]


_BROKEN_JSON = b'{"id": "simulated-malformed", "content": "Par'


@dataclass(frozen=True)
class Fault:
    """Something that goes wrong instead of a reply: made by status(), timeout(), malformed() or
    disconnect()."""

    kind: Literal["status", "timeout", "malformed", "disconnect"]
    code: int | None = None
    retry_after: float | None = None
    message: str | None = None
    error_type: str | None = None

    def respond(self, request: httpx.Request, spec: ProviderSpec) -> httpx.Response:
        """The provider's answer to `request` (or the transport error that replaces it)."""
        if self.kind == "timeout":
            raise httpx.ReadTimeout("no response within the timeout (simulated by llmclient.testing)", request=request)
        if self.kind == "disconnect":  # httpx's own words when a server closes without answering
            raise httpx.RemoteProtocolError("Server disconnected without sending a response (simulated)", request=request)
        if self.kind == "malformed":  # a 200 whose JSON breaks off; a stream gets it as its first event
            if _is_stream(request):
                return _response(200, "text/event-stream", b"data: " + _BROKEN_JSON + b"\n\n", request)
            return _response(200, "application/json", _BROKEN_JSON, request)
        assert self.code is not None
        message = self.message or f"{_phrase(self.code)} (simulated by llmclient.testing)"
        body, headers = codec(spec.wire).error_body(self.code, message, self.error_type, self.retry_after)
        return _response(self.code, "application/json", json.dumps(body).encode(), request, headers)

    def __repr__(self) -> str:
        return f"status({self.code})" if self.kind == "status" else f"{self.kind}()"


def status(code: int, *, retry_after: float | None = None, message: str | None = None,
           error_type: str | None = None) -> Fault:
    """An HTTP error answer: `code` (429, 500, 503, 529, ...) with the provider's error body.
    `retry_after` (seconds) is sent the provider's way; `error_type` replaces the body's error
    type/code/status (e.g. "context_length_exceeded")."""
    if isinstance(code, bool) or not isinstance(code, int) or not 400 <= code < 600:
        raise ConfigurationError(f"a simulated error status must be an HTTP error code (400-599), got {code!r}")
    if retry_after is not None and retry_after < 0:
        raise ConfigurationError(f"retry_after must be >= 0 seconds, got {retry_after!r}")
    return Fault("status", code, retry_after, message, error_type)


def timeout() -> Fault:
    """No answer in time: httpx.ReadTimeout, which llmclient reports as RequestTimeoutError."""
    return Fault("timeout")


def malformed() -> Fault:
    """A 200 whose body is not valid JSON: MalformedResponseError."""
    return Fault("malformed")


def disconnect() -> Fault:
    """The connection closes without an answer: APIConnectionError."""
    return Fault("disconnect")


def _response(code: int, content_type: str, content: bytes, request: httpx.Request,
              headers: Mapping[str, str] | None = None) -> httpx.Response:
    return httpx.Response(code, headers={"content-type": content_type, **(headers or {})}, content=content, request=request)


def _phrase(code: int) -> str:
    if code == 529:  # Anthropic's, not a registered status
        return "Overloaded"
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return f"HTTP {code}"


def _is_stream(request: httpx.Request) -> bool:
    if ":streamGenerateContent" in request.url.path:  # Gemini says it in the URL, the others in the body
        return True
    body = _json_body(request)
    return isinstance(body, dict) and body.get("stream") is True


def _json_body(request: httpx.Request) -> Any:
    try:
        return json.loads(request.read() or b"null")  # read(): a body with files spliced in is a stream
    except ValueError:
        return None


# --- mock replies (OpenAI chat-completions format: the mock provider's wire) ------------------


@dataclass(frozen=True)
class _Reply:
    text: str
    tool_calls: tuple[ToolCall, ...]
    deltas: tuple[str, ...] | None  # None: not a stream reply (it still serves a streamed call)
    finish: str
    usage: dict[str, Any]

    def respond(self, request: httpx.Request, spec: ProviderSpec) -> httpx.Response:
        body = _json_body(request)
        body = body if isinstance(body, dict) else {}
        model = str(body.get("model") or "mock")
        if not body.get("stream"):
            if self.deltas is not None:
                raise ConfigurationError("a reply_stream() reply was queued but the call was not streamed: "
                                         "queue it with reply() for complete()/structured()")
            return _response(200, "application/json", json.dumps(self._completion(model)).encode(), request)
        with_usage = (body.get("stream_options") or {}).get("include_usage") is True  # as OpenAI does
        events = [json.dumps(chunk) for chunk in self._chunks(model, with_usage)] + ["[DONE]"]
        return _response(200, "text/event-stream", "".join(f"data: {event}\n\n" for event in events).encode(), request)

    def __repr__(self) -> str:
        if self.deltas is not None:
            return f"reply_stream({list(self.deltas)!r})"
        if self.tool_calls:
            return f"reply_tool_calls({[call.name for call in self.tool_calls]!r})"
        return f"reply({self.text!r})"

    def _completion(self, model: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            message["tool_calls"] = [{"id": call.id, "type": "function",
                                      "function": {"name": call.name, "arguments": json.dumps(call.arguments)}}
                                     for call in self.tool_calls]
        return {"id": "chatcmpl-mock", "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": self.finish}], "usage": self.usage}

    def _chunks(self, model: str, with_usage: bool) -> list[dict[str, Any]]:
        pieces = self.deltas if self.deltas is not None else [self.text] if self.text else []
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        deltas += [{"content": piece} for piece in pieces]
        for index, call in enumerate(self.tool_calls):
            # The name first, then the arguments in two fragments, as OpenAI streams them.
            arguments = json.dumps(call.arguments)
            half = len(arguments) // 2
            deltas.append({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                                           "function": {"name": call.name, "arguments": ""}}]})
            deltas += [{"tool_calls": [{"index": index, "function": {"arguments": part}}]}
                       for part in (arguments[:half], arguments[half:])]
        finishes: list[str | None] = [None] * len(deltas) + [self.finish]
        choices: list[list[dict[str, Any]]] = [[{"index": 0, "delta": delta, "finish_reason": finish}]
                                               for delta, finish in zip([*deltas, {}], finishes, strict=True)]
        head: dict[str, Any] = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": model}
        chunks = [{**head, "choices": choice} for choice in choices]
        if with_usage:  # OpenAI's last chunk: no choices, the usage of the whole call
            chunks.append({**head, "choices": [], "usage": self.usage})
        return chunks


def _usage(input_tokens: int, output_tokens: int, cache_read_tokens: int, reasoning_tokens: int) -> dict[str, Any]:
    counts = {"input_tokens": input_tokens, "output_tokens": output_tokens,
              "cache_read_tokens": cache_read_tokens, "reasoning_tokens": reasoning_tokens}
    for name, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ConfigurationError(f"{name} must be an integer >= 0, got {count!r}")
    return {"prompt_tokens": input_tokens, "completion_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
            "prompt_tokens_details": {"cached_tokens": cache_read_tokens},
            "completion_tokens_details": {"reasoning_tokens": reasoning_tokens}}


# --- the doubles and the one stack they share -------------------------------------------------

_lock = threading.Lock()
_active: list[_Double] = []


class _Double:
    """What MockProvider and ErrorSimulator share: a FIFO of answers, activation, the unused check."""

    def __init__(self, allow_unused: bool) -> None:
        self._allow_unused = allow_unused
        self._queue: deque[Fault | _Reply] = deque()

    @property
    def pending(self) -> int:
        """How many queued answers no request has used yet."""
        with _lock:
            return len(self._queue)

    def assert_all_used(self) -> None:
        with _lock:
            left = list(self._queue)
        if left:
            raise AssertionError(f"{type(self).__name__}: {len(left)} queued answer(s) were never requested: "
                                 f"{', '.join(map(repr, left))}")

    def _claim(self, request: httpx.Request, spec: ProviderSpec) -> Fault | _Reply | None:
        """Called under the lock: the answer for this request, taken off the queue, or None."""
        raise NotImplementedError

    def _push(self, answer: Fault | _Reply) -> Self:
        with _lock:
            self._queue.append(answer)
        return self

    def __enter__(self) -> Self:
        with _lock:
            if self in _active:
                raise ConfigurationError(f"this {type(self).__name__} is already active")
            _active.append(self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        with _lock:
            _active.remove(self)
        if exc_type is None and not self._allow_unused:  # never mask the error that ended the block
            self.assert_all_used()


class MockProvider(_Double):
    """Answers every `Client("mock/<any id>")` call from a queue, first in first out.

    Queue replies (`reply`, `reply_tool_call`, `reply_tool_calls`, `reply_stream`) and failures
    (`fail`, `timeout`, `malformed`, `disconnect`); each call takes the next one. A reply made
    with `reply`/`reply_tool_call` serves a streamed call too. `requests` holds the JSON bodies
    that were sent. As a pytest fixture: `with MockProvider() as mock: yield mock`.
    """

    def __init__(self, *, allow_unused: bool = False) -> None:
        super().__init__(allow_unused)
        self._requests: list[dict[str, Any]] = []
        self._calls_made = 0

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON body of every request the mock received, in order (OpenAI chat format)."""
        with _lock:
            return list(self._requests)

    def reply(self, text: str, *, input_tokens: int = 10, output_tokens: int = 5, cache_read_tokens: int = 0,
              reasoning_tokens: int = 0, finish: str = "stop") -> MockProvider:
        """A text answer. `finish` is OpenAI's finish_reason ("stop", "length", "content_filter")."""
        usage = _usage(input_tokens, output_tokens, cache_read_tokens, reasoning_tokens)
        return self._push(_Reply(text, (), None, finish, usage))

    def reply_tool_call(self, name: str, arguments: Mapping[str, Any] | None = None, *, id: str | None = None,
                        text: str = "", input_tokens: int = 10, output_tokens: int = 5) -> MockProvider:
        """An answer calling one tool (`id` defaults to call_mock_<n>)."""
        return self.reply_tool_calls([ToolCall(id=id or self._next_id(), name=name, arguments=dict(arguments or {}))],
                                     text=text, input_tokens=input_tokens, output_tokens=output_tokens)

    def reply_tool_calls(self, calls: Sequence[ToolCall | tuple[str, Mapping[str, Any]]], *, text: str = "",
                         input_tokens: int = 10, output_tokens: int = 5) -> MockProvider:
        """An answer calling several tools at once (parallel tool calls)."""
        if not calls:
            raise ConfigurationError("reply_tool_calls() needs at least one call; use reply() for a text answer")
        made = [call if isinstance(call, ToolCall) else ToolCall(id=self._next_id(), name=call[0], arguments=dict(call[1]))
                for call in calls]
        return self._push(_Reply(text, tuple(made), None, "tool_calls", _usage(input_tokens, output_tokens, 0, 0)))

    def reply_stream(self, deltas: Sequence[str], *, input_tokens: int = 10, output_tokens: int = 5,
                     finish: str = "stop") -> MockProvider:
        """A streamed text answer arriving in exactly these pieces, then the usage chunk."""
        if isinstance(deltas, str):
            raise ConfigurationError("reply_stream() takes a list of text pieces, not one string")
        usage = _usage(input_tokens, output_tokens, 0, 0)
        return self._push(_Reply("".join(deltas), (), tuple(deltas), finish, usage))

    def fail(self, status_code: int, *, retry_after: float | None = None, message: str | None = None,
             error_type: str | None = None) -> MockProvider:
        """An HTTP error answer (see `status`)."""
        return self._push(status(status_code, retry_after=retry_after, message=message, error_type=error_type))

    def timeout(self) -> MockProvider:
        return self._push(timeout())

    def malformed(self) -> MockProvider:
        return self._push(malformed())

    def disconnect(self) -> MockProvider:
        return self._push(disconnect())

    def _next_id(self) -> str:
        with _lock:
            self._calls_made += 1
            return f"call_mock_{self._calls_made}"

    def _claim(self, request: httpx.Request, spec: ProviderSpec) -> Fault | _Reply | None:
        if spec.name != MOCK_PROVIDER.name:
            return None
        body = _json_body(request)
        self._requests.append(body if isinstance(body, dict) else {"body": body})
        if not self._queue:
            raise ConfigurationError(
                f"MockProvider has nothing queued for request {len(self._requests)} ({request.url.path}): "
                f"queue an answer first with mock.reply(...), reply_tool_call(...), reply_stream(...) or fail(...) "
                f"(a retrying client takes one per attempt)",
                provider=spec.name, model=body.get("model") if isinstance(body, dict) else None,
            )
        return self._queue.popleft()


class ErrorSimulator(_Double):
    """The faults of one `simulate_errors` block; `injected` lists "<provider> <METHOD> <url>" of
    each request that got one."""

    def __init__(self, faults: Sequence[Fault], provider: str | None, allow_unused: bool) -> None:
        super().__init__(allow_unused)
        self._provider = provider
        self._queue.extend(faults)
        self._injected: list[str] = []

    @property
    def injected(self) -> list[str]:
        with _lock:
            return list(self._injected)

    def _claim(self, request: httpx.Request, spec: ProviderSpec) -> Fault | _Reply | None:
        if not self._queue or self._provider not in (None, spec.name):
            return None
        self._injected.append(f"{spec.name} {request.method} {request.url.copy_with(query=None)}")
        return self._queue.popleft()


@contextmanager
def simulate_errors(*faults: Fault, provider: str | None = None, allow_unused: bool = False) -> Iterator[ErrorSimulator]:
    """The next len(faults) requests (of `provider` only, if given) get these faults, in order,
    without reaching the network or the cassette; later requests pass through untouched."""
    if not faults:
        raise ConfigurationError("simulate_errors() needs at least one fault, e.g. status(429, retry_after=1)")
    wrong = [fault for fault in faults if not isinstance(fault, Fault)]
    if wrong:
        raise ConfigurationError(f"simulate_errors() takes faults made by status(), timeout(), malformed() or "
                                 f"disconnect() as separate arguments, got {wrong[0]!r}")
    if provider is not None and provider not in REGISTRY:
        raise ConfigurationError(f"simulate_errors(provider={provider!r}): no such provider; known: "
                                 f"{', '.join(sorted(REGISTRY))}", provider=provider)
    with ErrorSimulator(faults, provider, allow_unused) as simulator:
        yield simulator


def _intercept(request: httpx.Request, spec: ProviderSpec) -> httpx.Response | None:
    with _lock:
        # Faults before mock replies, whatever the nesting: "the next N requests fail" holds for
        # a mock's requests too. Within each kind the innermost block wins.
        doubles = sorted(reversed(_active), key=lambda double: not isinstance(double, ErrorSimulator))
        answer = next((a for a in (double._claim(request, spec) for double in doubles) if a is not None), None)
    if answer is not None:
        return answer.respond(request, spec)  # outside the lock: building it needs no shared state
    if spec.name == MOCK_PROVIDER.name:
        raise ConfigurationError(f"Client({spec.name + '/...'!r}) was called with no MockProvider active: "
                                 f"make the call inside `with MockProvider() as mock:` after queueing a reply",
                                 provider=spec.name)
    return None


transport.interceptor = _intercept
register_provider(MOCK_PROVIDER, replace=True)  # Client("mock/...") from here on
