"""protokit's runner against the plain SDK and peers, on one workload through the sandbox.

Run: ``.venv/bin/python bench/bench_runner.py [--calls 2000] [--concurrency 32] [--latency 0.05]
[--repeat 3] [--only SUBSTRING ...] [--json out.json]``

The sandbox runs in its own process (so its CPU is not counted), and each client
runs in a fresh subprocess that reports its own wall and CPU time for the calls
alone (imports and client set-up excluded). Ratios are against the baseline
(``openai.AsyncOpenAI`` + ``asyncio.gather`` + ``Semaphore``) measured in the same
run, as medians over ``--repeat`` rounds with their spread, and against the floor (bare aiohttp
POST + ``json``, no SDK). Streaming clients ask for ``stream=True`` and read every chunk.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _sandbox import running_sandbox  # noqa: E402

MODELS = ["sim-a", "sim-b", "sim-c", "sim-d"]

# Each client is a small script run in a fresh interpreter; it prints one JSON line.
CLIENTS: dict[str, str] = {
    "baseline: AsyncOpenAI + gather": """
import asyncio, openai
async def main():
    client = openai.AsyncOpenAI(base_url=BASE + "/v1", api_key="sandbox", max_retries=0)
    sem = asyncio.Semaphore(CONC)
    async def one(model, prompt):
        async with sem:
            r = await client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}])
            return r.choices[0].message.content
    t = clock()
    out = await asyncio.gather(*(one(m, p) for m, p in WORK))
    return t, len([o for o in out if o])
t0, ok = asyncio.run(main())
""",
    "bare aiohttp POST + json (the floor)": """
import asyncio, aiohttp
async def main():
    sem = asyncio.Semaphore(CONC)
    async with aiohttp.ClientSession() as session:
        async def one(model, prompt):
            async with sem:
                async with session.post(BASE + "/v1/chat/completions", headers={"Authorization": "Bearer sandbox"},
                                        json={"model": model, "messages": [{"role": "user", "content": prompt}]}) as r:
                    r.raise_for_status()
                    return (await r.json())["choices"][0]["message"]["content"]
        t = clock()
        out = await asyncio.gather(*(one(m, p) for m, p in WORK))
    return t, len([o for o in out if o])
t0, ok = asyncio.run(main())
""",
    "openai SDK over aiohttp (DefaultAioHttpClient)": """
import asyncio, openai
async def main():
    client = openai.AsyncOpenAI(base_url=BASE + "/v1", api_key="sandbox", max_retries=0,
                                http_client=openai.DefaultAioHttpClient())
    sem = asyncio.Semaphore(CONC)
    async def one(model, prompt):
        async with sem:
            r = await client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}])
            return r.choices[0].message.content
    t = clock()
    out = await asyncio.gather(*(one(m, p) for m, p in WORK))
    await client.close()
    return t, len([o for o in out if o])
t0, ok = asyncio.run(main())
""",
    "the same, raw JSON (with_raw_response)": """
import asyncio, json, openai
async def main():
    client = openai.AsyncOpenAI(base_url=BASE + "/v1", api_key="sandbox", max_retries=0,
                                http_client=openai.DefaultAioHttpClient())
    sem = asyncio.Semaphore(CONC)
    async def one(model, prompt):
        async with sem:
            raw = await client.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": prompt}])
            data = json.loads(raw.content)  # what protokit reads: text, usage, finish_reason, model
            choice = data["choices"][0]
            return (choice["message"]["content"], choice["finish_reason"], data["usage"], data["model"])[0]
    t = clock()
    out = await asyncio.gather(*(one(m, p) for m, p in WORK))
    await client.close()
    return t, len([o for o in out if o])
t0, ok = asyncio.run(main())
""",
    "the same, answer as dicts (client.post, cast_to=object)": """
import asyncio, openai
async def main():
    client = openai.AsyncOpenAI(base_url=BASE + "/v1", api_key="sandbox", max_retries=0,
                                http_client=openai.DefaultAioHttpClient())
    sem = asyncio.Semaphore(CONC)
    async def one(model, prompt):
        async with sem:  # what protokit's adapters do (protokit.models._clients.post_json)
            data = await client.post("/chat/completions", cast_to=object,
                                     body={"model": model, "messages": [{"role": "user", "content": prompt}]})
            return data["choices"][0]["message"]["content"]
    t = clock()
    out = await asyncio.gather(*(one(m, p) for m, p in WORK))
    await client.close()
    return t, len([o for o in out if o])
t0, ok = asyncio.run(main())
""",
    "protokit Runner (cache off)": """
