"""Write the example notebooks' cells from this file, so their source is reviewable; record their outputs.

Run: ``.venv/bin/python notebooks/make_notebooks.py [NAME...]`` writes the cells (no outputs);
``--record`` then executes each notebook in place against protokit's sandbox (simulated models,
no keys, no network) with a fresh cache, and exports every call it made to
``notebooks/cassettes/NAME.json``. tests/test_notebooks.py replays those cassettes.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from protokit._env import environ

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
KERNEL = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def code(source: str, *tags: str) -> nbformat.NotebookNode:
    """A code cell with tags."""
    cell = new_code_cell(source.strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def md(source: str) -> nbformat.NotebookNode:
    """A markdown cell."""
    return new_markdown_cell(source.strip())


def quickstart() -> nbformat.NotebookNode:
    """Triage of 40 support tickets, compared across three models."""
    return new_notebook(metadata={"kernelspec": KERNEL}, cells=[
        md("""
# Support-ticket triage: which model should we ship?

We route incoming support messages to one of five queues (billing, technical, account,
shipping, other). This notebook compares candidate models on 40 labelled tickets for
accuracy, a judge's grade, latency and cost, picks one, and declares its outputs with
`pk.output` so `protokit promote` can turn it into a tested module.

In `protokit demo` the models are **simulated** by the local sandbox (no keys, no network);
set `models` to real ones (`openai:gpt-4.1-mini`, `anthropic:claude-haiku-4-5`) to try them.
"""),
        code('''
models: list = ["openai:simulated-large", "openai:simulated-medium", "openai:simulated-small"]  # models to compare
judge_model: str = "openai:simulated-judge"  # the model that grades each answer
n_cases: int = 40  # how many labelled tickets to use
model: str = ""  # the model to ship; empty picks the best by accuracy
''', "parameters"),
        code('''
import pandas as pd

import protokit as pk
'''),
        code('''
cases = pd.read_csv("data/tickets.csv").head(n_cases)
SYSTEM = (
    "Classify the customer support message into exactly one category: "
    "billing, technical, account, shipping or other. Answer with the category only, in lower case."
)
cases.head(3)
'''),
        md("## Compare the models\nEvery call goes through protokit's cache, so re-running this notebook "
           "replays the recorded answers: same results, offline, for free."),
        code('''
scorers = [
    pk.scorers.exact("label", ignore_case=True, ignore_punctuation=True, name="accuracy"),
    pk.scorers.judge(
        judge_model,
        "The answer is the single correct category for the message, in lower case.",
        name="judge", scale=(1, 5), columns=["ticket", "label"], temperature=0,
    ),
]
cmp = pk.compare(models, prompt="{ticket}", system=SYSTEM, cases=cases, scorers=scorers,
                 options={"temperature": 0})
cmp.summary[["model", "n", "errors", "score_accuracy", "score_judge", "latency_p50", "cost_per_case"]]
'''),
        md("Try other prompts or models interactively (left out of the promoted module):"),
        code('''
pk.Compare(models=models, prompt="{ticket}", system=SYSTEM, cases=cases, scorers=scorers,
           options={"temperature": 0})
''', "explore"),
        code('''
cmp.plot("accuracy", x="cost")
''', "explore"),
        md("## The verdict"),
        code('''
print(cmp.report("accuracy"))
'''),
        code('''
chosen = model or cmp.best("accuracy")
row = cmp.summary.set_index("model").loc[chosen]
pk.output("chosen_model", chosen)
pk.output("accuracy", round(float(row["score_accuracy"]), 4))
# Prices change: the promoted module's tests let the cost move by 5%.
pk.output("cost_per_case_usd", round(float(row["cost_per_case"]), 8), rel_tol=0.05)
accuracy_by_model = cmp.summary.set_index("model")["score_accuracy"].round(4).to_dict()
pk.output("per_model_accuracy", accuracy_by_model);  # `;`: pk.output already shows the value
'''),
        md("""Gates: the notebook fails when the model it ships is not good or cheap enough, and
