"""Peak memory of sending a 10 MB PDF, as a ratio to the file's size.

A PDF goes to the provider base64-encoded inside a JSON body. Built as one document in memory
(what the SDKs do), that body holds the file several times over: its base64 text, the data URL,
the JSON text and its bytes. llmclient's wire modules put a file attached by path in the body as
a `FileData`, and the transport streams its base64 into the body as it is sent, read from disk in
chunks (`llmclient.transport.FileBody`), so the peak should stay a small fraction of the file.
Bytes given in memory are base64-encoded once when attached (the text, built in place) and then
sliced.

The call goes to a loopback server (in this process, reading the body in chunks and discarding
it, counting what arrived) through the real client: attachment, capability checks, the wire's
request encoding, httpx. Peak RSS is Linux's VmHWM, reset just before the call
(`/proc/self/clear_refs`), minus the RSS at that moment. The baseline, measured in the same run:
the same file's base64 text in a JSON body sent with bare httpx (the least a whole-document
client can do).

    python benchmarks/pdf_memory.py [--mb 10]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MB = 1024 * 1024
REPLY = json.dumps({
    "id": "x", "object": "chat.completion", "created": 1, "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}).encode()
ANTHROPIC_REPLY = json.dumps({
    "id": "msg_x", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 1, "output_tokens": 1},
}).encode()


class _Sink(BaseHTTPRequestHandler):
    received: list[int] = []  # body sizes, as read (not as announced)

    def do_POST(self) -> None:  # noqa: N802
        left = total = int(self.headers["content-length"])
        while left:
            piece = self.rfile.read(min(left, 256 * 1024))
            if not piece:
                break
            left -= len(piece)
        type(self).received.append(total - left)
        self.send_response(200)
        self.send_header("content-type", "application/json")
        reply = ANTHROPIC_REPLY if self.path.endswith("/messages") else REPLY
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def peak_added(action: object) -> int:
    """Bytes of resident memory the action added at its peak."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before = _status("VmRSS")
    action()  # type: ignore[operator]
    return _status("VmHWM") - before


def make_pdf(path: Path, size: int) -> None:
    """A valid one-object PDF padded with incompressible bytes to `size`."""
    head, tail = b"%PDF-1.7\n1 0 obj\n<< /Length " + str(size).encode() + b" >>\nstream\n", b"\nendstream\nendobj\n%%EOF\n"
    with path.open("wb") as out:
        out.write(head)
        out.write(os.urandom(size - len(head) - len(tail)))
        out.write(tail)


CASES = {
    "httpx": "bare httpx (base64 + JSON body)",
    "path": "complete(files=[path])",
    "apath": "acomplete(files=[path])",
    "bytes": "complete(files=[bytes])",
    "anthropic": "complete(files=[path]), Anthropic",
}


def measure(case: str, pdf: Path) -> tuple[int, int]:
    """(peak bytes added, body bytes the server read) for one case, in this fresh process."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_port}/v1"

    import httpx

    from llmclient import Client, ProviderSpec, register_provider

    register_provider(ProviderSpec(name="bench", base_url=url, api_key_env="BENCH_KEY",
                                   capabilities=frozenset({"pdf", "vision"})))
    client = Client("bench/m", api_key="k")
    tiny = Path(__file__).resolve().parent.parent / "llmclient" / "conformance" / "inputs" / "tiny.pdf"
    anthropic = Client("anthropic/claude-sonnet-4-5", base_url=url.removesuffix("/v1"), api_key="k")
    anthropic.complete("warm up", files=[tiny])
    client.complete("warm up", files=[tiny])  # imports and connection pools, outside the measurement
    asyncio.run(client.acomplete("warm up", files=[tiny]))

    def bare_httpx() -> None:
        encoded = base64.b64encode(pdf.read_bytes()).decode()
        body = {"model": "m", "messages": [{"role": "user", "content": [
            {"type": "file", "file": {"filename": "big.pdf", "file_data": f"data:application/pdf;base64,{encoded}"}}]}]}
        with httpx.Client() as http:
            http.post(f"{url}/chat/completions", json=body).raise_for_status()

    in_memory = pdf.read_bytes() if case == "bytes" else b""  # the caller's own bytes: not added by the call
    actions = {
        "httpx": bare_httpx,
        "path": lambda: client.complete("Summarise", files=[pdf]),
        "apath": lambda: asyncio.run(client.acomplete("Summarise", files=[pdf])),
        "bytes": lambda: client.complete("Summarise", files=[in_memory]),
        "anthropic": lambda: anthropic.complete("Summarise", files=[pdf]),  # the Anthropic wire
    }
    peak = peak_added(actions[case])
    httpd.shutdown()
    return peak, _Sink.received[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=10.0)
    parser.add_argument("--case", choices=sorted(CASES), help=argparse.SUPPRESS)  # one measurement (a child process)
    parser.add_argument("--pdf", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(*measure(args.case, args.pdf))
        return 0

    # Each case in a fresh process: memory a previous case freed (and the allocator's raised mmap
    # threshold after freeing big blocks) would otherwise hide or inflate the next one's peak.
    results: dict[str, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "big.pdf"
        make_pdf(pdf, int(args.mb * MB))
        size = pdf.stat().st_size
        for case in CASES:
            child = subprocess.run([sys.executable, __file__, "--case", case, "--pdf", str(pdf)],
                                   capture_output=True, text=True, check=True)
            peak, received = map(int, child.stdout.split()[-2:])
            results[case] = (peak, received)

    announced = 4 * ((size + 2) // 3)  # the base64 alone; every body is longer
    short = {case: received for case, (_, received) in results.items() if received < announced}
    baseline = results["httpx"][0]
    print(f"file {size / MB:.1f} MB; peak RSS added by one call, each in a fresh process "
          f"(every body received in full: {not short}):")
    for case, (peak, _) in results.items():
        print(f"  {CASES[case]:34} {peak / MB:6.1f} MB = {peak / size:.2f}x the file ({peak / baseline:.2f}x bare httpx)")
    if short:
        print(f"FAIL: a body arrived short of the file's base64 ({announced} bytes): {short}", file=sys.stderr)
        return 1
    if any(peak >= 3 * size for case, (peak, _) in results.items() if case != "httpx"):
        print("FAIL: peak memory reached 3x the file size", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