import asyncio, protokit as pk
from protokit.runner import Runner, Call
pk.cache.configure(mode="off")
models = {m: pk.model("openai:" + m, base_url=BASE + "/v1", api_key="sandbox") for m in MODELS}
async def main():
    calls = [Call(models[m], models[m].request(p)) for m, p in WORK]
    t = clock()
    out = await Runner(concurrency=CONC).run(calls)
    return t, sum(o.ok for o in out)
t0, ok = asyncio.run(main())
""",
    "protokit Runner (cache recording)": """
import asyncio, protokit as pk
from protokit.runner import Runner, Call
pk.cache.configure(path=TMP + "/cache.db", mode="record")
models = {m: pk.model("openai:" + m, base_url=BASE + "/v1", api_key="sandbox") for m in MODELS}
async def main():
    calls = [Call(models[m], models[m].request(p)) for m, p in WORK]
    t = clock()
    out = await Runner(concurrency=CONC).run(calls)
    return t, sum(o.ok for o in out)
t0, ok = asyncio.run(main())
""",
    "pk.compare, cache off": """
import openai, pandas, protokit as pk  # imported before the clock, as in the clients above
pk.cache.configure(mode="off")
models = [pk.model("openai:" + m, base_url=BASE + "/v1", api_key="sandbox") for m in MODELS]
cases = [{"ticket": p} for m, p in WORK if m == MODELS[0]]
t0 = clock()
ok = int(pk.compare(models, "{ticket}", cases, concurrency=CONC).results["error"].isna().sum())
""",
    "pk.compare recording every answer": """
import openai, pandas, protokit as pk  # imported before the clock, as in the clients above
pk.cache.configure(path=TMP + "/cache.db", mode="record")
models = [pk.model("openai:" + m, base_url=BASE + "/v1", api_key="sandbox") for m in MODELS]
cases = [{"ticket": p} for m, p in WORK if m == MODELS[0]]
t0 = clock()
ok = int(pk.compare(models, "{ticket}", cases, concurrency=CONC).results["error"].isna().sum())
""",
    "pk.compare recording, SDK default transport": """
import sys
# The SDKs cannot load their aiohttp adapters, so protokit falls back to httpx: protokit before issue 14.
sys.modules.update(dict.fromkeys(("httpx_aiohttp", "openai._vendor.httpx_aiohttp", "anthropic._vendor.httpx_aiohttp")))
import openai, pandas, protokit as pk  # imported before the clock, as in the clients above
pk.cache.configure(path=TMP + "/cache.db", mode="record")
models = [pk.model("openai:" + m, base_url=BASE + "/v1", api_key="sandbox") for m in MODELS]
cases = [{"ticket": p} for m, p in WORK if m == MODELS[0]]
t0 = clock()
ok = int(pk.compare(models, "{ticket}", cases, concurrency=CONC).results["error"].isna().sum())
""",
    "stream: bare aiohttp + SSE lines (the floor)": """
import asyncio, aiohttp, json
async def main():
    sem = asyncio.Semaphore(CONC)
    async with aiohttp.ClientSession() as session:
        async def one(model, prompt):
            async with sem:
                async with session.post(BASE + "/v1/chat/completions", headers={"Authorization": "Bearer sandbox"},
                                        json={"model": model, "messages": [{"role": "user", "content": prompt}],
                                              "stream": True, "stream_options": {"include_usage": True}}) as r:
                    r.raise_for_status()
                    parts = []
                    async for line in r.content:
                        if line.startswith(b"data: ") and line[6:].strip() != b"[DONE]":
                            chunk = json.loads(line[6:])
                            if chunk["choices"]:
                                parts.append(chunk["choices"][0]["delta"].get("content") or "")
                    return "".join(parts)
        t = clock()
        out = await asyncio.gather(*(one(m, p) for m, p in WORK))
    return t, len([o for o in out if o])
t0, ok = asyncio.run(main())
""",
    "stream: AsyncOpenAI stream=True + gather": """
import asyncio, openai
async def main():
    client = openai.AsyncOpenAI(base_url=BASE + "/v1", api_key="sandbox", max_retries=0)
    sem = asyncio.Semaphore(CONC)
    async def one(model, prompt):
        async with sem:
            stream = await client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                                          stream=True, stream_options={"include_usage": True})
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    t = clock()
    out = await asyncio.gather(*(one(m, p) for m, p in WORK))
    return t, len([o for o in out if o])
t0, ok = asyncio.run(main())
""",
    "stream: the same over aiohttp": """
