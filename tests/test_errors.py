"""llmclient.errors: the hierarchy, classify() (status, then type/code, then text), retry_after,
excerpt() and transport_error(). Bodies are the providers' documented/recorded error shapes."""

from __future__ import annotations

import time
from email.utils import formatdate

import httpx
import pytest

from llmclient import errors as e
from llmclient.assemble import Assembler
from llmclient.errors import classify, excerpt, retry_after_from, transport_error
from llmclient.providers import REGISTRY

# DESIGN §2: each class and the class it must be an instance of.
HIERARCHY = [
    (e.ConfigurationError, e.LLMError),
    (e.UnsupportedCapabilityError, e.LLMError),
    (e.SchemaValidationError, e.LLMError),
    (e.APIError, e.LLMError),
    (e.AuthenticationError, e.APIError),
    (e.NotFoundError, e.APIError),
    (e.BadRequestError, e.APIError),
    (e.ContextWindowExceededError, e.BadRequestError),
    (e.ContentFilterError, e.BadRequestError),
    (e.RateLimitError, e.APIError),
    (e.ServerError, e.APIError),
    (e.OverloadedError, e.ServerError),
    (e.RequestTimeoutError, e.APIError),
    (e.APIConnectionError, e.APIError),
    (e.MalformedResponseError, e.APIError),
]


@pytest.mark.parametrize(("child", "parent"), HIERARCHY, ids=lambda c: c.__name__)
def test_hierarchy(child: type, parent: type) -> None:
    assert isinstance(child("x"), parent)


@pytest.mark.parametrize(
    ("cls", "not_a"),
    [
        (e.OverloadedError, e.RateLimitError),
        (e.RateLimitError, e.ServerError),
        (e.ContextWindowExceededError, e.ContentFilterError),
        (e.ConfigurationError, e.APIError),
        (e.RequestTimeoutError, e.ServerError),
    ],
    ids=lambda c: c.__name__,
)
def test_hierarchy_siblings_are_distinct(cls: type, not_a: type) -> None:
    assert not isinstance(cls("x"), not_a)


OPENAI_CONTEXT = {"error": {
    "message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 tokens.",
    "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}
GEMINI_429 = {"error": {
    "code": 429, "status": "RESOURCE_EXHAUSTED",
    "message": "You exceeded your current quota. Please retry in 33.862123174s.",
    "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": "GenerateRequestsPerMinute"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "33s"},
    ]}}
MISTRAL_422 = {"object": "error", "message": {"detail": [{"type": "missing", "msg": "Field required"}]},
               "type": "invalid_request_message_error", "param": None, "code": None}


def anthropic(kind: str, message: str) -> dict:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011CdufXo8Y2"}


def gemini(code: int, status: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "status": status}}


