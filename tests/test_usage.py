"""llmclient.wire.normalise_usage (each wire module's `usage`): raw provider usage -> Usage with one meaning for every provider.

Raw shapes follow the reference corpus (shared/reference-traffic/README.md, "Usage field
semantics"); every expected number is worked out by hand from those semantics in the comment."""

from __future__ import annotations

import json
import time

import pytest

from llmclient.assemble import Assembler, StreamAssembly
from llmclient.errors import UsageMissingWarning
from llmclient.providers import REGISTRY
from llmclient.types import Usage, UsageIteration
from llmclient.wire import normalise_usage as normalise

# (id, raw usage, (input, output, cache_read, cache_write, reasoning, total))
OPENAI = [
    ("plain", {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29}, (19, 10, 0, 0, 0, 29)),
    # prompt_tokens already includes the cached 1920; completion_tokens includes the 192 reasoning
    ("openai-cached-reasoning", {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
                                 "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
                                 "completion_tokens_details": {"reasoning_tokens": 192, "audio_tokens": 0}},
     (2006, 300, 1920, 0, 192, 2306)),
    ("deepseek-both-fields", {"prompt_tokens": 563, "completion_tokens": 116, "total_tokens": 679,
                              "prompt_cache_hit_tokens": 512, "prompt_cache_miss_tokens": 51,
                              "prompt_tokens_details": {"cached_tokens": 512}, "completion_tokens_details": {"reasoning_tokens": 60}},
     (563, 116, 512, 0, 60, 679)),
    ("deepseek-hit-only", {"prompt_tokens": 1024, "completion_tokens": 20, "prompt_cache_hit_tokens": 768,
                           "prompt_cache_miss_tokens": 256}, (1024, 20, 768, 0, 0, 1044)),
    ("mistral-num-cached", {"prompt_tokens": 2152, "completion_tokens": 31, "total_tokens": 2183, "num_cached_tokens": 2048},
     (2152, 31, 2048, 0, 0, 2183)),
    ("huggingface-cached", {"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55, "cached_tokens": 32},
     (50, 5, 32, 0, 0, 55)),
    ("openrouter-cache-write", {"prompt_tokens": 1850, "completion_tokens": 12, "total_tokens": 1862, "cost": 0.0069,
                                "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 1792, "audio_tokens": 0},
                                "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": 0}},
     (1850, 12, 0, 1792, 0, 1862)),
    ("openrouter-cache-read", {"prompt_tokens": 1850, "completion_tokens": 40,
                               "prompt_tokens_details": {"cached_tokens": 1792, "cache_write_tokens": 0},
                               "completion_tokens_details": {"reasoning_tokens": 25}},
     (1850, 40, 1792, 0, 25, 1890)),
    # README: the fallbacks apply only when cached_tokens is absent; a reported 0 stays 0
    ("reported-zero-beats-fallback", {"prompt_tokens": 600, "completion_tokens": 4, "prompt_tokens_details": {"cached_tokens": 0},
                                      "prompt_cache_hit_tokens": 512}, (600, 4, 0, 0, 0, 604)),
    ("null-cached-uses-fallback", {"prompt_tokens": 600, "completion_tokens": 4, "prompt_tokens_details": {"cached_tokens": None},
                                   "num_cached_tokens": 512}, (600, 4, 512, 0, 0, 604)),
    ("integral-floats-and-nulls", {"prompt_tokens": 40.0, "completion_tokens": None}, (40, 0, 0, 0, 0, 40)),
]
ANTHROPIC = [
    ("plain", {"input_tokens": 25, "output_tokens": 143}, (25, 143, 0, 0, 0, 168)),
    # input_tokens excludes the cache: 12 + 6400 read + 1800 written = 8212
    ("cache-read-and-write", {"input_tokens": 12, "cache_creation_input_tokens": 1800, "cache_read_input_tokens": 6400,
                              "output_tokens": 87, "cache_creation": {"ephemeral_5m_input_tokens": 1800, "ephemeral_1h_input_tokens": 0},
                              "service_tier": "standard"}, (8212, 87, 6400, 1800, 0, 8299)),
    ("thinking-tokens", {"input_tokens": 48, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                         "output_tokens": 512, "output_tokens_details": {"thinking_tokens": 371}}, (48, 512, 0, 0, 371, 560)),
    # thinking happened but the count was not reported: 0, never an estimate
    ("thinking-not-reported", {"input_tokens": 48, "output_tokens": 512}, (48, 512, 0, 0, 0, 560)),
    ("nulls-are-zero", {"input_tokens": 10, "cache_creation_input_tokens": None, "cache_read_input_tokens": None,
                        "output_tokens": 3}, (10, 3, 0, 0, 0, 13)),
]
GEMINI = [
    ("plain", {"promptTokenCount": 8, "candidatesTokenCount": 12, "totalTokenCount": 20}, (8, 12, 0, 0, 0, 20)),
    # promptTokenCount includes the cached 3512; output = 2 candidates + 42 thoughts; total = Gemini's 3564
    ("cached-and-thoughts", {"cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 3512}], "cachedContentTokenCount": 3512,
                             "candidatesTokenCount": 2, "promptTokenCount": 3520, "thoughtsTokenCount": 42,
                             "totalTokenCount": 3564}, (3520, 44, 3512, 0, 42, 3564)),
    # built-in code execution: input = 257 + 1732 tool-use prompt; output = 170 + 773; total = Gemini's 2932
    ("tool-use-prompt", {"candidatesTokenCount": 170, "promptTokenCount": 257, "thoughtsTokenCount": 773,
                         "toolUsePromptTokenCount": 1732, "totalTokenCount": 2932}, (1989, 943, 0, 0, 773, 2932)),
    ("prompt-only", {"promptTokenCount": 9, "totalTokenCount": 9}, (9, 0, 0, 0, 0, 9)),
]
COHERE = [
    # billed_units, not the raw `tokens` counts
    ("billed-units", {"billed_units": {"input_tokens": 25, "output_tokens": 9}, "tokens": {"input_tokens": 91, "output_tokens": 11}},
     (25, 9, 0, 0, 0, 34)),
    # Cohere reports cached tokens outside its billed input: kept as reported, not "fixed"
    ("cached-outside-billed", {"billed_units": {"input_tokens": 2406, "output_tokens": 2}, "cached_tokens": 2928,
                               "tokens": {"input_tokens": 2935, "output_tokens": 4}}, (2406, 2, 2928, 0, 0, 2408)),
]
CASES = [("openai", *c) for c in OPENAI] + [("anthropic", *c) for c in ANTHROPIC] + \
        [("gemini", *c) for c in GEMINI] + [("cohere", *c) for c in COHERE]