import asyncio, openai
async def main():
    client = openai.AsyncOpenAI(base_url=BASE + "/v1", api_key="sandbox", max_retries=0,
                                http_client=openai.DefaultAioHttpClient())
    sem = asyncio.Semaphore(CONC)
    async def one(model, prompt):
        async with sem:
            stream = await client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                                          stream=True, stream_options={"include_usage": True})
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    t = clock()
    out = await asyncio.gather(*(one(m, p) for m, p in WORK))
    await client.close()
    return t, len([o for o in out if o])
t0, ok = asyncio.run(main())
""",
    "stream: the same, raw SSE (with_streaming_response)": """
import asyncio, json, openai
async def main():
    client = openai.AsyncOpenAI(base_url=BASE + "/v1", api_key="sandbox", max_retries=0,
                                http_client=openai.DefaultAioHttpClient())
    sem = asyncio.Semaphore(CONC)
    async def one(model, prompt):
        async with sem:
            async with client.chat.completions.with_streaming_response.create(
                    model=model, messages=[{"role": "user", "content": prompt}],
                    stream=True, stream_options={"include_usage": True}) as r:
                parts = []
                async for line in r.iter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        chunk = json.loads(line[6:])
                        if chunk["choices"]:
                            parts.append(chunk["choices"][0]["delta"].get("content") or "")
                return "".join(parts)
    t = clock()
    out = await asyncio.gather(*(one(m, p) for m, p in WORK))
    await client.close()
    return t, len([o for o in out if o])
t0, ok = asyncio.run(main())
""",
    "stream: the SDK's SSE decoder, events as dicts (cast_to=object)": """
import asyncio, openai
async def main():
    client = openai.AsyncOpenAI(base_url=BASE + "/v1", api_key="sandbox", max_retries=0,
                                http_client=openai.DefaultAioHttpClient())
    sem = asyncio.Semaphore(CONC)
    async def one(model, prompt):
        async with sem:
            stream = await client.post("/chat/completions", cast_to=object, stream=True,
                                       stream_cls=openai.AsyncStream[object],
                                       body={"model": model, "messages": [{"role": "user", "content": prompt}],
                                             "stream": True, "stream_options": {"include_usage": True}})
            return "".join([c["choices"][0]["delta"].get("content") or "" async for c in stream if c["choices"]])
    t = clock()
    out = await asyncio.gather(*(one(m, p) for m, p in WORK))
    await client.close()
    return t, len([o for o in out if o])
t0, ok = asyncio.run(main())
""",
    "stream: pk.compare(stream=True) recording": """
import openai, pandas, protokit as pk  # imported before the clock, as in the clients above
pk.cache.configure(path=TMP + "/cache.db", mode="record")
models = [pk.model("openai:" + m, base_url=BASE + "/v1", api_key="sandbox") for m in MODELS]
cases = [{"ticket": p} for m, p in WORK if m == MODELS[0]]
pieces = [0]
def on_chunk(cell, text):
    pieces[0] += 1
t0 = clock()
ok = int(pk.compare(models, "{ticket}", cases, concurrency=CONC, stream=True,
                    on_chunk=on_chunk).results["error"].isna().sum())
assert pieces[0] > ok, pieces
""",
    "openai sync client, thread pool": """
import openai
from concurrent.futures import ThreadPoolExecutor
client = openai.OpenAI(base_url=BASE + "/v1", api_key="sandbox", max_retries=0)
def one(mp):
    r = client.chat.completions.create(model=mp[0], messages=[{"role": "user", "content": mp[1]}])
    return r.choices[0].message.content
with ThreadPoolExecutor(CONC) as pool:
    t0 = clock()
    ok = len([o for o in pool.map(one, WORK) if o])
""",
    "LiteLLM acompletion": """
import asyncio, litellm
async def main():
    sem = asyncio.Semaphore(CONC)
    async def one(model, prompt):
        async with sem:
            r = await litellm.acompletion(model="openai/" + model, api_base=BASE + "/v1", api_key="sandbox",
                                          messages=[{"role": "user", "content": prompt}])
            return r.choices[0].message.content
    t = clock()
    out = await asyncio.gather(*(one(m, p) for m, p in WORK))
    return t, len([o for o in out if o])
t0, ok = asyncio.run(main())
""",
}

BASELINE = "baseline: AsyncOpenAI + gather"
FLOOR = "bare aiohttp POST + json (the floor)"
GOAL = "pk.compare recording every answer"
STREAM_BASELINE = "stream: AsyncOpenAI stream=True + gather"
STREAM_FLOOR = "stream: bare aiohttp + SSE lines (the floor)"
STREAM_GOAL = "stream: pk.compare(stream=True) recording"

PRELUDE = """
import json, os, resource, time, sys
BASE, CONC, TMP = {base!r}, {conc}, {tmp!r}
MODELS = {models!r}
WORK = [(m, f"Classify support ticket #{{i}}: my order {{i}} never arrived")
        for i in range({per_model}) for m in MODELS]
