"""The claude-cli provider against a fake `claude` (tests/fake_claude/claude) printing the CLI's
documented output: answers, streams, the CLI's own tool use, errors, a hang, refusals."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import pytest

from llmclient import Client
from llmclient.claude_cli import TRANSCRIPT_HEAD, ClaudeCliPipeline
from llmclient.claude_cli_answer import Finished, StreamTranslator
from llmclient.errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    UnsupportedCapabilityError,
)
from llmclient.policies.retry import RetryPolicy
from llmclient.providers import REGISTRY
from llmclient.types import Message, ToolCall

FAKE = Path(__file__).parent / "fake_claude" / "claude"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
COST = Decimal("0.0123456")  # the fake's total_cost_usd
ONCE = RetryPolicy(max_attempts=1)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake as the CLI, run in a directory of its own; returns the file it records its run in."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.setenv("LLMCLIENT_CLAUDE_CLI", str(FAKE))
    monkeypatch.setenv("LLMCLIENT_CLAUDE_CLI_CWD", str(workdir))
    monkeypatch.setenv("FAKE_CLAUDE_RECORD", str(tmp_path / "record.json"))
    monkeypatch.setenv("FAKE_CLAUDE_MARKER", str(tmp_path / "ran"))
    monkeypatch.delenv("FAKE_CLAUDE_MODE", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("LLMCLIENT_CLAUDE_CLI_MAX_TURNS", raising=False)
    return tmp_path / "record.json"


def recorded(record: Path) -> dict[str, object]:
    return json.loads(record.read_text())  # type: ignore[no-any-return]


def check_answer(response: object, text: str = "Hello from the fake CLI.") -> None:
    assert response.text == text  # type: ignore[attr-defined]
    assert response.finish_reason == "stop" and response.raw_finish_reason == "end_turn"  # type: ignore[attr-defined]
    assert response.tool_calls == []  # type: ignore[attr-defined]
    usage = response.usage  # type: ignore[attr-defined]
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens, usage.output_tokens) == (
        3 + 15000 + 1200, 15000, 1200, 12)
    assert response.cost.source == "provider" and response.cost.total == COST  # type: ignore[attr-defined]
    assert response.provider == "claude-cli"  # type: ignore[attr-defined]
    assert response.model == "claude-sonnet-4-5-20250929"  # type: ignore[attr-defined]


def test_the_provider_is_registered_keyless_text_and_streaming_only() -> None:
    spec = REGISTRY["claude-cli"]
    assert spec.wire == "claude-cli" and spec.keyless and not spec.base_url
    assert {"vision", "pdf", "tools"}.isdisjoint(spec.capabilities) and "streaming" in spec.capabilities


def test_complete_runs_print_mode_with_the_prompt_on_stdin(cli: Path, tmp_path: Path) -> None:
    response = Client("claude-cli/default").complete("Say hello", system="Be brief.")
    check_answer(response)
    run = recorded(cli)
    assert run["argv"][:3] == ["-p", "--output-format", "json"]  # type: ignore[index]
    assert "--model" not in run["argv"] and "Say hello" not in run["argv"]  # type: ignore[operator]
    assert run["stdin"] == "Say hello" and run["system"] == "Be brief."
    assert run["cwd"] == str(tmp_path / "work")
    assert not list(Path(tempfile.gettempdir()).glob("llmclient-claude-system-*"))  # removed after the run


def test_model_max_turns_and_max_tokens_and_a_key_stay_out_of_argv(cli: Path) -> None:
    key = "sk-ant-test-0123456789"
    Client("claude-cli/sonnet", api_key=key).complete("hi", max_turns=3, max_tokens=50)
    run = recorded(cli)
    argv = run["argv"]
    assert argv[argv.index("--model") + 1] == "sonnet" and argv[argv.index("--max-turns") + 1] == "3"  # type: ignore[union-attr,index]
    assert run["env_max_tokens"] == "50" and run["env_key"] == key and key not in " ".join(argv)  # type: ignore[arg-type]


def test_a_history_is_rendered_as_a_transcript(cli: Path) -> None:
    call = ToolCall(id="call_1", name="lookup", arguments={"q": "x"})
    messages = [Message.user("What is x?"), Message.assistant("", [call]), Message.tool_result(call, "x is 1"),
                Message.assistant("x is 1."), Message.user("And doubled?")]
    Client("claude-cli/default").complete(messages)
    stdin = recorded(cli)["stdin"]
    assert stdin == "\n\n".join([TRANSCRIPT_HEAD, "[User]\nWhat is x?",
                                 '[Assistant]\ncalled tool lookup (id call_1) with {"q": "x"}',
                                 "[Tool result for lookup (id call_1)]\nx is 1", "[Assistant]\nx is 1.",
                                 "[User]\nAnd doubled?"])


def test_stream(cli: Path) -> None:
    stream = Client("claude-cli/default").stream("Say hello")
    assert [event.text for event in stream] == ["Hello from ", "the fake CLI."]
    check_answer(stream.response)
    argv = recorded(cli)["argv"]
    assert argv[:5] == ["-p", "--output-format", "stream-json", "--verbose", "--include-partial-messages"]  # type: ignore[index]


def test_async_complete_and_stream(cli: Path) -> None:
    async def main() -> None:
        client = Client("claude-cli/default")
        check_answer(await client.acomplete("Say hello"))
        stream = client.astream("Say hello")
        assert [event.text async for event in stream] == ["Hello from ", "the fake CLI."]
        check_answer(await stream.get_response())

    asyncio.run(main())


def test_the_clis_own_tool_use_is_no_client_tool_call(cli: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "tool")
    client = Client("claude-cli/default")
    check_answer(client.complete("What do the notes say?"), "The notes say 42.")
    stream = client.stream("What do the notes say?")
    events = list(stream)
    assert all(event.kind == "text" for event in events)
    check_answer(stream.response, "Let me read the file.\n\nThe notes say 42.")  # every turn's text, apart


def test_whole_assistant_messages_give_the_text_without_partial_messages() -> None:
    pipeline = ClaudeCliPipeline(REGISTRY["claude-cli"], "default", "", 5)
    translator = StreamTranslator(pipeline)
    lines = [{"type": "assistant", "parent_tool_use_id": None,
              "message": {"id": "m1", "model": "claude-x", "content": [{"type": "text", "text": "One."},
                                                                         {"type": "tool_use", "id": "t", "name": "Read",
                                                                          "input": {}}]}},
             {"type": "assistant", "parent_tool_use_id": "t",  # a subagent's: not the answer
              "message": {"id": "s1", "model": "claude-x", "content": [{"type": "text", "text": "inside"}]}},
             {"type": "assistant", "parent_tool_use_id": None,
              "message": {"id": "m2", "model": "claude-x", "content": [{"type": "text", "text": "Two."}]}},
             {"type": "result", "subtype": "success", "is_error": False, "result": "Two.", "stop_reason": "max_tokens",
              "usage": {"input_tokens": 5, "output_tokens": 7}, "total_cost_usd": 0.5}]
    chunks = [chunk for line in lines for chunk in translator.feed(json.dumps(line).encode())]
    assert [c["choices"][0]["delta"]["content"] for c in chunks] == ["One.", "\n\nTwo."]
    final = translator.end(Finished(0, b"", b""))[-1]
    assert final["choices"][0]["finish_reason"] == "max_tokens" and final["model"] == "claude-x"
    assert final["usage"]["prompt_tokens"] == 5 and final["usage"]["cost"] == 0.5


@pytest.mark.parametrize(("mode", "kind", "words"), [
    ("error", ServerError, "API Error: 500"),
    ("auth", AuthenticationError, "Invalid API key"),
    ("rate", RateLimitError, "rate limited"),
    ("crash", APIError, "something broke inside the CLI"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_failures_are_typed_errors_with_the_clis_message(cli: Path, monkeypatch: pytest.MonkeyPatch, mode: str,
                                                         kind: type[APIError], words: str, stream: bool) -> None:
    monkeypatch.setenv("FAKE_CLAUDE_MODE", mode)
    client = Client("claude-cli/default", retry=ONCE)
    with pytest.raises(kind) as caught:
        if stream:
            list(client.stream("hi"))
        else:
            client.complete("hi")
    assert type(caught.value) is kind and words in caught.value.message and "exit status" in caught.value.message
    assert caught.value.provider == "claude-cli"
    assert caught.value.status_code == (429 if mode == "rate" else None)


def _group_gone(pgid: int, within: float) -> bool:
    """No live process left in the group. Orphaned zombies count as gone only where PID 1 does not
    reap them (some containers): they are dead, and no longer anyone's child here."""
    stop = time.monotonic() + within
    while time.monotonic() < stop:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    live = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            state, ppid, group = fields[0], int(fields[1]), int(fields[2])
            if group == pgid and not (state == "Z" and ppid != os.getpid()):
                live.append((entry.name, state))
    return not live


