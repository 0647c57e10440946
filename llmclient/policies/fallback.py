"""Fallback chains: the models a call may go to, in order, and when to move on.

A profile's model comes first, then its fallbacks (their own fallbacks after them, depth first,
each model once). Each model gets its full retry policy (`llmclient.policies.retry`); when its last error
is one the profile falls back on (default: rate limit, server error, timeout, connection error,
context window exceeded), the call moves to the next model. Every failed attempt is recorded, so
`response.retries` tells which model answered after which failures, and an error that ends the
chain carries them all in `error.history`. A fallback that cannot take the request at all (a
capability it lacks, `max_tokens` above its limit, retired, no key set) is recorded and skipped;
the primary model's own such error is the caller's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from llmclient.errors import ConfigurationError, LLMError, ModelLimitError, ModelRetiredError, UnsupportedCapabilityError
from llmclient.policies.retry import record
from llmclient.telemetry import observe
from llmclient.types import RetryRecord

if TYPE_CHECKING:
    from llmclient.policies.route import Route

R = TypeVar("R")
OneModel = Callable[["Route", list[RetryRecord]], R]


def through_chain(chain: Sequence[Route], one_model: OneModel[R], falls_back_on: Callable[[LLMError], bool]) -> tuple[R, list[RetryRecord]]:
    """`one_model(route, history)` on each route of `chain` until one answers."""
    history: list[RetryRecord] = []
    last_api_error: LLMError | None = None
    for position, route in enumerate(chain):
        try:
            return one_model(route, history), history
        except LLMError as error:
            last_api_error = _next_or_raise(chain, position, error, last_api_error, history, falls_back_on)
    assert last_api_error is not None
    raise _with_history(last_api_error, history)


async def athrough_chain(chain: Sequence[Route], one_model: Callable[[Route, list[RetryRecord]], Awaitable[R]],
                         falls_back_on: Callable[[LLMError], bool]) -> tuple[R, list[RetryRecord]]:
    """`through_chain` for asyncio."""
    history: list[RetryRecord] = []
    last_api_error: LLMError | None = None
    for position, route in enumerate(chain):
        try:
            return await one_model(route, history), history
        except LLMError as error:
            last_api_error = _next_or_raise(chain, position, error, last_api_error, history, falls_back_on)
    assert last_api_error is not None
    raise _with_history(last_api_error, history)


# What a fallback model may refuse before any request that makes the chain skip it.
_CANNOT_TAKE_IT = (UnsupportedCapabilityError, ModelLimitError, ModelRetiredError, ConfigurationError)


def _next_or_raise(chain: Sequence[Route], position: int, error: LLMError, last_api_error: LLMError | None,
                   history: list[RetryRecord], falls_back_on: Callable[[LLMError], bool]) -> LLMError | None:
    """The error to raise if the chain ends here, or raise now when the call must not go on."""
    if isinstance(error, _CANNOT_TAKE_IT) and position > 0:
        # This fallback cannot take the call (a capability it lacks, a limit below the call's, retired,
        # no key set): skip it.
        history.append(record(error, chain[position].model, 0.0))
        if position == len(chain) - 1:
            raise _with_history(last_api_error or error, history)
        observe.falling_back(history[-1], chain[position + 1].model)
        return last_api_error
    if position == len(chain) - 1 or not falls_back_on(error):
        raise _with_history(error, history)
    if not history or history[-1].model != chain[position].model:
        # refused before any attempt (the model catalogue's context check): still a step of the call
        history.append(record(error, chain[position].model, 0.0))
    observe.falling_back(history[-1], chain[position + 1].model)
    return error


def _with_history(error: LLMError, history: list[RetryRecord]) -> LLMError:
    error.history = tuple(history)
    return error
