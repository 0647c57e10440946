"""The claude CLI as a child process, for `llmclient.claude_cli` (sync and asyncio shells).

The CLI starts in a session, hence a process group, of its own; its prompt goes on stdin (written
as it reads, so a CLI that never reads cannot block the call), stdout is read line by line and
stderr is kept (its last 64 KiB). On a timeout, an early close or any failure the whole group gets
SIGTERM, then SIGKILL after `KILL_GRACE` seconds (at once when that wait is cancelled), and the
CLI is reaped: nothing it started outlives the call. When the CLI exits by itself, whatever it left
running in its group is killed.
A non-streamed run is bounded whole by the timeout; a stream, each wait for its next line.
"""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import httpx

from llmclient.claude_cli import Invocation
from llmclient.claude_cli_answer import Finished, StreamTranslator
from llmclient.local_answer import sse

if TYPE_CHECKING:
    from llmclient.claude_cli import ClaudeCliPipeline

KILL_GRACE = 1.0
"""Seconds between SIGTERM and SIGKILL to the CLI's process group."""
_STDERR_KEPT = 64 * 1024
_LINE_LIMIT = 64 * 1024 * 1024  # one stream-json line (a tool result can be a whole file)
_SLICE = 0.1  # seconds between checks whether the CLI exited while a pipe stays open


class _TimedOut(Exception):
    pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone (a PermissionError: only zombies are left on some systems)


def _system_file(text: str | None) -> str | None:
    """The system prompt in a temporary file only this user can read (argv is public)."""
    if text is None:
        return None
    handle, path = tempfile.mkstemp(prefix="llmclient-claude-system-", suffix=".md")
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(text)
    return path


def _remove(path: str | None) -> None:
    if path is not None:
        try:
            os.unlink(path)
        except OSError:
            pass


def _argv(invocation: Invocation, system_file: str | None) -> list[str]:
    return invocation.argv + (["--append-system-prompt-file", system_file] if system_file else [])