def _no_zombie_children() -> bool:
    try:
        return os.waitpid(-1, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


@pytest.mark.parametrize("how", ["complete", "stream", "acomplete", "astream"])
def test_a_hang_times_out_and_the_whole_group_is_killed(cli: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        how: str) -> None:
    pidfile = tmp_path / "pids"
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "hang")
    monkeypatch.setenv("FAKE_CLAUDE_PIDFILE", str(pidfile))
    client = Client("claude-cli/default", timeout=1.0, retry=ONCE)

    async def run_async() -> None:
        if how == "acomplete":
            await client.acomplete("hi")
        else:
            [event async for event in client.astream("hi")]

    started = time.monotonic()
    with pytest.raises(RequestTimeoutError):
        if how == "complete":
            client.complete("hi")
        elif how == "stream":
            list(client.stream("hi"))
        else:
            asyncio.run(run_async())
    assert time.monotonic() - started < 1.0 + 1.0 + 3.0  # the timeout, the SIGTERM grace, a margin
    leader, child = (int(pid) for pid in pidfile.read_text().split())
    assert _group_gone(leader, within=2.0)  # the leader ran in a session (group) of its own
    assert _no_zombie_children()
    for pid in (leader, child):  # both ignored SIGTERM: SIGKILL to the group took them
        state = Path(f"/proc/{pid}/stat")
        assert not state.exists() or state.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_missing_binary_is_a_configuration_error_naming_the_setting(cli: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    monkeypatch.setenv("LLMCLIENT_CLAUDE_CLI", str(tmp_path / "no-such-claude"))
    with pytest.raises(ConfigurationError, match="LLMCLIENT_CLAUDE_CLI"):
        Client("claude-cli/default").complete("hi")
    monkeypatch.setenv("LLMCLIENT_CLAUDE_CLI", "surely-no-claude-binary-here")
    with pytest.raises(ConfigurationError, match="LLMCLIENT_CLAUDE_CLI"):
        list(Client("claude-cli/default").stream("hi"))


@pytest.mark.parametrize("attach", ["image", "tools"])
def test_images_and_client_tools_are_refused_before_the_cli_starts(cli: Path, tmp_path: Path, attach: str) -> None:
    client = Client("claude-cli/default")
    with pytest.raises(UnsupportedCapabilityError, match="claude-cli"):
        if attach == "image":
            client.complete("What is this?", files=[PNG])
        else:
            client.complete("Weather?", tools=[{"name": "weather", "description": "w",
                                                "parameters": {"type": "object", "properties": {}}}])
    assert not (tmp_path / "ran").exists()