`protokit promote` turns each `pk.expect` into an assertion in the generated tests."""),
        code('''
pk.expect("accuracy", ">=", 0.6)
pk.expect("cost_per_case_usd", "<=", 0.001)
'''),
    ])


def providers() -> nbformat.NotebookNode:
    """A tour of every kind of model protokit talks to, and of what a Response carries."""
    return new_notebook(metadata={"kernelspec": KERNEL}, cells=[
        md("""
# Providers: OpenAI, Anthropic, local servers and your own code

`pk.model("provider:name", ...)` gives every model the same interface: `complete` (sync, also
inside Jupyter's running loop), `acomplete` (async), `stream`, options, and a `Response` with the
text, tokens, cost and latency. Every call goes through protokit's cache, so a re-run replays
the recorded answers: same results, offline, for free.

**About the answers below.** This notebook was recorded against protokit's offline
*sandbox* (`protokit sandbox`), a local OpenAI- and Anthropic-compatible server: no keys, no
network. It answers the model names it does not simulate with deterministic filler words, so
read the answers for their shape, not their sense.

**With real keys**, set `OPENAI_API_KEY` and `ANTHROPIC_API_KEY` in the environment before
starting Jupyter (never in a cell: `protokit validate` refuses notebooks that hold keys), leave
`OPENAI_BASE_URL` and `ANTHROPIC_BASE_URL` unset so the SDKs talk to the providers, and run it:
`protokit run providers.ipynb`. New calls are recorded in `protokit.db` beside the notebook.
"""),
        code('''
openai_model: str = "openai:gpt-4.1-mini"  # an OpenAI chat model
anthropic_model: str = "anthropic:claude-haiku-4-5"  # an Anthropic model
local_model: str = "openai:llama3.2"  # a model served by a local OpenAI-compatible server
local_url: str = ""  # that server's /v1 address; empty: $OPENAI_BASE_URL, else Ollama's default
question: str = "In one sentence: why record model calls while prototyping?"  # asked of every model
''', "parameters"),
        code("""
import asyncio
import os

import protokit as pk
"""),
        md("""
## OpenAI

The key comes from `OPENAI_API_KEY` (or `api_key=`). Options given to `pk.model` are the
defaults of every call.
"""),
        code("""
gpt = pk.model(openai_model, temperature=0)
answer = gpt.complete(question)
print(answer.text)
"""),
        md("""
## Anthropic

The key comes from `ANTHROPIC_API_KEY`. Anthropic requires `max_tokens`; protokit sends 1024
when none is given.
"""),
        code("""
claude = pk.model(anthropic_model, max_tokens=300)
print(claude.complete(question).text)
"""),
        md("""
## A local OpenAI-compatible server

Ollama, vLLM, llama.cpp's `llama-server` and LM Studio all speak the OpenAI API: point
`base_url=` at them. Their usual addresses: Ollama `http://127.0.0.1:11434/v1`, vLLM
`http://127.0.0.1:8000/v1`, llama.cpp `http://127.0.0.1:8080/v1`, LM Studio
`http://127.0.0.1:1234/v1`. No key is needed. A local model has no price in protokit's
table, so give it one (here: free) and its cost is 0 rather than unknown.

In the recorded run `OPENAI_BASE_URL` pointed at the sandbox, which stood in for the server.
"""),
        code("""
# The parameters cell holds literals only, so the environment is read here.
base_url = local_url or os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")
local = pk.model(local_model, base_url=base_url, price={"input": 0.0, "output": 0.0})
print(local.complete(question).text)
"""),
        md("""
## Your own Python function

Any callable `str -> str`, sync or async, is a model: a rule-based baseline, a retrieval
pipeline, a call to your own service. It may also accept `system=` and `messages=`. Its calls
bypass the cache (it is your code, and it may change while you work) and cost nothing unless
you give it a price.
"""),
        code('''
def keyword_router(prompt: str) -> str:
    """A rule-based baseline: the first queue with a keyword in the message."""
    text = prompt.lower()
    for queue, words in {"billing": ("refund", "charged", "invoice"), "shipping": ("parcel", "tracking")}.items():
        if any(word in text for word in words):
            return queue
    return "other"


baseline = pk.model(keyword_router, name="keywords")
print(baseline.complete("I was charged twice this month").text)
'''),
        code('''
async def shout(prompt: str, system: str | None = None) -> str:
    """An async model: awaits (a pause standing in for a request to your service), then answers."""
    await asyncio.sleep(0.01)
    return prompt.upper()


loud = pk.model(shout, name="shout")
reply = await loud.acomplete("hello from an async function")
print(reply.model, "->", reply.text, "| cost:", reply.cost_usd)
'''),
        md("""
## Streaming

`m.stream(...)` yields the text as it arrives; `.response` holds the whole `Response` once the
stream has been read to the end. A replayed answer arrives in one chunk.
"""),
        code("""
stream = gpt.stream("Write two short sentences about notebooks.")
for chunk in stream:
    print(chunk, end="", flush=True)
print()
print("output tokens:", stream.response.output_tokens)
"""),
        md("""
## Messages and a system prompt

A prompt is a string or a list of chat messages; `system=` adds a system message (Anthropic's
API takes it apart from the messages, and protokit puts it there).
"""),
        code("""
messages = [
    {"role": "user", "content": "Name a colour."},
    {"role": "assistant", "content": "Blue."},
    {"role": "user", "content": "Another one."},
]
print(claude.complete(messages, system="Answer with one word.").text)
print(gpt.complete([{"role": "system", "content": "Answer with one word."}, *messages]).text)
"""),
        md("""
## Options

Options given to a call override the model's defaults. They are checked before anything is
sent, with a message that says what is allowed.
"""),
        code("""
short = gpt.complete(question, temperature=0.7, max_tokens=3, seed=7)
print(short.text, f"(finish reason: {short.finish_reason})")
try:
    gpt.complete(question, temprature=0.7)
except pk.ConfigError as exc:
    print("ConfigError:", exc)
"""),
        md("""
## What a Response carries

Asking the same question again is answered from the cache (`cached=True`), with the tokens,
cost and latency of the original call.
"""),
        code("""
again = gpt.complete(question)
for name in ("model", "provider_model", "input_tokens", "output_tokens", "cost_usd", "cached", "finish_reason"):
    print(f"{name:>15}: {getattr(again, name)!r}")
print(f"{'latency_s':>15}: {again.latency_s:.3f} s")
assert again.text == answer.text
"""),
        md("""
## Falling back to another provider

`pk.fallback(a, b, ...)` asks `a` and, when its provider fails (after the retries), asks `b`.
Here the first model points at port 9, where nothing listens: it fails with a connection error
and Anthropic answers. A replay takes the same path offline: the failed call has no recorded
answer, so the next model is asked.
"""),
        code("""
# One quick retry: the default policy (4 retries with exponential backoff) would make this cell wait.
with pk.call_context(retries=1):
    unreachable = pk.model(openai_model, base_url="http://127.0.0.1:9/v1")
    resilient = pk.fallback(unreachable, anthropic_model)
    rescued = resilient.complete("Suggest a name for a support-ticket router.")
print("answered by:", rescued.served_by)
print(rescued.text)
"""),
        md("## Outputs"),
        code("""
pk.output("openai_answer", answer.text)
pk.output("openai_tokens", {"input": answer.input_tokens, "output": answer.output_tokens})
pk.output("openai_cost_usd", answer.cost_usd)
pk.output("fallback_answered_by", rescued.served_by);
"""),
    ])


# The example prototype's work cell, written into it by the promote notebook.
PROTOTYPE_WORK = '''
SYSTEM = (
    "Route the customer support message to one queue: billing, technical, account, "
    "shipping or other. Answer with the queue only, in lower case."
)
reply = pk.model(model, temperature=0).complete(ticket, system=SYSTEM)
queue = reply.text.strip().lower().rstrip(".")
print(f"{ticket!r} -> {queue}")
'''


def promote_tour() -> nbformat.NotebookNode:
    """A small prototype notebook, run, validated and promoted to a tested module, step by step."""
    return new_notebook(metadata={"kernelspec": KERNEL}, cells=[
        md("""
# From notebook to module: validate and promote, step by step

A prototype notebook becomes a tested Python module in three steps:

1. **run** it (`protokit run`, or `run_notebook` from Python): papermill executes it with
   typed parameters, every model call goes through the cache, and the run is recorded;
2. **validate** it (`protokit validate`): the promotion gate checks the parameters, the
   order, names, magics and secrets, then re-executes it in a fresh kernel with the calls
   replayed and no keys, and compares the outputs with the stored ones;
3. **promote** it (`protokit promote`): a module with a `run(**parameters)` function, golden
   tests (one per recorded parameter set) and a cassette of the recorded calls, so the tests
   pass offline.

This notebook writes a tiny prototype into `promote-example/` (recreated on every run) and
takes it through the three steps. In the recorded run the prototype's model is simulated by
protokit's offline sandbox; any `provider:name` works.
"""),
        code('''
model: str = "openai:simulated-medium"  # the model the prototype asks
second_ticket: str = "My parcel never arrived and the tracking page has not changed."  # a second case to record
''', "parameters"),
        code("""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from protokit._env import environ

import protokit as pk
from protokit.notebook import load_runs, run_notebook, validate
from protokit.notebook.outputs import outputs_in
from protokit.promote import promote

WORK = Path("promote-example")
shutil.rmtree(WORK, ignore_errors=True)  # a clean start: no earlier runs or generated files
WORK.mkdir()
"""),
        md("""
## 1. A prototype notebook

A parameters cell (tagged `parameters`, literals only), the work, and `pk.output` for what it
produces: promote turns the parameters into `run()`'s arguments and the outputs into its result.
"""),
        code(f'''
KERNEL = {{"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}}
WORK_CELL = """{PROTOTYPE_WORK.strip()}"""
prototype = new_notebook(metadata={{"kernelspec": KERNEL}}, cells=[
    new_markdown_cell("# Ticket router\\nRoutes one support message to a queue."),
    new_code_cell("ticket: str = 'I was charged twice for my subscription.'  # the message\\n"
                  f"model: str = {{model!r}}  # the model that routes it", metadata={{"tags": ["parameters"]}}),
    new_code_cell("import protokit as pk"),
    new_code_cell(WORK_CELL),
    new_code_cell('pk.output("queue", queue)\\npk.output("tokens", reply.input_tokens + reply.output_tokens)'),
])
prototype_path = WORK / "ticket_router.ipynb"
nbformat.write(prototype, prototype_path)
for i, cell in enumerate(prototype.cells):
    tags = cell.metadata.get("tags", [])
    print(f"--- cell {{i}}: {{cell.cell_type}}" + (f" {{tags}}" if tags else ""))
    print(cell.source)
'''),
        md("""
## 2. Run it

First top to bottom with its defaults, saved in place (as *Run All* and *Save* in Jupyter
would), then with a second parameter set. Each run is recorded in
`promote-example/.protokit/runs.json` with its parameters, outputs and the cache keys of its
model calls; promote writes one golden test per recorded parameter set.
"""),
        code("""
run_notebook(prototype_path, output_path=prototype_path)
second = run_notebook(prototype_path, {"ticket": second_ticket})
print("second run saved as", second.relative_to(Path.cwd().absolute()).as_posix())
for run in load_runs(prototype_path):
    print(run["parameters"] or "defaults", "->", run["outputs"])
"""),
        code("""
executed = nbformat.read(prototype_path, as_version=4)
print("stored outputs:", outputs_in(executed.cells))
"""),
        md("""
## 3. Validate it

`validate` returns a report; `report.ok` is true when nothing blocks promotion.
"""),
        code("""
report = validate(prototype_path)
print(report.format())
"""),
        md("""
A copy of the prototype with two cells added, an output that uses a name no cell defines and
a package installed from the notebook, fails the gate with the cell and the fix for each
finding. Nothing is executed until the static checks pass.
"""),
        code("""
broken = nbformat.read(prototype_path, as_version=4)  # the executed prototype, with two cells added
broken.cells.append(new_code_cell('pk.output("confident", reply.output_tokens < threshold)'))
broken.cells.append(new_code_cell("!pip install requests"))
broken_path = WORK / "broken_router.ipynb"
nbformat.write(broken, broken_path)
broken_report = validate(broken_path)
print(broken_report.format())
"""),
        md("""
## 4. Promote it

`promote` runs the gate again, generates the module and its tests, and checks the module
against the notebook in a fresh process (the *differential* check) before writing anything.
"""),
        code("""
result = promote(prototype_path, "ticket_router", WORK)
for path in result.files:
    print(path.as_posix())
"""),
        code("""
print(result.module_path.read_text())
"""),
        code("""
print(result.test_path.read_text())
"""),
        md("""
## 5. Test the module

The generated tests replay the cassette: no keys, no network. In a project they run with the
rest of the test suite (`pytest`).
"""),
        code("""
# No keys, endpoints or cache settings: the tests must pass on their own.
clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "PROTOKIT_"))}
tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                       cwd=WORK, env=clean_env, capture_output=True, text=True)
passed = re.search(r"(\\d+) passed", tests.stdout)
# Only the count: pytest's own summary line ends with a timing.
print(passed.group(0) if passed and tests.returncode == 0 else tests.stdout[-2000:])
"""),
        md("""
