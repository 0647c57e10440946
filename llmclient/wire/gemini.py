"""Gemini generateContent / streamGenerateContent: requests from a `Request`, and their answers.

A request is `contents` (turns "user" / "model"; tool results are "user" turns), the system
text in `systemInstruction`, tools as `functionDeclarations`, and the sampling settings in
`generationConfig`, which carries only what the call set. Field names are the REST reference's
camelCase (Gemini also reads snake_case; options given that way are compared in camelCase).

In answers, parts with `thought: true` are reasoning. Only `functionCall` parts are client tool calls:
`executableCode`, `codeExecutionResult` and the built-in `toolCall`/`toolResponse` parts run on
Google's side. A stream is a sequence of whole GenerateContentResponse chunks; usage is the last
chunk's `usageMetadata` (cumulative).

A prompt Gemini refused (`promptFeedback.blockReason`, no candidates) is an answer filtered by
the provider: finish_reason "content_filter", raw_finish_reason the block reason (a 200 answer,
not a ContentFilterError). An answer with no candidate and no block reason is malformed, as is a
text part whose text is null.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llmclient.errors import InvalidRequestError, UnsupportedCapabilityError
from llmclient.types import FilePart, FinishReason, Message, StreamEvent, TextPart, ToolCall, ToolCallDelta, Usage
from llmclient.wire import (
    Decoded,
    FileData,
    StreamErrorEvent,
    WireFormatError,
    WireRequest,
    file_text,
    first_of,
    int_at,
    offered_tools,
    parse_arguments,
    parse_json,
    check_subset,
    text_at,
    thinking_budget,
    usage_object,
    with_options,
)
from llmclient.wire.sse import SSEEvent

if TYPE_CHECKING:
    from llmclient.providers import ProviderSpec
    from llmclient.request import Request, ResponseFormat, Tool

FINISH_REASONS: Mapping[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MALFORMED_FUNCTION_CALL": "other",
    "UNEXPECTED_TOOL_CALL": "other",
}


class _Parts:
    """Text, reasoning and function calls of candidate 0, accumulated over one or more chunks."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: list[ToolCall] = []
        self.finish: str | None = None
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None
        self.blocked: str | None = None  # promptFeedback.blockReason: the prompt was refused
        self.answered = False  # a candidate 0 came
        self.said_text = False
        self.searches: dict[str, None] = {}  # Google Search queries run for the answer (grounding), in order

    def add(self, body: Any) -> list[StreamEvent]:
        if not isinstance(body, dict):
            raise WireFormatError(f"expected a JSON object, got {type(body).__name__}")
        if "error" in body and "candidates" not in body:
            raise StreamErrorEvent(body)
        self.model = body.get("modelVersion") or self.model
        self.usage = usage_object(body, "usageMetadata") or self.usage
        block = (body.get("promptFeedback") or {}).get("blockReason")
        if block:
            self.blocked = str(block)
        events: list[StreamEvent] = []
        candidates = body.get("candidates") or []
        candidate = next((c for c in candidates if c.get("index", 0) == 0), None)
        if candidate is None:
            return events
        self.answered = True
        for part in (candidate.get("content") or {}).get("parts") or []:
            if "text" in part and part.get("thought"):
                self.reasoning.append(text_at(part, "text", "a thought part"))
                events.append(StreamEvent(kind="reasoning", text=part["text"]))
            elif "text" in part:
                self.text.append(text_at(part, "text", "a text part"))
                self.said_text = True
                if part["text"]:
                    events.append(StreamEvent(kind="text", text=part["text"]))
            elif "functionCall" in part:
                events.append(self._call(part["functionCall"]))
        self.finish = candidate.get("finishReason") or self.finish
        grounding = candidate.get("groundingMetadata")
        if isinstance(grounding, dict):  # a stream repeats it: the queries are counted once each
            queries = grounding.get("webSearchQueries")
            if queries is not None and not isinstance(queries, list):
                raise WireFormatError(f"groundingMetadata.webSearchQueries is {type(queries).__name__}, not a list")
            self.searches.update(dict.fromkeys(str(query) for query in queries or ()))
        return events

    def _call(self, call: dict[str, Any]) -> StreamEvent:
        index = len(self.calls)
        name = call["name"]
        arguments = parse_arguments(name, call.get("args"))
        self.calls.append(ToolCall(id=call.get("id") or synthetic_id(index, name), name=name, arguments=arguments))
        delta = ToolCallDelta(index=index, id=self.calls[-1].id, name=name, arguments=json.dumps(arguments))
        return StreamEvent(kind="tool_call", tool_call=delta)

    def decoded(self) -> Decoded:
        if not self.answered and self.blocked is None:
            raise WireFormatError("the answer has no candidate and no promptFeedback.blockReason")
        blocked = self.blocked is not None and self.finish is None
        return Decoded(
            text="".join(self.text),
            reasoning="".join(self.reasoning),
            tool_calls=self.calls,
            raw_finish_reason=self.blocked if blocked else self.finish,
            raw_usage=self.usage,
            model=self.model,
            filtered=blocked,
            said_text=self.said_text,
            # Grounding with Google Search is billed per grounded prompt (Gemini 2.x) or per search
            # query (Gemini 3): both are counted, the price table charges the one its row prices.
            tool_uses={"web_search": len(self.searches), "grounded_prompt": 1} if self.searches else {},
        )


