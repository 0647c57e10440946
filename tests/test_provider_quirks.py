"""Per-provider quirks of the request encoders, as ProviderSpec fields: explicit cache breakpoints
(Anthropic cache_control, directly or through OpenRouter; left out for providers that cache on
their own), Mistral's named tool_choice and its refusal of stream_options."""

from __future__ import annotations

from typing import Any

import pytest

from llmclient import Message, Request
from llmclient.providers import REGISTRY
from llmclient.wire import codec

HISTORY = [Message.system("You are a reference desk.", cache="1h"), Message.user("Capital of France?")]


def body(provider: str, request: Request) -> dict[str, Any]:
    spec = REGISTRY[provider]
    return codec(spec.wire).encode(request, spec, "m", stream=False).body


@pytest.mark.parametrize(("provider", "expected"), [
    ("anthropic", {"type": "ephemeral", "ttl": "1h"}),
    ("openrouter", {"type": "ephemeral", "ttl": "1h"}),
    ("openai", None),
])
def test_cache_breakpoints_only_where_the_provider_takes_them(provider: str, expected: dict[str, str] | None) -> None:
    sent = body(provider, Request.build(HISTORY))
    block = sent["system"][0] if provider == "anthropic" else sent["messages"][0]["content"][0]
    assert block["text"] == "You are a reference desk."
    assert block.get("cache_control") == expected


def test_five_minute_breakpoint_has_no_ttl() -> None:
    request = Request.build([Message.system("Rules.", cache="5m"), Message.user("Hi")])
    assert body("anthropic", request)["system"][0]["cache_control"] == {"type": "ephemeral"}


def test_a_plain_system_message_stays_a_string() -> None:
    assert Message.system("Rules.").content == "Rules."


def test_a_named_tool_choice_becomes_required_with_only_that_tool_for_mistral() -> None:
    # Mistral's tool_choice is "auto" | "none" | "any" | "required": it cannot name a function.
    def get_weather(city: str) -> str:
        """Weather."""
        return city

    def get_time(city: str) -> str:
        """Time."""
        return city

    request = Request.build("Weather in Paris?", tools=[get_weather, get_time], tool_choice="get_weather")
    mistral = body("mistral", request)
    assert ([t["function"]["name"] for t in mistral["tools"]], mistral["tool_choice"]) == (["get_weather"], "required")
    openai = body("openai", request)
    assert len(openai["tools"]) == 2
    assert openai["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


def test_stream_usage_is_asked_for_except_where_the_api_refuses_the_field() -> None:
    # Mistral answers stream_options with 422 extra_forbidden and sends usage in its last chunk
    # anyway; OpenAI and the other compatible servers report stream usage only when asked.
    def streamed(provider: str) -> dict[str, Any]:
        spec = REGISTRY[provider]
        return codec(spec.wire).encode(Request.build("Hi"), spec, "m", stream=True).body

    assert "stream_options" not in streamed("mistral") and streamed("mistral")["stream"] is True
    assert streamed("openai")["stream_options"] == {"include_usage": True}
    assert streamed("groq")["stream_options"] == {"include_usage": True}


def test_text_only_content_is_one_string_where_a_list_is_refused() -> None:
    # DeepSeek: 422 "invalid type: sequence, expected a string"; Groq: 400 "'messages.0' : for
    # 'role:system' ... must be a string". A text file or a cache-marked system prompt makes a list.
    request = Request.build([Message.system("Rules.", cache="5m"), Message.user("Hi")],
                            files=[b"notes: plain words"])
    for provider in ("deepseek", "groq"):
        sent = body(provider, request)["messages"]
        assert sent[0]["content"] == "Rules."
        assert sent[1]["content"] == 'Hi\n\n<file name="bytes">\nnotes: plain words\n</file>'
    assert body("openai", request)["messages"][0]["content"] == [{"type": "text", "text": "Rules."}]


def test_groq_answers_in_a_native_schema_only_on_the_models_that_have_it() -> None:
    # console.groq.com/docs/structured-outputs: json_schema on gpt-oss, Kimi K2 and Llama 4; other
    # models (llama-3.3-70b-versatile) answer 400, so they are asked through a forced tool.
    from llmclient.schema import choose_strategy

    groq = REGISTRY["groq"]
    assert choose_strategy(groq, None, "openai/gpt-oss-20b") == "native"
    assert choose_strategy(groq, None, "llama-3.3-70b-versatile") == "tool"
    assert choose_strategy(REGISTRY["openai"], None, "gpt-4o-mini") == "native"  # every OpenAI model


def test_mistral_gets_tool_call_ids_of_nine_letters_and_digits() -> None:
    # Mistral: 400 "Tool call id was call_... but must be a-z, A-Z, 0-9, with a length of 9". An
    # OpenAI id in the history (a fallback, a replay) is mapped; Mistral's own ids go as they are.
    from llmclient import ToolCall

    history = [Message.user("Weather?"),
               Message.assistant("", [ToolCall(id="call_Qv3dWb5Tn8yLp2KcR7mXs4Hf", name="w", arguments={}),
                                      ToolCall(id="3EpsLcLQ3", name="w", arguments={})]),
               Message(role="tool", content="sunny", tool_call_id="call_Qv3dWb5Tn8yLp2KcR7mXs4Hf", name="w"),
               Message(role="tool", content="rain", tool_call_id="3EpsLcLQ3", name="w")]
    sent = body("mistral", Request.build(history))["messages"]
    mapped, own = (call["id"] for call in sent[1]["tool_calls"])
    assert len(mapped) == 9 and mapped.isalnum() and own == "3EpsLcLQ3"
    assert [sent[2]["tool_call_id"], sent[3]["tool_call_id"]] == [mapped, own]  # each result still finds its call
    assert body("openai", Request.build(history))["messages"][1]["tool_calls"][0]["id"] == "call_Qv3dWb5Tn8yLp2KcR7mXs4Hf"
