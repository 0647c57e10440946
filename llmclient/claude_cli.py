"""`Client("claude-cli/<model>")`: Claude Code's CLI in print mode as a provider.

The pipeline runs `claude -p` as a subprocess (`llmclient.claude_cli_process`) and hands its
output to the pipeline as an HTTP answer in the OpenAI chat-completions format, decoded by
`llmclient.wire.openai` like any other answer (the litellm route works the same way).

The command (the binary from LLMCLIENT_CLAUDE_CLI, default `claude` on PATH; run in
LLMCLIENT_CLAUDE_CLI_CWD, default the current directory, in a process group of its own):

    claude -p --output-format json                                            (complete)
    claude -p --output-format stream-json --verbose --include-partial-messages  (stream)
        [--model <id>]                     unless the model id is "default"
        [--max-turns <n>]                  option max_turns=, else LLMCLIENT_CLAUDE_CLI_MAX_TURNS
        [--append-system-prompt-file <f>]  the system messages, in a 0600 temporary file

Nothing of the conversation goes into argv (other users see it in `ps`): the prompt goes on
stdin (print mode reads it there when no prompt argument is given), the system prompt in a file,
a key given to the Client as ANTHROPIC_API_KEY in the CLI's environment, max_tokens as
CLAUDE_CODE_MAX_OUTPUT_TOKENS. That environment is this process's without the secrets that are not
the CLI's (`child_environment`): a prompt may steer its agent into reading it. One user message is the prompt itself; a longer history is
rendered as a transcript (see `render_prompt`). Text files are inlined; images and PDFs are
refused before the CLI starts (the spec declares neither), as are client tools, tool_choice,
response_format, temperature, top_p, stop and extra headers, which the CLI has no way to take.

Output formats (documented at https://code.claude.com/docs/en/headless and in the Agent SDK's
parser, anthropics/claude-agent-sdk-python `src/claude_agent_sdk/_internal/message_parser.py`):
json is one `result` object; stream-json is one JSON object per line: `system` (subtype `init`,
with `model`), `stream_event` (an Anthropic Messages stream event, with --include-partial-messages),
`assistant` / `user` (whole messages; `tool_use` / `tool_result` blocks are the CLI's own tools,
run by the CLI: never client tool calls), and a final `result` (`subtype`, `is_error`, `result`,
`stop_reason`, `usage` summed over the turns, `total_cost_usd`, `api_error_status`, `errors`).

A non-streamed answer's text is the result's `result` (the last turn's text); a stream's text is
every top-level assistant turn's text, turns apart by a blank line (the same for an answer in
one turn). Usage maps as Anthropic's (input = input + cache reads + cache writes) and the CLI's
`total_cost_usd` becomes `usage.cost`, so `Response.cost.source == "provider"`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from llmclient import cassettes
from llmclient.errors import (
    APIError,
    ConfigurationError,
    InvalidRequestError,
    LLMError,
    ReplayMismatchError,
    RequestTimeoutError,
    UnsupportedCapabilityError,
    classify,
)
from llmclient.local_answer import intercepted, json_answer, stream_answer, unsent
from llmclient.pipeline import Pipeline
from llmclient.providers import KEYLESS_PLACEHOLDER, REGISTRY
from llmclient.request import Request
from llmclient.types import FilePart, Message
from llmclient.claude_cli_answer import (
    ERROR_CODES,
    Finished,
    excerpt,
    finish_reason,
    main_model,
    openai_usage,
    said,
    status_in_words,
    type_in_words,
)
from llmclient.wire import WireFormatError

BINARY_ENV = "LLMCLIENT_CLAUDE_CLI"
CWD_ENV = "LLMCLIENT_CLAUDE_CLI_CWD"
MAX_TURNS_ENV = "LLMCLIENT_CLAUDE_CLI_MAX_TURNS"
CLAUDE_CLI_KEY_ENV = "ANTHROPIC_API_KEY"
"""The key the CLI reads (a key given to the Client is passed in it)."""
DEFAULT_MODEL = "default"
"""The model id that passes no --model: the CLI's own default."""
OPTIONS = frozenset({"max_turns"})
TRANSCRIPT_HEAD = ("The conversation so far follows, oldest turn first, each turn under its speaker in brackets. "
                   "Write the assistant's reply to the last turn.")