def decode(body: Any) -> Decoded:
    parts = _Parts()
    parts.add(body)  # raises on an error object first
    return parts.decoded()


class StreamDecoder:
    done = False  # a Gemini stream has no end marker: it ends with the body

    def __init__(self) -> None:
        self.chunks: list[Any] = []
        self._parts = _Parts()

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        chunk = parse_json(event.data, "a stream chunk")
        self.chunks.append(chunk)
        return self._parts.add(chunk)

    def finish(self) -> Decoded:
        if self._parts.finish is None and self._parts.blocked is None:
            raise WireFormatError("the stream ended before a chunk with a finishReason")
        return self._parts.decoded()


# --- tool-call ids ---------------------------------------------------------------------------

_SYNTHETIC_ID = re.compile(r"call_\d+_.+")


def synthetic_id(index: int, name: str) -> str:
    """The id of a call Gemini sent without one (models before Gemini 3 send none): made from its
    place and name, so replaying the same body gives the same id."""
    return f"call_{index}_{name}"


def is_synthetic(call_id: str) -> bool:
    """Whether `call_id` is one `synthetic_id` made: Gemini never saw it, so it is not sent back."""
    return _SYNTHETIC_ID.fullmatch(call_id) is not None


# --- requests --------------------------------------------------------------------------------

# Gemini 3 refuses a step of the current turn whose first function call comes back without the
# thought signature it was sent with. The decoder keeps none, so each step's first call carries
# the value Google documents for calls it did not sign (base64: the field is bytes); earlier
# models accept it too, so a model alias is never a question.
_NO_SIGNATURE = base64.b64encode(b"skip_thought_signature_validator").decode()


def encode(request: Request, spec: ProviderSpec, model_id: str, *, stream: bool) -> WireRequest:
    """A generateContent request; the model is named in the path, not the body."""
    body: dict[str, Any] = {"contents": _contents(request.messages, spec.takes_tool_result_files(model_id))}
    if request.system is not None and model_id.startswith("gemma-"):
        # Gemma on the Gemini API refuses systemInstruction ("Developer instruction is not
        # enabled"): the instructions open the first user turn, as Google's ADK sends them.
        first = next((c for c in body["contents"] if c["role"] == "user"), None)
        if first is None:
            body["contents"].insert(0, first := {"role": "user", "parts": []})
        first["parts"].insert(0, {"text": request.system})
    elif request.system is not None:
        body["systemInstruction"] = {"parts": [{"text": request.system}]}
    tools, choice = offered_tools(request, spec.named_tool_choice)
    if tools and request.response_format is not None and re.match(r"gemini-[12]\.", model_id):
        # 400 "Function calling with a response mime type: 'application/json' is unsupported" (JSON
        # mode drops its mime type for tools, `json_mode.for_wire`; a schema cannot be dropped).
        raise UnsupportedCapabilityError(f"{model_id} cannot hold its answer to JSON output while it is offered tools: "
                                         f"ask for the schema in a call without tools, or use structured()")
    if tools:  # a toolConfig alone is refused: "Function calling config is set without function_declarations"
        body["tools"] = [{"functionDeclarations": [_declaration(tool) for tool in tools]}]
        if choice is not None:
            body["toolConfig"] = {"functionCallingConfig": _calling_config(choice)}
    options = dict(request.options)
    budget = thinking_budget(options, "Gemini")
    options = _camel_keys(options, "provider options")
    extra = options.pop("generationConfig", {})
    if not isinstance(extra, Mapping):
        raise InvalidRequestError(f"the generationConfig option must be an object, got {type(extra).__name__}")
    # Gemini keeps thinking, seed, topK, ... in generationConfig next to what the call's own
    # arguments set there: the option's keys join ours, and may not replace them.
    generation = with_options(_generation_config(request), _camel_keys(extra, "generationConfig"))
    if budget is not None:  # the thought summaries come back as parts marked "thought" (reasoning)
        thinking = {"thinkingBudget": budget, **({"includeThoughts": True} if budget else {})}
        generation = with_options(generation, {"thinkingConfig": thinking})
    if generation:
        body["generationConfig"] = generation
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return WireRequest(f"/models/{model_id}:{method}", with_options(body, options))


