"""The claude-cli provider against a fake `claude` (tests/fake_claude/claude) printing the CLI's
documented output: answers, streams, the CLI's own tool use, errors, a hang, refusals."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from llmclient import Client
from llmclient.claude_cli import TRANSCRIPT_HEAD, ClaudeCliPipeline
from llmclient.claude_cli_answer import Finished, StreamTranslator
from llmclient.errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    ContextWindowExceededError,
    OverloadedError,
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
    assert isinstance(argv, list)
    assert argv[argv.index("--model") + 1] == "sonnet" and argv[argv.index("--max-turns") + 1] == "3"
    assert run["env_max_tokens"] == "50" and run["env_key"] == key and key not in " ".join(argv)


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
    seen: list[object] = []
    with pytest.raises(kind) as caught:
        if stream:
            seen.extend(client.stream("hi"))
        else:
            client.complete("hi")
    assert type(caught.value) is kind and words in caught.value.message and "exit status" in caught.value.message
    assert caught.value.provider == "claude-cli"
    assert caught.value.status_code == (429 if mode == "rate" else None)
    assert seen == []  # the CLI's error message is no text of the answer


@pytest.mark.parametrize(("said", "status", "code", "kind"), [
    ("API Error: 400 prompt is too long: 210000 tokens > 200000 maximum", None, None, ContextWindowExceededError),
    ("API Error: 529 Overloaded", None, None, OverloadedError),
    ("API Error: 503 upstream connect error", None, None, ServerError),
    ("API Error: 401 invalid x-api-key", None, None, AuthenticationError),
    ("Invalid API key · Please run /login", None, None, AuthenticationError),
    ("Claude AI usage limit reached|1760000000", None, None, RateLimitError),
    ("Prompt is too long", None, None, ContextWindowExceededError),
    ("Request rejected", 429, None, RateLimitError),
    ("Something went wrong", None, "rate_limit", RateLimitError),
    ("Something went wrong", None, None, APIError),
])
def test_the_clis_failures_are_classified_by_classify(said: str, status: int | None, code: str | None,
                                                      kind: type[APIError]) -> None:
    pipeline = ClaudeCliPipeline(REGISTRY["claude-cli"], "default", "", 5)
    result = {"type": "result", "subtype": "success", "is_error": True, "result": said, "api_error_status": status}
    error = pipeline.cli_error(result, 1, "", code)
    assert type(error) is kind and said in error.message
    assert error.status_code == status  # a status named in the CLI's words is not an HTTP status


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


@pytest.mark.parametrize("how", ["task cancelled while closing", "closed in a cancelled scope"])
def test_an_async_stream_closed_under_cancellation_still_kills_the_group(cli: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         how: str) -> None:
    """A client that disconnects from `llmclient serve` cancels the task reading the stream, and
    anyio cancels every later await of it too: the CLI (which ignores SIGTERM) still gets SIGKILL."""
    pidfile = tmp_path / "pids"
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "stall")
    monkeypatch.setenv("FAKE_CLAUDE_PIDFILE", str(pidfile))
    client = Client("claude-cli/default", timeout=30, retry=ONCE)

    async def main() -> None:
        stream = client.astream("hi")
        first = asyncio.Event()

        async def consume() -> None:
            assert (await anext(aiter(stream))).text == "Hello"
            first.set()
            if how == "closed in a cancelled scope":
                with anyio.CancelScope() as scope:
                    scope.cancel()
                    await stream.aclose()
            else:
                await stream.aclose()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 20)
        cleanup.append(int(pidfile.read_text().split()[0]))
        await asyncio.sleep(0.3)  # within the SIGTERM grace period (the CLI ignores SIGTERM)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # Checked with the loop blocked: nothing that the loop would run later (an async generator's
        # finalizer, the loop's shutdown) may do the killing; the close must have done it.
        leader, child = (int(pid) for pid in pidfile.read_text().split())
        assert _group_gone(leader, within=1.5)
        assert _no_zombie_children()

    cleanup: list[int] = []
    try:
        asyncio.run(main())
    finally:  # no orphan left by a failure of this test
        for group in cleanup:
            with contextlib.suppress(OSError):
                os.killpg(group, signal.SIGKILL)


def test_the_cli_gets_no_other_providers_keys(cli: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dump = tmp_path / "env.json"
    monkeypatch.setenv("FAKE_CLAUDE_ENV", str(dump))
    others = {spec.api_key_env for spec in REGISTRY.values()} - {"ANTHROPIC_API_KEY"}
    hidden = others | {"LLMCLIENT_SERVER_KEY", "OPENAI_ADMIN_KEY", "ANTHROPIC_ADMIN_KEY", "SOME_VENDOR_ADMIN_KEY"}
    assert {"OPENAI_API_KEY", "GEMINI_API_KEY"} <= hidden
    for name in hidden:
        monkeypatch.setenv(name, f"secret-{name}")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-the-clis-own")
    monkeypatch.setenv("FAKE_UNRELATED_SETTING", "kept")
    Client("claude-cli/default").complete("hi")
    env = json.loads(dump.read_text())
    assert sorted(hidden & env.keys()) == []
    assert env["ANTHROPIC_API_KEY"] == "sk-ant-the-clis-own"  # the CLI's own key (or its login) stays
    assert os.environ["PATH"] in env["PATH"] and env["HOME"] == os.environ["HOME"]  # (a pyenv shim prepends to PATH)
    assert env["FAKE_UNRELATED_SETTING"] == "kept"


@pytest.mark.parametrize("how", ["complete", "stream", "acomplete", "astream"])
def test_a_prompt_larger_than_the_pipes_does_not_deadlock(cli: Path, monkeypatch: pytest.MonkeyPatch,
                                                          how: str) -> None:
    """2 MB in on stdin while the CLI writes 1 MiB on stderr first, then (streaming) each piece it
    reads back on stdout: every pipe is served at once."""
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "echo")
    prompt = "".join(f"line {n:07d} of a long prompt\n" for n in range(2 * 1024 * 1024 // 29 + 1))
    assert len(prompt) > 2 * 1024 * 1024
    client = Client("claude-cli/default", timeout=20, retry=ONCE)

    async def run_async() -> str:
        if how == "acomplete":
            return (await client.acomplete(prompt)).text
        stream = client.astream(prompt)
        return "".join([event.text async for event in stream])

    if how == "complete":
        text = client.complete(prompt).text
    elif how == "stream":
        text = "".join(event.text for event in client.stream(prompt))
    else:
        text = asyncio.run(run_async())
    assert text == prompt


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
