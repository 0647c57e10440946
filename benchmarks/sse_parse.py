"""What SSEParser costs: one 5 / 10 / 20 MB event, and a stream of 1,000 small events, each fed
in chunks as they come off the network, against the floor measured in the same run: `json.loads`
of the same payloads (what decoding the events costs anyway). A ratio that stays flat as the event
grows is a linear parser; the quadratic one took 0.65 / 2.6 / 9.9 s for 5 / 10 / 20 MB in 8 KiB
chunks. Fails (exit status 1) if the 20 MB event takes over 1 s.

    python benchmarks/sse_parse.py [--chunk 8192] [--sizes 5,10,20] [--events 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial

from llmclient.wire.sse import SSEEvent, SSEParser
from timing import seconds_per_call  # benchmarks/timing.py (scripts run from this directory)

LIMIT_S = 1.0  # for the 20 MB event
HEAD = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1763942400, "model": "gpt-4o-mini"}
WORDS = [" The", " capital", " of", " France", " is", " Paris", ".", " Caf\u00e9", " \u2713"]


def big_payload(megabytes: int) -> bytes:
    """One OpenAI-style chunk whose text delta makes it `megabytes` MB of JSON."""
    unit = "".join(WORDS)
    text = unit * (megabytes * 1_000_000 // (len(json.dumps(unit)) - 2))  # as JSON: "\u00e9" is 6 bytes
    return json.dumps({**HEAD, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}).encode()


def small_payloads(count: int) -> list[bytes]:
    """The perf harness's stream shape: one small chunk per word, as the API sends them."""
    return [json.dumps({**HEAD, "choices": [{"index": 0, "delta": {"content": WORDS[i % len(WORDS)]},
                                             "finish_reason": None}]}).encode() for i in range(count)]


def parse_all(chunks: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events + parser.close()


def row(label: str, parse_s: float, floor_s: float) -> None:
    print(f"  {label:<34} {parse_s * 1e3:9.2f} ms   json.loads {floor_s * 1e3:9.2f} ms   x floor {parse_s / floor_s:6.2f}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunk", type=int, default=8192, help="bytes per chunk for the large events")
    parser.add_argument("--sizes", default="5,10,20", help="MB, comma-separated")
    parser.add_argument("--events", type=int, default=1000)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    payloads = small_payloads(args.events)
    chunks = [b"data: " + payload + b"\n\n" for payload in payloads] + [b"data: [DONE]\n\n"]  # one event per chunk
    assert len(parse_all(chunks)) == args.events + 1
    calls = max(1, 200_000 // args.events)
    parse_s = seconds_per_call(lambda: parse_all(chunks), calls)
    floor_s = seconds_per_call(lambda: [json.loads(payload) for payload in payloads], calls)
    print(f"{args.events} small events, one per chunk (best of 5 x {calls}):")  # first: before the large allocations
    row(f"{args.events} events, {parse_s / len(chunks) * 1e6:.2f} us per chunk", parse_s, floor_s)

    print(f"one large event in {args.chunk}-byte chunks (best of 5):")
    times: dict[int, float] = {}
    for size in sizes:
        payload = big_payload(size)
        body = b"data: " + payload + b"\n\n"
        chunks = [body[at : at + args.chunk] for at in range(0, len(body), args.chunk)]
        assert parse_all(chunks) == [SSEEvent("message", payload.decode())]
        times[size] = seconds_per_call(partial(parse_all, chunks), 1)
        floor = seconds_per_call(partial(json.loads, payload), 1)
        row(f"{len(body) / 1e6:.1f} MB, {len(chunks)} chunks", times[size], floor)
    if len(sizes) > 1:
        first, last = sizes[0], sizes[-1]
        print(f"  {last} MB / {first} MB time: {times[last] / times[first]:.1f}x for {last / first:g}x the bytes "
              f"(linear: ~{last / first:g}x; quadratic: ~{(last / first) ** 2:g}x)")

    if 20 not in times:
        print(f"(the {LIMIT_S:g} s limit is for a 20 MB event: not measured)")
        return 0
    ok = times[20] <= LIMIT_S
    print(f"OK: the 20 MB event in {times[20]:.3f} s (limit {LIMIT_S:g} s)" if ok
          else f"FAIL: the 20 MB event took {times[20]:.3f} s (limit {LIMIT_S:g} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
