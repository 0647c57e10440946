"""`extract_call`: a recorded or sent request body -> the wire-independent `call` the corpus
README (`../shared/reference-traffic/README.md`, section "`call`") defines, for the four wires.

Written here from the README's rules, independently of the corpus's conversion script and of
llmclient's encoders; `tests/test_request_fidelity.py` proves it reproduces the `call` of every
fully-described recorded request, so a difference it reports on a body llmclient sent is
llmclient's, not the extractor's. What the call shape cannot describe is left out of the call,
as the README says, and named in `left_out` (the counterpart of `call_unsupported`): every key
the shape does not know, and the values it leaves out (an error result, a thought part).
The conformance suite reads every request a cell sends with it (`expect.projection`); it ships in
the package for that, and is still independent of the encoders it checks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

Parts = list[dict[str, Any]]
Turn = tuple[str, Parts]


def extract_call(method: str, url: str, body: dict[str, Any], endpoint: str,
                 left_out: list[str] | None = None) -> dict[str, Any]:
    """The `call` of a request to `endpoint` (the corpus's wire names); Gemini's stream is in the URL.
    What the call leaves out is appended to `left_out`, once per kind."""
    if method.upper() != "POST":
        raise ValueError(f"a call is a POST, got {method}")
    notes: list[str] = []
    body = _without_nulls(body)
    if endpoint == "anthropic_messages":
        call = _anthropic(body, notes)
    elif endpoint in ("gemini_generate_content", "gemini_stream_generate_content"):
        call = _gemini(body, notes, stream=":streamGenerateContent" in url)
    elif endpoint in ("openai_chat_completions", "cohere_v2_chat"):
        call = _chat(body, notes, cohere=endpoint == "cohere_v2_chat")
    else:
        raise ValueError(f"unknown endpoint {endpoint!r}")
    if left_out is not None:
        left_out.extend(sorted(set(notes)))
    return call


def _call(system: list[str], turns: list[Turn], tools: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    call: dict[str, Any] = {
        "system": "\n\n".join(system) if system else None, "messages": _merged(turns), "tools": tools,
        "tool_choice": None, "response_format": None, "max_tokens": None, "temperature": None, "top_p": None,
        "stop": None, "stream": False,
    }
    call.update({key: value for key, value in fields.items() if value is not None})
    if isinstance(call["stop"], str):
        call["stop"] = [call["stop"]]
    return dict(sorted(call.items()))


def _merged(turns: list[Turn]) -> list[dict[str, Any]]:
    """Consecutive user (or assistant) turns are one; each tool result stays its own turn; empty
    texts go; a result's name is that of the earlier call with its id (Gemini names its own)."""
    names: dict[Any, str] = {}
    merged: list[dict[str, Any]] = []
    for role, parts in turns:
        kept = []
        for part in parts:
            if part["type"] == "text" and not part["text"]:
                continue
            if part["type"] == "tool_call":
                names[part["id"]] = part["name"]
            if part["type"] == "tool_result" and part.get("name") is None:
                part = {**part, "name": names.get(part["id"])}
            kept.append(part)
        if not kept:
            continue
        if merged and role != "tool" and merged[-1]["role"] == role:
            merged[-1]["parts"].extend(kept)
        else:
            merged.append({"role": role, "parts": kept})
    return merged


def _without_nulls(value: Any) -> Any:
    """A `null`-valued key means the key is absent, except inside user data (`_VERBATIM`: schemas,
    tool arguments and results), which is kept as it is."""
    if isinstance(value, dict):
        return {k: (v if k in _VERBATIM else _without_nulls(v)) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


# Keys whose values are user data: a null inside a schema or an argument is a value.
_VERBATIM = frozenset({"parameters", "input_schema", "parametersJsonSchema", "parameters_json_schema", "schema",
                       "responseJsonSchema", "response_json_schema", "responseSchema", "response_schema",
                       "input", "args", "response", "arguments"})


def _known(notes: list[str], where: str, mapping: dict[str, Any], keys: str, **defaults: Any) -> None:
    """Note every key of `mapping` outside `keys` (space-separated; Gemini's snake_case spellings
    count as their camelCase) unless it holds its default value."""
    allowed = set(keys.split())
    for key, value in mapping.items():
        if key not in allowed and _camel(key) not in allowed and defaults.get(key, ...) != value:
            notes.append(f"{where}:{key}")


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word.title() for word in rest)


def _text(part: str) -> dict[str, Any]:
    return {"type": "text", "text": part}


def _tool(name: str, description: Any, parameters: Any) -> dict[str, Any]:
    return {"name": name, "description": description or None,
            "parameters": parameters if parameters is not None else {"type": "object", "properties": {}}}


def base64_bytes(data: str) -> bytes:
    """Standard or URL-safe base64, padding optional; ValueError when `data` is not base64."""
    data = data.strip() + "=" * (-len(data.strip()) % 4)
    altchars = b"-_" if ("-" in data or "_" in data) else None
    try:
        return base64.b64decode(data, altchars=altchars, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64: {data[:40]}...") from exc


def _file(notes: list[str], media_type: str | None, data: str | None = None, url: str | None = None,
          kind: str = "image") -> dict[str, Any] | None:
    """A file part: inline data (or a data: URL) by digest, an http(s) URL as given; audio, video
    and text documents are outside the call shape."""
    if url is not None and url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type, url = header[5:].split(";")[0], None
    if media_type is not None and media_type != "application/pdf" and not media_type.startswith("image/"):
        notes.append(f"{media_type} input")
        return None
    if url is not None:
        return {"type": "pdf" if media_type == "application/pdf" else kind, "url": url}
    assert data is not None and media_type is not None
    digest = hashlib.sha256(base64_bytes(data)).hexdigest()
    if media_type == "application/pdf":
        return {"type": "pdf", "sha256": digest}
    return {"type": "image", "media_type": media_type, "sha256": digest}


def _block_texts(content: Any, notes: list[str], where: str) -> str:
    """A string, or the texts of text blocks joined by a blank line (other blocks are left out)."""
    if isinstance(content, str):
        return content
    for block in content or []:
        if block.get("type") == "text":
            _known(notes, where, block, "type text")
        else:
            notes.append(f"{where}:{block.get('type')}")
    return "\n\n".join(block["text"] for block in content or [] if block.get("type") == "text")


def _choice(value: Any, notes: list[str]) -> Any:
    """tool_choice in every wire's spelling -> "auto" | "none" | "required" | {"name": ...}."""
    if value is None:
        return None
    if isinstance(value, str):
        return {"any": "required"}.get(value.lower(), value.lower())
    _known(notes, "tool_choice", value, "type name function")
    kind = value.get("type")
    if kind in ("function", "tool"):
        return {"name": value["function"]["name"] if "function" in value else value["name"]}
    return "required" if kind == "any" else kind


# --- OpenAI chat completions (and Cohere v2 chat, the same shape with other key names) -----------

_CHAT_KEYS = "model messages tools tool_choice response_format max_tokens max_completion_tokens temperature top_p stop stream"
_COHERE_KEYS = "model messages tools tool_choice response_format max_tokens temperature p stop_sequences stream"


def _chat(body: dict[str, Any], notes: list[str], *, cohere: bool) -> dict[str, Any]:
    _known(notes, "option", body, _COHERE_KEYS if cohere else _CHAT_KEYS, n=1, stream_options={"include_usage": True})
    system: list[str] = []
    turns: list[Turn] = []
    for message in body["messages"]:
        role, content = message["role"], message.get("content")
        _known(notes, f"{role} message", message, "role content tool_calls tool_call_id", prefix=False)
        if role in ("system", "developer"):
            if turns:
                notes.append("system message mid-conversation")
            system.append(_block_texts(content, notes, "system block"))
        elif role == "tool":
            turns.append(("tool", [{"type": "tool_result", "id": message["tool_call_id"], "name": None,
                                    "text": _block_texts(content, notes, "tool result block")}]))
        else:
            parts = [_text(content)] if isinstance(content, str) else [_chat_part(p, notes) for p in content or []]
            parts += [_chat_tool_call(call, notes) for call in message.get("tool_calls") or []]
            turns.append((role, [part for part in parts if part is not None]))
    tools = []
    for tool in body.get("tools") or []:
        _known(notes, "tool", tool, "type function")
        _known(notes, "tool", tool.get("function", {}), "name description parameters")
        if tool.get("type", "function") == "function":  # Mistral's SDK leaves the type out
            tools.append(_tool(tool["function"]["name"], tool["function"].get("description"), tool["function"].get("parameters")))
    fmt = body.get("response_format") or {"type": "text"}
    response_format = None
    if fmt["type"] == "json_schema":  # OpenAI: {"json_schema": {"name": ..., "schema": ...}}
        _known(notes, "response_format", fmt["json_schema"], "name schema")
        response_format = {"type": "json_schema", "name": fmt["json_schema"].get("name"), "schema": fmt["json_schema"]["schema"]}
    elif fmt["type"] == "json_object":  # Cohere gives the schema here
        schema = fmt.get("json_schema")
        response_format = {"type": "json_object"} if schema is None else {"type": "json_schema", "name": None, "schema": schema}
    return _call(system, turns, tools, tool_choice=_choice(body.get("tool_choice"), notes), response_format=response_format,
                 max_tokens=body.get("max_completion_tokens", body.get("max_tokens")), temperature=body.get("temperature"),
                 top_p=body.get("p" if cohere else "top_p"), stop=body.get("stop_sequences" if cohere else "stop"),
                 stream=body.get("stream"))


def _chat_part(part: dict[str, Any], notes: list[str]) -> dict[str, Any] | None:
    kind = part["type"]
    if kind not in ("text", "image_url", "file", "document_url"):
        notes.append(f"{kind} part")  # audio, thinking, ...
        return None
    _known(notes, f"{kind} part", part, f"type {kind}")
    if kind == "text":
        return _text(part["text"])
    if kind == "image_url":
        image = part["image_url"]
        if isinstance(image, dict):
            _known(notes, "image_url", image, "url")
        return _file(notes, None, url=image if isinstance(image, str) else image["url"])
    if kind == "file":  # OpenAI: {"file": {"file_data": "data:...", "filename": ...}}
        _known(notes, "file", part["file"], "file_data filename")
        return _file(notes, None, url=part["file"]["file_data"], kind="pdf") if "file_data" in part["file"] else None
    return _file(notes, "application/pdf", url=part["document_url"], kind="pdf")  # Mistral's document_url


def _chat_tool_call(call: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    _known(notes, "tool call", call, "id type function index")
    arguments = call["function"].get("arguments") or "{}"
    return {"type": "tool_call", "id": call["id"], "name": call["function"]["name"],
            "arguments": json.loads(arguments) if isinstance(arguments, str) else arguments}


# --- Anthropic Messages ---------------------------------------------------------------------------

_ANTHROPIC_KEYS = "model messages system tools tool_choice output_config max_tokens temperature top_p stop_sequences stream"


def _anthropic(body: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    _known(notes, "option", body, _ANTHROPIC_KEYS)
    _known(notes, "option:output_config", body.get("output_config", {}), "format")
    system = body.get("system")
    system_texts = [] if system is None else [_block_texts(system, notes, "system block")]
    turns: list[Turn] = []
    for message in body["messages"]:
        _known(notes, "message", message, "role content")
        if message["role"] == "system":
            notes.append("system message mid-conversation")
            continue
        content = message["content"]
        blocks = [_text(content)] if isinstance(content, str) else content
        for block in blocks:  # a user turn holding results and text: the results first
            if block["type"] == "tool_result":
                _known(notes, "tool_result", block, "type tool_use_id content", is_error=False)
                turns.append(("tool", [{"type": "tool_result", "id": block["tool_use_id"], "name": None,
                                        "text": _block_texts(block.get("content", ""), notes, "tool result block")}]))
        parts = [_anthropic_part(b, notes) for b in blocks if b["type"] != "tool_result"]
        turns.append((message["role"], [part for part in parts if part is not None]))
    tools = []
    for tool in body.get("tools") or []:
        _known(notes, f"tool:{tool.get('type', 'custom')}", tool, "name description input_schema", type="custom")
        if tool.get("type", "custom") == "custom":
            tools.append(_tool(tool["name"], tool.get("description"), tool.get("input_schema")))
    fmt = (body.get("output_config") or {}).get("format")
    if fmt is not None:
        _known(notes, "output_config.format", fmt, "type schema")
    return _call(system_texts, turns, tools, tool_choice=_choice(body.get("tool_choice"), notes),
                 response_format=None if fmt is None else {"type": "json_schema", "name": None, "schema": fmt["schema"]},
                 max_tokens=body.get("max_tokens"), temperature=body.get("temperature"), top_p=body.get("top_p"),
                 stop=body.get("stop_sequences"), stream=body.get("stream"))


def _anthropic_part(block: dict[str, Any], notes: list[str]) -> dict[str, Any] | None:
    kind = block["type"]
    if kind not in ("text", "tool_use", "image", "document"):
        notes.append(f"{kind} block")  # thinking, server tools and their results, ...
        return None
    _known(notes, f"{kind} block", block, {"text": "type text", "tool_use": "type id name input"}.get(kind, "type source"))
    if kind == "text":
        return _text(block["text"])
    if kind == "tool_use":
        return {"type": "tool_call", "id": block["id"], "name": block["name"], "arguments": block["input"]}
    source = block.get("source", {})
    if source.get("type") == "url":
        document = kind == "document"
        return _file(notes, "application/pdf" if document else None, url=source["url"], kind="pdf" if document else "image")
    if source.get("type") == "base64":
        return _file(notes, source["media_type"], data=source["data"])
    notes.append(f"{kind} block source:{source.get('type')}")  # text documents, uploaded files
    return None


# --- Gemini generateContent / streamGenerateContent ---------------------------------------------

def _g(mapping: dict[str, Any], camel: str, default: Any = None) -> Any:
    """A Gemini field by its camelCase name or its snake_case spelling."""
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
    return mapping.get(camel, mapping.get(snake, default))


def _lower_types(schema: Any) -> Any:
    """Gemini's OpenAPI-style schemas spell types in upper case ("OBJECT")."""
    if isinstance(schema, dict):
        return {k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_lower_types(item) for item in schema]
    return schema


_GENERATION_KEYS = "maxOutputTokens temperature topP stopSequences responseMimeType responseJsonSchema responseSchema"


def _gemini(body: dict[str, Any], notes: list[str], *, stream: bool) -> dict[str, Any]:
    _known(notes, "option", body, "contents systemInstruction tools toolConfig generationConfig")
    instruction = _g(body, "systemInstruction")
    system = [] if instruction is None else [
        instruction if isinstance(instruction, str) else "\n\n".join(p["text"] for p in instruction["parts"])]
    turns: list[Turn] = []
    for content in body["contents"]:
        role = "assistant" if content.get("role") == "model" else "user"
        parts = content["parts"]
        for part in parts:
            response = _g(part, "functionResponse")
            if response is not None:
                _known(notes, "functionResponse", response, "id name response")
                turns.append(("tool", [{"type": "tool_result", "id": response.get("id"), "name": response["name"],
                                        "text": _gemini_result(response.get("response", {}), notes)}]))
        kept = [_gemini_part(p, notes) for p in parts if _g(p, "functionResponse") is None]
        turns.append((role, [part for part in kept if part is not None]))
    declarations = []
    for tool in body.get("tools") or []:
        _known(notes, "builtin tool", tool, "functionDeclarations")
        declarations += _g(tool, "functionDeclarations", [])
    for declaration in declarations:
        _known(notes, "function declaration", declaration, "name description parameters parametersJsonSchema")
    tools = [_tool(d["name"], d.get("description"), _g(d, "parametersJsonSchema", _lower_types(d.get("parameters"))))
             for d in declarations]
    config = _g(body, "generationConfig", {})
    _known(notes, "option:generationConfig", config, _GENERATION_KEYS, responseModalities=["TEXT"], response_modalities=["TEXT"])
    response_format = None
    if _g(config, "responseMimeType") == "application/json":
        schema = _g(config, "responseJsonSchema", _lower_types(_g(config, "responseSchema")))
        response_format = {"type": "json_object"} if schema is None else {"type": "json_schema", "name": None, "schema": schema}
    tool_config = _g(body, "toolConfig", {})
    _known(notes, "option:toolConfig", tool_config, "functionCallingConfig")
    calling = _g(tool_config, "functionCallingConfig", {})
    return _call(system, turns, tools, tool_choice=_gemini_choice(calling, [d["name"] for d in declarations], notes),
                 response_format=response_format, max_tokens=_g(config, "maxOutputTokens"),
                 temperature=config.get("temperature"), top_p=_g(config, "topP"), stop=_g(config, "stopSequences"),
                 stream=stream)


def _gemini_choice(calling: dict[str, Any], declared: list[str], notes: list[str]) -> Any:
    mode = calling.get("mode")
    if mode is None:
        return None
    if mode.upper() in ("AUTO", "NONE"):
        return mode.lower()
    allowed = _g(calling, "allowedFunctionNames", [])
    if mode.upper() == "ANY" and len(allowed) == 1:
        return {"name": allowed[0]}
    if mode.upper() == "ANY" and (not allowed or sorted(allowed) == sorted(declared)):
        return "required"
    notes.append(f"tool_choice mode:{mode}" if mode.upper() != "ANY" else "tool_choice restricted to a subset of the tools")
    return None


def _gemini_part(part: dict[str, Any], notes: list[str]) -> dict[str, Any] | None:
    _known(notes, "part", part, "text inlineData fileData functionCall")
    if part.get("thought"):
        return None  # reasoning in history: noted above
    if "text" in part:
        return _text(part["text"])
    call = _g(part, "functionCall")
    if call is not None:
        _known(notes, "functionCall", call, "id name args")
        return {"type": "tool_call", "id": call.get("id"), "name": call["name"], "arguments": call.get("args", {})}
    inline = _g(part, "inlineData")
    if inline is not None:
        return _file(notes, _g(inline, "mimeType"), data=inline["data"])
    remote = _g(part, "fileData")
    if remote is not None:
        return _file(notes, _g(remote, "mimeType"), url=_g(remote, "fileUri"))
    return None  # executable code, code results, ...: noted above


def _gemini_result(response: dict[str, Any], notes: list[str]) -> str:
    """A functionResponse's text: the value of a lone output/return_value/content/result/error key,
    else the whole object; compact JSON unless a string."""
    if len(response) == 1 and next(iter(response)) in ("output", "return_value", "content", "result", "error"):
        if "error" in response:
            notes.append("tool_result is_error")
        value = next(iter(response.values()))
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), sort_keys=True)
    return json.dumps(response, separators=(",", ":"), sort_keys=True)
