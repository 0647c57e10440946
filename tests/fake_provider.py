"""A stand-alone OpenAI-chat-completions-compatible server on 127.0.0.1, for end-to-end tests of a
provider declared only in configuration (tests/test_wheel.py runs it as a real subprocess).

    python tests/fake_provider.py --key sk-proj-...     # first stdout line: PORT <n>

POST /v1/chat/completions answers as OpenAI does (shapes copied from cassettes/openai/*.yaml):
a wrong or missing bearer key -> 401 invalid_api_key; model `no-such-model` -> 404
model_not_found; temperature > 2 -> 400; a body over 1 MB -> 400 context_length_exceeded; `tools`
-> one call of the first tool (finish tool_calls), or a text answer after a tool result;
`stream: true` -> SSE chunks (role, content, finish, usage if asked, [DONE]); else a
chat.completion. The model in the answer is the one asked for. Usage is `tokens()` below:
prompt_tokens = characters of the messages' text // 4, completion_tokens = len(answer) // 4
(each at least 1); a `max_tokens` cut keeps 4 characters a token and finishes with "length".
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LIMIT = 1_000_000  # bytes: a larger body is past the context window
STORY = ("In a small coastal village, where the waves crashed against jagged rocks, there lived an old "
         "lighthouse keeper named Elias, who had tended the light for forty years without missing a night.")
_ids = itertools.count(1)


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))


def tokens(messages: list[dict[str, Any]], answer: str) -> tuple[int, int]:
    """The usage the server reports: (prompt_tokens, completion_tokens)."""
    return max(1, sum(len(text_of(m.get("content"))) for m in messages) // 4), max(1, len(answer) // 4)


def answer_for(messages: list[dict[str, Any]]) -> str:
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        return "It is 18 °C and sunny in Paris."
    asked = text_of(last.get("content"))
    system = " ".join(text_of(m.get("content")) for m in messages if m.get("role") in ("system", "developer"))
    if "story" in asked:
        return STORY
    if "Count" in asked:
        return "1, 2, 3, 4, 5"
    if "my name" in asked:
        return "Ada."
    return "paris" if "lowercase" in system else "Paris."


def arguments_for(tool: dict[str, Any]) -> dict[str, Any]:
    schema = tool.get("parameters") or {}
    samples = {"string": "Paris", "number": 2.1, "integer": 1, "boolean": True}
    return {name: samples.get(schema.get("properties", {}).get(name, {}).get("type"), "Paris")
            for name in schema.get("required", [])}


def error(status: int, message: str, code: str | None, param: str | None = None) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    key = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path != "/v1/chat/completions":
            return self.send_json(*error(404, f"Invalid URL (POST {self.path})", None))
        sent = (self.headers.get("authorization") or "").removeprefix("Bearer ")
        if not sent:
            return self.send_json(*error(401, "You didn't provide an API key. You need to provide your API key in an "
                                              "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", None))
        if sent != self.key:
            masked = sent[:7] + "*" * max(0, len(sent) - 11) + sent[-4:]
            return self.send_json(*error(401, f"Incorrect API key provided: {masked}. You can find your API key at "
                                              "https://platform.openai.com/account/api-keys.", "invalid_api_key"))
        if len(raw) > LIMIT:
            return self.send_json(*error(400, f"This model's maximum context length is 128000 tokens. However, your messages "
                                              f"resulted in {len(raw) // 4} tokens. Please reduce the length of the messages.",
                                         "context_length_exceeded", "messages"))
        body = json.loads(raw)
        model, messages = body.get("model", ""), body.get("messages") or []
        if model == "no-such-model":
            return self.send_json(*error(404, f"The model `{model}` does not exist or you do not have access to it.",
                                         "model_not_found"))
        if (body.get("temperature") or 0) > 2:
            return self.send_json(*error(400, f"Invalid 'temperature': decimal above maximum value. Expected a value <= 2, "
                                              f"but got {body['temperature']} instead.", "decimal_above_max_value", "temperature"))
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
        tools = body.get("tools") or []
        if tools and messages and messages[-1].get("role") != "tool":
            function = tools[0]["function"]
            arguments = json.dumps({"city": "Paris"} if function["name"] == "get_weather" else arguments_for(function))
            message["tool_calls"] = [{"id": f"call_{next(_ids):024d}", "type": "function",
                                      "function": {"name": function["name"], "arguments": arguments}}]
            text, finish = "", "tool_calls"
            prompt, completion = tokens(messages, arguments)
        else:
            text, finish = answer_for(messages), "stop"
            prompt, completion = tokens(messages, text)
            limit = body.get("max_completion_tokens") or body.get("max_tokens")
            if limit and completion > limit:
                text, finish, completion = text[: limit * 4], "length", limit
            message["content"] = text
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                 "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                 "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                               "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
        head = {"id": f"chatcmpl-{next(_ids):029d}", "object": "chat.completion", "created": 1763942400, "model": model}
        if body.get("stream"):
            return self.send_stream(head, text, finish, usage if (body.get("stream_options") or {}).get("include_usage") else None)
        self.send_json(200, {**head, "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": usage, "service_tier": "default", "system_fingerprint": "fp_acme0001"})

    def send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-request-id", f"req_{next(_ids):032x}")
        self.end_headers()
        self.wfile.write(data)

    def send_stream(self, head: dict[str, Any], text: str, finish: str, usage: dict[str, Any] | None) -> None:
        def chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> str:
            data = {**head, "object": "chat.completion.chunk", "service_tier": "default",
                    "system_fingerprint": "fp_acme0001", "choices": choices, "usage": usage}
            return "data: " + json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n\n"

        def delta(content: dict[str, Any], reason: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": content, "logprobs": None, "finish_reason": reason}]

        pieces = [piece for word in text.split(" ") for piece in (word, " ")][:-1]
        events = [chunk(delta({"role": "assistant", "content": "", "refusal": None}))]
        events += [chunk(delta({"content": piece})) for piece in pieces]
        events.append(chunk(delta({}, finish)))
        events += [chunk([], usage)] if usage else []
        events.append("data: [DONE]\n\n")
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("x-request-id", f"req_{next(_ids):032x}")
        self.end_headers()
        for event in events:
            data = event.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key", required=True, help="the one API key the server accepts")
    Handler.key = parser.parse_args().key
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
