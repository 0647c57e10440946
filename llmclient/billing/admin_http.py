"""What the admin clients share: the admin key from its variable, one GET classified by the
library's error machinery (`llmclient.errors.classify`, `transport_error`), and every page of a
cursor-paginated report (`has_more` / `next_page`, followed to the end).

Errors: no admin key -> ConfigurationError naming the variable (before any request); 401/403 ->
AuthenticationError saying that an admin key is needed and which variable holds it; 429 ->
RateLimitError with `retry_after`; 5xx -> ServerError; a body that is not the report's JSON ->
MalformedResponseError; a redirect is never followed (the key would go with it). The key is never
in a message: the provider's words are masked for it (`LLMError.without`) and for anything
key-shaped (`llmclient.scrub.mask_secrets`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import ValidationError

from llmclient import cassettes, envfile
from llmclient.cassette_match import replay_mismatch
from llmclient.errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    LLMError,
    MalformedResponseError,
    classify,
    excerpt,
    transport_error,
)
from llmclient.scrub import mask_secrets

if TYPE_CHECKING:
    import httpx

MAX_PAGES = 10_000  # a report that keeps saying has_more past this is not one we can finish
DEFAULT_TIMEOUT = 60.0


def utc(value: date | datetime, name: str) -> datetime:
    """A day (its midnight, UTC) or an aware datetime as a UTC datetime; a naive one is refused."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidRequestError(f"{name}={value.isoformat()} has no time zone: give an aware datetime "
                                      f"(e.g. tzinfo=timezone.utc) or a date")
        return value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    raise InvalidRequestError(f"{name} must be a date or a datetime, got {type(value).__name__}")


def time_range(start: date | datetime, end: date | datetime) -> tuple[datetime, datetime] | None:
    """[start, end) in UTC; None when it is empty (start == end); refused when it ends before it starts."""
    first, stop = utc(start, "start"), utc(end, "end")
    if stop < first:
        raise InvalidRequestError(f"the range ends ({stop.isoformat()}) before it starts ({first.isoformat()})")
    return None if stop == first else (first, stop)


def checked(values: Sequence[str], allowed: Sequence[str], name: str) -> list[str]:
    """`values` (a single string counts as one value), each one of `allowed`."""
    chosen = strings(values)
    wrong = [value for value in chosen if value not in allowed]
    if wrong:
        raise InvalidRequestError(f"{name}: {', '.join(map(repr, wrong))} not supported; choose from "
                                  f"{', '.join(allowed)}")
    return chosen


def parse_time(value: Any, what: str, provider: str) -> datetime:
    """A bucket boundary: unix seconds (OpenAI) or RFC 3339 (Anthropic), as UTC."""
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, timezone.utc)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is not None:
                return parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError, OSError):
        pass
    raise MalformedResponseError(f"{what}: {value!r} is not a time", provider=provider)


def strings(values: Sequence[str]) -> list[str]:
    """`values` as a list; a single string is one value, not its characters."""
    return [values] if isinstance(values, str) else list(values)