_ROUTE = "claude-cli"  # the host of its requests' URL, which nothing is sent to


@dataclass(frozen=True)
class Invocation:
    """One run of the CLI, as `prepare` decided it (no I/O yet)."""

    argv: list[str]
    prompt: bytes
    cwd: str
    env: dict[str, str]
    stream: bool
    system: str | None = None  # written to a temporary file for --append-system-prompt-file
    where: str = field(default="claude -p")


class ClaudeCliPipeline(Pipeline):
    """A Pipeline whose send runs the CLI; its answer comes back as an httpx.Response carrying
    OpenAI chat-completion JSON (or SSE chunks)."""

    def prepare(self, request: Request, api_key: str, *, stream: bool) -> httpx.Request:
        _refuse_unsupported(request, self.spec.name, self.model_id)
        binary, cwd = _binary(), _cwd()
        argv = [binary, "-p", "--output-format", "stream-json" if stream else "json"]
        if stream:  # print mode refuses stream-json without --verbose; partial messages give text deltas
            argv += ["--verbose", "--include-partial-messages"]
        if self.model_id != DEFAULT_MODEL:
            argv += ["--model", self.model_id]
        max_turns = _max_turns(request.options)
        if max_turns is not None:
            argv += ["--max-turns", str(max_turns)]
        env = child_environment()
        if api_key not in (KEYLESS_PLACEHOLDER, cassettes.REPLAY_API_KEY):
            env[CLAUDE_CLI_KEY_ENV] = api_key
            self.keys = self.keys | {api_key}
        if request.max_tokens is not None:
            env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] = str(request.max_tokens)
        system, prompt = render_prompt(request.messages)
        invocation = Invocation(argv=argv, prompt=prompt.encode("utf-8"), cwd=cwd, env=env, stream=stream,
                                system=system, where=f"{Path(binary).name} -p ({self.spec.name}/{self.model_id})")
        return unsent(_ROUTE, claude_cli=invocation)

    def send(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        from llmclient import claude_cli_process as process

        simulated = self._before(request)
        if simulated is not None:
            return simulated
        invocation: Invocation = request.extensions["claude_cli"]
        if stream:
            return stream_answer(process.Chunks(invocation, self), request)
        return self.json_answer(process.run(invocation, self), request)

    async def asend(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        from llmclient import claude_cli_process as process

        simulated = self._before(request)
        if simulated is not None:
            return simulated
        invocation: Invocation = request.extensions["claude_cli"]
        if stream:
            chunks = process.AsyncChunks(invocation, self)
            await chunks.start()
            return stream_answer(chunks, request)
        return self.json_answer(await process.arun(invocation, self), request)

    def _before(self, request: httpx.Request) -> httpx.Response | None:
        if cassettes.replaying():
            raise ReplayMismatchError(f"{self.spec.name}/{self.model_id} runs a local program (claude -p): a replay "
                                      f"cassette cannot answer it, and it is not run in replay mode",
                                      provider=self.spec.name, model=self.model_id)
        return intercepted(request, self)

    # --- the CLI's output as OpenAI JSON (no I/O) ------------------------------------------------

    def json_answer(self, finished: Finished, request: httpx.Request) -> httpx.Response:
        """The `--output-format json` output of a finished run as a chat.completion, or its error."""
        result = None
        try:
            document = json.loads(finished.stdout) if finished.stdout.strip() else None
        except ValueError:
            document = None
        if isinstance(document, list):  # a CLI printing every message (json with --verbose): the last result
            document = next((item for item in reversed(document) if isinstance(item, dict)
                             and item.get("type") == "result"), None)
        if isinstance(document, dict) and document.get("type") == "result":
            result = document
        self.check(result, finished)
        assert result is not None
        try:
            body = {"id": result.get("session_id") or "claude-cli", "object": "chat.completion",
                    "created": int(time.time()), "model": main_model(result) or self.model_id,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": result.get("result") or ""},
                                 "finish_reason": finish_reason(result)}],
                    "claude_cli": result}
            usage = openai_usage(result)
        except WireFormatError as problem:
            raise self.assembler.malformed(problem, finished.stdout) from problem
        if usage is not None:
            body["usage"] = usage
        return json_answer(json.dumps(body).encode(), request)

    def check(self, result: dict[str, Any] | None, finished: Finished, error_code: str | None = None) -> None:
        """Raise the typed error of a failed run: an error result, a non-zero exit, or no result."""
        failed = result is not None and (result.get("is_error") is True or result.get("subtype") != "success")
        if result is not None and not failed and finished.returncode in (0, None):
            return
        stderr = finished.stderr.decode("utf-8", errors="replace").strip()
        if result is None and finished.returncode in (0, None):
            raise self.assembler.malformed(WireFormatError("the CLI's output has no result message"),
                                           finished.stdout or finished.stderr)
        raise self.cli_error(result, finished.returncode, stderr, error_code)

    def cli_error(self, result: dict[str, Any] | None, returncode: int | None, stderr: str,
                  error_code: str | None) -> APIError:
        """The CLI's failure, classified by `llmclient.errors.classify` from the API status it reports
        (`api_error_status`, else the one in its words), its error code or its words."""
        words = said(result)
        message = words or stderr or f"the CLI exited with status {returncode} and said nothing"
        details = [f"exit status {returncode}"] if returncode not in (0, None) else []
        if result is not None and result.get("subtype") not in (None, "success"):
            details.append(f"result subtype {result.get('subtype')!r}")
        if stderr and words:
            details.append(f"stderr: {excerpt(stderr)}")
        text = f"{excerpt(message)} ({'; '.join(details)})" if details else excerpt(message)
        status = result.get("api_error_status") if result is not None else None
        status = status if isinstance(status, int) and not isinstance(status, bool) and 400 <= status < 600 else None
        everything = f"{message}\n{stderr}"
        error_type = ERROR_CODES.get(error_code or "") or type_in_words(everything)
        # The status the CLI names only in its words is classified by, but is not, the HTTP status.
        payload = {"error": {"message": text, "type": error_type,
                             "status_code": None if status else status_in_words(everything)}}
        error = classify(status, payload, provider=self.spec.name, model=self.model_id, body_text=text)
        return error.without(self.keys)

    def timed_out(self, waited: float) -> RequestTimeoutError:
        return RequestTimeoutError(f"claude -p took longer than the timeout of {waited:g} s; its process group was "
                                   f"killed", provider=self.spec.name, model=self.model_id)

    def not_started(self, exc: OSError, invocation: Invocation) -> ConfigurationError:
        if isinstance(exc, FileNotFoundError) and not os.path.isdir(invocation.cwd):
            return ConfigurationError(f"the working directory {invocation.cwd!r} of the claude-cli provider does not "
                                      f"exist: set {CWD_ENV} to a directory", provider=self.spec.name)
        return ConfigurationError(f"could not run {invocation.argv[0]!r} for the claude-cli provider ({exc}): set "
                                  f"{BINARY_ENV} to the path of the claude executable", provider=self.spec.name)


