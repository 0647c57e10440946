"""Request fidelity on the shared reference traffic: every fully-described recorded call is made
through the public API against a loopback server, and the body llmclient sent must mean the same
call, field by field (tests/request_fidelity.py). Floors and known misses: request_fidelity_ratchet.json.

First, `extract_call` (llmclient/conformance/call_shape.py) must give the recorded `call` of every recorded request:
that is what makes its reading of llmclient's bodies trustworthy. The table per provider x field
is printed and written to `reports/request-fidelity.json`."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmclient import Client
from tests import request_fidelity as fidelity
from llmclient.conformance.call_shape import extract_call
from tests.reference_traffic import CORPUS

RATCHET = Path(__file__).with_name("request_fidelity_ratchet.json")

pytestmark = pytest.mark.skipif(
    not CORPUS.is_dir(),
    reason=f"reference traffic not found at {CORPUS} "
    "(check out ../shared beside the repository, or set LLMCLIENT_REFERENCE_TRAFFIC)",
)


@pytest.fixture(scope="module")
def corpus() -> list[fidelity.Case]:
    return fidelity.cases()


@pytest.fixture(scope="module")
def server() -> Iterator[fidelity.Loopback]:
    loopback = fidelity.Loopback()
    yield loopback
    loopback.close()


@pytest.fixture(scope="module")
def measured(corpus: list[fidelity.Case], server: fidelity.Loopback) -> tuple[list[fidelity.Outcome], dict[str, Any]]:
    outcomes, seconds = fidelity.run(server, corpus)
    summary = fidelity.report(outcomes, seconds)
    fidelity.write(summary)
    return outcomes, summary


@pytest.fixture(scope="module")
def ratchet() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RATCHET.read_text())
    return data


def test_extract_call_gives_every_recorded_call(corpus: list[fidelity.Case], ratchet: dict[str, Any],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The recorded `call` of every fully-described request, with nothing left out."""
    wrong = {}
    for case in corpus:
        left_out: list[str] = []
        got = extract_call(case.request["method"], case.request["uri"], case.body, case.expected["endpoint"], left_out)
        if got != case.expected["call"] or left_out:
            wrong[case.key] = {"left_out": left_out, **{k: v for k, v in got.items() if v != case.expected["call"][k]}}
    with capsys.disabled():
        print(f"\nextract_call reproduces {len(corpus) - len(wrong)}/{len(corpus)} recorded calls")
    assert not wrong, json.dumps(wrong, indent=1)[:3000]
    assert len(corpus) == ratchet["cases"], "the corpus changed size: review the ratchet file"


def test_extract_call_names_what_it_leaves_out() -> None:
    """Wherever the corpus says a request holds more than its `call` (`call_unsupported`, save a
    refusal, which the body does not show), extract_call notices too: so a body llmclient sends
    cannot carry more than its call unnoticed."""
    unnoticed = []
    for case in fidelity.cases(fully_described=False):
        reasons = [r for r in case.expected["call_unsupported"] if not r.startswith("provider rejected")]
        if case.expected["call"] is None or not reasons:
            continue
        left_out: list[str] = []
        extract_call(case.request["method"], case.request["uri"], case.body, case.expected["endpoint"], left_out)
        if not left_out:
            unnoticed.append(f"{case.key}: {reasons}")
    assert not unnoticed


# Rules of the README the recordings exercise little or not at all, on hand-written bodies.
_PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2  # its base64 holds "+" and "/": URL-safe differs


