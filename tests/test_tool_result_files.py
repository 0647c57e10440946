"""Files inside tool results, on each wire: inside the result where the provider takes them
(Anthropic tool_result blocks, Gemini 3 functionResponse.parts), else after the results in a user
turn (chat-completions wire, Gemini 2.5) — the shapes real clients send in
../shared/reference-traffic/*/test_multimodal_tool_returns__* (Gemini in the REST API's camelCase).
The HTTP request is captured below httpx's transport (where vcrpy also sits), so nothing reaches
a socket."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmclient import Client, Message, ToolCall, UnsupportedCapabilityError

PNG = (Path(__file__).resolve().parent.parent / "llmclient" / "conformance" / "inputs" / "tiny.png").read_bytes()
PNG_B64 = base64.b64encode(PNG).decode()
CALL = ToolCall(id="call_1", name="get_chart", arguments={})

ANSWERS: dict[str, dict[str, Any]] = {
    "openai": {"id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": "A bar chart."}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}},
    "anthropic": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                  "content": [{"type": "text", "text": "A bar chart."}], "stop_reason": "end_turn",
                  "usage": {"input_tokens": 9, "output_tokens": 3}},
    "gemini": {"candidates": [{"content": {"role": "model", "parts": [{"text": "A bar chart."}]}, "finishReason": "STOP"}],
               "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 3, "totalTokenCount": 12}},
}


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []

    def answer(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.read()))
        wire = "anthropic" if "anthropic" in request.url.host else "gemini" if "googleapis" in request.url.host else "openai"
        return httpx.Response(200, json=ANSWERS[wire], request=request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", answer)
    return bodies


def conversation() -> list[Message]:
    return [Message.user("Show me the chart."), Message.assistant("", [CALL]),
            Message.tool_result(CALL, "Here it is.", files=[PNG])]


def test_anthropic_takes_the_image_inside_the_tool_result(sent: list[dict[str, Any]]) -> None:
    Client("anthropic/claude-sonnet-4-5", api_key="k").complete(conversation())
    result = sent[0]["messages"][-1]["content"][0]
    assert (result["type"], result["tool_use_id"]) == ("tool_result", "call_1")
    assert result["content"] == [{"type": "text", "text": "Here it is."},
                                 {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}}]


def test_chat_completions_wire_gets_the_files_in_a_user_turn_after_the_results(sent: list[dict[str, Any]]) -> None:
    Client("openai/gpt-4o-mini", api_key="k").complete(conversation())
    tool, user = sent[0]["messages"][-2:]
    assert (tool["role"], tool["tool_call_id"], tool["content"]) == ("tool", "call_1", "Here it is.\nSee file bytes.")
    assert user == {"role": "user", "content": [{"type": "text", "text": "This is file bytes:"},
                                                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}}]}


def test_gemini_3_nests_the_file_in_the_function_response(sent: list[dict[str, Any]]) -> None:
    Client("gemini/gemini-3.1-pro-preview", api_key="k").complete(conversation())
    response = sent[0]["contents"][-1]["parts"][0]["functionResponse"]
    assert response["name"] == "get_chart"
    assert response["parts"] == [{"inlineData": {"data": PNG_B64, "mimeType": "image/png"}}]


def test_gemini_2_5_gets_the_file_in_the_next_user_turn(sent: list[dict[str, Any]]) -> None:
    Client("gemini/gemini-2.5-flash", api_key="k").complete(conversation())
    parts = [part for content in sent[0]["contents"][2:] for part in content["parts"]]
    assert "functionResponse" in parts[0] and "parts" not in parts[0]["functionResponse"]
    assert {"text": "This is file bytes:"} in parts
    assert {"inlineData": {"mimeType": "image/png", "data": PNG_B64}} in parts


def test_a_provider_without_vision_refuses_an_image_in_a_tool_result(sent: list[dict[str, Any]]) -> None:
    with pytest.raises(UnsupportedCapabilityError, match="does not declare 'vision'"):
        Client("deepseek/deepseek-chat", api_key="k").complete(conversation())
    assert sent == []
