"""Streamed structured output: partial objects while the JSON arrives, the validated value at the end.

`Client.stream_structured(prompt, schema=Model)` asks as `structured` does (native response
format or one forced tool) but streams. Iterating yields a `dict` snapshot of the object parsed
so far each time it grows, and finally the validated value (an instance of the schema). The
snapshots hold only what has certainly arrived: complete keys, and a string value cut where the
stream is (it can only grow); a number or literal still arriving is left out until it ends,
since `3` may yet become `35`.

A streamed answer that does not validate raises `SchemaValidationError`: it is not asked again,
because its partial objects have already been handed out.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from llmclient.errors import InvalidRequestError
from llmclient.policies.reask import Invalid, exhausted_error
from llmclient.schema import Strategy, Target, answer_text
from llmclient.types import Attempt, Cost, Response, StreamEvent, Usage

if TYPE_CHECKING:
    from llmclient.streaming import AsyncStream, Stream

T = TypeVar("T")
_CLOSERS = {"{": "}", "[": "]"}
_TRAILING_TOKEN = re.compile(r"[A-Za-z0-9.+-]+$")


def parse_partial(text: str) -> Any | None:
    """The JSON value `text` begins, with open strings, arrays and objects closed; None when not
    even an empty container can be made of it yet. A key, number or literal cut off is dropped."""
    stack: list[str] = []
    in_string = escaped = False
    safe: tuple[int, str] | None = None  # the last cut after which the prefix closes cleanly
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in _CLOSERS:
            stack.append(char)
            safe = (index + 1, _closing(stack))
        elif char in "}]":
            if stack:
                stack.pop()
            safe = (index + 1, _closing(stack))
        elif char == ",":
            safe = (index, _closing(stack))
    candidates = []
    if in_string or not _ends_in_number(text):
        # Everything so far, the string in progress closed (a trailing lone backslash dropped).
        body = text[:-1] if escaped else text
        candidates.append(body + ('"' if in_string else "") + _closing(stack))
    if safe is not None:
        candidates.append(text[: safe[0]] + safe[1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    return None


def _ends_in_number(text: str) -> bool:
    """Whether `text` ends inside a number (which may still grow: "3" -> "35")."""
    tail = _TRAILING_TOKEN.search(text.rstrip())
    return tail is not None and tail.group() not in ("true", "false", "null")


def _closing(stack: list[str]) -> str:
    return "".join(_CLOSERS[opener] for opener in reversed(stack))


class Accumulator(Generic[T]):
    """The JSON text of the answer as it streams, and the judgement at the end."""

    def __init__(self, provider: str, model: str, target: Target[T], strategy: Strategy) -> None:
        if strategy == "prompted":
            raise InvalidRequestError(
                f"stream_structured needs the native or tool strategy; {provider}/{model} has neither "
                f"(use structured(), which can extract JSON from text)")
        self.provider, self.model, self.target, self.strategy = provider, model, target, strategy
        self.text = ""
        self.last: Any = None
        self.value: T | None = None
        self.response: Response | None = None
        self._tool_index: int | None = None

    def feed(self, event: StreamEvent) -> dict[str, Any] | None:
        """A new snapshot when `event` grew the object, else None."""
        if self.strategy == "native" and event.kind == "text":
            self.text += event.text
        elif self.strategy == "tool" and event.tool_call is not None:
            delta = event.tool_call
            if self._tool_index is None and delta.name == self.target.name:
                self._tool_index = delta.index
            if delta.index != self._tool_index:
                return None
            self.text += delta.arguments
        else:
            return None
        snapshot = parse_partial(self.text.lstrip())
        if not isinstance(snapshot, dict) or snapshot == self.last:
            return None
        self.last = snapshot
        return snapshot

    def finish(self, response: Response) -> T:
        self.response = response
        raw = ""
        try:
            raw = answer_text(response, self.target, self.strategy)
            self.value = self.target.parse(raw)
        except Invalid as problem:
            attempt = Attempt(response=response, raw=raw, error=str(problem))
            raise exhausted_error(self.provider, self.model, f"no valid {self.target.name}", f"{self.strategy} strategy, streamed",
                                  [attempt]) from None
        return self.value


class StructuredStream(Generic[T]):
    """Iterate for partial `dict`s and, last, the validated value; then `.value`, `.response`,
    `.usage`, `.cost`. The request is sent when iteration starts."""

    def __init__(self, stream: Stream, accumulator: Accumulator[T]) -> None:
        self._stream, self._acc = stream, accumulator
        stream.keep_later = True  # the response cache keeps an answer once its value validates
        self._iterator: Iterator[dict[str, Any] | T] | None = None

    def __iter__(self) -> Iterator[dict[str, Any] | T]:
        if self._iterator is None:
            self._iterator = self._run()
        return self._iterator

    def _run(self) -> Iterator[dict[str, Any] | T]:
        for event in self._stream:
            snapshot = self._acc.feed(event)
            if snapshot is not None:
                yield snapshot
        value = self._acc.finish(self._stream.response)
        self._stream.keep_answer()
        yield value

    @property
    def value(self) -> T:
        """The validated value; reading it before the end consumes the rest of the stream."""
        if self._acc.response is None:
            for _ in self:
                pass
        return _value(self._acc)

    @property
    def response(self) -> Response:
        self.value  # noqa: B018 - drains the stream
        assert self._acc.response is not None
        return self._acc.response

    @property
    def usage(self) -> Usage | None:
        return self.response.usage

    @property
    def cost(self) -> Cost | None:
        return self.response.cost

    def close(self) -> None:
        self._stream.close()


class AsyncStructuredStream(Generic[T]):
    """`StructuredStream` for asyncio: `async for`, then `await .get_value()` or `.value`."""

    def __init__(self, stream: AsyncStream, accumulator: Accumulator[T]) -> None:
        self._stream, self._acc = stream, accumulator
        stream.keep_later = True
        self._iterator: AsyncIterator[dict[str, Any] | T] | None = None

    def __aiter__(self) -> AsyncIterator[dict[str, Any] | T]:
        if self._iterator is None:
            self._iterator = self._run()
        return self._iterator

    async def _run(self) -> AsyncIterator[dict[str, Any] | T]:
        async for event in self._stream:
            snapshot = self._acc.feed(event)
            if snapshot is not None:
                yield snapshot
        value = self._acc.finish(await self._stream.get_response())
        import asyncio

        await asyncio.to_thread(self._stream.keep_answer)  # SQLite may wait for another process's write
        yield value

    async def get_value(self) -> T:
        """The validated value, consuming the rest of the stream if needed."""
        if self._acc.response is None:
            async for _ in self:
                pass
        return _value(self._acc)

    @property
    def value(self) -> T:
        """The validated value (after iteration has ended)."""
        if self._acc.response is None:
            raise RuntimeError("the stream has not ended yet: iterate it, or await get_value()")
        return _value(self._acc)

    @property
    def response(self) -> Response:
        self.value  # noqa: B018 - raises before the end
        assert self._acc.response is not None
        return self._acc.response

    async def aclose(self) -> None:
        await self._stream.aclose()


def _value(accumulator: Accumulator[T]) -> T:
    if accumulator.value is None and accumulator.response is not None:
        return accumulator.finish(accumulator.response)  # raises the validation error again
    if accumulator.response is None:
        raise RuntimeError("the stream was closed before it finished, so it has no value")
    return accumulator.value  # type: ignore[return-value]
