"""One typed error hierarchy for every provider.

    LLMError
    ├── ConfigurationError            bad model string, unknown provider, missing API key
    ├── UnsupportedCapabilityError    the model cannot do what was asked (raised before any request)
    ├── SchemaValidationError         structured output failed validation
    ├── ReplayMismatchError           a replay cassette holds no interaction for this request
    └── APIError                      the call to the provider failed
        ├── AuthenticationError       401 / 403
        ├── NotFoundError             404 (unknown model, ...)
        │   └── ModelRetiredError     the catalogue says the model was shut down (before any request)
        ├── BadRequestError           400 / 422
        │   ├── ContextWindowExceededError
        │   ├── ContentFilterError
        │   └── InvalidRequestError   our own check of the arguments, before any request
        │       └── ModelLimitError   above the model's own limit (its output tokens), before any request
        ├── RateLimitError            429 (`retry_after` parsed)
        ├── ServerError               5xx
        │   └── OverloadedError       Anthropic 529 / overloaded_error
        ├── RequestTimeoutError
        ├── APIConnectionError
        ├── MalformedResponseError    unparseable body, truncated stream
        └── BatchError                a batch item with no answer: expired, canceled, its batch failed

    UsageMissingWarning (a UserWarning, not an error): a stream that asked for its usage
    (OpenAI-wire `stream_options.include_usage`) ended without it; `Response.usage` is None.
    ModelDeprecationWarning (a UserWarning): the model is deprecated or has a retirement date.
    CacheWarning, TelemetryWarning (UserWarnings): the response cache or the telemetry store
    cannot be used; given once, the calls go on.

Every error carries `.provider .model .status_code .message .retry_after` (seconds) and, when
it translates another exception, that exception as `__cause__`. `classify()` picks the class by
HTTP status first, then by the provider's error type/code, and only then by message text.
"""

from __future__ import annotations

import json
import re
from datetime import date
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Self

from llmclient.retry_after import retry_after_from


class LLMError(Exception):
    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        self.status_code = status_code
        self.retry_after = retry_after
        self.error_type = error_type
        self.error_code: str | None = None  # the provider's own `code` ("invalid_value"), when its body gave one
        self.history: tuple[Any, ...] = ()  # RetryRecords: every failed attempt of the call, this one last

    def without(self, secrets: Iterable[str]) -> Self:
        """This error with each of `secrets` (the key a call sent, which a provider may echo)
        masked in its message, in every form the cassette scrubber knows (base64 of "user:key",
        escaped, key formats), and a key's start where a long body was cut ("...") inside it:
        messages end up in logs, tracebacks and telemetry."""
        from llmclient.scrub import mask_with

        keys = frozenset(secret for secret in secrets if secret)
        message = mask_with(keys, self.message)
        if message.endswith("..."):  # `excerpt` cut the body, maybe inside a key: its start is masked
            head = message[:-3]
            for key in keys:
                cut = next((n for n in range(min(len(key) - 1, len(head)), 5, -1) if head.endswith(key[:n])), 0)
                if cut:
                    head = head[:-cut] + "REDACTED"
            message = head + "..."
        if message != self.message:
            self.message = message
            self.args = (message,)
        return self

    def __str__(self) -> str:
        where = "/".join(part for part in (self.provider, self.model) if part)
        status = f" (HTTP {self.status_code})" if self.status_code is not None else ""
        return f"{where}{status}: {self.message}" if where or status else self.message


class ConfigurationError(LLMError):
    pass


class UnsupportedCapabilityError(LLMError):
    pass


class SchemaValidationError(LLMError):
    """No attempt produced a valid value; `.attempts` holds each one's response, raw text and error."""

    def __init__(self, message: str, *, attempts: Sequence[Any] = (), **context: Any) -> None:
        super().__init__(message, **context)
        self.attempts = tuple(attempts)


class ReplayMismatchError(LLMError):
    pass


class APIError(LLMError):
    pass


class AuthenticationError(APIError):
    pass


class NotFoundError(APIError):
    pass


