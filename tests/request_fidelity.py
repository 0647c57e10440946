"""Request fidelity: what llmclient SENDS, measured on real recorded requests.

Every case of `../shared/reference-traffic/` whose `call_unsupported` is empty carries `call`: the
wire-independent meaning of the request an official SDK sent (and the provider accepted). Each is
expressed here through the public API only (`Client.complete` / `Client.stream` with `Message`s,
JSON-schema tool dicts and the call keywords) against a loopback server that answers with the
recorded response; the body llmclient sent is read back and `extract_call(sent)` is compared with
`call` field by field. `extract_call` (llmclient/conformance/call_shape.py) is proven on every recorded request by
tests/test_request_fidelity.py, so a miss is llmclient's.

Run directly for the table: `python -m tests.request_fidelity`.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import mimetypes
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest.mock import patch
from urllib.parse import urlsplit

import yaml

from llmclient import Client, FilePart, LLMError, Message, ProviderSpec, Request, RetryPolicy, TextPart, ToolCall
from llmclient import model_checks, register_provider, unregister_provider
from llmclient.files import attachment
from llmclient.providers import BUILTIN_PROVIDERS
from llmclient.wire.gemini import synthetic_id
from llmclient.conformance.call_shape import base64_bytes, extract_call
from tests.reference_traffic import CORPUS, REPO

FIELDS = ("sent", "system", "messages", "tools", "tool_choice", "response_format",
          "max_tokens", "temperature", "top_p", "stop", "stream")
REPORT = REPO / "reports" / "request-fidelity.json"
_BUILTIN = {spec.name for spec in BUILTIN_PROVIDERS}
_WIRE = {"openai_chat_completions": "openai", "anthropic_messages": "anthropic", "cohere_v2_chat": "cohere",
         "gemini_generate_content": "gemini", "gemini_stream_generate_content": "gemini"}


@dataclass
class Case:
    provider: str
    name: str
    expected: dict[str, Any]
    request: dict[str, Any]  # the recorded request: method, uri, body (JSON text)
    response: dict[str, Any]  # the recorded response: status, headers, body

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.name}"

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.request["body"])
        return body


@dataclass
class Received:
    method: str
    path: str  # with the query
    headers: dict[str, str]
    body: bytes


@dataclass
class Outcome:
    case: Case
    fields: dict[str, bool] = field(default_factory=dict)
    detail: dict[str, str] = field(default_factory=dict)
    outside: list[str] = field(default_factory=list)  # what the sent body holds beyond the call shape


def cases(*, fully_described: bool = True) -> list[Case]:
    """Every fully-described case (`call_unsupported == []`), or every case, in a stable order."""
    found = []
    for path in sorted(CORPUS.glob("*/*.expected.json")):
        expected = json.loads(path.read_text())
        if fully_described and expected["call_unsupported"] != []:
            continue
        cassette = path.with_name(path.name[: -len(".expected.json")] + ".yaml")
        interaction = yaml.load(cassette.read_text(), Loader=yaml.CSafeLoader)["interactions"][0]
        found.append(Case(path.parent.name, cassette.stem, expected, interaction["request"], interaction["response"]))
    return found


# --- the loopback server ---------------------------------------------------------------------------

class Loopback:
    """A real HTTP server on 127.0.0.1 (ephemeral port) that answers every request with `reply`
    (status, content type, body) and records each request it received."""

    def __init__(self) -> None:
        self.reply: tuple[int, str, bytes] = (500, "text/plain", b"no case is being served")
        self.received: list[Received] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_port}"

    def serve(self, case: Case) -> None:
        response = case.response
        content_type = (response["headers"].get("content-type") or ["application/json"])[0]
        self.reply = (response["status"]["code"], content_type, response["body"]["string"].encode("utf-8"))
        self.received = []

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler(server: Loopback) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            server.received.append(Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                            self._body()))
            status, content_type, data = server.reply
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST  # recorded, then answered like any request: a GET is no call and fails "sent"

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("transfer-encoding", "").lower():
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()  # the CRLF after each chunk
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("content-length") or 0))

        def log_message(self, *args: object) -> None:
            pass

    return Handler


# --- the call, through the public API ---------------------------------------------------------------

class Inexpressible(Exception):
    """The public API has no way to make this call."""


def _files(body: dict[str, Any]) -> dict[str, bytes]:
    """Every base64 payload in a recorded body (standard or URL-safe, data: URLs too), by sha256."""
    found: dict[str, bytes] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and len(value) >= 32:
            try:
                raw = base64_bytes(value.partition(",")[2] if value.startswith("data:") else value)
            except ValueError:
                return  # text, not a file
            found[hashlib.sha256(raw).hexdigest()] = raw

    walk(body)
    return found


def _file_part(part: dict[str, Any], files: dict[str, bytes]) -> FilePart:
    if "url" in part:  # a URL part names no media type: the one its path suggests
        guessed = mimetypes.guess_type(urlsplit(part["url"]).path)[0] or ""
        media_type = "application/pdf" if part["type"] == "pdf" else guessed if guessed.startswith("image/") else "image/jpeg"
        return FilePart(media_type=media_type, name=part["url"], url=part["url"])
    attached = attachment(files[part["sha256"]])  # as a user attaches bytes: typed by their content
    declared = part.get("media_type", "application/pdf")
    return attached if attached.media_type == declared else attached.model_copy(update={"media_type": declared})


def messages_of(call: dict[str, Any], body: dict[str, Any]) -> list[Message]:
    """The call's turns as `Message`s; files are taken from the recorded body by their digest."""
    files = _files(body) if any(p["type"] in ("image", "pdf") for m in call["messages"] for p in m["parts"]) else {}
    messages: list[Message] = []
    unanswered: list[tuple[str, str]] = []  # (name, id) of Gemini calls recorded without an id
    for turn in call["messages"]:
        role, parts = turn["role"], turn["parts"]
        if role == "tool":
            (result,) = parts
            call_id = result["id"]
            if call_id is None:
                matching = [pending for pending in unanswered if pending[0] == result["name"]]
                if not matching:
                    raise Inexpressible(f"a result of {result['name']} without an id answers no call in the history")
                unanswered.remove(matching[0])
                call_id = matching[0][1]
            messages.append(Message(role="tool", content=result["text"], tool_call_id=call_id, name=result["name"]))
            continue
        calls = [p for p in parts if p["type"] == "tool_call"]
        if calls and role != "assistant":
            raise Inexpressible("a user turn holding a tool call")
        tool_calls = []
        for index, call_part in enumerate(calls):
            call_id = call_part["id"] if call_part["id"] is not None else synthetic_id(index, call_part["name"])
            if call_part["id"] is None:
                unanswered.append((call_part["name"], call_id))
            tool_calls.append(ToolCall(id=call_id, name=call_part["name"], arguments=call_part["arguments"]))
        content: list[TextPart | FilePart] = []
        for part in parts:
            if part["type"] == "text":
                content.append(TextPart(text=part["text"]))
            elif part["type"] in ("image", "pdf"):
                content.append(_file_part(part, files))
            elif part["type"] != "tool_call":
                raise Inexpressible(f"a {part['type']} part in a {role} turn")
        lone = content[0] if len(content) == 1 else None
        messages.append(Message(role=role, content=lone.text if isinstance(lone, TextPart) else content,
                                tool_calls=tool_calls))
    return messages