## 6. Check it for drift

The golden tests replay the cassette forever, so they cannot see a provider change a model
under the same name. `protokit drift ticket_router.py` (here `drift()` from Python) re-runs the
golden cases against the live model and reports what changed. The sandbox stands in for the
provider: first serving the model as recorded, then a changed one that files billing tickets
under "payments".
"""),
        code('''
from protokit.drift import drift
from protokit.sandbox import Sandbox

script = Path("data/simulated_models.yaml")
changed_script = WORK / "changed_models.yaml"
changed_script.write_text(script.read_text().replace(
    '"(?i)charged|refund|invoice|bill", reply: "billing"', '"(?i)charged|refund|invoice|bill", reply: "payments"'))
drift_ok = {}
for label, served in (("as recorded", script), ("changed", changed_script)):
    with Sandbox(port=0, script=served) as live, \\
            environ({"OPENAI_BASE_URL": live.openai_base_url, "OPENAI_API_KEY": "sandbox"}):
        drifted = drift(result.module_path)
    drift_ok[label] = drifted.ok
    print(f"model {label}: {drifted.verdict()}")
    for case in drifted.cases:
        for line in case.changed:
            print(f"  [{case.id}] {line}")
'''),
        md("## Outputs"),
        code("""
pk.output("queue", outputs_in(executed.cells)["queue"])
pk.output("drift_ok", drift_ok)
pk.output("validation_errors", len(report.errors))
pk.output("broken_findings", sorted({f.check for f in broken_report.errors}))
pk.output("generated_files", [path.as_posix() for path in result.files])
pk.output("tests_passed", int(passed.group(1)) if passed and tests.returncode == 0 else 0);
"""),
    ])


def beyond_models() -> nbformat.NotebookNode:
    """Comparing more than models: prompt variants, a settings sweep, a tool-call eval, a structured-output eval."""
    return new_notebook(metadata={"kernelspec": KERNEL}, cells=[
        md("""
