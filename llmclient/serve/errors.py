"""llmclient's typed errors as OpenAI-shaped error answers: `{"error": {"message", "type", "param",
"code"}}` with the matching HTTP status.

    error                                   status  type                    code
    BadBody (our parsing of the body)       400*    invalid_request_error   (given)
    AuthenticationError                     401**   authentication_error    invalid_api_key
    NotFoundError, ModelRetiredError        404     invalid_request_error   model_not_found
    ConfigurationError at model resolution  404     invalid_request_error   model_not_found
    ReplayMismatchError                     404     invalid_request_error   no_recorded_interaction
    ContextWindowExceededError              400     invalid_request_error   context_length_exceeded
    ContentFilterError                      400     invalid_request_error   content_filter
    BadRequestError, InvalidRequestError,
      UnsupportedCapabilityError,
      SchemaValidationError                 400     invalid_request_error   (the provider's, if any)
    RateLimitError                          429     rate_limit_error        rate_limit_exceeded (+ Retry-After)
    RequestTimeoutError                     504     timeout                 upstream_timeout
    ServerError, OverloadedError,
      APIConnectionError,
      MalformedResponseError, APIError      502     upstream_error          (the class name, snake_case)
    ConfigurationError during a call        500     server_error            configuration_error
    anything else                           500     server_error            internal_error (no details)

    * 413 for a body over the limit.  ** 403 when the provider said 403.

Every message has the providers' keys and the server key masked (`LLMError.without`).
"""

from __future__ import annotations

import logging
import math
import os
import re
from typing import Any

from llmclient import errors as e
from llmclient.serve.openai_in import BadBody

log = logging.getLogger("llmclient.serve")

Answer = tuple[int, dict[str, Any], dict[str, str]]


def body(message: str, kind: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def answer(exc: BaseException, secrets: list[str], *, resolving: bool = False) -> Answer:
    """(status, body, headers) for `exc`; `resolving`: raised while the model name was resolved."""
    if isinstance(exc, BadBody):
        kind = "invalid_request_error"
        return exc.status, body(_masked(exc.message, secrets), kind, exc.param, exc.code), {}
    if not isinstance(exc, e.LLMError):
        log.exception("llmclient serve: unexpected error")
        return 500, body(f"internal error ({type(exc).__name__})", "server_error", code="internal_error"), {}
    exc = exc.without(secrets)
    message = str(exc)
    invalid = "invalid_request_error"
    if isinstance(exc, e.ConfigurationError):
        if resolving:
            return 404, body(message, invalid, "model", "model_not_found"), {}
        return 500, body(message, "server_error", code="configuration_error"), {}
    if isinstance(exc, e.ReplayMismatchError):
        return 404, body(message, invalid, code="no_recorded_interaction"), {}
    if isinstance(exc, e.AuthenticationError):
        return (403 if exc.status_code == 403 else 401), body(message, "authentication_error", code="invalid_api_key"), {}
    if isinstance(exc, e.NotFoundError):
        return 404, body(message, invalid, "model", "model_not_found"), {}
    if isinstance(exc, e.ContextWindowExceededError):
        return 400, body(message, invalid, "messages", "context_length_exceeded"), {}
    if isinstance(exc, e.ContentFilterError):
        return 400, body(message, invalid, code="content_filter"), {}
    if isinstance(exc, (e.BadRequestError, e.UnsupportedCapabilityError, e.SchemaValidationError)):
        return 400, body(message, invalid, code=exc.error_code or exc.error_type), {}
    if isinstance(exc, e.RateLimitError):
        headers = {"retry-after": str(max(0, math.ceil(exc.retry_after)))} if exc.retry_after is not None else {}
        return 429, body(message, "rate_limit_error", code="rate_limit_exceeded"), headers
    if isinstance(exc, e.RequestTimeoutError):
        return 504, body(message, "timeout", code="upstream_timeout"), {}
    if isinstance(exc, e.APIError):
        return 502, body(message, "upstream_error", code=_snake(type(exc).__name__)), {}
    return 500, body(message, "server_error", code=_snake(type(exc).__name__)), {}


def secrets(server_key: str | None) -> list[str]:
    """Every key that must not appear in an answer: the server's and each provider's in the env."""
    from llmclient.config import get_config
    from llmclient.providers import REGISTRY

    names = {spec.api_key_env for spec in REGISTRY.values() if spec.api_key_env}
    try:
        names |= {settings.api_key_env for settings in get_config().providers.values() if settings.api_key_env}
    except e.LLMError:
        pass
    found = [os.environ.get(name, "") for name in names]
    return [key for key in [server_key or "", *found] if len(key) >= 8]


def _masked(message: str, keys: list[str]) -> str:
    for key in keys:
        message = message.replace(key, "REDACTED")
    return message


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name.removesuffix("Error")).lower() + "_error"