def keywords_of(call: dict[str, Any]) -> dict[str, Any]:
    """The call's other fields as `complete()` keywords (None ones left out)."""
    tools = [{"name": t["name"], **({"description": t["description"]} if t["description"] else {}),
              "parameters": t["parameters"]} for t in call["tools"]]
    choice = call["tool_choice"]
    fmt = call["response_format"]
    if fmt is not None and fmt["type"] == "json_schema":
        fmt = {"type": "json_schema", "json_schema": {**({"name": fmt["name"]} if fmt["name"] else {}), "schema": fmt["schema"]}}
    keywords = {"system": call["system"] if call["messages"] else None, "tools": tools or None,
                "tool_choice": choice["name"] if isinstance(choice, dict) else choice, "response_format": fmt,
                **{key: call[key] for key in ("max_tokens", "temperature", "top_p", "stop")}}
    return {key: value for key, value in keywords.items() if value is not None}


def request_of(call: dict[str, Any], body: dict[str, Any]) -> Request:
    """The Request the public API builds for a recorded `call` (instructions alone when it has no
    turns); its inline files are the recorded body's, found by digest."""
    messages = messages_of(call, body)
    return Request.build(messages or [Message(role="system", content=call["system"])], **keywords_of(call))


def client_for(case: Case, base_url: str) -> Client:
    """A Client for the recorded model: built-in providers by name with `base_url` pointed at the
    loopback; the others registered as a user would add them."""
    if case.expected["endpoint"].startswith("gemini"):
        model = re.search(r"/models/([^:/]+):", case.request["uri"]).group(1)  # type: ignore[union-attr]
    else:
        model = case.body["model"]
    base = f"{base_url}/{case.provider}"
    if case.provider not in _BUILTIN:
        call = case.expected["call"]
        kinds = {part["type"] for message in call["messages"] for part in message["parts"]}
        # What the recorded provider evidently accepts, declared as its user would declare it.
        needs = {{"image": "vision", "pdf": "pdf"}[kind] for kind in kinds & {"image", "pdf"}}
        if call["response_format"] is not None:
            needs.add("structured_output")
        register_provider(ProviderSpec(name=case.provider, base_url=base, wire=_WIRE[case.expected["endpoint"]],
                                       capabilities=frozenset({"tools", "parallel_tools", "streaming", "stream_tools", *needs}),
                                       api_key_env=re.sub(r"\W", "_", case.provider).upper() + "_API_KEY"), replace=True)
    return Client(f"{case.provider}/{model}", base_url=base, api_key="test-key", timeout=30,
                  retry=RetryPolicy(max_attempts=1))


