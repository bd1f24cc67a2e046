"""Write the example notebooks' cells (no outputs) from this file, so their source is reviewable.

Run: ``.venv/bin/python notebooks/make_notebooks.py``; then ``protokit demo --record-notebooks``
executes them against the sandbox and stores their outputs and cassettes.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
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
pk.output("cost_per_case_usd", round(float(row["cost_per_case"]), 8))
pk.output("per_model_accuracy", cmp.summary.set_index("model")["score_accuracy"].round(4).to_dict())
'''),
    ])


def main() -> None:
    """Write every example notebook."""
    for name, build in {"quickstart": quickstart}.items():
        nbformat.write(build(), HERE / f"{name}.ipynb")
        print(f"wrote notebooks/{name}.ipynb")


if __name__ == "__main__":
    main()