def positive(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidRequestError(f"limit must be a whole number of 1 or more, got {limit!r}")
    return limit


def text(row: dict[str, Any], name: str) -> str | None:
    value = row.get(name)
    return value if isinstance(value, str) and value else None


def count(row: dict[str, Any], name: str, provider: str) -> int:
    """A token count (0 when absent or null)."""
    value = row.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedResponseError(f"{name} is not a token count: {value!r:.80}", provider=provider)
    return value


Result = tuple[datetime, datetime, dict[str, Any]]
Built = TypeVar("Built")


def built(make: Callable[[datetime, datetime, dict[str, Any]], Built], found: list[Result], provider: str,
          ) -> list[Built]:
    """`make` applied to every result; a result our types refuse is a MalformedResponseError."""
    try:
        return [make(*result) for result in found]
    except ValidationError as exc:
        raise MalformedResponseError(f"a report result we cannot read: {excerpt(str(exc))}", provider=provider) from exc


class AdminAPI:
    """An organisation admin API: subclasses say where it is, which variable holds its key, how the
    key is sent and how a time range is asked for.

    `usage(date(2026, 3, 1), date(2026, 3, 8))` is the 7 UTC days from 1 March, by model: `start`
    is inclusive and `end` exclusive; a `date` is its midnight UTC, a datetime must be aware. Every
    page is fetched; an empty range (start == end) is an empty list, without a request."""

    provider: ClassVar[str]
    key_env: ClassVar[str]
    default_base_url: ClassVar[str]
    label: ClassVar[str]  # "OpenAI's organization usage and cost reports"
    key_shape: ClassVar[str]  # how an admin key begins: "sk-admin-..."
    start_key: ClassVar[str]  # the query parameter, and the bucket field, of a range's start
    end_key: ClassVar[str]

    def __init__(self, api_key: str | None = None, *, base_url: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self._api_key = api_key
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def key(self) -> str:
        """The admin key: given, else from the variable; in a cassette replay a placeholder."""
        key = (self._api_key or envfile.getenv(self.key_env) or "").strip()
        if key:
            return key
        if cassettes.replaying():
            return cassettes.REPLAY_API_KEY  # nothing is sent in replay
        raise ConfigurationError(f"{self.label} need an organization admin key: set the {self.key_env} environment "
                                 f"variable to one ({self.key_shape}; an ordinary API key is refused)",
                                 provider=self.provider)

    def headers(self, key: str) -> dict[str, str]:
        from llmclient.pipeline import USER_AGENT

        return {**self.auth_headers(key), "accept": "application/json", "user-agent": USER_AGENT}

    def auth_headers(self, key: str) -> dict[str, str]:
        """How this API takes the admin key (and its version header, where it wants one)."""
        raise NotImplementedError(f"auth_headers() is not implemented by {type(self).__name__}")

    def instant(self, moment: datetime) -> str:
        """A range boundary as this API takes it in the query."""
        raise NotImplementedError(f"instant() is not implemented by {type(self).__name__}")

    def report(self, path: str, start: date | datetime, end: date | datetime, params: list[tuple[str, str]],
               limit: int | None) -> list[Result]:
        """Every result of the report at `path` for [start, end) with `params` (and `limit` buckets a page)."""
        span = time_range(start, end)
        if span is None:
            return []
        query = [(self.start_key, self.instant(span[0])), (self.end_key, self.instant(span[1])), *params]
        if limit is not None:
            query.append(("limit", str(positive(limit))))
        return self.results(path, query, self.start_key, self.end_key)

    def pages(self, path: str, params: list[tuple[str, str]]) -> Iterator[dict[str, Any]]:
        """Every page of the report at `path`, following `next_page` while `has_more`."""
        from llmclient import (
            transport,  # httpx: loaded by the first request, not by the import
        )

        key = self.key()
        cassettes.remember_key(key)  # inside a cassette block, masked wherever it would be recorded
        seen: set[str] = set()
        cursor: str | None = None
        with transport.sync_client(self.timeout) as http:
            for _ in range(MAX_PAGES):
                page = self._get(http, path, params + ([("page", cursor)] if cursor else []), key)
                yield page
                if page.get("has_more") is not True:
                    return
                cursor = page.get("next_page")
                if not isinstance(cursor, str) or not cursor or cursor in seen:
                    raise MalformedResponseError(f"{path}: has_more is true but next_page is {cursor!r} "
                                                 f"({'seen before' if cursor in seen else 'no cursor to follow'})",
                                                 provider=self.provider)
                seen.add(cursor)
        raise MalformedResponseError(f"{path}: still has_more after {MAX_PAGES} pages", provider=self.provider)

    def results(self, path: str, query: list[tuple[str, str]], start_key: str, end_key: str) -> list[Result]:
        """(bucket start, bucket end, result object) of every result of every bucket of every page."""
        found: list[Result] = []
        for page in self.pages(path, query):
            for bucket in page["data"]:
                if not isinstance(bucket, dict) or not isinstance(bucket.get("results"), list):
                    raise MalformedResponseError(f"{path}: a bucket without a `results` list: {bucket!r:.200}",
                                                 provider=self.provider)
                start = parse_time(bucket.get(start_key), f"{path}: {start_key}", self.provider)
                end = parse_time(bucket.get(end_key), f"{path}: {end_key}", self.provider)
                for result in bucket["results"]:
                    if not isinstance(result, dict):
                        raise MalformedResponseError(f"{path}: a result that is not an object: {result!r:.200}",
                                                     provider=self.provider)
                    found.append((start, end, result))
        return found

    def _get(self, http: httpx.Client, path: str, params: list[tuple[str, str]], key: str) -> dict[str, Any]:
        import httpx

        where = f"GET {self.base_url}{path}"
        try:
            answer = http.get(self.base_url + path, params=tuple(params), headers=self.headers(key))
        except LLMError:
            raise
        except Exception as exc:
            mismatch = replay_mismatch(exc, where, self.provider, "")
            if mismatch is not None:
                raise mismatch from exc
            if isinstance(exc, httpx.HTTPError):
                raise transport_error(exc, where, provider=self.provider, model="").without([key]) from exc
            raise
        if answer.status_code >= 300:
            raise self._http_error(answer, path, key)
        try:
            body = json.loads(answer.content, parse_float=Decimal)
        except ValueError as exc:
            raise MalformedResponseError(
                f"{path}: the answer (HTTP {answer.status_code}, content type "
                f"{answer.headers.get('content-type')!r}) is not JSON ({type(exc).__name__}: {excerpt(str(exc))}); "
                f"it began: {mask_secrets(excerpt(answer.content))!r}", provider=self.provider).without([key]) from exc
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise MalformedResponseError(f"{path}: the answer is not a report page (no `data` list); it began: "
                                         f"{mask_secrets(excerpt(answer.text))!r}", provider=self.provider).without([key])
        return body

    def _http_error(self, answer: httpx.Response, path: str, key: str) -> APIError:
        status = answer.status_code
        if 300 <= status < 400:
            return APIError(f"{path}: HTTP {status} redirect to {answer.headers.get('location')!r}: redirects are not "
                            f"followed (the admin key would go with them); check base_url",
                            provider=self.provider, status_code=status)
        try:
            payload: Any = json.loads(answer.content)
        except ValueError:
            payload = None
        error = classify(status, payload, headers=answer.headers, provider=self.provider, body_text=answer.text)
        said = mask_secrets(error.without([key]).message)
        if isinstance(error, AuthenticationError):
            refused = "refused the key" if status == 401 else "refused the key's permissions"
            said = (f"{self.label} {refused}: they need an organization admin key ({self.key_shape}) in "
                    f"{self.key_env}; an ordinary API key is refused. The provider said: {said}")
        else:
            said = f"{path}: {said}"
        error.message = said
        error.args = (said,)
        return error