# Beyond models: prompts, settings, tools and structured output

Choosing a model is rarely the only question. This notebook compares, on the same cases and
with the same statistics as `quickstart.ipynb`:

1. two **prompt variants** (each model x prompt pair is a candidate),
2. one model under two **settings** (`pk.sweep`),
3. **tool calls**: does the model call the right function with the right arguments,
4. **structured output**: does the answer match a schema.

In the recorded run every model is **simulated** by protokit's offline sandbox: the
`simulated-*` models route tickets by keywords, and `echo` answers with what it was sent (a
`tool:NAME {...}` line becomes that tool call; JSON text becomes a JSON answer). Swap in
`openai:gpt-4.1-mini` or `anthropic:claude-haiku-4-5` to ask real ones.
"""),
        code('''
n_cases: int = 12  # how many labelled tickets the prompt comparison uses
''', "parameters"),
        code('''
from typing import Literal

import pandas as pd
import pydantic

import protokit as pk

tickets = pd.read_csv("data/tickets.csv").head(n_cases)
exact = pk.scorers.exact("label", ignore_case=True, ignore_punctuation=True, name="accuracy")
'''),
        md("""
## 1. Prompt variants

A dict of prompts makes every (model, prompt) pair a candidate, named `model · prompt`. The
"listed" variant names the five queues in the prompt; for a model that matches keywords, that
is a trap: every label word is now in every message.
"""),
        code('''
variants = pk.compare(
    models=["openai:simulated-large", "openai:simulated-medium"],
    prompt={"plain": "{ticket}",
            "listed": "Route to billing, technical, account, shipping or other: {ticket}"},
    cases=tickets, scorers=[exact],
)
variants.summary[["candidate", "n", "score_accuracy", "score_accuracy_lo", "score_accuracy_hi"]]
'''),
        code('''
print(variants.report("accuracy"))
'''),
        md("""
