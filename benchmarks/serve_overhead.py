"""What `llmclient serve` adds to a call, in one run: the p50 latency of N sequential calls made
with the OpenAI SDK through the server (SDK -> server -> Client -> upstream) against the same calls
made with `Client` directly (Client -> upstream), both against one loopback OpenAI-wire upstream in
a separate process (../shared/perf/fake_server.py when it exists, else the embedded server of
benchmarks/telemetry_overhead.py).

The server runs as a real `python -m llmclient serve` subprocess (its own process, as deployed),
configured by a temporary llmclient.toml pointing `openai` at the upstream. Telemetry storage is off
on both sides (it is the same Client work either way). Sides alternate in rounds (direct/served,
then served/direct, ...) so drift of a shared machine falls on both; each round starts with a few
untimed calls. Also printed: the same served calls with plain httpx instead of the SDK, to show
how much of the difference is the SDK's own work; each served side also as the ratio of its p50
to the direct p50. Fails (exit status 1) when the served p50 is
more than 2 ms above the direct p50: the issue's floor ("the server adds <= 2 ms p50").

    .venv/bin/python benchmarks/serve_overhead.py [--rounds 6] [--calls 100] [--server auto]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from telemetry_overhead import start_server  # noqa: E402  (the upstream: shared fake server or embedded)

FLOOR_MS = 2.0
MODEL = "openai/gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def _free_port() -> int:
    # The same as tests/serve_helpers.free_port, repeated on purpose: this script stays
    # self-contained (runnable without the test package on the path).
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_serve(config: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "llmclient", "serve", "--port", str(port), "--config", str(config),
                                "--log-level", "warning"], cwd=HERE.parent, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, port
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise SystemExit("llmclient serve did not start") from None
            time.sleep(0.05)


def _timed(call: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--server", choices=("auto", "shared", "embedded"), default="auto")
    args = parser.parse_args()

    upstream, upstream_port, upstream_name = start_server(args.server)
    workdir = Path(tempfile.mkdtemp(prefix="llmclient-serve-bench-"))
    config = workdir / "llmclient.toml"
    config.write_text(f'[providers.openai]\nbase_url = "http://127.0.0.1:{upstream_port}/v1"\n')
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench-not-a-key", "LLMCLIENT_CONFIG": str(config),
           "LLM_TELEMETRY_STORAGE_ENABLED": "false", "LLM_TELEMETRY_DIR": str(workdir / "telemetry")}
    os.environ.update(env)
    serve, port = _start_serve(config, env)
    try:
        import httpx
        import openai

        from llmclient import Client

        client = Client(MODEL)
        sdk = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
        raw = httpx.Client(base_url=f"http://127.0.0.1:{port}/v1")
        body = json.dumps({"model": MODEL, "messages": MESSAGES}).encode()

        def direct() -> object:
            return client.complete(MESSAGES)  # type: ignore[arg-type]

        def served() -> object:
            return sdk.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]

        def served_raw() -> object:
            answer = raw.post("/chat/completions", content=body, headers={"content-type": "application/json"})
            answer.raise_for_status()
            return answer.json()

        sides = {"direct": direct, "served": served, "served_raw": served_raw}
        samples: dict[str, list[float]] = {name: [] for name in sides}
        for round_number in range(args.rounds):
            order = list(sides) if round_number % 2 == 0 else list(reversed(sides))
            for name in order:
                _timed(sides[name], args.warmup)
                samples[name] += _timed(sides[name], args.calls)
        client.close()
        sdk.close()
        raw.close()
    finally:
        serve.terminate()
        serve.wait(timeout=20)
        upstream.terminate()
        upstream.wait(timeout=5)

    p50 = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    added = p50["served"] - p50["direct"]
    print(f"upstream: {upstream_name}; {args.rounds} rounds x {args.calls} sequential calls per side")
    print(f"Client directly                    p50 {p50['direct']:7.3f} ms")
    print(f"OpenAI SDK -> llmclient serve      p50 {p50['served']:7.3f} ms   added {added:+.3f} ms "
          f"(floor +{FLOOR_MS} ms)   served/direct {p50['served'] / p50['direct']:.2f}x"
          f"{'   ABOVE THE FLOOR' if added > FLOOR_MS else ''}")
    print(f"plain httpx -> llmclient serve     p50 {p50['served_raw']:7.3f} ms   added {p50['served_raw'] - p50['direct']:+.3f} ms "
          f"(the SDK's own share: {p50['served'] - p50['served_raw']:.3f} ms)   served/direct "
          f"{p50['served_raw'] / p50['direct']:.2f}x")
    return 1 if added > FLOOR_MS else 0


if __name__ == "__main__":
    sys.exit(main())
