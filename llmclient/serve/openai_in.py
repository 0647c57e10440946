"""An OpenAI chat-completions body read into the arguments of a `Client` call.

Everything llmclient can carry is mapped; anything it cannot is refused with `BadBody` naming the
field (as OpenAI's `param`), never dropped:

- messages: roles system, developer (read as system), user, assistant, tool; content a string or
  parts `text`, `image_url` (a data URL; `detail` only "auto") and `file` (`file_data` as a data
  URL, with `filename`); assistant `tool_calls`; tool results by `tool_call_id`.
- An http(s) `image_url` is refused (400 naming the field: send a data: URL) unless the server was
  started with `--fetch-urls` (`fetch_urls=True`, never with `--replay`): llmclient downloads such
  a URL itself for a provider that does not fetch URLs, on the SERVER's network, so a client could
  otherwise make the server request internal addresses. It must end in
  .png/.jpg/.jpeg/.gif/.webp.
- tools (`type: function`; `strict` only false), tool_choice, max_tokens / max_completion_tokens,
  temperature, top_p, stop, response_format (`{"type": "text"}`, the default, by sending none),
  stream, stream_options (`include_usage`; `include_obfuscation`, which the openai SDK sends, is
  accepted and ignored: there is no obfuscation padding here), n (only the integer 1).
- `user` labels the call in llmclient's telemetry (it is not sent to the provider).
- PASSTHROUGH keys (seed, penalties, parallel_tool_calls, reasoning_effort, ...) are sent to the
  provider as they are (llmclient's provider options).
No field names a file on the server's disk: a path is never read.
"""

from __future__ import annotations

import binascii
import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from llmclient.files import attachment
from llmclient.errors import LLMError
from llmclient.types import FilePart, Message, TextPart, ToolCall

PASSTHROUGH = frozenset({"seed", "presence_penalty", "frequency_penalty", "parallel_tool_calls", "reasoning_effort",
                         "logit_bias", "service_tier", "logprobs", "top_logprobs", "metadata", "store", "verbosity"})
_KNOWN = frozenset({"model", "messages", "tools", "tool_choice", "max_tokens", "max_completion_tokens", "temperature",
                    "top_p", "stop", "response_format", "stream", "stream_options", "n", "user"}) | PASSTHROUGH
_STREAM_OPTIONS = frozenset({"include_usage", "include_obfuscation"})
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
# Lists and objects inside each other, at most: far more than a chat body or a tool's JSON schema
# needs, and far less than what makes `json` (or any recursive walk after it) hit RecursionError.
MAX_NESTING = 100


