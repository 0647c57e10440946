"""What the model catalogue refuses before a request is sent (zero requests on failure): a file
type the model does not take, tools to a model without tools, `max_tokens` above its output limit,
an input estimated over its context window (`check_context=False` sends it anyway), and a model
past the retirement date its provider published (a warning before that date, while replaying a
recording of it, and after a date only litellm's model map gives).

Only what the catalogue states refuses a call: a capability it gives as unknown (None), or a model
it does not list, passes through unchecked. Provider-wide checks (what the API takes at all, file
sizes) are `llmclient.files.check`'s, which runs first.
"""

from __future__ import annotations

import json
import sys
import threading
import warnings
from datetime import date
from pathlib import Path
from typing import TypedDict

from llmclient import cassettes
from llmclient.files import text_bytes
from llmclient.errors import (
    ContextWindowExceededError,
    ModelDeprecationWarning,
    ModelLimitError,
    ModelRetiredError,
    UnsupportedCapabilityError,
)
from llmclient.models import ModelInfo
from llmclient.request import Request

_PACKAGE = str(Path(__file__).resolve().parent)
_warned: set[str] = set()
_lock = threading.Lock()
# Tokens a chat API adds around each message and before the reply, at most (OpenAI: 3 + 1 per name,
# + 3 priming); an upper bound only decides when counting is needed at all.
_FRAMING_PER_MESSAGE = 8
# An estimate (no tokenizer for the model) refuses only this far over the window: 4 bytes a token is
# an average, and a refusal of an input that fits would block a call the provider takes.
ESTIMATE_MARGIN = 1.25


def check(request: Request, info: ModelInfo, today: date | None = None) -> None:
    """Raise the first of the catalogue's refusals of `request` to the model `info` describes."""
    if info.retires is not None or info.deprecated is not None:
        _retirement(info, today or _today())
    for message in request.messages:
        for part in message.files:
            if part.is_text:
                continue  # sent as text: every model reads it
            takes, kind = (info.vision, "images") if part.is_image else (info.pdf, "PDFs")
            if takes is False:
                raise UnsupportedCapabilityError(
                    f"{part.label} is {part.media_type}, but {info.model} does not take {kind} "
                    f"(model catalogue: {info.source or info.key}); no request was sent",
                    **_where(info))
    if request.tools and info.tools is False:
        raise UnsupportedCapabilityError(
            f"{len(request.tools)} tool(s) given, but {info.model} does not call tools (model catalogue: "
            f"{info.source or info.key}); no request was sent", **_where(info))
    if request.max_tokens is not None and info.max_output_tokens is not None \
            and request.max_tokens > info.max_output_tokens:
        raise ModelLimitError(
            f"max_tokens={request.max_tokens:,} is above {info.model}'s output limit of {info.max_output_tokens:,} "
            f"tokens; ask for at most {info.max_output_tokens:,}; no request was sent",
            **_where(info))
    if request.check_context and info.context_window is not None:
        _context(request, info, _window(request, info, info.context_window))


class _Where(TypedDict):
    provider: str
    model: str


def _where(info: ModelInfo) -> _Where:
    """The error's provider and model id (its message names "<provider>/<id>" by them)."""
    return {"provider": info.provider, "model": info.model.split("/", 1)[1]}


def _today() -> date:
    return date.today()  # a function, so a harness replaying old traffic as live calls can set its day


