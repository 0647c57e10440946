"""litellm's keywords for one call: messages and tools in the OpenAI format litellm translates
from, plus the per-provider adjustments its translation needs."""

from __future__ import annotations

from typing import Any

from llmclient.errors import InvalidRequestError
from llmclient.providers import ProviderSpec
from llmclient.request import Request, Tool
from llmclient.wire import openai as openai_wire


# litellm routes whose translation silently drops a tool_choice naming one function (Mistral's
# API has no such form): forcing a named tool there is "required" with only that tool offered.
_NO_NAMED_TOOL_CHOICE = frozenset({"mistral"})


def _tools_and_choice(request: Request, spec: ProviderSpec) -> tuple[list[Tool], str | dict[str, Any] | None]:
    choice = request.tool_choice
    if choice is None or choice in ("auto", "none", "required"):
        return list(request.tools), choice
    if spec.litellm_prefix in _NO_NAMED_TOOL_CHOICE:
        return [tool for tool in request.tools if tool.name == choice], "required"
    return list(request.tools), {"type": "function", "function": {"name": choice}}


def _takes_cache_markers(spec: ProviderSpec) -> bool:
    """Explicit cache breakpoints go to Anthropic (and through OpenRouter, which forwards them);
    other providers cache on their own and some reject the field, so it is not sent to them."""
    return spec.wire == "anthropic" or spec.litellm_prefix == "openrouter"


def litellm_arguments(
    request: Request,
    spec: ProviderSpec,
    model_id: str,
    base_url: str,
    timeout: float | None,
    *,
    stream: bool,
) -> dict[str, Any]:
    """litellm's keywords for one call; messages and tools in the OpenAI format it translates from."""
    kwargs: dict[str, Any] = {
        "model": f"{spec.litellm_prefix}/{model_id}",
        "messages": [openai_wire.encode_message(message, cache_markers=_takes_cache_markers(spec))
                     for message in request.messages],
        "api_base": base_url,
        "max_retries": 0,  # our retry layer is the only one
        "stream": stream,
        # litellm routes any call with tools through its MCP gateway check, which imports the
        # optional `mcp` package and fails without it; our tools are never MCP tools.
        "_skip_mcp_handler": True,
    }
    if stream and spec.wire == "openai":
        kwargs["stream_options"] = {"include_usage": True}  # else OpenAI-compatible streams report no usage
    if timeout is not None:
        kwargs["timeout"] = timeout
    tools, tool_choice = _tools_and_choice(request, spec)
    if tools:
        kwargs["tools"] = [openai_wire.encode_tool(tool) for tool in tools]
    if tool_choice is not None:
        kwargs["tool_choice"] = tool_choice
    if request.max_tokens is not None:
        kwargs["max_tokens"] = request.max_tokens
    if request.temperature is not None:
        kwargs["temperature"] = request.temperature
    clashes = set(request.options) & (set(kwargs) | {"api_key", "client"})
    if clashes:
        raise InvalidRequestError(f"provider options may not set {sorted(clashes)}: use the Client's own arguments")
    kwargs.update(request.options)
    return kwargs