def drive(case: Case, server: Loopback) -> Outcome:
    outcome = Outcome(case)
    call = case.expected["call"]
    server.serve(case)
    raised = None
    try:
        request = request_of(call, case.body)
        with client_for(case, server.base_url) as client:
            if call["stream"]:
                for _ in client.stream(request):
                    pass
            else:
                client.complete(request)
    except Inexpressible as exc:
        return _unsent(outcome, f"the public API cannot express this call: {exc}")
    except Exception as exc:  # noqa: BLE001 - whatever stopped the call is the finding
        raised = exc
    if not server.received:
        return _unsent(outcome, f"nothing reached the server: {type(raised).__name__}: {str(raised)[:300]}")
    if raised is not None and not isinstance(raised, LLMError):  # an error answer raises LLMError: expected
        outcome.detail["raised"] = f"after sending: {type(raised).__name__}: {str(raised)[:300]}"
    if len(server.received) != 1 or server.received[0].method != "POST":
        return _unsent(outcome, f"expected one POST, got {[(r.method, r.path) for r in server.received]}")
    sent = server.received[0]
    try:
        got = extract_call("POST", sent.path, json.loads(sent.body), case.expected["endpoint"], outcome.outside)
    except Exception as exc:  # noqa: BLE001 - a body outside the wire's call shape
        outcome.fields = {name: name == "sent" for name in FIELDS}
        outcome.detail["sent"] = f"sent, but its body has no call shape: {type(exc).__name__}: {str(exc)[:300]}"
        return outcome
    outcome.fields["sent"] = True
    for name in FIELDS[1:]:
        outcome.fields[name] = got[name] == call[name]
        if got[name] != call[name]:
            outcome.detail[name] = _difference(got[name], call[name])
    return outcome