def _camel_keys(options: Mapping[str, Any], what: str) -> dict[str, Any]:
    """`options` with snake_case keys in camelCase, the spelling the wire sets its own keys in,
    so `generation_config` clashes with `generationConfig` as it does on Google's side."""
    camel = {re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key): value for key, value in options.items()}
    if len(camel) < len(options):
        raise InvalidRequestError(f"{what} name the same field twice (in snake_case and camelCase): {sorted(options)}")
    return camel


def _generation_config(request: Request) -> dict[str, Any]:
    """Only what the call set: an unset field is the model's own default, not ours."""
    config: dict[str, Any] = {}
    for key, value in (("maxOutputTokens", request.max_tokens), ("temperature", request.temperature),
                       ("topP", request.top_p), ("stopSequences", request.stop)):
        if value is not None:
            config[key] = value
    if request.response_format is not None:
        config.update(_response_format(request.response_format))
    return config


def _response_format(wanted: ResponseFormat) -> dict[str, Any]:
    """JSON output. Gemini has no schema name (the name only labels it) and always holds the
    output to the schema, which is what `strict` asks for."""
    config: dict[str, Any] = {"responseMimeType": "application/json"}
    if wanted.type == "json_schema" and wanted.json_schema is not None:
        config["responseJsonSchema"] = wanted.json_schema  # JSON Schema as given, unlike responseSchema
    return config


def _declaration(tool: Tool) -> dict[str, Any]:
    # parametersJsonSchema takes JSON Schema as it is; `parameters` is an OpenAPI subset that
    # loses additionalProperties, $defs and $ref.
    declaration: dict[str, Any] = {"name": tool.name, "parametersJsonSchema": tool.parameters}
    if tool.description:
        declaration["description"] = tool.description
    return declaration


def _calling_config(choice: str) -> dict[str, Any]:
    modes = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
    if choice in modes:
        return {"mode": modes[choice]}
    return {"mode": "ANY", "allowedFunctionNames": [choice]}


def _contents(messages: list[Message], files_in_results: bool) -> list[dict[str, Any]]:
    """The turns. System messages are in systemInstruction. Consecutive messages of one role are
    one content, and consecutive tool results one "user" content holding only them: Gemini ends a
    function-calling turn at that content and refuses other parts beside the responses, so a user
    message after the results is a content of its own. A content without parts gets an empty
    text, as the official clients send for an empty model turn or a call of instructions only."""
    contents: list[dict[str, Any]] = []
    roles: list[str] = []  # each content's message role: "tool" results stay apart from "user" text
    names: dict[str, str] = {}  # call id -> tool name, for results that do not say their name
    for message in messages:
        if message.role == "system":
            if message.files:
                raise UnsupportedCapabilityError("Gemini's system instruction is text only; attach files to a user message")
            continue
        if message.role == "tool":
            parts = [_function_response(message, names, files_in_results)]
        elif message.role == "assistant":
            names.update((call.id, call.name) for call in message.tool_calls)
            calls = [_function_call(call) for call in message.tool_calls]
            if calls:
                calls[0]["thoughtSignature"] = _NO_SIGNATURE
            parts = _parts(message) + calls
        else:
            parts = _parts(message)
        if roles and roles[-1] == message.role:
            contents[-1]["parts"] += parts
        else:
            roles.append(message.role)
            contents.append({"role": "model" if message.role == "assistant" else "user", "parts": parts})
    for content in contents:
        content["parts"] = content["parts"] or [{"text": ""}]
    return contents or [{"role": "user", "parts": [{"text": ""}]}]


