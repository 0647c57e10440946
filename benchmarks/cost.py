"""What costing a response adds: pricing.cost() per call, and decoding a response with and without
it (the baseline measured in the same run). The floor: < 20 us added per response.

    python benchmarks/cost.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal

from llmclient import Usage, pricing
from timing import seconds_per_call  # benchmarks/timing.py (scripts run from this directory)
from llmclient.assemble import Assembler
from llmclient.providers import REGISTRY

BODY = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1763942400, "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1021, "completion_tokens": 2, "total_tokens": 1023,
              "prompt_tokens_details": {"cached_tokens": 512}, "completion_tokens_details": {"reasoning_tokens": 0}},
}).encode()




def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    calls = parser.parse_args().calls
    assembler = Assembler(REGISTRY["openai"], "gpt-4o-mini")
    usage = Usage(input_tokens=1021, cache_read_tokens=512, output_tokens=2)
    pricing.cost("openai", "gpt-4o-mini-2024-07-18", usage)  # load the table once, as the first call does

    cost_only = seconds_per_call(lambda: pricing.cost("openai", "gpt-4o-mini-2024-07-18", usage), calls)
    with_cost = seconds_per_call(lambda: assembler.response(BODY, 0.0), calls)
    real_cost = pricing.cost
    pricing.cost = lambda *args, **kwargs: None  # type: ignore[assignment]
    try:
        without = seconds_per_call(lambda: assembler.response(BODY, 0.0), calls)
    finally:
        pricing.cost = real_cost  # type: ignore[assignment]
    added = with_cost - without
    print(f"pricing.cost()                 {cost_only * 1e6:8.2f} us per call")
    print(f"decode a response without cost {without * 1e6:8.2f} us (baseline)")
    print(f"decode a response with cost    {with_cost * 1e6:8.2f} us (ratio {with_cost / without:.2f})")
    print(f"added by costing               {added * 1e6:8.2f} us per response")
    assert pricing.cost("openai", "gpt-4o-mini-2024-07-18", usage).total == Decimal("0.00011595")  # type: ignore[union-attr]  # 509x0.15 + 512x0.075 + 2x0.60, /1M
    ok = added < 20e-6
    print("OK: under 20 us" if ok else "FAIL: costing adds 20 us or more")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