def _unsent(outcome: Outcome, reason: str) -> Outcome:
    outcome.fields = {name: False for name in FIELDS}
    outcome.detail["sent"] = reason
    return outcome


def _difference(got: Any, want: Any) -> str:
    """The first differing turn of two message lists, else both values (shortened)."""
    if isinstance(got, list) and isinstance(want, list) and got and want:
        for index, (mine, theirs) in enumerate(zip(got, want)):
            if mine != theirs:
                return f"[{index}] expected {json.dumps(theirs)[:240]}, sent {json.dumps(mine)[:240]}"
        return f"expected {len(want)} items, sent {len(got)}"
    return f"expected {json.dumps(want)[:240]}, sent {json.dumps(got)[:240]}"


def run(server: Loopback, chosen: list[Case] | None = None) -> tuple[list[Outcome], float]:
    started = time.perf_counter()
    chosen = cases() if chosen is None else chosen
    # The recordings are replayed as live calls, so the retirement check is run on a day they were all
    # served (pydantic-ai recorded them from 2024 on; the first retirement among them is 2025-09-24).
    day = patch.object(model_checks, "_today", lambda: datetime.date(2025, 6, 1))
    day.start()
    try:
        outcomes = [drive(case, server) for case in chosen]
    finally:
        day.stop()
        for provider in {case.provider for case in chosen} - _BUILTIN:
            unregister_provider(provider)
    return outcomes, time.perf_counter() - started


def report(outcomes: list[Outcome], seconds: float) -> dict[str, Any]:
    table: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for o in outcomes:
        row = table[o.case.provider]
        row["cases"] += 1
        row["all"] += all(o.fields.values())
        for name in FIELDS:
            row[name] += o.fields[name]
    total = len(outcomes)
    return {
        "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cases": total,
        "seconds": round(seconds, 2),
        "rates": {name: sum(o.fields[name] for o in outcomes) / max(total, 1) for name in FIELDS},
        "table": {provider: dict(row) for provider, row in sorted(table.items())},
        "misses": {o.case.key: o.detail for o in outcomes if o.detail},  # failed fields, or a raise after sending
        "outside_call": {note: sorted(o.case.key for o in outcomes if note in o.outside)
                         for note in sorted({note for o in outcomes for note in o.outside})},
    }


_HEADS = ("sent", "system", "messages", "tools", "choice", "format", "max_tok", "temp", "top_p", "stop", "stream", "all")


def render(summary: dict[str, Any]) -> str:
    """The table provider x field: calls passing / fully-described calls."""
    lines = [f"request fidelity: {summary['cases']} fully-described calls in {summary['seconds']} s "
             f"(measured {summary['measured_at']})", f"{'provider':<21}" + "".join(f"{h:>9}" for h in _HEADS)]
    for provider, row in summary["table"].items():
        lines.append(f"{provider:<21}" + "".join(f"{row[name]:>5}/{row['cases']:<3}" for name in (*FIELDS, "all")))
    lines.append(f"{'pass rate':<21}" + "".join(f"{summary['rates'][name]:>9.1%}" for name in FIELDS))
    lines += [f"sent beyond the call shape: {note} ({len(keys)} calls)" for note, keys in summary["outside_call"].items()]
    return "\n".join(lines)


def write(summary: dict[str, Any], path: Path = REPORT) -> None:
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    import logging

    import tests.conftest  # noqa: F401 - its socket guard: nothing here may leave the loopback

    logging.getLogger("llmclient").setLevel(logging.ERROR)  # "no price known" is not this table's concern

    loopback = Loopback()
    try:
        results, elapsed = run(loopback)
    finally:
        loopback.close()
    summary = report(results, elapsed)
    write(summary)
    print(render(summary))
    for key, detail in summary["misses"].items():
        print(key, json.dumps(detail)[:600])