def _retirement(info: ModelInfo, today: date) -> None:
    instead = f"; use {info.replacement} instead" if info.replacement else ""
    if info.retires is not None and info.retires <= today and not info.retirement_confirmed:
        # litellm's date alone: often the provider's, sometimes not (a date moved, an alias kept alive).
        # A wrong refusal would block a model that still answers, so the provider decides.
        _warn_once(info.model, f"{info.model} may be retired: litellm's model map gives {info.retires.isoformat()} as its "
                               f"shutdown date (not confirmed by the provider's page){instead}; the call is sent")
    elif info.retires is not None and info.retires <= today and info.provider != info.key.split("/", 1)[0]:
        # a router (OpenRouter, Hugging Face) may serve it from elsewhere (Bedrock, Vertex) after the
        # maker's own API retired it: the router decides
        _warn_once(info.model, f"{info.key} was retired on {info.retires.isoformat()} at {info.key.split('/', 1)[0]}"
                               f"{instead}; the call goes to {info.provider}, which may still serve it")
    elif info.retires is not None and info.retires <= today:
        message = f"{info.model} was retired on {info.retires.isoformat()}{instead}"
        if not cassettes.replaying():  # a recording of it still replays: it was served then
            raise ModelRetiredError(message + "; no request was sent", retired_on=info.retires,
                                    **_where(info))
        _warn_once(info.model, message + " (replaying a recording of it)")
    elif info.retires is not None:
        _warn_once(info.model, f"{info.model} will be retired on {info.retires.isoformat()}{instead}")
    elif info.deprecated is not None and info.deprecated <= today:
        _warn_once(info.model, f"{info.model} is deprecated since {info.deprecated.isoformat()}{instead}")


def _warn_once(model: str, message: str) -> None:
    if model in _warned:  # every call to a deprecated model comes here: no lock once warned
        return
    with _lock:
        if model in _warned:
            return
        _warned.add(model)
    frame, level = sys._getframe(0), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE):  # point at the caller's line
        frame, level = frame.f_back, level + 1
    warnings.warn(message, ModelDeprecationWarning, stacklevel=level)


def _window(request: Request, info: ModelInfo, window: int) -> int:
    """The context window this call has: Anthropic's 1M-token beta header widens a model's 200K."""
    beta = next((value for name, value in request.extra_headers.items() if name.lower() == "anthropic-beta"), "")
    return max(window, 1_000_000) if info.provider == "anthropic" and "context-1m" in beta else window


def _context(request: Request, info: ModelInfo, window: int) -> None:
    """Refuse an input over the window. A token is at least one UTF-8 byte, and a character at most
    four, so most calls are let through on their length alone and only a long one is counted.
    Text files count (they are sent as text); images and PDFs do not (their tokens depend on the
    provider's rendering). An estimate refuses only past `ESTIMATE_MARGIN` times the window."""
    if not request.tools and all(type(m.content) is str and not m.tool_calls for m in request.messages):
        # the common call, plain text turns: its length settles it without building anything
        if 4 * sum(len(m.content) for m in request.messages) + _FRAMING_PER_MESSAGE * (len(request.messages) + 1) <= window:
            return
    texts = _texts(request)
    characters = sum(len(text) for text in texts)
    framing = _FRAMING_PER_MESSAGE * (len(request.messages) + 1) + _text_file_bytes(request)
    if 4 * characters + framing <= window:
        return
    if sum(len(text.encode("utf-8", "surrogatepass")) for text in texts) + framing <= window:
        return
    from llmclient import tokens  # only for a long input

    counted = tokens.count_tokens(request, info.model, offline=True)
    limit = window if counted.exact else int(window * ESTIMATE_MARGIN)
    if counted.tokens > limit:
        over = f"over {info.model}'s context window of {window:,} tokens" if counted.exact else \
            f"more than {ESTIMATE_MARGIN}x {info.model}'s context window of {window:,} tokens"
        how = "counted" if counted.exact else f"estimated: {counted.method}"
        raise ContextWindowExceededError(
            f"the input is {'' if counted.exact else 'about '}{counted.tokens:,} tokens ({how}), {over} ("
            f"images and PDFs not included); shorten it (llmclient.truncate_to_tokens), pick a model with a "
            f"larger window, or pass check_context=False to send it anyway; no request was sent",
            **_where(info))


def _text_file_bytes(request: Request) -> int:
    return sum(text_bytes(part) for message in request.messages for part in message.files if part.is_text)


def _texts(request: Request) -> list[str]:
    """Every text of the call that is sent as tokens (tool schemas and call arguments as JSON)."""
    texts = [message.text for message in request.messages]
    for message in request.messages:
        texts.extend(json.dumps(call.arguments) for call in message.tool_calls)
    texts.extend(json.dumps(tool.parameters) + tool.name + (tool.description or "") for tool in request.tools)
    return texts
