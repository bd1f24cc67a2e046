"""The trust figures: a per-attempt timeout under a strict fault mix, and the budget as a ceiling.

Run: ``.venv/bin/python bench/bench_trust.py [--cases 300] [--timeout 5]``

1. 2 x ``--cases`` calls (OpenAI and Anthropic echo) at concurrency 32 against a sandbox that
   fails 29% of requests (429, 500, hangs held 20 s, malformed bodies, resets), with a
   per-attempt ``timeout`` and 6 retries: the share answered, rows present once, hangs survived.
2. 600 cases at concurrency 32 against the sandbox (50 ms), $200 per million tokens,
   ``budget_usd=0.05``, with and without ``max_tokens``: what was spent, on how many calls.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

import protokit as pk
from protokit.sandbox import Sandbox

STRICT_FAULTS = "429=0.1,500=0.08,timeout=0.05,malformed=0.03,reset=0.03"


def timeout_drill(cases: int, per_attempt: float) -> dict[str, float]:
    with Sandbox(port=0, faults=STRICT_FAULTS, seed=11, timeout_hold=4 * per_attempt) as sb:
        models = [pk.model("openai:echo", base_url=sb.openai_base_url, api_key="k"),
                  pk.model("anthropic:echo", base_url=sb.anthropic_base_url, api_key="k")]
        frame = pd.DataFrame({"case": [f"c{i}" for i in range(cases)], "text": [f"ticket {i}" for i in range(cases)]})
        start = time.perf_counter()
        res = pk.compare(models, "{text}", frame, concurrency=32, timeout=per_attempt,
                         retries=pk.RetryPolicy(retries=6, base_delay=0.02, max_delay=0.2)).results
        stats = sb.stats()
    return {"calls": len(res), "rows_once": int((~res.duplicated(["case", "model"])).sum()),
            "answered": float(res["error"].isna().mean()), "hangs": stats["by_status"].get("timeout", 0),
            "requests": stats["requests"], "wall_s": round(time.perf_counter() - start, 1)}


def budget_ceiling(max_tokens: int | None) -> dict[str, float]:
    with Sandbox(port=0, latency=0.05) as sb:
        opts = {"max_tokens": max_tokens} if max_tokens else {}
        m = pk.model("openai:echo", base_url=sb.openai_base_url, api_key="k",
                     price={"input": 200.0, "output": 200.0}, **opts)
        frame = pd.DataFrame({"text": [f"ticket {i}: the customer asks about an invoice" for i in range(600)]})
        res = pk.compare([m], "{text}", frame, concurrency=32, budget_usd=0.05).results
        ran = res[res["error"].isna()]
        return {"budget": 0.05, "spent": round(float(ran["cost_usd"].sum()), 4), "calls": len(ran),
                "requests": sb.stats()["requests"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    warnings.simplefilter("ignore", pk.models.prices.PriceWarning)
    with tempfile.TemporaryDirectory() as tmp:
        pk.cache.configure(path=Path(tmp) / "bench.db", mode="off")
        print("per-attempt timeout drill:", timeout_drill(args.cases, args.timeout))
        for max_tokens in (20, None):
            print(f"budget ceiling, max_tokens={max_tokens}:", budget_ceiling(max_tokens))


if __name__ == "__main__":
    main()