def clock():
    global _cpu0, _wall0
    _cpu0 = time.process_time(); _wall0 = time.perf_counter()
    return _wall0
"""
EPILOGUE = """
wall = time.perf_counter() - _wall0
cpu = time.process_time() - _cpu0
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "ok": ok,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_client(code: str, base: str, conc: int, per_model: int, tmp: str) -> dict[str, Any] | None:
    """Run one client script in a fresh interpreter; None when it cannot run (e.g. not installed)."""
    script = PRELUDE.format(base=base, conc=conc, tmp=tmp, models=MODELS, per_model=per_model) + code + EPILOGUE
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "LITELLM_LOG": "ERROR"})
    if proc.returncode != 0:
        if "ModuleNotFoundError" in proc.stderr:
            return None
        raise RuntimeError(proc.stderr[-2000:])
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Run every client ``--repeat`` times, interleaved, and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", nargs="*", default=None, metavar="SUBSTRING",
                    help="run only the clients whose names hold one of these (the baseline and floor always run)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    per_model = args.calls // len(MODELS)
    rows: dict[str, list[dict[str, Any]]] = {
        name: [] for name in CLIENTS
        if name in (BASELINE, FLOOR) or args.only is None or any(o in name for o in args.only)}
    if args.only is not None and any(n.startswith("stream:") for n in rows):  # streaming ratios need theirs
        rows = {n: [] for n in CLIENTS if n in rows or n in (STREAM_BASELINE, STREAM_FLOOR)}
    with running_sandbox(latency=args.latency) as base, tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            # Interleave clients so drift on a shared machine hits them all alike.
            for name in rows:
                if rows[name] is None:
                    continue
                res = run_client(CLIENTS[name], base, args.concurrency, per_model, tmp)
                if res is None:
                    rows[name] = None  # type: ignore[assignment]
                    continue
                rows[name].append(res)
                for f in Path(tmp).glob("cache.db*"):
                    f.unlink()
    ideal = -(-args.calls // args.concurrency) * args.latency
    base_runs = rows[BASELINE]
    b_wall = statistics.median(r["wall_s"] for r in base_runs)
    b_cpu = statistics.median(r["cpu_s"] for r in base_runs)
    f_wall = statistics.median(r["wall_s"] for r in rows[FLOOR])
    table = []
    print(f"{args.calls} calls, concurrency {args.concurrency}, latency {args.latency}s, "
          f"{args.repeat} rounds; ideal wall {ideal:.2f}s")
    print(f"{'client':52} {'wall s':>16} {'x base':>7} {'x floor':>7} {'cpu s':>16} {'x base':>7} {'rss MB':>7}")
    for name, runs in rows.items():
        if not runs:
            print(f"{name:52} (not installed)")
            continue
        walls = [r["wall_s"] for r in runs]
        cpus = [r["cpu_s"] for r in runs]
        w, c = statistics.median(walls), statistics.median(cpus)
        row = {"client": name, "wall_s": w, "wall_min": min(walls), "wall_max": max(walls),
               "cpu_s": c, "cpu_min": min(cpus), "cpu_max": max(cpus), "wall_ratio": w / b_wall,
               "floor_ratio": w / f_wall, "cpu_ratio": c / b_cpu, "rss_mb": max(r["rss_mb"] for r in runs),
               "ok": min(r["ok"] for r in runs)}
        table.append(row)
        print(f"{name:52} {w:6.2f} ({min(walls):.2f}-{max(walls):.2f}) {w / b_wall:6.2f}x {w / f_wall:6.2f}x "
              f"{c:6.2f} ({min(cpus):.2f}-{max(cpus):.2f}) {c / b_cpu:6.2f}x {row['rss_mb']:7.0f}")
    by_name = {r["client"]: r for r in table}
    # Issue 14: protokit <= 0.75x the SDK with its default transport and <= 1.8x the floor, wall time;
    # streaming measured the same way, against its own baseline and floor.
    for mine, sdk, floor in ((GOAL, BASELINE, FLOOR), (STREAM_GOAL, STREAM_BASELINE, STREAM_FLOOR)):
        if mine in by_name and sdk in by_name and floor in by_name:
            w = by_name[mine]["wall_s"]
            print(f"goal: {mine} at {w / by_name[sdk]['wall_s']:.2f}x {sdk!r} (<= 0.75) and "
                  f"{w / by_name[floor]['wall_s']:.2f}x {floor!r} (<= 1.8)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"benchmark": "runner", "args": vars(args) | {"json": str(args.json)},
                                         "rows": table}, indent=1))


if __name__ == "__main__":
    main()
