"""Running `llmclient serve`'s app on a loopback port inside the test process (uvicorn in a thread),
so the mock provider and the test's hooks answer its calls, and the real `openai` SDK drives it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import uvicorn

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Running:
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def sdk(self, api_key: str = "unused", **options: Any) -> openai.OpenAI:
        """The OpenAI SDK pointed at the server; no SDK retries (each would take a queued answer)."""
        return openai.OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, timeout=30, **options)

    def async_sdk(self, api_key: str = "unused", **options: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, timeout=60, **options)


@contextmanager
def running(app: Any) -> Iterator[Running]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                                           backlog=512))
    thread = threading.Thread(target=server.run, name="llmclient-serve-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Running(port)
    finally:
        server.should_exit = True
        thread.join(20)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def subprocess_server(*args: str, env: dict[str, str] | None = None) -> Iterator[tuple[Running, subprocess.Popen[str]]]:
    """`python -m llmclient serve ARGS --port P` in a subprocess, until it accepts connections; then
    terminated (SIGTERM: uvicorn's graceful shutdown) and waited for."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "llmclient", "serve", *args, "--port", str(port)], cwd=ROOT,
                               env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"llmclient serve exited with {process.returncode}: {process.stderr.read() if process.stderr else ''}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("llmclient serve did not start listening") from None
                time.sleep(0.1)
        yield Running(port), process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