## 2. One model, two settings

`pk.sweep` gives one named model per value (per combination, for several options). The
simulated model ignores temperature, so here they agree; a real model's answers would not.
"""),
        code('''
sweep = pk.compare(models=pk.sweep("openai:simulated-small", temperature=[0, 1]),
                   prompt="{ticket}", cases=tickets, scorers=[exact])
sweep.summary[["model", "score_accuracy"]]
'''),
        md("""
## 3. Tool calls

`tools=` takes typed Python functions (the JSON schema comes from the hints and docstring) or
JSON definitions, sent through each provider's native tool API; `pk.scorers.tool_call` checks
the call. The `expected` column holds the arguments each case should produce.
"""),
        code('''
def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
    """Current weather in a city.

    Args:
        city: The city's name.
        unit: Celsius or Fahrenheit.
    """
    return f"12 degrees {unit} in {city}"


questions = pd.DataFrame([
    {"question": 'tool:get_weather {"city": "Paris"}', "expected": {"city": "Paris"}},
    {"question": 'tool:get_weather {"city": "Lyon", "unit": "f"}', "expected": {"city": "Lyon", "unit": "f"}},
    {"question": 'tool:get_weather {"city": "Nice"}', "expected": {"city": "Paris"}},  # a wrong call
    {"question": "What is the weather like?", "expected": {"city": "Paris"}},        # no call at all
])
tools = pk.compare(models=["openai:echo", "anthropic:echo"], prompt="{question}", cases=questions,
                   tools=[get_weather], scorers=[pk.scorers.tool_call("get_weather", args="expected")])
tools.results[["model", "question", "tool_calls", "score_tool_call"]]
'''),
        md("""
