"""A loopback server speaking the OpenAI chat wire, with queued replies, for end-to-end tests of
the layers above the wire (structured output, validators, streamed structured output).

It registers three providers pointing at it: `nat` (native structured output and tools), `tls`
(tools only) and `txt` (neither); `nat/m` is priced at $1 / $2 per million tokens."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from llmclient import Client, ProviderSpec, pricing, register_provider, unregister_provider


def reply(content: str | None = None, arguments: dict[str, Any] | None = None, tokens: tuple[int, int] = (10, 5),
          tool: str = "City") -> dict[str, Any]:
    """A chat.completion body: text, or one call of `tool` with `arguments`."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if arguments is not None:
        message["tool_calls"] = [{"id": "call_1", "type": "function", "function": {"name": tool, "arguments": json.dumps(arguments)}}]
    return {"id": "x", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if arguments else "stop"}],
            "usage": {"prompt_tokens": tokens[0], "completion_tokens": tokens[1], "total_tokens": sum(tokens)}}


def stream_reply(pieces: list[str], *, tool: str | None = None, tokens: tuple[int, int] = (10, 5)) -> bytes:
    """An SSE chat.completion.chunk stream: text deltas, or `tool`'s arguments in `pieces`."""
    def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> str:
        choices = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]
        body: dict[str, Any] = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": choices}
        if usage:
            body["usage"] = usage
        return f"data: {json.dumps(body)}\n\n"

    events = [chunk({"role": "assistant", "content": "" if tool is None else None})]
    for index, piece in enumerate(pieces):
        if tool is None:
            events.append(chunk({"content": piece}))
        else:
            call: dict[str, Any] = {"index": 0, "function": {"arguments": piece}}
            if index == 0:
                call.update(id="call_1", type="function", function={"name": tool, "arguments": piece})
            events.append(chunk({"tool_calls": [call]}))
    events.append(chunk({}, "stop" if tool is None else "tool_calls"))
    events.append(chunk({}, usage={"prompt_tokens": tokens[0], "completion_tokens": tokens[1], "total_tokens": sum(tokens)}))
    return ("".join(events) + "data: [DONE]\n\n").encode()


class Server(BaseHTTPRequestHandler):
    queue: list[dict[str, Any] | bytes] = []
    bodies: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802
        type(self).bodies.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
        item = type(self).queue.pop(0)
        streamed = isinstance(item, bytes)
        data = item if isinstance(item, bytes) else json.dumps(item).encode()
        self.send_response(200)
        self.send_header("content-type", "text/event-stream" if streamed else "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def loopback() -> Iterator[type[Server]]:
    Server.queue, Server.bodies = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Server)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    for name, capabilities in (("nat", {"structured_output", "tools", "streaming", "stream_tools"}),
                               ("tls", {"tools", "streaming", "stream_tools"}), ("txt", {"streaming"})):
        register_provider(ProviderSpec(name=name, base_url=f"http://127.0.0.1:{httpd.server_port}/v1",
                                       api_key_env="FAKE_API_KEY", capabilities=frozenset(capabilities)))
    pricing.set_price("nat/m", input="0.000001", output="0.000002")
    yield Server
    for name in ("nat", "tls", "txt"):
        unregister_provider(name)
    httpd.shutdown()
    httpd.server_close()


def client(provider: str) -> Client:
    return Client(f"{provider}/m", api_key="sk-test")