def test_a_file_has_one_digest_on_every_wire() -> None:
    digest = hashlib.sha256(_PNG).hexdigest()
    standard, urlsafe = base64.b64encode(_PNG).decode(), base64.urlsafe_b64encode(_PNG).decode().rstrip("=")
    assert standard != urlsafe.ljust(len(standard), "=")
    openai = {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{standard}"}}]}]}
    anthropic = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": standard}}]}]}
    gemini = {"contents": [{"role": "user", "parts": [{"inline_data": {"mime_type": "image/png", "data": urlsafe}}]}]}
    want = [{"role": "user", "parts": [{"type": "image", "media_type": "image/png", "sha256": digest}]}]
    assert extract_call("POST", "/v1/chat/completions", openai, "openai_chat_completions")["messages"] == want
    assert extract_call("POST", "/v1/messages", anthropic, "anthropic_messages")["messages"] == want
    assert extract_call("POST", "/models/m:generateContent", gemini, "gemini_generate_content")["messages"] == want


def test_gemini_spellings_and_results() -> None:
    body: dict[str, Any] = {
        "system_instruction": {"parts": [{"text": "Be brief."}, {"text": "Be kind."}]},
        "contents": [{"role": "user", "parts": [{"text": "Hi"}, {"text": ""}]},
                     {"role": "model", "parts": [{"function_call": {"name": "f", "args": {"x": 1}}}]},
                     {"role": "user", "parts": [{"function_response": {"name": "f", "response": {"result": {"b": 2, "a": 1}}}},
                                                {"text": "and?"}]}],
        "tools": [{"function_declarations": [{"name": "f", "description": "",
                                              "parameters": {"type": "OBJECT", "properties": {"x": {"type": "INTEGER"}}}},
                                             {"name": "g"}]}],
        "tool_config": {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["f", "g"]}},
        "generation_config": {"max_output_tokens": 7, "top_p": 0.5, "stop_sequences": ["x"],
                              "response_mime_type": "application/json", "response_schema": {"type": "OBJECT"}},
    }
    left_out: list[str] = []
    assert extract_call("POST", "/models/m:streamGenerateContent?alt=sse", body, "gemini_stream_generate_content", left_out) == {
        "system": "Be brief.\n\nBe kind.",
        "messages": [{"role": "user", "parts": [{"type": "text", "text": "Hi"}]},
                     {"role": "assistant", "parts": [{"type": "tool_call", "id": None, "name": "f", "arguments": {"x": 1}}]},
                     {"role": "tool", "parts": [{"type": "tool_result", "id": None, "name": "f", "text": '{"a":1,"b":2}'}]},
                     {"role": "user", "parts": [{"type": "text", "text": "and?"}]}],
        "tools": [{"name": "f", "description": None, "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}},
                  {"name": "g", "description": None, "parameters": {"type": "object", "properties": {}}}],
        "tool_choice": "required", "response_format": {"type": "json_schema", "name": None, "schema": {"type": "object"}},
        "max_tokens": 7, "temperature": None, "top_p": 0.5, "stop": ["x"], "stream": True,
    }
    assert left_out == []
    body["contents"][1]["parts"] += [{"text": "hmm", "thought": True}, {"text": "ok", "thoughtSignature": "c2ln"}]
    body["generation_config"]["top_k"] = 3
    call = extract_call("POST", "/models/m:generateContent", body, "gemini_generate_content", left_out)
    assert call["messages"][1]["parts"][1:] == [{"type": "text", "text": "ok"}]
    assert left_out == ["option:generationConfig:top_k", "part:thought", "part:thoughtSignature"]


def test_cohere_and_anthropic_spellings() -> None:
    cohere = {"model": "c", "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}],
              "p": 0.9, "max_tokens": 3, "stop_sequences": ["."], "tool_choice": "REQUIRED",
              "response_format": {"type": "json_object", "json_schema": {"type": "object"}}}
    call = extract_call("POST", "/v2/chat", cohere, "cohere_v2_chat")
    assert (call["system"], call["top_p"], call["max_tokens"], call["stop"], call["tool_choice"], call["response_format"]) == (
        "S", 0.9, 3, ["."], "required", {"type": "json_schema", "name": None, "schema": {"type": "object"}})
    result = {"type": "tool_result", "tool_use_id": "t1",
              "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    anthropic = {"model": "a", "max_tokens": 9, "system": [{"type": "text", "text": "S"}],
                 "tool_choice": {"type": "tool", "name": "f"},
                 "messages": [{"role": "user", "content": "Q"},
                              {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
                              {"role": "user", "content": [{"type": "text", "text": "then"}, result]}]}
    call = extract_call("POST", "/v1/messages", anthropic, "anthropic_messages")
    assert call["system"] == "S" and call["tool_choice"] == {"name": "f"}
    assert call["messages"][2:] == [
        {"role": "tool", "parts": [{"type": "tool_result", "id": "t1", "name": "f", "text": "a\n\nb"}]},
        {"role": "user", "parts": [{"type": "text", "text": "then"}]},
    ]


def test_a_difference_in_the_sent_body_is_caught(corpus: list[fidelity.Case], server: fidelity.Loopback,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness reads what reached the server: a call that sends a temperature nobody asked
    for fails that field, and only that one."""
    case = next(c for c in corpus if c.provider == "openai" and not c.expected["stream"]
                and c.expected["call"]["temperature"] is None and c.expected["status"] == 200)
    original = Client.complete
    monkeypatch.setattr(Client, "complete",
                        lambda self, request, **kw: original(self, request.model_copy(update={"temperature": 1.5}), **kw))
    outcome = fidelity.drive(case, server)
    assert [name for name, passed in outcome.fields.items() if not passed] == ["temperature"]
    assert "1.5" in outcome.detail["temperature"]


def test_every_call_is_driven(measured: tuple[list[fidelity.Outcome], dict[str, Any]],
                              capsys: pytest.CaptureFixture[str]) -> None:
    _, summary = measured
    with capsys.disabled():
        print("\n" + fidelity.render(summary))
    assert summary["cases"] > 300
    crashed = {key: detail["raised"] for key, detail in summary["misses"].items() if "raised" in detail}
    assert not crashed, "a call raised something other than an LLMError after sending"


@pytest.mark.parametrize("field", fidelity.FIELDS)
def test_field_rate_holds_its_floor(field: str, measured: tuple[list[fidelity.Outcome], dict[str, Any]],
                                    ratchet: dict[str, Any]) -> None:
    _, summary = measured
    rate, floor = summary["rates"][field], ratchet["floors"][field]
    failing = {key: detail.get(field, detail.get("sent")) for key, detail in summary["misses"].items()}
    assert rate >= floor, f"{field}: {rate:.2%} < floor {floor:.2%}; failing: {json.dumps(failing, indent=1)[:3000]}"


def test_known_misses_are_exactly_the_failing_fields(measured: tuple[list[fidelity.Outcome], dict[str, Any]],
                                                     ratchet: dict[str, Any]) -> None:
    """Every failing (case, field) is listed with its reason ("*": every field, for a call that was
    not sent or cannot be expressed); a listed miss that now passes must leave the list."""
    outcomes, _ = measured
    failing = {(o.case.key, name) for o in outcomes for name, passed in o.fields.items() if not passed}
    listed = {(key, name) for key, fields in ratchet["known_misses"].items()
              for listed_field in fields for name in (fidelity.FIELDS if listed_field == "*" else (listed_field,))}
    details = {o.case.key: o.detail for o in outcomes}
    new = {f"{key} {name}": details[key].get(name, details[key].get("sent")) for key, name in sorted(failing - listed)}
    assert not new, f"misses not listed in {RATCHET.name}: {json.dumps(new, indent=1)[:4000]}"
    fixed = sorted(f"{key} {name}" for key, name in listed - failing)
    assert not fixed, f"listed in {RATCHET.name} but passing now (remove them, raise the floors): {fixed}"


def test_nothing_beyond_the_call_is_sent_unexplained(measured: tuple[list[fidelity.Outcome], dict[str, Any]],
                                                     ratchet: dict[str, Any]) -> None:
    """What a sent body holds beyond the call shape (a key no recorded request had) is listed
    with its reason, and the list stays current."""
    _, summary = measured
    seen, listed = summary["outside_call"], ratchet["sent_beyond_the_call"]
    assert not {note: seen[note][:5] for note in set(seen) - set(listed)}, f"unexplained, add to {RATCHET.name}"
    assert not sorted(set(listed) - set(seen)), f"no longer sent: remove from {RATCHET.name}"
