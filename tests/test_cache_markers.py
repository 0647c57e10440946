"""Explicit cache breakpoints: sent as Anthropic cache_control (directly or through OpenRouter),
left out for providers that cache on their own."""

from __future__ import annotations

import pytest

from llmclient import Message, Request
from llmclient.backend import litellm_arguments
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
