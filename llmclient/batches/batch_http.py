"""The HTTP of a provider's batch API, for one route: the key the route's calls use (sent the
provider's way, remembered for cassette scrubbing, never in a message), each request offered to
`llmclient.transport.interceptor` first (the test doubles) and else sent with the library's
sync httpx client (so vcrpy cassettes record and replay it), answers classified as every call's
are (`Assembler.http_error`: a redirect is refused, never followed; `transport_error`;
`replay_mismatch`), GETs retried by the route's retry policy, and result files downloaded a line
at a time into the job directory, resumed with `Range: bytes=N-` after an interruption.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from llmclient import cassettes
from llmclient.cassette_match import replay_mismatch
from llmclient.errors import (
    APIConnectionError,
    APIError,
    LLMError,
    MalformedResponseError,
    RequestTimeoutError,
    excerpt,
    transport_error,
)
from llmclient.policies import retry
from llmclient.scrub import mask_secrets

if TYPE_CHECKING:
    import httpx

    from llmclient.batches.jobstore import JobStore
    from llmclient.policies.route import Route

CALL_TIMEOUT = 120.0  # seconds for one JSON call of a batch API, unless the route sets one
READ_TIMEOUT = 120.0  # seconds between two reads of a result file being downloaded
# A request with a body (an upload, a create of up to 200-256 MB) gets at least 120 s plus 10 s per
# megabyte (a floor of 100 kB/s, slow for any link a batch is sent from), at most an hour: a
# 200 MB upload has 33 minutes whatever the chat `Client(timeout=...)` is; a longer route timeout wins.
BODY_SECONDS_PER_MB = 10.0
MAX_BODY_SECONDS = 3600.0


def body_deadline(timeout: float, size: int) -> float:
    """Seconds a request with a body of `size` bytes may take: the call timeout, or more for a big body."""
    return max(timeout, min(MAX_BODY_SECONDS, CALL_TIMEOUT + BODY_SECONDS_PER_MB * size / 1_000_000))


class _NotRetried(Exception):
    """A POST whose connection broke: it may have been carried out, so it is not sent again."""

    def __init__(self, error: LLMError) -> None:
        super().__init__(str(error))
        self.error = error


class BatchHTTP:
    """Requests to the batch API of `route`'s provider, at `route.base_url`."""

    def __init__(self, route: Route, version_headers: dict[str, str] | None = None) -> None:
        self.route = route
        self.spec = route.spec
        self.base_url = route.base_url.rstrip("/")
        self.key = route.key()
        cassettes.remember_key(self.key)  # inside a cassette block, masked wherever it would be recorded
        self.timeout = route.timeout if route.timeout is not None else CALL_TIMEOUT
        self._version_headers = dict(version_headers or {})
        self._lock = threading.Lock()
        self._http: httpx.Client | None = None

    # --- JSON calls ------------------------------------------------------------------------------

    def call(self, method: str, path: str, what: str, *, json_body: Any = None, content: bytes | None = None,
             content_type: str | None = None, creates: bool = False) -> dict[str, Any]:
        """The JSON object a call answers (`what` names the call in errors: "creating the batch").
        A POST whose answer never came is not sent again (it may have been carried out); with
        `creates` (the request that makes a billed batch), neither is one answered 5xx."""
        from llmclient import transport

        if json_body is not None:
            content, content_type = json.dumps(json_body, ensure_ascii=False, separators=(",", ":")).encode(), "application/json"
        headers = self._headers({"accept": "application/json", **({"content-type": content_type} if content_type else {})})
        url = self.url(path)
        seconds = body_deadline(self.timeout, len(content)) if content is not None else self.timeout

        def attempt() -> dict[str, Any]:
            request = self._request(method, url, headers, content)
            with transport.deadline(seconds):
                try:
                    answer = self._send(request, what)
                except (APIConnectionError, RequestTimeoutError) as error:
                    if method == "GET":
                        raise
                    raise _NotRetried(error) from error  # the POST may have been carried out
            if answer.status_code >= 300:
                refused = self.http_error(answer, what)
                if creates and answer.status_code >= 500:
                    raise _NotRetried(refused)  # the batch may have been made before the server failed
                raise refused
            try:
                body = json.loads(answer.content)
            except ValueError as exc:
                raise self._malformed(f"{what}: the answer is not JSON ({type(exc).__name__})", answer.content) from exc
            if not isinstance(body, dict):
                raise self._malformed(f"{what}: the answer is not a JSON object", answer.content)
            return body

        try:
            return retry.call(attempt, self.route.retry_policy, self.route.model, [])
        except _NotRetried as wrapped:
            raise wrapped.error from wrapped.error.__cause__

    # --- downloads -------------------------------------------------------------------------------

    def download(self, url: str, what: str, store: JobStore, name: str, lines_arrived: Callable[[int], None]) -> None:
        """The file at `url` appended to `store`'s `name` file, whole lines at a time, from the byte
        already there: `Range: bytes=N-` (a 200 answer to it has its first N bytes skipped; a 416
        means nothing is left). A connection that breaks is retried by the route's retry policy,
        from where it broke."""
        import httpx

        target = self.url(url)

        def attempt() -> None:
            offset = store.received(name)
            headers = self._headers({"accept": "application/binary", "accept-encoding": "identity"})
            if offset:
                headers["range"] = f"bytes={offset}-"
            answer = self._send(self._request("GET", target, headers, None), what, stream=True)
            try:
                if answer.status_code == 416 and offset:
                    _check_complete(answer.headers.get("content-range"), offset, what, self.spec.name)
                    return  # everything had arrived
                if answer.status_code >= 300:
                    answer.read()
                    raise self.http_error(answer, what)
                skip = offset if offset and answer.status_code != 206 else 0
                if answer.status_code == 206:
                    _check_range(answer.headers.get("content-range"), offset, what, self.spec.name)
                with store.appender(name) as out:
                    pending = b""
                    for chunk in answer.iter_bytes():
                        if skip:
                            dropped = min(skip, len(chunk))
                            chunk, skip = chunk[dropped:], skip - dropped
                        pending += chunk
                        cut = pending.rfind(b"\n") + 1
                        if cut:
                            out.write(pending[:cut])
                            lines_arrived(pending.count(b"\n", 0, cut))
                            pending = pending[cut:]
                    if skip:  # a 200 whose whole body is shorter than what is already on disk
                        raise MalformedResponseError(
                            f"{what}: the server sent the whole file again, {offset - skip:,} bytes, fewer than the "
                            f"{offset:,} already received: the file changed; not used", provider=self.spec.name)
                    if pending.strip():  # a last line without its newline
                        out.write(pending + b"\n")
                        lines_arrived(1)
            except httpx.HTTPError as exc:
                raise transport_error(exc, f"{what} (GET {target})", provider=self.spec.name,
                                      model=self.route.model_id).without([self.key]) from exc
            finally:
                answer.close()

        retry.call(attempt, self.route.retry_policy, self.route.model, [])

    # --- the shared parts ------------------------------------------------------------------------

    def url(self, path_or_url: str) -> str:
        """`base_url` + a path, or an absolute URL the provider gave (a results URL), which must be
        on the base URL's own scheme, host and port: the key is sent with it."""
        if not path_or_url.startswith(("http://", "https://")):
            url = self.base_url + path_or_url
        else:
            given, base = urlsplit(path_or_url), urlsplit(self.base_url)
            if (given.scheme, given.netloc) != (base.scheme, base.netloc):
                raise APIError(f"the provider gave a results URL on another host ({given.scheme}://{given.netloc}, not "
                               f"{base.scheme}://{base.netloc}): not fetched, the API key would go with the request",
                               provider=self.spec.name, model=self.route.model_id)
            url = path_or_url
        if self.spec.key_query:
            url += ("&" if "?" in url else "?") + urlencode({self.spec.key_query: self.key})
        return url

    def http_error(self, answer: httpx.Response, what: str) -> APIError:
        error = self.route.assembler.http_error(answer.status_code, answer.headers, answer.content).without([self.key])
        error.message = mask_secrets(f"{what}: {error.message}")
        error.args = (error.message,)
        return error

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
            self._http = None

    def _headers(self, extra: dict[str, str]) -> dict[str, str]:
        from llmclient.pipeline import USER_AGENT

        headers = {"user-agent": USER_AGENT, **self._version_headers, **extra}
        if not self.spec.key_query:
            headers[self.spec.key_header] = f"{self.spec.key_prefix or ''}{self.key}"
        return headers

    def _request(self, method: str, url: str, headers: dict[str, str], content: bytes | None) -> httpx.Request:
        import httpx

        return httpx.Request(method, url, headers=headers, content=content)

    def _send(self, request: httpx.Request, what: str, *, stream: bool = False) -> httpx.Response:
        """The answer (its body read unless `stream`); a failure to get one as a typed error."""
        import httpx

        from llmclient import transport

        where = f"{what} ({request.method} {request.url.copy_with(query=None)})"
        try:
            hook = transport.interceptor
            answer = hook(request, self.spec) if hook is not None else None
            if answer is None:
                answer = self._client().send(request, stream=True)
        except LLMError:
            raise
        except Exception as exc:
            mismatch = replay_mismatch(exc, where, self.spec.name, self.route.model_id)
            if mismatch is not None:
                raise mismatch from exc
            if isinstance(exc, httpx.TransportError):
                raise transport_error(exc, where, provider=self.spec.name, model=self.route.model_id).without([self.key]) from exc
            raise
        if not stream:
            try:
                answer.read()
            except httpx.HTTPError as exc:
                raise transport_error(exc, f"reading the answer of {where}", provider=self.spec.name,
                                      model=self.route.model_id).without([self.key]) from exc
            finally:
                answer.close()
        return answer

    def _client(self) -> httpx.Client:
        from llmclient import transport

        with self._lock:
            if self._http is None:
                self._http = transport.sync_client(READ_TIMEOUT)  # httpx never follows a redirect unless asked
            return self._http

    def _malformed(self, message: str, content: bytes) -> MalformedResponseError:
        return MalformedResponseError(mask_secrets(f"{message}; it began: {excerpt(content)!r}"),
                                      provider=self.spec.name, model=self.route.model_id).without([self.key])