class _Child:
    """One running CLI (sync): stdin fed, stdout and stderr read, through one selector."""

    def __init__(self, invocation: Invocation, pipeline: ClaudeCliPipeline) -> None:
        self._system = _system_file(invocation.system)
        try:
            self.proc = subprocess.Popen(_argv(invocation, self._system), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, cwd=invocation.cwd, env=invocation.env,
                                         start_new_session=True)
        except OSError as exc:
            _remove(self._system)
            raise pipeline.not_started(exc, invocation) from exc
        assert self.proc.stdin is not None and self.proc.stdout is not None and self.proc.stderr is not None
        self.pgid = self.proc.pid  # a session leader leads its own group
        self._pending = memoryview(invocation.prompt)
        self._out, self._err = bytearray(), bytearray()
        self._open: set[str] = {"out", "err"}
        self._selector = selectors.DefaultSelector()
        for pipe, name in ((self.proc.stdout, "out"), (self.proc.stderr, "err")):
            os.set_blocking(pipe.fileno(), False)
            self._selector.register(pipe.fileno(), selectors.EVENT_READ, name)
        os.set_blocking(self.proc.stdin.fileno(), False)
        self._selector.register(self.proc.stdin.fileno(), selectors.EVENT_WRITE, "in")
        self.done = False

    def next_line(self, deadline: float) -> bytes | None:
        """The next stdout line (None at the end); _TimedOut past `deadline`."""
        while b"\n" not in self._out and "out" in self._open:
            self._pump(deadline)
        end = self._out.find(b"\n")
        if end < 0:
            end = len(self._out) - 1
            if end < 0:
                return None
        line = bytes(self._out[: end + 1])
        del self._out[: end + 1]
        return line

    def read_all(self, deadline: float) -> bytes:
        while "out" in self._open:
            self._pump(deadline)
        return bytes(self._out)

    def finish(self, deadline: float, stdout: bytes = b"") -> Finished:
        """Once stdout ended: stderr to its end, the CLI's exit, then what it left killed."""
        while self._open:
            self._pump(deadline)
        while self.proc.poll() is None:
            if time.monotonic() >= deadline:
                raise _TimedOut
            time.sleep(0.01)
        self._close()
        return Finished(self.proc.returncode, stdout, bytes(self._err))

    def kill(self) -> None:
        """SIGTERM to the group, SIGKILL after the grace period, the CLI reaped. Idempotent."""
        if self.done:
            return
        if self.proc.poll() is None:
            _signal_group(self.pgid, signal.SIGTERM)
            try:
                self.proc.wait(KILL_GRACE)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(self.pgid, signal.SIGKILL)
        self.proc.wait()
        self._close()

    def _close(self) -> None:
        _signal_group(self.pgid, signal.SIGKILL)  # what the CLI left running in its group
        self.done = True
        self._selector.close()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()
        _remove(self._system)

    def _pump(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _TimedOut
        ready = self._selector.select(min(remaining, _SLICE))
        if not ready and self.proc.poll() is not None:
            _signal_group(self.pgid, signal.SIGKILL)  # exited: a pipe held open by what it left closes now
        for key, _ in ready:
            if key.data == "in":
                self._write(key.fd)
                continue
            try:
                data = os.read(key.fd, 65536)
            except BlockingIOError:
                continue
            if not data:
                self._selector.unregister(key.fd)
                self._open.discard(key.data)
            elif key.data == "out":
                self._out += data
            else:
                self._err = (self._err + data)[-_STDERR_KEPT:]

    def _write(self, fd: int) -> None:
        assert self.proc.stdin is not None
        try:
            written = os.write(fd, self._pending[:65536])
            self._pending = self._pending[written:]
        except BlockingIOError:
            return
        except (BrokenPipeError, ConnectionResetError):  # it stopped reading: its output will say why
            self._pending = self._pending[:0]
        if not self._pending:
            self._selector.unregister(fd)
            self.proc.stdin.close()


def run(invocation: Invocation, pipeline: ClaudeCliPipeline) -> Finished:
    """A whole run (--output-format json), bounded by the pipeline's timeout."""
    child = _Child(invocation, pipeline)
    deadline = time.monotonic() + pipeline.timeout
    try:
        return child.finish(deadline, child.read_all(deadline))
    except _TimedOut:
        child.kill()
        raise pipeline.timed_out(pipeline.timeout) from None
    finally:
        child.kill()


class Chunks(httpx.SyncByteStream):
    """A stream-json run as SSE chat.completion.chunk events; the CLI starts when this is made."""

    def __init__(self, invocation: Invocation, pipeline: ClaudeCliPipeline) -> None:
        self._pipeline = pipeline
        self._child = _Child(invocation, pipeline)

    def __iter__(self) -> Iterator[bytes]:
        child, timeout, translator = self._child, self._pipeline.timeout, StreamTranslator(self._pipeline)
        try:
            while (line := child.next_line(time.monotonic() + timeout)) is not None:
                for chunk in translator.feed(line):
                    yield sse(json.dumps(chunk))
            for chunk in translator.end(child.finish(time.monotonic() + timeout)):
                yield sse(json.dumps(chunk))
            yield sse(None)
        except _TimedOut:
            child.kill()
            raise self._pipeline.timed_out(timeout) from None
        finally:
            child.kill()

    def close(self) -> None:
        self._child.kill()


class _AsyncChild:
    """One running CLI (asyncio)."""

    def __init__(self, invocation: Invocation, pipeline: ClaudeCliPipeline) -> None:
        self._invocation, self._pipeline = invocation, pipeline
        self._system: str | None = None
        self._err = bytearray()
        self._tasks: list[asyncio.Task[Any]] = []
        self.done = False

    async def start(self) -> None:
        self._system = _system_file(self._invocation.system)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *_argv(self._invocation, self._system), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, cwd=self._invocation.cwd, env=self._invocation.env, start_new_session=True,
                limit=_LINE_LIMIT)
        except OSError as exc:
            _remove(self._system)
            raise self._pipeline.not_started(exc, self._invocation) from exc
        self.pgid = self.proc.pid
        self._tasks = [asyncio.create_task(self._feed()), asyncio.create_task(self._drain_stderr()),
                       asyncio.create_task(self._on_exit())]

    async def _feed(self) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            stdin.write(self._invocation.prompt)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            stdin.close()

    async def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(65536):
            self._err = (self._err + chunk)[-_STDERR_KEPT:]

    async def _on_exit(self) -> None:
        await self.proc.wait()
        _signal_group(self.pgid, signal.SIGKILL)  # what it left running (and the pipes they hold)

    async def next_line(self) -> bytes | None:
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        return line or None

    async def read_all(self) -> bytes:
        assert self.proc.stdout is not None
        return await self.proc.stdout.read()

    async def finish(self, stdout: bytes = b"") -> Finished:
        await self.proc.wait()
        await asyncio.gather(*self._tasks)
        self._close()
        return Finished(self.proc.returncode, stdout, bytes(self._err))

    async def kill(self) -> None:
        """SIGTERM to the group, SIGKILL after the grace period, the CLI reaped. Idempotent.

        The caller's task may be cancelled during the grace wait (a client leaving `llmclient
        serve` cancels its request's task, and anyio cancels every later await in it as well):
        SIGKILL then goes at once, before the cancellation goes on, since the CLI may ignore
        SIGTERM. asyncio's child watcher reaps it even when nothing is left to await its exit."""
        if self.done:
            return
        try:
            if self.proc.returncode is None:
                _signal_group(self.pgid, signal.SIGTERM)
                try:
                    await asyncio.wait_for(asyncio.shield(self.proc.wait()), KILL_GRACE)
                except TimeoutError:
                    pass
        finally:
            _signal_group(self.pgid, signal.SIGKILL)
            for task in self._tasks:
                task.cancel()
            self._close()
        await self.proc.wait()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _close(self) -> None:
        self.done = True
        _signal_group(self.pgid, signal.SIGKILL)
        _remove(self._system)


async def arun(invocation: Invocation, pipeline: ClaudeCliPipeline) -> Finished:
    child = _AsyncChild(invocation, pipeline)
    await child.start()
    try:
        async with asyncio.timeout(pipeline.timeout):
            return await child.finish(await child.read_all())
    except TimeoutError:
        await child.kill()
        raise pipeline.timed_out(pipeline.timeout) from None
    finally:
        await child.kill()


class AsyncChunks(httpx.AsyncByteStream):
    def __init__(self, invocation: Invocation, pipeline: ClaudeCliPipeline) -> None:
        self._pipeline = pipeline
        self._child = _AsyncChild(invocation, pipeline)

    async def start(self) -> None:
        await self._child.start()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        child, timeout, translator = self._child, self._pipeline.timeout, StreamTranslator(self._pipeline)
        try:
            while True:
                async with asyncio.timeout(timeout):
                    line = await child.next_line()
                if line is None:
                    break
                for chunk in translator.feed(line):
                    yield sse(json.dumps(chunk))
            async with asyncio.timeout(timeout):
                finished = await child.finish()
            for chunk in translator.end(finished):
                yield sse(json.dumps(chunk))
            yield sse(None)
        except TimeoutError:
            await child.kill()
            raise self._pipeline.timed_out(timeout) from None
        finally:
            await child.kill()

    async def aclose(self) -> None:
        await self._child.kill()