## 4. Structured output

`schema=` takes a JSON schema or a pydantic model: OpenAI gets a strict `json_schema` response
format, Anthropic a forced tool. `parsed` holds the validated object; an answer that does not
match is a per-cell `schema` error, counted like any other error.
"""),
        code('''
class Ticket(pydantic.BaseModel):
    label: Literal["billing", "technical", "account", "shipping", "other"]
    urgent: bool


answers = pd.DataFrame([
    {"text": '{"label": "billing", "urgent": true}', "label": "billing"},
    {"text": '{"label": "shipping", "urgent": false}', "label": "shipping"},
    {"text": '{"label": "sales", "urgent": false}', "label": "other"},   # not one of the labels
])
structured = pk.compare(models=["openai:echo", "anthropic:echo"], prompt="{text}", cases=answers,
                        schema=Ticket,
                        scorers=[pk.scorers.custom(lambda parsed, case: parsed.label == case["label"],
                                                   name="label_ok", reads="parsed")])
structured.results[["model", "parsed", "error", "score_label_ok"]]
'''),
        md("## Outputs"),
        code('''
by_candidate = variants.summary.set_index("candidate")["score_accuracy"].round(4).to_dict()
pk.output("best_candidate", variants.best("accuracy"))
pk.output("accuracy_by_candidate", by_candidate)
pk.output("tool_call_accuracy", tools.summary.set_index("model")["score_tool_call"].round(4).to_dict())
pk.output("schema_errors", int((structured.results["error"] == "schema").sum()));
'''),
    ])


BUILDERS = {"quickstart": quickstart, "providers": providers, "promote": promote_tour,
            "beyond_models": beyond_models}


def _tidy(path: Path) -> None:
    """Drop papermill's per-run timings and join streamed chunks, so a re-recording diffs only on content."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        joined: list[nbformat.NotebookNode] = []
        for out in cell.get("outputs", []):
            last = joined[-1] if joined else None
            # A streamed answer arrives as one output per chunk; Jupyter shows them as one text, as does a replay.
            if last is not None and out.output_type == last.output_type == "stream" and out.name == last.name:
                last.text += out.text
            else:
                joined.append(out)
        if "outputs" in cell:
            cell.outputs = joined
    nbformat.write(nb, path)


