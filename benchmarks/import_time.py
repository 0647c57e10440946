"""How long `import llmclient` takes, and proof that it does not import litellm.

Each import runs in a fresh interpreter (best of N), against two baselines measured in the same run:
an empty interpreter, and `import litellm` (what an eager import would cost). Prints ratios, and
the heaviest modules under `python -X importtime`.

    python benchmarks/import_time.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

HEAVY = ("litellm", "httpx", "openai", "vcr", "tenacity", "yaml", "aiohttp")
ENV = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")


def best_of(code: str, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=ENV)
        best = min(best, time.perf_counter() - started)
    return best


def heaviest(module: str, count: int = 8) -> list[tuple[int, str]]:
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                            capture_output=True, text=True, check=True, env=ENV)
    rows = []
    for line in result.stderr.splitlines()[1:]:  # "import time: self [us] | cumulative | imported package"
        _, cumulative, name = line.split("|")
        rows.append((int(cumulative), name.rstrip()))
    return sorted(rows, reverse=True)[:count]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs

    loaded = subprocess.run(
        [sys.executable, "-c", f"import sys, llmclient; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"],
        capture_output=True, text=True, check=True, env=ENV,
    ).stdout.strip()
    empty = best_of("pass", runs)
    ours = best_of("import llmclient", runs)
    litellm = best_of("import litellm", max(3, runs // 5))
    print(f"interpreter start           {empty * 1000:8.1f} ms")
    print(f"import llmclient            {ours * 1000:8.1f} ms   ({ours - empty:.3f} s over an empty interpreter)")
    print(f"import litellm (baseline)   {litellm * 1000:8.1f} ms")
    print(f"ratio llmclient / litellm   {(ours - empty) / (litellm - empty):8.3f}")
    print(f"heavy modules imported      {loaded or 'none'} (checked: {', '.join(HEAVY)})")
    print("heaviest imports under llmclient (cumulative us):")
    for cumulative, name in heaviest("llmclient"):
        print(f"  {cumulative:>8}  {name}")
    ok = not loaded and ours - empty < 0.2
    print("OK: under 0.2 s and lazy" if ok else "FAIL: import is too slow or not lazy")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
