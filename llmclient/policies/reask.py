"""Re-asking: a refused answer (invalid structured output, a validator's refusal) is sent back
with the reason, and the model asked again, up to `max_retries` more times (tenacity counts the
attempts). The loop is given the send it wraps as a function, and an `AskLoop` that judges each
answer and says what to send next; after the last refusal, `SchemaValidationError` carries every
attempt.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from llmclient.errors import SchemaValidationError
from llmclient.request import Request
from llmclient.types import Attempt, Response

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class Invalid(Exception):
    """One attempt's answer was refused; carries what to tell the model."""


class AskLoop(Protocol[R_co]):
    """One validate-and-ask-again loop: what to send next, and the verdict on each answer."""

    current: Request
    attempts: list[Attempt]

    def judge(self, response: Response) -> R_co:
        """The accepted result, or raise `Invalid` after updating `current` to ask again."""
        ...

    def exhausted(self, provider: str, model: str) -> SchemaValidationError: ...


def _policy(max_retries: int) -> dict[str, Any]:
    from tenacity import retry_if_exception_type, stop_after_attempt

    return {"stop": stop_after_attempt(max_retries + 1), "retry": retry_if_exception_type(Invalid), "reraise": True}


def ask_until_valid(send: Callable[[Request], Response], loop: AskLoop[R], max_retries: int,
                    provider: str, model: str) -> R:
    """Ask, judge, ask again with the reason; tenacity counts the attempts."""
    from tenacity import Retrying

    try:
        for attempt in Retrying(**_policy(max_retries)):
            with attempt:
                return loop.judge(send(loop.current))
    except Invalid:
        pass
    raise loop.exhausted(provider, model)


async def aask_until_valid(send: Callable[[Request], Awaitable[Response]], loop: AskLoop[R], max_retries: int,
                           provider: str, model: str) -> R:
    """`ask_until_valid` for asyncio."""
    from tenacity import AsyncRetrying

    try:
        async for attempt in AsyncRetrying(**_policy(max_retries)):
            with attempt:
                return loop.judge(await send(loop.current))
    except Invalid:
        pass
    raise loop.exhausted(provider, model)


def exhausted_error(provider: str, model: str, what: str, how: str, attempts: list[Attempt]) -> SchemaValidationError:
    summary = "; ".join(f"attempt {i + 1}: {a.error}" for i, a in enumerate(attempts))
    return SchemaValidationError(f"{what} after {len(attempts)} attempt(s) ({how}): {summary}",
                                 provider=provider, model=model, attempts=attempts)