def _parts(message: Message) -> list[dict[str, Any]]:
    if isinstance(message.content, str):
        return [{"text": message.content}] if message.content else []
    return [_text_or_file(part) for part in message.content if not (isinstance(part, TextPart) and not part.text)]


def _text_or_file(part: TextPart | FilePart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"text": part.text}  # Gemini caches prompt prefixes itself: `cache` has no marker here
    if part.is_text:
        return {"text": file_text(part)}
    if part.url is not None:
        return {"fileData": {"mimeType": part.media_type, "fileUri": part.url}}
    return {"inlineData": {"mimeType": part.media_type, "data": FileData(part)}}


def _function_call(call: ToolCall) -> dict[str, Any]:
    function: dict[str, Any] = {"name": call.name, "args": call.arguments}
    if not is_synthetic(call.id):
        function["id"] = call.id
    return {"functionCall": function}


def _function_response(message: Message, names: Mapping[str, str], files_allowed: bool) -> dict[str, Any]:
    """A tool result. Its text is the value of `result`, one of the keys Google documents for a
    function's output, kept as the text it is, so string and JSON results reach the model as sent.
    Files go in the response's own `parts` (Gemini 3), inline only: the Gemini API takes no
    URIs there."""
    call_id = message.tool_call_id or ""
    name = message.name or names.get(call_id)
    if name is None:
        raise InvalidRequestError(f"the tool result for call {call_id!r} needs the tool's name: Gemini matches "
                                  f"results to calls by name (no earlier assistant turn made that call)")
    texts = [message.text] if message.text else []
    blobs: list[dict[str, Any]] = []
    for part in message.files:
        if part.is_text:
            texts.append(file_text(part))
        elif not files_allowed or part.url is not None:
            where = "by URL" if files_allowed else "inside a tool result on this model"
            raise UnsupportedCapabilityError(f"Gemini takes no {part.media_type} file {where} ({part.name}); "
                                             f"send it in a user message")
        else:
            blobs.append({"inlineData": {"mimeType": part.media_type, "data": FileData(part)}})
    response: dict[str, Any] = {"name": name, "response": {"result": "\n\n".join(texts)}}
    if call_id and not is_synthetic(call_id):
        response["id"] = call_id
    if blobs:
        response["parts"] = blobs
    return {"functionResponse": response}


# --- errors ----------------------------------------------------------------------------------

_ERROR_STATUSES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                   429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def error_body(status: int, message: str, error_type: str | None,
               retry_after: float | None) -> tuple[dict[str, Any], dict[str, str]]:
    """Google's error answer: `{"error": {"code", "message", "status"}}`; `error_type` replaces
    the status name. Gemini sends no Retry-After header: the wait is a RetryInfo detail."""
    fallback = "UNAVAILABLE" if status >= 500 else "FAILED_PRECONDITION"
    error: dict[str, Any] = {"code": status, "message": message, "status": error_type or _ERROR_STATUSES.get(status, fallback)}
    if retry_after is not None:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after:g}s"}]
    return {"error": error}, {}


def usage(raw: dict[str, Any]) -> Usage:
    """Gemini usageMetadata: the billed prompt is promptTokenCount + toolUsePromptTokenCount;
    billed output is candidatesTokenCount + thoughtsTokenCount (thoughts are not in candidates)."""
    thoughts = first_of(int_at(raw, "thoughtsTokenCount"))
    prompt = first_of(int_at(raw, "promptTokenCount")) + first_of(int_at(raw, "toolUsePromptTokenCount"))
    cached = first_of(int_at(raw, "cachedContentTokenCount"))
    check_subset(cached, prompt, "cachedContentTokenCount above the prompt")
    return Usage(input_tokens=prompt, output_tokens=first_of(int_at(raw, "candidatesTokenCount")) + thoughts,
                 cache_read_tokens=cached, reasoning_tokens=thoughts)