# --- the request as the CLI takes it ------------------------------------------------------------


def render_prompt(messages: list[Message]) -> tuple[str | None, str]:
    """(the system prompt or None, the prompt). One user turn is the prompt as it is; a longer
    history is a transcript under `TRANSCRIPT_HEAD`: each turn as `[User]`, `[Assistant]` (its
    tool calls as `called tool NAME (id ID) with ARGUMENTS-JSON`) or `[Tool result for NAME (id
    ID)]`, then its text, turns apart by a blank line. Text files follow their turn's text."""
    system = "\n\n".join(m.text for m in messages if m.role == "system" and m.text) or None
    turns = [m for m in messages if m.role != "system"]
    if len(turns) == 1 and turns[0].role == "user":
        return system, _content(turns[0])
    blocks = [TRANSCRIPT_HEAD]
    for turn in turns:
        if turn.role == "tool":
            label = f"Tool result for {turn.name or 'a tool'} (id {turn.tool_call_id})"
        else:
            label = "User" if turn.role == "user" else "Assistant"
        calls = [f"called tool {call.name} (id {call.id}) with {json.dumps(call.arguments, ensure_ascii=False)}"
                 for call in turn.tool_calls]
        blocks.append("\n".join([f"[{label}]", *filter(None, [_content(turn)]), *calls]))
    return system, "\n\n".join(blocks)