def _check_range(content_range: str | None, offset: int, what: str, provider: str) -> None:
    """A 206 must say (`Content-Range: bytes N-M/total`) that it continues exactly where the file
    on disk ends: without that header its bytes could be from anywhere."""
    unit, _, span = (content_range or "").strip().partition(" ")
    start = span.split("-", 1)[0]
    if unit != "bytes" or not start.isdigit() or int(start) != offset:
        raise MalformedResponseError(f"{what}: asked for the bytes from {offset}, the server sent a 206 with "
                                     f"Content-Range {content_range!r}", provider=provider)


def _check_complete(content_range: str | None, offset: int, what: str, provider: str) -> None:
    """A 416 means the file is complete only when it says (`Content-Range: bytes */N`) that the
    file is exactly the `offset` bytes already on disk."""
    unit, _, span = (content_range or "").strip().partition(" ")
    length = span[2:] if span.startswith("*/") else ""
    if unit != "bytes" or not length.isdigit() or int(length) != offset:
        raise MalformedResponseError(f"{what}: asked for the bytes from {offset}, the server answered 416 with "
                                     f"Content-Range {content_range!r}, not 'bytes */{offset}': the file on disk is "
                                     f"not the provider's", provider=provider)


def multipart(fields: dict[str, str], file_field: str, filename: str, data: bytes, media_type: str,
              boundary: str) -> tuple[bytes, str]:
    """A multipart/form-data body and its content type. The boundary is the caller's (derived from
    the content, so the same upload is the same bytes: a cassette matches it exactly)."""
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
                 f"Content-Type: {media_type}\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