CLASSIFY = [
    # by status
    ("openai-401", 401, {"error": {"message": "Incorrect API key provided: sk-proj-****ABCD.", "type": "invalid_request_error",
                                   "param": None, "code": "invalid_api_key"}}, e.AuthenticationError),
    ("anthropic-401", 401, anthropic("authentication_error", "invalid x-api-key"), e.AuthenticationError),
    ("openai-403", 403, {"error": {"message": "Country, region, or territory not supported", "type": "request_forbidden",
                                   "param": None, "code": "unsupported_country_region_territory"}}, e.AuthenticationError),
    ("gemini-403", 403, gemini(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."), e.AuthenticationError),
    ("anthropic-404", 404, anthropic("not_found_error", "model: claude-sonet-4-5"), e.NotFoundError),
    ("gemini-404", 404, gemini(404, "NOT_FOUND", "models/gemini-3.6-flahs is not found for API version v1beta"), e.NotFoundError),
    ("openai-400", 400, {"error": {"message": "Unsupported value: 'messages[0].role' does not support 'developer' with this model.",
                                   "type": "invalid_request_error", "param": "messages[0].role", "code": "unsupported_value"}},
     e.BadRequestError),
    ("mistral-422", 422, MISTRAL_422, e.BadRequestError),
    ("anthropic-413", 413, anthropic("request_too_large", "Request exceeds the maximum allowed number of bytes."), e.BadRequestError),
    ("unknown-4xx", 409, {"error": {"message": "conflict"}}, e.BadRequestError),
    ("anthropic-429", 429, anthropic("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
     e.RateLimitError),
    ("openai-500", 500, {"error": {"message": "The server had an error while processing your request. Sorry about that!",
                                   "type": "server_error", "param": None, "code": None}}, e.ServerError),
    ("gemini-503", 503, gemini(503, "UNAVAILABLE", "The model is overloaded. Please try again later."), e.ServerError),
    ("anthropic-529", 529, anthropic("overloaded_error", "Overloaded"), e.OverloadedError),
    ("529-without-type", 529, {"error": {"message": "Overloaded"}}, e.OverloadedError),
    ("408", 408, {"error": {"message": "Request timed out", "code": 408}}, e.RequestTimeoutError),
    ("gemini-504", 504, gemini(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."), e.ServerError),
    # the status wins over a type/code pointing elsewhere
    ("groq-404-invalid-request", 404, {"error": {"message": "The model `llama-3.3-70b-versatlie` does not exist",
                                                 "type": "invalid_request_error"}}, e.NotFoundError),
    ("429-context-text", 429, {"error": {"message": "too many tokens per minute: context length"}}, e.RateLimitError),
    # then the provider's type/code refines the status class
    ("openai-context-code", 400, OPENAI_CONTEXT, e.ContextWindowExceededError),
    ("azure-content-filter-code", 400, {"error": {"code": "content_filter", "status": 400, "param": "prompt",
                                                  "message": "The response was filtered due to the prompt triggering a policy."}},
     e.ContentFilterError),
    ("anthropic-500-overloaded-type", 500, anthropic("overloaded_error", "Overloaded"), e.OverloadedError),
    ("gemini-429", 429, GEMINI_429, e.RateLimitError),
    # then the message text
    ("anthropic-prompt-too-long", 400, anthropic("invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum"),
     e.ContextWindowExceededError),
    ("gemini-input-token-count", 400, gemini(400, "INVALID_ARGUMENT",
                                             "The input token count (1290145) exceeds the maximum number of tokens allowed (1048576)."),
     e.ContextWindowExceededError),
    ("anthropic-content-filtering", 400, anthropic("invalid_request_error", "Output blocked by content filtering policy"),
     e.ContentFilterError),
    # no status: an error event inside a 200 stream is classified by its type alone
    ("stream-overloaded", None, anthropic("overloaded_error", "Overloaded"), e.OverloadedError),
    ("stream-gemini-quota", None, GEMINI_429, e.RateLimitError),
    ("stream-groq-tool-use-failed", None, {"error": {"message": "Tool call validation failed", "type": "invalid_request_error",
                                                     "code": "tool_use_failed", "status_code": 400}}, e.BadRequestError),
    ("stream-groq-unknown-code-known-type", None, {"error": {"message": "Failed to validate JSON", "type": "invalid_request_error",
                                                            "code": "json_validate_failed"}}, e.BadRequestError),
    ("stream-anthropic-api-error", None, anthropic("api_error", "Internal server error"), e.ServerError),
    ("stream-openai-server-error", None, {"error": {"message": "The server had an error", "type": "server_error"}}, e.ServerError),
    ("stream-unknown-type", None, {"error": {"message": "something odd", "type": "weird_error"}}, e.APIError),
]


@pytest.mark.parametrize(("status", "payload", "expected"), [c[1:] for c in CLASSIFY], ids=[c[0] for c in CLASSIFY])
def test_classify(status: int | None, payload: dict, expected: type) -> None:
    err = classify(status, payload, provider="p", model="m")
    assert type(err) is expected
    assert err.status_code == status


def test_classify_carries_attributes_and_str() -> None:
    err = classify(529, anthropic("overloaded_error", "Overloaded"), headers={"retry-after": "10"},
                   provider="anthropic", model="claude-sonnet-4-5")
    assert (err.provider, err.model, err.status_code, err.message, err.retry_after, err.error_type) == (
        "anthropic", "claude-sonnet-4-5", 529, "Overloaded", 10.0, "overloaded_error")
    assert str(err) == "anthropic/claude-sonnet-4-5 (HTTP 529): Overloaded"


def test_classify_prefers_specific_code_over_generic_type() -> None:
    err = classify(400, OPENAI_CONTEXT)
    assert err.error_type == "context_length_exceeded"
    assert err.message.startswith("This model's maximum context length is 128000 tokens.")


def test_classify_mistral_structured_message_becomes_json_text() -> None:
    err = classify(422, MISTRAL_422)
    assert err.message == '{"detail": [{"type": "missing", "msg": "Field required"}]}'


def test_classify_openrouter_upstream_words_from_metadata_raw() -> None:
    raw = "google/gemini-2.0-flash-exp:free is temporarily rate-limited upstream. Please retry shortly."
    payload = {"error": {"code": 429, "message": "Provider returned error",
                         "metadata": {"provider_name": "Google", "raw": raw}}, "user_id": "user_2wT5"}
    err = classify(429, payload, provider="openrouter")
    assert type(err) is e.RateLimitError
    assert err.message == "Provider returned error: " + raw
    assert err.retry_after is None  # "retry shortly" names no delay


def test_classify_gemini_error_wrapped_in_a_list() -> None:
    err = classify(429, [GEMINI_429])
    assert type(err) is e.RateLimitError
    assert err.message == "You exceeded your current quota. Please retry in 33.862123174s."
    assert err.error_type == "RESOURCE_EXHAUSTED"
    assert err.retry_after == 33.0


@pytest.mark.parametrize(
    ("status", "body_text", "expected_cls", "expected_message"),
    [
        (502, "<html>\n<head><title>502 Bad Gateway</title></head>\n</html>", e.ServerError,
         "<html> <head><title>502 Bad Gateway</title></head> </html>"),
        (500, "", e.ServerError, "HTTP 500 with no error message"),
        (401, "Unauthorized", e.AuthenticationError, "Unauthorized"),
    ],
)
def test_classify_non_json_body_uses_an_excerpt(status: int, body_text: str, expected_cls: type, expected_message: str) -> None:
    err = classify(status, None, body_text=body_text)
    assert type(err) is expected_cls
    assert err.message == expected_message


def test_assembler_http_error_reads_status_headers_and_bytes() -> None:
    assembler = Assembler(REGISTRY["anthropic"], "claude-sonnet-4-5")
    body = b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'
    err = assembler.http_error(529, httpx.Headers({"Retry-After": "10"}), body)
    assert type(err) is e.OverloadedError
    assert (err.provider, err.model, err.status_code, err.retry_after) == ("anthropic", "claude-sonnet-4-5", 529, 10.0)


RETRY_AFTER = [
    ("seconds", {"Retry-After": "30"}, None, "", 30.0),
    ("fractional-seconds", {"retry-after": "1.5"}, None, "", 1.5),
    ("ms-wins-over-seconds", {"retry-after-ms": "1500", "retry-after": "30"}, None, "", 1.5),
    ("bad-ms-falls-back", {"retry-after-ms": "soon", "retry-after": "7"}, None, "", 7.0),
    ("negative-is-no-delay-seconds", {"Retry-After": "-3"}, None, "", None),  # RFC 9110 §10.2.3: 1*DIGIT
    ("unparseable-header", {"Retry-After": "whenever"}, None, "", None),
    ("gemini-retry-info", {}, GEMINI_429, GEMINI_429["error"]["message"], 33.0),
    ("gemini-fractional-delay", {}, {"error": {"details": [{"retryDelay": "0.5s"}]}}, "", 0.5),
    ("header-wins-over-body", {"retry-after": "4"}, GEMINI_429, "", 4.0),
    ("openrouter-metadata", {}, {"error": {"code": 429, "message": "Rate limit exceeded", "metadata": {"retry_after": 12}}}, "", 12.0),
    ("text-minutes-seconds", {}, None, "Rate limit reached for gpt-4o. Please try again in 1m2.5s. Visit ...", 62.5),
    ("text-seconds", {}, None, "Please try again in 6.5s.", 6.5),
    ("text-milliseconds", {}, None, "Please try again in 20ms.", 0.02),
    ("text-hours-minutes", {}, None, "Limit reached; try again in 1h30m.", 5400.0),
    ("text-minutes-only", {}, None, "try again in 2m", 120.0),
    ("text-retry-in", {}, None, "Please retry in 56.61s.", 56.61),
    ("text-no-number", {}, None, "Please try again later.", None),
    ("nothing", {}, None, "", None),
]


@pytest.mark.parametrize(("headers", "payload", "message", "expected"), [c[1:] for c in RETRY_AFTER], ids=[c[0] for c in RETRY_AFTER])
def test_retry_after_from(headers: dict, payload: object, message: str, expected: float | None) -> None:
    got = retry_after_from(headers, payload, message)
    assert got == (None if expected is None else pytest.approx(expected))


def test_retry_after_http_date_in_the_future() -> None:
    date = formatdate(time.time() + 120, usegmt=True)  # whole seconds: 119 < wait <= 120
    assert 118.0 <= retry_after_from({"Retry-After": date}) <= 120.5


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    assert retry_after_from({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0


def test_classify_parses_retry_after_for_rate_limits() -> None:
    message = "Rate limit reached for gpt-4o on tokens per min (TPM). Please try again in 1.4s."
    err = classify(429, {"error": {"message": message, "type": "tokens", "code": "rate_limit_exceeded"}})
    assert type(err) is e.RateLimitError
    assert err.retry_after == pytest.approx(1.4)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("  a\n\tb   c \r\n", 200, "a b c"),
        ("x" * 200, 200, "x" * 200),
        ("x" * 201, 200, "x" * 200 + "..."),
        ("abcdef", 3, "abc..."),
        (b"caf\xc3\xa9 \xff", 200, "caf\u00e9 \ufffd"),
    ],
)
def test_excerpt(text: str | bytes, limit: int, expected: str) -> None:
    assert excerpt(text, limit) == expected


def test_transport_error_timeout() -> None:
    err = transport_error(httpx.ReadTimeout("The read operation timed out"), "POST https://api.openai.com/v1/chat/completions",
                          provider="openai", model="gpt-4o-mini")
    assert type(err) is e.RequestTimeoutError
    assert err.message == "POST https://api.openai.com/v1/chat/completions timed out (ReadTimeout)"
    assert (err.provider, err.model, err.status_code) == ("openai", "gpt-4o-mini", None)


def test_transport_error_connection() -> None:
    err = transport_error(httpx.ConnectError("[Errno 111] Connection refused"), "POST https://api.groq.com/openai/v1/chat/completions",
                          provider="groq", model="llama-3.1-8b-instant")
    assert type(err) is e.APIConnectionError
    assert err.message == "POST https://api.groq.com/openai/v1/chat/completions failed: [Errno 111] Connection refused"


def test_transport_error_without_a_message_names_the_exception() -> None:
    err = transport_error(httpx.RemoteProtocolError(""), "reading the stream", provider="openai", model="gpt-4o")
    assert err.message == "reading the stream failed: RemoteProtocolError"


def test_numeric_code_in_a_stream_error_event_gives_the_status() -> None:
    # OpenRouter/vLLM put the HTTP status in error.code of an error chunk inside a 200 stream.
    err = classify(None, {"error": {"code": 429, "message": "Rate limit exceeded: free-models-per-min."}}, provider="openrouter")
    assert (type(err).__name__, err.status_code) == ("RateLimitError", None)  # classified by it, not an HTTP status


@pytest.mark.parametrize(("headers", "seconds"), [
    # Cerebras: no Retry-After; the exhausted per-minute token bucket resets in 23.047 s, the daily one has room.
    ({"x-ratelimit-remaining-tokens-minute": "0", "x-ratelimit-reset-tokens-minute": "23.04719114303589",
      "x-ratelimit-remaining-requests-day": "14398", "x-ratelimit-reset-requests-day": "41856.2"}, 23.04719114303589),
    ({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1m2.5s"}, 62.5),  # OpenAI/Groq duration
    ({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "250ms"}, 0.25),
    ({"x-ratelimit-remaining-tokens": "12", "x-ratelimit-reset-tokens": "7s"}, None),  # not exhausted: no wait
    ({"retry-after": "3", "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "7s"}, 3.0),  # Retry-After wins
])
def test_retry_after_from_the_exhausted_rate_limit_bucket(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after_from(headers) == seconds


def test_top_level_status_code_of_a_stream_error_chunk_classifies_it() -> None:
    chunk = {"error": {"message": "Too many tokens", "type": "too_many_requests_error"}, "status_code": 429}
    err = classify(None, chunk, provider="cerebras")
    assert (type(err).__name__, err.status_code) == ("RateLimitError", None)


def test_gemini_rejected_key_is_an_authentication_error_despite_its_400() -> None:
    body = {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
                      "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                                   "domain": "googleapis.com"}]}}
    err = classify(400, body, provider="gemini")
    assert (type(err).__name__, err.status_code) == ("AuthenticationError", 400)


def test_groq_stream_error_status_code_inside_the_error_object() -> None:
    event = {"error": {"message": "Service Unavailable", "type": "internal_server_error", "status_code": 503}}
    assert type(classify(None, event, provider="groq")).__name__ == "ServerError"
    event = {"error": {"message": "slow down", "type": "unknown_kind", "status_code": 429}}
    assert type(classify(None, event, provider="groq")).__name__ == "RateLimitError"


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Tokyo"])
def test_retry_after_in_asctime_form_is_gmt_in_any_local_zone(zone: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # RFC 9110 §5.6.7: a recipient accepts the asctime form too, and every HTTP-date is GMT.
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        asctime = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(time.time() + 120))
        assert 118.0 <= retry_after_from({"Retry-After": asctime}) <= 120.5
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_negative_retry_after_says_nothing() -> None:
    assert retry_after_from({"Retry-After": "-5"}) is None  # delay-seconds is 1*DIGIT (RFC 9110 §10.2.3)


def test_anthropics_exhausted_bucket_reset_is_read() -> None:
    # docs.anthropic.com/en/api/rate-limits: anthropic-ratelimit-<bucket>-remaining / -reset (RFC 3339).
    reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 20))
    headers = {"anthropic-ratelimit-tokens-remaining": "0", "anthropic-ratelimit-tokens-reset": reset,
               "anthropic-ratelimit-requests-remaining": "49",
               "anthropic-ratelimit-requests-reset": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 50))}
    assert 18.0 <= retry_after_from(headers) <= 20.5  # the exhausted bucket's, not the one with room left