def _content(message: Message) -> str:
    parts = [message.text] if message.text else []
    for part in message.files:  # files.check let only text files through
        parts.append(f'<file name="{part.name}">\n{_file_text(part)}\n</file>')
    return "\n\n".join(parts)


def _file_text(part: FilePart) -> str:
    if part.path is not None:
        return Path(part.path).read_text(encoding="utf-8")
    return part.text


def _refuse_unsupported(request: Request, provider: str, model: str) -> None:
    """What the CLI cannot take, refused before it starts."""
    if request.tools or request.tool_choice:
        raise UnsupportedCapabilityError(f"{provider} runs Claude Code's own tools; client tools (tools=, tool_choice=) "
                                         f"cannot be passed to the CLI; no process was started", provider=provider,
                                         model=model)
    given = [name for name in ("response_format", "temperature", "top_p", "stop") if getattr(request, name) is not None]
    given += ["extra_headers"] if request.extra_headers else []
    if given:
        raise UnsupportedCapabilityError(f"{provider} (claude -p) takes no {', '.join(given)}; no process was started",
                                         provider=provider, model=model)
    unknown = sorted(set(request.options) - OPTIONS)
    if unknown:
        raise InvalidRequestError(f"{provider} takes the option {', '.join(sorted(OPTIONS))} only, not "
                                  f"{', '.join(unknown)}", provider=provider, model=model)


SERVER_KEY_ENV = "LLMCLIENT_SERVER_KEY"  # llmclient.serve.app's, not imported (that module needs FastAPI)


def child_environment() -> dict[str, str]:
    """This process's environment without the secrets that are not the CLI's: other providers'
    keys (every registered or configured provider's api_key_env but ANTHROPIC_API_KEY, which the
    CLI reads), admin keys (`*_ADMIN_KEY`) and `llmclient serve`'s key. The CLI runs an agent that
    a prompt may steer into reading its own environment."""
    from llmclient.config import get_config

    hidden = {spec.api_key_env for spec in REGISTRY.values()} | {SERVER_KEY_ENV}
    try:
        hidden |= {settings.api_key_env for settings in get_config().providers.values() if settings.api_key_env}
    except LLMError:  # a configuration that does not load fails the call elsewhere, with its own message
        pass
    hidden.discard(CLAUDE_CLI_KEY_ENV)
    return {name: value for name, value in os.environ.items()
            if name not in hidden and not name.upper().endswith("_ADMIN_KEY")}


def _max_turns(options: dict[str, Any]) -> int | None:
    value: Any = options.get("max_turns")
    where = "max_turns="
    if value is None and os.environ.get(MAX_TURNS_ENV):
        value, where = os.environ[MAX_TURNS_ENV], f"the {MAX_TURNS_ENV} environment variable"
        value = int(value) if value.strip().isdigit() else value
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequestError(f"{where} must be a whole number >= 1, got {value!r}")
    return value


def _binary() -> str:
    wanted = os.environ.get(BINARY_ENV) or "claude"
    found = shutil.which(wanted)
    if found is None:
        where = "is not an executable file" if os.sep in wanted else "was not found on PATH"
        raise ConfigurationError(f"the claude-cli provider runs {wanted!r}, which {where}: install Claude Code or set "
                                 f"{BINARY_ENV} to the path of the claude executable", provider="claude-cli")
    return found


def _cwd() -> str:
    wanted = os.environ.get(CWD_ENV)
    if not wanted:
        return os.getcwd()
    if not os.path.isdir(wanted):
        raise ConfigurationError(f"{CWD_ENV} is {wanted!r}, which is not a directory: set it to the working "
                                 f"directory the claude-cli provider runs the CLI in", provider="claude-cli")
    return wanted


__all__ = ["ClaudeCliPipeline", "Invocation", "render_prompt"]