def record(names: list[str]) -> None:
    """Execute each notebook in place against the sandbox with a fresh cache; export that cache as its cassette.

    Kernels the notebook starts itself (the promote tour's runs) inherit
    PROTOKIT_CACHE, so their calls land in the same cassette.
    """
    from protokit.cache import Cache
    from protokit.notebook.execute import RUNS_DIR, run_notebook
    from protokit.sandbox import Sandbox

    cassettes = HERE / "cassettes"
    cassettes.mkdir(exist_ok=True)
    runs_dir = HERE / RUNS_DIR
    had_runs = runs_dir.exists()
    with tempfile.TemporaryDirectory(prefix="protokit-record-") as tmp, \
            Sandbox(port=0, script=DATA / "simulated_models.yaml") as sandbox:
        for name in names:
            nb_path = HERE / f"{name}.ipynb"
            cache_path = Path(tmp) / f"{name}.db"
            env: dict[str, str | None] = {
                "PROTOKIT_CACHE": str(cache_path), "PROTOKIT_CACHE_MODE": "auto", "PROTOKIT_RUN_ID": None,
                "PROTOKIT_PRICES": str(DATA / "simulated_prices.json"),
                "OPENAI_BASE_URL": sandbox.openai_base_url, "ANTHROPIC_BASE_URL": sandbox.anthropic_base_url,
                # The sandbox ignores keys; the SDKs insist on one.
                "OPENAI_API_KEY": "sandbox", "ANTHROPIC_API_KEY": "sandbox",
            }
            start = time.perf_counter()
            with environ(env):
                run_notebook(nb_path, output_path=nb_path)
            _tidy(nb_path)
            with Cache(cache_path, "replay", create=False) as cache:
                n = cache.export(cassettes / f"{name}.json")
            print(f"recorded notebooks/{name}.ipynb in {time.perf_counter() - start:.1f} s: "
                  f"{n} model calls in notebooks/cassettes/{name}.json")
    if not had_runs:
        # run_notebook logs each run beside the notebook, for promote; the examples have no use for it.
        shutil.rmtree(runs_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    """Write the example notebooks (all, or those named); with --record also execute them and store cassettes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"notebooks to write: {', '.join(BUILDERS)} "
                        "[default: all]")
    parser.add_argument("--record", action="store_true",
                        help="then execute them against the sandbox and write notebooks/cassettes/NAME.json")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BUILDERS))
    if unknown:
        parser.error(f"unknown notebook(s) {', '.join(unknown)}; known: {', '.join(BUILDERS)}")
    names = args.names or list(BUILDERS)
    for name in names:
        nbformat.write(BUILDERS[name](), HERE / f"{name}.ipynb")
        print(f"wrote notebooks/{name}.ipynb")
    if args.record:
        record(names)


if __name__ == "__main__":
    main()