def numbers(u: Usage) -> tuple[int, ...]:
    return (u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens, u.reasoning_tokens, u.total_tokens)


@pytest.mark.parametrize(("wire", "raw", "expected"), [(c[0], c[2], c[3]) for c in CASES], ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_normalise(wire: str, raw: dict, expected: tuple[int, ...]) -> None:
    usage = normalise(wire, raw)
    assert usage is not None
    assert numbers(usage) == expected
    assert usage.iterations == ()


@pytest.mark.parametrize(("wire", "raw"), [(c[0], c[2]) for c in CASES if c[0] != "cohere"], ids=[f"{c[0]}-{c[1]}" for c in CASES if c[0] != "cohere"])
def test_invariants(wire: str, raw: dict) -> None:
    u = normalise(wire, raw)
    assert u is not None
    assert u.cache_read_tokens + u.cache_write_tokens <= u.input_tokens
    assert u.reasoning_tokens <= u.output_tokens
    assert u.total_tokens == u.input_tokens + u.output_tokens


@pytest.mark.parametrize("wire", ["openai", "anthropic", "gemini", "cohere"])
@pytest.mark.parametrize("raw", [None, {}])
def test_nothing_reported_is_none(wire: str, raw: dict | None) -> None:
    assert normalise(wire, raw) is None


def test_anthropic_iterations_are_all_billed() -> None:
    # Advisor tool: the top level (2390 in, 121 out) covers only the two "message" iterations;
    # the advisor iteration ran on another model and is billed too.
    raw = {"input_tokens": 2390, "output_tokens": 121, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
           "output_tokens_details": {"thinking_tokens": 28},
           "iterations": [
               {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "input_tokens": 1128, "output_tokens": 110,
                "type": "message"},
               {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "input_tokens": 2518, "output_tokens": 22,
                "type": "advisor_message", "model": "claude-opus-4-8"},
               {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "input_tokens": 1262, "output_tokens": 11,
                "type": "message"}]}
    usage = normalise("anthropic", raw)
    assert usage is not None
    # 1128 + 2518 + 1262 = 4908 in; 110 + 22 + 11 = 143 out
    assert numbers(usage) == (4908, 143, 0, 0, 28, 5051)
    assert usage.iterations == (
        UsageIteration(kind="message", input_tokens=1128, output_tokens=110),
        UsageIteration(kind="advisor_message", model="claude-opus-4-8", input_tokens=2518, output_tokens=22),
        UsageIteration(kind="message", input_tokens=1262, output_tokens=11),
    )


def test_anthropic_compaction_iteration_with_cache_write() -> None:
    raw = {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "input_tokens": 229, "output_tokens": 5,
           "iterations": [
               {"cache_creation_input_tokens": 55096, "cache_read_input_tokens": 0, "input_tokens": 100, "output_tokens": 131,
                "type": "compaction"},
               {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "input_tokens": 229, "output_tokens": 5,
                "type": "message"}]}
    usage = normalise("anthropic", raw)
    assert usage is not None
    # (100 + 55096) + 229 = 55425 in, of which 55096 written; 131 + 5 = 136 out
    assert numbers(usage) == (55425, 136, 0, 55096, 0, 55561)
    assert [it.kind for it in usage.iterations] == ["compaction", "message"]


def stream_usage(provider: str, body: bytes) -> Usage | None:
    assembly = StreamAssembly(Assembler(REGISTRY[provider], "test-model"), time.perf_counter())
    assembly.feed(body)
    return assembly.finish().usage


def sse(*payloads: object, sep: str = "\n\n") -> bytes:
    return "".join(f"data: {p if isinstance(p, str) else json.dumps(p)}{sep}" for p in payloads).encode()


def test_stream_anthropic_usage_is_merged_once() -> None:
    # message_start: 472 uncached + 300 written + 2048 read; message_delta repeats the input numbers
    # (cumulative, one of them null) and gives the final 89 output: 2820 in, counted once; 89 out (not 1 + 89)
    start = {"input_tokens": 472, "cache_creation_input_tokens": 300, "cache_read_input_tokens": 2048, "output_tokens": 1}
    body = sse({"type": "message_start", "message": {"model": "claude-sonnet-4-5", "content": [], "usage": start}},
               {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
               {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Done."}},
               {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                "usage": {"input_tokens": 472, "cache_read_input_tokens": 2048, "cache_creation_input_tokens": None,
                          "output_tokens": 89}},
               {"type": "message_stop"})
    usage = stream_usage("anthropic", body)
    assert usage is not None and numbers(usage) == (2820, 89, 2048, 300, 0, 2909)


def test_stream_gemini_usage_is_the_last_chunks() -> None:
    # usageMetadata is cumulative: the last chunk's numbers, not a sum: 10 in, 17 + 40 = 57 out
    body = sse({"candidates": [{"content": {"parts": [{"text": "a"}]}}], "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 3}},
               {"candidates": [{"content": {"parts": [{"text": "b"}]}, "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 17, "thoughtsTokenCount": 40, "totalTokenCount": 67}},
               sep="\r\n\r\n")
    usage = stream_usage("gemini", body)
    assert usage is not None and numbers(usage) == (10, 57, 0, 0, 40, 67)


def test_stream_openai_usage_from_the_final_chunk() -> None:
    body = sse({"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}], "usage": None},
               {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": None},
               {"choices": [], "usage": {"prompt_tokens": 1200, "completion_tokens": 7,
                                         "prompt_tokens_details": {"cached_tokens": 1024}}}, "[DONE]")
    usage = stream_usage("openai", body)
    assert usage is not None and numbers(usage) == (1200, 7, 1024, 0, 0, 1207)


def test_stream_without_usage_reports_none() -> None:
    # the usage asked for (stream_options.include_usage) never came: nothing estimated, and a warning
    body = sse({"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}]}, "[DONE]")
    with pytest.warns(UsageMissingWarning, match="without the usage it asked for"):
        assert stream_usage("openai", body) is None


def test_stream_groq_legacy_x_groq_usage() -> None:
    groq_usage = {"queue_time": 0.235881, "prompt_tokens": 5003, "prompt_time": 0.330548, "completion_tokens": 359,
                  "completion_time": 0.87677, "total_tokens": 5362, "total_time": 1.207319}
    body = sse({"id": "chatcmpl-1", "model": "compound-beta", "choices": [{"index": 0, "delta": {"content": "Done"}, "finish_reason": None}]},
               {"id": "chatcmpl-1", "model": "compound-beta", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "x_groq": {"id": "req_01", "usage": groq_usage}}, "[DONE]")
    usage = stream_usage("groq", body)
    assert usage is not None and numbers(usage) == (5003, 359, 0, 0, 0, 5362)