class ModelRetiredError(NotFoundError):
    """The model catalogue gives a retirement date that has passed: the provider no longer serves
    it, so nothing was sent. `retired_on` is that date; the message names the replacement."""

    def __init__(self, message: str, *, retired_on: date, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.retired_on = retired_on


class BadRequestError(APIError):
    pass


class ContextWindowExceededError(BadRequestError):
    pass


class ContentFilterError(BadRequestError):
    pass


class InvalidRequestError(BadRequestError, ValueError):
    """The arguments are invalid; raised by llmclient itself before anything is sent."""


class ModelLimitError(InvalidRequestError):
    """The call asks more than this model allows (`max_tokens` above its output limit), by the
    model catalogue, before any request: a fallback model with a higher limit may take it."""


class RateLimitError(APIError):
    pass


class ServerError(APIError):
    pass


class OverloadedError(ServerError):
    pass


class RequestTimeoutError(APIError):
    pass


class APIConnectionError(APIError):
    pass


class MalformedResponseError(APIError):
    pass


class BatchError(APIError):
    """A batch item that got no answer of its own (`llmclient.batches`): `reason` is "expired" (the
    provider's window ended first), "canceled", "failed" (its provider batch failed as a whole),
    "unsubmitted" (refused before the provider could create a batch), "unconfirmed" (the create
    request got no readable answer and no batch of ours was found: it may exist and be billed; the
    message says where to look) or "unfinished" (results asked for, without waiting, before the
    batch ended); `batch_id` names the provider batch when there is one."""

    def __init__(self, message: str, *, reason: str, batch_id: str | None = None, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.reason = reason
        self.batch_id = batch_id


class UsageMissingWarning(UserWarning):
    """A stream that asked for its usage ended without it: the answer is whole, but its
    `Response.usage` is None (unknown, never a guessed 0)."""


class ModelDeprecationWarning(UserWarning):
    """The model is deprecated or will be retired (the date and the replacement in the message):
    given once per model and process; the call goes on."""


class CacheWarning(UserWarning):
    """The response cache cannot be used (a directory that cannot be written, a file that is not a
    cache): given once per cache; the calls go on, uncached."""


class TelemetryWarning(UserWarning):
    """The telemetry store could not keep records (a directory that cannot be written, a writer that
    cannot keep up, a setting that makes no sense): given once; the calls themselves go on."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    408: RequestTimeoutError,
    413: BadRequestError,
    422: BadRequestError,
    429: RateLimitError,
    529: OverloadedError,
}

# Provider error types/codes (OpenAI-compatible `error.type`/`error.code`, Anthropic `error.type`,
# Gemini `error.status`), used to refine the status class or when there is no status (an error
# event inside a 200 stream).
_BY_TYPE: dict[str, type[APIError]] = {
    "context_length_exceeded": ContextWindowExceededError,
    "string_above_max_length": ContextWindowExceededError,
    "content_filter": ContentFilterError,
    "content_policy_violation": ContentFilterError,
    "invalid_request_error": BadRequestError,
    "invalid_argument": BadRequestError,
    "failed_precondition": BadRequestError,
    "request_too_large": BadRequestError,
    "tool_use_failed": BadRequestError,
    "authentication_error": AuthenticationError,
    "permission_error": AuthenticationError,
    "invalid_api_key": AuthenticationError,
    "unauthenticated": AuthenticationError,
    "permission_denied": AuthenticationError,
    "not_found_error": NotFoundError,
    "model_not_found": NotFoundError,
    "not_found": NotFoundError,
    "rate_limit_error": RateLimitError,
    "rate_limit_exceeded": RateLimitError,
    "insufficient_quota": RateLimitError,
    "resource_exhausted": RateLimitError,
    "overloaded_error": OverloadedError,
    "api_error": ServerError,
    "internal_server_error": ServerError,
    "server_error": ServerError,
    "internal": ServerError,
    "unavailable": ServerError,
    "deadline_exceeded": RequestTimeoutError,
    "timeout": RequestTimeoutError,
}

_CONTEXT_WINDOW_TEXT = re.compile(
    r"context[ _-]?(length|window)|maximum context|prompt is too long|too many (input )?tokens"
    r"|exceeds the maximum number of tokens|input token count .* exceeds|reduce the length of the messages",
    re.IGNORECASE,
)
_CONTENT_FILTER_TEXT = re.compile(r"content (management |safety )?polic|content[ _]filter|flagged", re.IGNORECASE)


def classify(
    status: int | None,
    payload: Any,
    *,
    headers: Mapping[str, str] | None = None,
    provider: str | None = None,
    model: str | None = None,
    body_text: str = "",
) -> APIError:
    """The typed error for a provider's error response (or an error event inside a stream); an
    error object of a shape none of the readers knows is classified by its status alone."""
    try:
        return _classified(status, payload, headers, provider, model, body_text)
    except (LookupError, TypeError, AttributeError, ValueError, RecursionError):
        if payload is None:
            raise
        return _classified(status, None, headers, provider, model, body_text)


def _classified(status: int | None, payload: Any, headers: Mapping[str, str] | None, provider: str | None,
                model: str | None, body_text: str) -> APIError:
    error_type, message, code = _type_code_and_message(payload)
    if not message:
        message = excerpt(body_text) or f"HTTP {status} with no error message"
    # An error event inside a 200 stream may carry the HTTP status it stands for as a numeric
    # code: classify by it, but `status_code` stays the real (absent) HTTP status.
    cls = _class_for(status if status is not None else _embedded_status(payload), error_type, message)
    if _rejected_key(payload):
        cls = AuthenticationError  # Gemini answers a bad key with 400 INVALID_ARGUMENT + reason API_KEY_INVALID
    error = cls(
        message,
        provider=provider,
        model=model,
        status_code=status,
        retry_after=retry_after_from(headers or {}, payload, message),
        error_type=error_type,
    )
    error.error_code = code
    return error


_KEY_REJECTED_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED"})


def _rejected_key(payload: Any) -> bool:
    """Google's ErrorInfo `reason` says the key itself was refused, whatever the HTTP status."""
    if isinstance(payload, list) and payload:
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return isinstance(details, list) and any(isinstance(d, dict) and d.get("reason") in _KEY_REJECTED_REASONS
                                             for d in details)


def _embedded_status(payload: Any) -> int | None:
    """`error.code` (Gemini, OpenRouter), a top-level `code` (vLLM `{"object": "error"}`) or
    `status_code` (Cerebras) that is an HTTP status."""
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    nested = error if isinstance(error, dict) else {}
    candidates = [nested.get("code"), nested.get("status_code"), payload.get("code"), payload.get("status_code")]
    for code in candidates:
        if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600:
            return code
    return None


def _class_for(status: int | None, error_type: str | None, message: str) -> type[APIError]:
    by_status = _BY_STATUS.get(status) if status is not None else None
    if by_status is None and status is not None and 500 <= status < 600:
        by_status = ServerError
    by_type = _BY_TYPE.get(error_type.lower()) if error_type else None
    cls: type[APIError]
    if by_status is None:
        cls = by_type or (BadRequestError if status is not None and 400 <= status < 500 else APIError)
    elif by_type is not None and issubclass(by_type, by_status):
        cls = by_type  # the type refines the status class (400 + context_length_exceeded)
    else:
        cls = by_status
    if cls is BadRequestError and _CONTEXT_WINDOW_TEXT.search(message):
        return ContextWindowExceededError
    if cls is BadRequestError and _CONTENT_FILTER_TEXT.search(message):
        return ContentFilterError
    return cls


def _type_code_and_message(payload: Any) -> tuple[str | None, str, str | None]:
    """(type or code, message, the provider's own code) from the error bodies of every wire format
    we know. The first prefers a type llmclient knows; the last is the body's `code` as written."""
    if isinstance(payload, list) and payload:  # Gemini sometimes wraps the error in a list
        payload = payload[0]
    if not isinstance(payload, dict):
        return None, "", None
    err = payload.get("error", payload)
    if isinstance(err, str):
        return _text(payload.get("type")), err, None
    if not isinstance(err, dict):
        return None, "", None
    message = err.get("message") or payload.get("message") or payload.get("detail") or ""
    if not isinstance(message, str):
        message = json.dumps(message)
    metadata = err.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("raw"), str):
        # OpenRouter says "Provider returned error" and puts the upstream's words in metadata.raw.
        message = f"{message}: {excerpt(metadata['raw'])}" if message else excerpt(metadata["raw"])
    # A specific code ("context_length_exceeded") says more than a generic type ("invalid_request_error").
    code = err.get("code")
    candidates = [code if isinstance(code, str) else None, _text(err.get("type")), _text(err.get("status"))]
    known = [c for c in candidates if c and c.lower() in _BY_TYPE]
    chosen = known[0] if known else next((c for c in candidates if c), None)
    return chosen, message, candidates[0] or None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def excerpt(text: str | bytes, limit: int = 200) -> str:
    """A short, single-line excerpt of a body for error messages."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


def transport_error(exc: BaseException, where: str, *, provider: str, model: str,
                    content_encoding: str | None = None) -> APIError:
    """Our error for an httpx exception (no HTTP response, or the body broke off). A body that
    is not in the Content-Encoding it declares is a MalformedResponseError naming the encoding."""
    import httpx

    # httpx's decoders raise DecodingError; aiohttp's failure reads "Can not decode content-encoding: gzip".
    undecodable = _UNDECODABLE.search(str(exc))
    if isinstance(exc, httpx.DecodingError) or undecodable:
        encoding = content_encoding or (undecodable.group(1) if undecodable else _decoder_encoding(exc))
        named = f"Content-Encoding {encoding!r}" if encoding else "its Content-Encoding"
        return MalformedResponseError(f"{where}: the body is not valid {named} ({excerpt(str(exc))})",
                                      provider=provider, model=model)
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeoutError(f"{where} timed out ({type(exc).__name__})", provider=provider, model=model)
    return APIConnectionError(f"{where} failed: {str(exc) or type(exc).__name__}", provider=provider, model=model)


_UNDECODABLE = re.compile(r"decode content-encoding:?\s*([\w-]+)", re.IGNORECASE)
_DECODERS = {"GZipDecoder": "gzip", "DeflateDecoder": "deflate", "BrotliDecoder": "br", "ZStandardDecoder": "zstd"}


def _decoder_encoding(exc: BaseException) -> str | None:
    """The encoding whose httpx decoder raised `exc` (the frame that raised it says which)."""
    trace = exc.__traceback__
    while trace is not None:
        name = type(trace.tb_frame.f_locals.get("self")).__name__
        if name in _DECODERS:
            return _DECODERS[name]
        trace = trace.tb_next
    return None
