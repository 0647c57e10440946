"""count_tokens against real recorded calls: for every text-only successful call to an OpenAI model
in ../shared/reference-traffic (provider openai or azure, or openrouter with an `openai/...` model;
HTTP 200; no tools, files, built-in tools or structured output; input usage reported), the
messages of the recorded REQUEST body are counted offline and compared with the prompt tokens the
provider reported for that very request (`usage.input_tokens` of its expected.json, computed from
the response body by the corpus's own conversion script). No network: tiktoken reads encoding
files already on disk.

Run directly for the table: `python -m tests.test_tokens_traffic`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmclient.tokens import count_tokens

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("LLMCLIENT_REFERENCE_TRAFFIC", REPO.parent / "shared" / "reference-traffic"))
FLOOR = 0.95
# What a call must not have used to count as text-only (the corpus README's feature tags).
NOT_TEXT = {"tool_call", "image_input", "pdf_input", "document_input", "audio_input", "builtin_tool",
            "structured_output", "error"}


@dataclass
class Row:
    cassette: str
    model: str
    ours: int
    reported: int
    exact: bool

    @property
    def diff(self) -> int:
        return self.ours - self.reported


def _model(provider: str, body: dict[str, Any]) -> str | None:
    model = body.get("model")
    if not isinstance(model, str):
        return None
    if provider in ("openai", "azure"):
        return f"{provider}/{model}"
    if provider == "openrouter" and model.startswith("openai/"):
        return f"openrouter/{model}"
    return None


def _messages(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The recorded messages in llmclient's input form: a `developer` turn is its system turn,
    a text part is {"type": "text", "text"} (a recorded cache_control marker is not tokens).
    None when a message holds anything but text."""
    messages = []
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, list):
            if any(not isinstance(part, dict) or part.get("type") != "text" for part in content):
                return None
            content = [{"type": "text", "text": part["text"]} for part in content]
        elif not isinstance(content, str):
            return None
        if set(message) - {"role", "content"}:
            return None
        role = "system" if message["role"] == "developer" else message["role"]
        messages.append({"role": role, "content": content})
    return messages


def cases() -> list[tuple[str, str, list[dict[str, Any]], int]]:
    """(cassette, model, messages, reported input tokens) of every text-only OpenAI-model call."""
    found = []
    for expected_file in sorted(CORPUS.glob("*/*.expected.json")):
        expected = json.loads(expected_file.read_text())
        call = expected.get("call") or {}
        usage = expected.get("usage") or {}
        if (expected["status"] != 200 or NOT_TEXT & set(expected["tags"]) or call.get("tools")
                or call.get("response_format") or usage.get("input_tokens") is None):
            continue
        cassette = expected_file.with_name(expected_file.name.replace(".expected.json", ".yaml"))
        request = yaml.safe_load(cassette.read_text())["interactions"][0]["request"]
        body = json.loads(request["body"]) if request["body"] else {}
        model = _model(expected["provider"], body)
        if model is None or body.get("tools") or body.get("response_format"):
            continue
        messages = _messages(body)
        if messages is None:
            continue
        found.append((f"{expected['provider']}/{cassette.stem}", model, messages, usage["input_tokens"]))
    return found


def rows() -> list[Row]:
    out = []
    for cassette, model, messages, reported in cases():
        counted = count_tokens(messages, model)
        out.append(Row(cassette, model, counted.tokens, reported, counted.exact))
    return out


def table(found: list[Row]) -> str:
    lines = [f"{'cassette':<84} {'model':<30} {'ours':>6} {'reported':>8} {'diff':>5}"]
    lines += [f"{r.cassette:<84} {r.model:<30} {r.ours:>6} {r.reported:>8} {r.diff:>+5}"
              + ("" if r.exact else " (estimate)") for r in found]
    equal = sum(r.diff == 0 for r in found)
    lines.append(f"equal on {equal} of {len(found)} ({equal / max(len(found), 1):.1%}; floor {FLOOR:.0%})")
    return "\n".join(lines)


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"the shared reference traffic is not at {CORPUS} "
                                                 f"(set LLMCLIENT_REFERENCE_TRAFFIC to where it is)")
def test_offline_counts_equal_the_prompt_tokens_openai_reported() -> None:
    found = rows()
    print("\n" + table(found))
    # The corpus holds 40 such calls (gpt-4o, gpt-4o-mini, gpt-4.1-mini, gpt-4.5-preview, o1-mini,
    # o3-mini, gpt-5, gpt-5-mini, gpt-5.6-sol; azure and openrouter too): a filter that lets none
    # through must not pass.
    assert len(found) >= 35, table(found)
    assert {r.model.split("/")[0] for r in found} == {"openai", "azure", "openrouter"}
    assert all(r.exact for r in found), table(found)  # text only: every count is tiktoken's
    equal = sum(r.diff == 0 for r in found)
    assert equal >= FLOOR * len(found), table(found)


if __name__ == "__main__":
    print(table(rows()))
