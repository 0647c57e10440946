"""Peak memory of sending a 10 MB PDF, as a ratio to the file's size.

A PDF goes to the provider base64-encoded inside a JSON body, so some copies are unavoidable:
the base64 text (4/3 of the file) and the request body bytes (4/3 again). The claim checked
here is that the file is encoded once and nothing else piles up: the peak resident memory added
by one call stays under 3x the file size (the raw bytes are never held next to the encoded text).

The call goes to a loopback server (in this process, reading the body in chunks and discarding
it) through the real client: attachment, capability checks, litellm's request building, httpx.
Peak RSS is Linux's VmHWM, reset just before the call (`/proc/self/clear_refs`), minus the RSS
at that moment. The same is measured for a baseline: sending the same file's base64 text in a
JSON body with bare httpx (the least any client can do).

    python benchmarks/pdf_memory.py [--mb 10]
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
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


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        left = int(self.headers["content-length"])
        while left:
            left -= len(self.rfile.read(min(left, 256 * 1024)))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(REPLY)))
        self.end_headers()
        self.wfile.write(REPLY)

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
    head = b"%PDF-1.7\n1 0 obj\n<< /Length " + str(size).encode() + b" >>\nstream\n"
    with path.open("wb") as out:
        out.write(head)
        out.write(os.urandom(size - len(head) - 30))
        out.write(b"\nendstream\nendobj\n%%EOF\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=10.0)
    args = parser.parse_args()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_port}/v1"

    import httpx

    from llmclient import Client, ProviderSpec, register_provider

    register_provider(ProviderSpec(name="bench", base_url=url, api_key_env="BENCH_KEY",
                                   capabilities=frozenset({"pdf", "vision"})))
    client = Client("bench/m", api_key="k")
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "big.pdf"
        make_pdf(pdf, int(args.mb * MB))
        size = pdf.stat().st_size
        client.complete("warm up", files=[Path(__file__).resolve().parent.parent / "fixtures" / "tiny.pdf"])

        def bare_httpx() -> None:
            encoded = base64.b64encode(pdf.read_bytes()).decode()
            body = {"model": "m", "messages": [{"role": "user", "content": [
                {"type": "file", "file": {"filename": "big.pdf", "file_data": f"data:application/pdf;base64,{encoded}"}}]}]}
            with httpx.Client() as http:
                http.post(f"{url}/chat/completions", json=body).raise_for_status()

        baseline = peak_added(bare_httpx)
        ours = peak_added(lambda: client.complete("Summarise", files=[pdf]))
    httpd.shutdown()

    print(f"file {size / MB:.1f} MB; peak RSS added by one call:")
    print(f"  bare httpx (base64 + JSON body)  {baseline / MB:6.1f} MB = {baseline / size:.2f}x the file")
    print(f"  llmclient complete(files=[pdf])  {ours / MB:6.1f} MB = {ours / size:.2f}x the file "
          f"({ours / baseline:.2f}x bare httpx)")
    if ours >= 3 * size:
        print("FAIL: peak memory reached 3x the file size", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
