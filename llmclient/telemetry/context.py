"""The context of a call: who made it and as part of what, as the caller says (never guessed).

Set per call with keywords (`client.complete(..., agent="triage", operation="summarise",
session="s-42", user="u-7")`) or for every call inside a block (`with llmclient.context(agent=
"triage"):`); a call's own keywords win over the block's, an inner block over an outer one. Blocks
follow the code: asyncio tasks started inside inherit them, and so do threads started with a copied
context (`asyncio.to_thread`, `contextvars.copy_context().run`).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from llmclient.errors import InvalidRequestError

KEYWORDS = ("agent", "operation", "session", "user")
MAX_LENGTH = 256


@dataclass(frozen=True, slots=True)
class CallContext:
    agent: str | None = None
    operation: str | None = None
    session: str | None = None
    user: str | None = None
    tags: tuple[tuple[str, str], ...] = ()

    def merged(self, other: CallContext) -> CallContext:
        """`other`'s values where it has them, else these."""
        return CallContext(other.agent or self.agent, other.operation or self.operation,
                           other.session or self.session, other.user or self.user,
                           tuple({**dict(self.tags), **dict(other.tags)}.items()))


EMPTY = CallContext()
_CURRENT: contextvars.ContextVar[CallContext] = contextvars.ContextVar("llmclient_call_context", default=EMPTY)


@contextmanager
def context(*, agent: str | None = None, operation: str | None = None, session: str | None = None,
            user: str | None = None, tags: Mapping[str, str] | None = None) -> Iterator[CallContext]:
    """Every call inside is recorded with these (a call's own keywords win). `tags` are free
    string labels kept in the record's `metadata.tags`."""
    given = _checked({"agent": agent, "operation": operation, "session": session, "user": user}, tags)
    token = _CURRENT.set(_CURRENT.get().merged(given))
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)


def pop_call_context(options: dict[str, Any]) -> CallContext:
    """The context of one call: the block's, with the call's own keywords (taken out of `options`,
    so they never reach the provider) on top."""
    block = _CURRENT.get()
    if not ("agent" in options or "operation" in options or "session" in options or "user" in options):
        return block
    given = {name: options.pop(name) for name in KEYWORDS if name in options}
    return block.merged(_checked(given, None))


def _checked(values: Mapping[str, Any], tags: Mapping[str, str] | None) -> CallContext:
    for name, value in values.items():
        if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > MAX_LENGTH):
            raise InvalidRequestError(f"{name}= must be a non-empty string of at most {MAX_LENGTH} characters "
                                      f"(it labels the call in telemetry), got {value!r}")
    pairs: tuple[tuple[str, str], ...] = ()
    if tags is not None:
        if not isinstance(tags, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
            raise InvalidRequestError(f"tags= must map strings to strings, got {tags!r}")
        pairs = tuple(tags.items())
    return replace(EMPTY, **{k: v for k, v in values.items() if v is not None}, tags=pairs)
