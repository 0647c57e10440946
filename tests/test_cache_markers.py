"""Explicit cache breakpoints: sent as Anthropic cache_control (directly or through OpenRouter),
left out for providers that cache on their own."""

from __future__ import annotations

import pytest

from llmclient import Message, Request
from llmclient.litellm_args import litellm_arguments
from llmclient.providers import REGISTRY

HISTORY = [Message.system("You are a reference desk.", cache="1h"), Message.user("Capital of France?")]


@pytest.mark.parametrize(("provider", "expected"), [
    ("anthropic", {"type": "ephemeral", "ttl": "1h"}),
    ("openrouter", {"type": "ephemeral", "ttl": "1h"}),
    ("openai", None),
    ("deepseek", None),
])
def test_cache_breakpoints_only_where_the_provider_takes_them(provider: str, expected: dict[str, str] | None) -> None:
    args = litellm_arguments(Request.build(HISTORY), REGISTRY[provider], "m", "https://x.example/v1", None, stream=False)
    block = args["messages"][0]["content"][0]
    assert block["text"] == "You are a reference desk."
    assert block.get("cache_control") == expected


def test_five_minute_breakpoint_has_no_ttl() -> None:
    request = Request.build([Message.system("Rules.", cache="5m"), Message.user("Hi")])
    args = litellm_arguments(request, REGISTRY["anthropic"], "m", "https://x.example", None, stream=False)
    assert args["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}


def test_a_plain_system_message_stays_a_string() -> None:
    assert Message.system("Rules.").content == "Rules."


def test_a_named_tool_choice_becomes_required_with_only_that_tool_for_mistral() -> None:
    # litellm's Mistral route drops a tool_choice object; Mistral's own form is "any" (litellm: "required")
    def get_weather(city: str) -> str:
        """Weather."""
        return city

    def get_time(city: str) -> str:
        """Time."""
        return city

    request = Request.build("Weather in Paris?", tools=[get_weather, get_time], tool_choice="get_weather")
    mistral = litellm_arguments(request, REGISTRY["mistral"], "m", "https://x.example/v1", None, stream=False)
    assert ([t["function"]["name"] for t in mistral["tools"]], mistral["tool_choice"]) == (["get_weather"], "required")
    openai = litellm_arguments(request, REGISTRY["openai"], "m", "https://x.example/v1", None, stream=False)
    assert len(openai["tools"]) == 2
    assert openai["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