class BadBody(Exception):
    """A request body the server refuses: 400 (or `status`), `param` the field at fault."""

    def __init__(self, message: str, param: str | None = None, *, status: int = 400, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status
        self.code = code


@dataclass
class ChatCall:
    """One chat-completions request: the model name, the messages and the Client call keywords."""

    model: str
    messages: list[Message]
    options: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    include_usage: bool = False


def parse_chat(body: Any, *, fetch_urls: bool = False) -> ChatCall:
    """The call `body` asks for; `fetch_urls`: accept http(s) image URLs (see the module's doc)."""
    if not isinstance(body, dict):
        raise BadBody(f"the request body must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - _KNOWN)
    if unknown:
        raise BadBody(f"unsupported parameter {unknown[0]!r}: llmclient cannot carry it", unknown[0],
                      code="unsupported_parameter")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadBody("'model' is required: a profile, an alias or 'provider/model'", "model")
    if "messages" not in body:
        raise BadBody("'messages' is required", "messages")
    raw = body["messages"]
    if not isinstance(raw, list) or not raw:
        raise BadBody("'messages' must be a non-empty list of messages", "messages")
    messages = [_message(item, f"messages[{i}]", fetch_urls) for i, item in enumerate(raw)]
    options: dict[str, Any] = {}
    if body.get("tools") is not None:
        options["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        options["tool_choice"] = _tool_choice(body["tool_choice"])
    if body.get("max_tokens") is not None and body.get("max_completion_tokens") is not None:
        raise BadBody("give one of max_tokens and max_completion_tokens, not both", "max_completion_tokens")
    for name in ("max_tokens", "max_completion_tokens"):
        if body.get(name) is not None:
            options["max_tokens"] = body[name]
    for name in ("temperature", "top_p", "stop"):
        if body.get(name) is not None:
            options[name] = body[name]
    if body.get("response_format") is not None and not _is_text_format(body["response_format"]):
        options["response_format"] = body["response_format"]
    n = body.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n != 1):  # True == 1.0 == 1 in Python
        raise BadBody(f"n must be the integer 1: llmclient asks for one choice per call, got {_short(n)}", "n")
    if body.get("user") is not None:
        if not isinstance(body["user"], str):
            raise BadBody("user must be a string", "user")
        options["user"] = body["user"]  # a telemetry label, not sent on
    for name in sorted(PASSTHROUGH & set(body)):
        options[name] = body[name]
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise BadBody("stream must be true or false", "stream")
    return ChatCall(model.strip(), messages, options, bool(stream), _include_usage(body.get("stream_options"), bool(stream)))


def _is_text_format(value: Any) -> bool:
    """True for `{"type": "text"}` (OpenAI's ResponseFormatText, the default): carried by sending no
    response_format, since plain text is what every provider answers with unless asked otherwise."""
    if not (isinstance(value, dict) and value.get("type") == "text"):
        return False  # json_object, json_schema or a wrong shape: llmclient's request checks name it
    if set(value) != {"type"}:
        raise BadBody(f'response_format {{"type": "text"}} takes no other keys, got {sorted(value)}', "response_format")
    return True


def too_deep(value: Any, limit: int = MAX_NESTING) -> bool:
    """True when `value`'s lists and objects nest more than `limit` levels deep (counted without
    recursion, so any depth can be measured)."""
    pending: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, (dict, list)) else []
    while pending:
        item, level = pending.pop()
        if level > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _nested_too_deep(param: str) -> BadBody:
    return BadBody(f"{param} nests lists and objects more than {MAX_NESTING} levels deep: flatten it", param)


def _include_usage(value: Any, stream: bool) -> bool:
    if value is None:
        return False
    if not stream:
        raise BadBody("stream_options is only for stream: true", "stream_options")
    if not isinstance(value, dict) or set(value) - _STREAM_OPTIONS:
        raise BadBody("stream_options takes only include_usage (and include_obfuscation, ignored)", "stream_options")
    for name in sorted(_STREAM_OPTIONS & set(value)):
        if not isinstance(value[name], bool):
            raise BadBody(f"stream_options.{name} must be true or false", f"stream_options.{name}")
    return bool(value.get("include_usage", False))


def _message(item: Any, where: str, fetch_urls: bool) -> Message:
    if not isinstance(item, dict):
        raise BadBody(f"{where} must be an object", where)
    given = item.get("role")
    role = _ROLES.get(given) if isinstance(given, str) else None  # a list or dict cannot even be looked up
    if role is None:
        raise BadBody(f"{where}.role must be one of {', '.join(_ROLES)}, got {_short(given)}", f"{where}.role")
    allowed = {"role", "content"} | ({"tool_calls", "refusal"} if role == "assistant" else set())
    allowed |= {"tool_call_id"} if role == "tool" else set()
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise BadBody(f"{where}.{unknown[0]} is not supported for a {item['role']} message: llmclient cannot carry it",
                      f"{where}.{unknown[0]}")
    if item.get("refusal") is not None:
        raise BadBody(f"{where}.refusal: llmclient cannot send a refusal back to a model", f"{where}.refusal")
    content = _content(item.get("content"), where, fetch_urls)
    calls = [_tool_call(call, f"{where}.tool_calls[{i}]") for i, call in enumerate(_list(item.get("tool_calls") or [],
                                                                                          f"{where}.tool_calls"))]
    try:
        return Message(role=role, content=content, tool_calls=calls, tool_call_id=item.get("tool_call_id"))
    except ValidationError as exc:
        error = exc.errors()[0]
        raise BadBody(f"{where} is not a valid message: {'.'.join(map(str, error['loc']))}: {error['msg']}", where) from exc


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise BadBody(f"{where} must be a list", where)
    return value


def _content(content: Any, where: str, fetch_urls: bool) -> str | list[TextPart | FilePart]:
    if content is None or isinstance(content, str):
        return content or ""
    parts: list[TextPart | FilePart] = []
    for i, part in enumerate(_list(content, f"{where}.content")):
        at = f"{where}.content[{i}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str) and set(part) == {"type", "text"}:
            parts.append(TextPart(text=part["text"]))
        elif kind == "image_url":
            parts.append(_image(part, at, fetch_urls))
        elif kind == "file":
            parts.append(_file(part, at))
        else:
            raise BadBody(f"{at}: llmclient carries text, image_url and file parts, got {_short(part)}", at)
    return parts


def _image(part: dict[str, Any], at: str, fetch_urls: bool) -> FilePart:
    spec = part.get("image_url")
    if set(part) != {"type", "image_url"} or not isinstance(spec, dict) or not isinstance(spec.get("url"), str):
        raise BadBody(f'{at} must be {{"type": "image_url", "image_url": {{"url": ...}}}}', at)
    if set(spec) - {"url", "detail"} or spec.get("detail", "auto") != "auto":
        raise BadBody(f"{at}.image_url.detail: llmclient cannot carry an image detail other than 'auto'",
                      f"{at}.image_url.detail")
    url: str = spec["url"]
    if url.startswith("data:"):
        return _inline(url, "image", f"{at}.image_url.url")
    if url.startswith(("https://", "http://")):
        if not fetch_urls:
            raise BadBody(f"{at}.image_url.url: this server does not take image URLs (it would fetch them on its own "
                          f"network); send the image as a data: URL (data:image/png;base64,...)", f"{at}.image_url.url",
                          code="image_url_not_allowed")
        try:
            found = attachment(url)
        except LLMError as exc:
            raise BadBody(f"{at}.image_url.url: {exc.message} (or send a data URL)", f"{at}.image_url.url") from exc
        if not found.is_image:
            raise BadBody(f"{at}.image_url.url does not name an image", f"{at}.image_url.url")
        return found
    raise BadBody(f"{at}.image_url.url must be a data: URL or an http(s) URL", f"{at}.image_url.url")


def _file(part: dict[str, Any], at: str) -> FilePart:
    spec = part.get("file")
    if set(part) != {"type", "file"} or not isinstance(spec, dict) or not isinstance(spec.get("file_data"), str) \
            or set(spec) - {"file_data", "filename"}:
        raise BadBody(f'{at}: llmclient carries {{"type": "file", "file": {{"file_data": "data:...", "filename": ...}}}} '
                      f"(no file_id: it has no file store)", at)
    name = spec.get("filename") or "file"
    if not isinstance(name, str):
        raise BadBody(f"{at}.file.filename must be a string", f"{at}.file.filename")
    return _inline(spec["file_data"], name, f"{at}.file.file_data")


def _inline(url: str, name: str, at: str) -> FilePart:
    head, comma, data = url.partition(",")
    media_type, _, encoding = head[len("data:"):].partition(";")
    if not comma or encoding != "base64" or "/" not in media_type:
        raise BadBody(f"{at} must be a base64 data URL (data:<media type>;base64,...)", at)
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadBody(f"{at} is not valid base64 ({exc})", at) from exc
    return FilePart(media_type=media_type.lower(), name=name, data=data)


def _tool_call(call: Any, at: str) -> ToolCall:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or call.get("type", "function") != "function" or not isinstance(call.get("id"), str) \
            or not isinstance(function.get("name"), str) or set(call) - {"id", "type", "function"}:
        raise BadBody(f'{at} must be {{"id": ..., "type": "function", "function": {{"name": ..., "arguments": "..."}}}}', at)
    arguments = function.get("arguments") or "{}"
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError as exc:
        raise BadBody(f"{at}.function.arguments is not valid JSON: {exc}", f"{at}.function.arguments") from exc
    except RecursionError as exc:  # deeper than the interpreter's stack
        raise _nested_too_deep(f"{at}.function.arguments") from exc
    if too_deep(parsed):
        raise _nested_too_deep(f"{at}.function.arguments")
    if not isinstance(parsed, dict):
        raise BadBody(f"{at}.function.arguments must be a JSON object", f"{at}.function.arguments")
    return ToolCall(id=call["id"], name=function["name"], arguments=parsed)


def _tools(tools: Any) -> list[dict[str, Any]]:
    out = []
    for i, tool in enumerate(_list(tools, "tools")):
        at = f"tools[{i}]"
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or tool.get("type") != "function" or set(tool) != {"type", "function"}:
            raise BadBody(f'{at}: llmclient carries function tools, {{"type": "function", "function": {{...}}}}', at)
        extra = sorted(set(function) - {"name", "description", "parameters", "strict"})
        if extra:
            raise BadBody(f"{at}.function.{extra[0]}: llmclient cannot carry it", f"{at}.function.{extra[0]}")
        if function.get("strict"):
            raise BadBody(f"{at}.function.strict: llmclient cannot ask for strict tool arguments", f"{at}.function.strict")
        out.append({key: value for key, value in function.items() if key != "strict"})
    return out


def _tool_choice(choice: Any) -> str:
    if isinstance(choice, str):
        return choice
    if isinstance(choice, Mapping) and choice.get("type") == "function" and isinstance(choice.get("function"), Mapping) \
            and isinstance(choice["function"].get("name"), str):
        return str(choice["function"]["name"])
    raise BadBody("tool_choice must be 'auto', 'none', 'required' or {\"type\": \"function\", \"function\": {\"name\": ...}}",
                  "tool_choice")


def _short(value: Any) -> str:
    text = json.dumps(value, default=repr)
    return text if len(text) <= 80 else text[:77] + "..."
