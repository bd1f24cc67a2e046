"""Write the starter notebooks that ``protokit new`` copies (no outputs), so their source is reviewable.

Run: ``.venv/bin/python templates/notebooks/make_templates.py``. Cell ids are fixed
(``cell-0``, ``cell-1``, ...) so regenerating gives the same bytes. ``{{title}}``
and ``{{name}}`` are filled in by ``protokit new NAME``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
KERNEL = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
NEXT_STEPS = """
## Next steps

1. Replace the cases with your own (a CSV works too: `pd.read_csv("cases.csv")`), then *Run All*.
2. Save, then check the notebook is ready to promote: `protokit validate {{name}}.ipynb`.
3. Turn it into a tested module: `protokit promote {{name}}.ipynb --name {{name}}`.
"""


def code(source: str, *tags: str) -> nbformat.NotebookNode:
    """A code cell with tags."""
    cell = new_code_cell(source.strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def md(source: str) -> nbformat.NotebookNode:
    """A markdown cell."""
    return new_markdown_cell(source.strip())


def notebook(cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    """A notebook of these cells (plus the next steps) with stable ids, so regeneration is byte-stable."""
    nb = new_notebook(metadata={"kernelspec": KERNEL}, cells=[*cells, md(NEXT_STEPS)])
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i}"
    return nb


def compare() -> nbformat.NotebookNode:
    """Free-form answers to customer questions, scored by similarity to a reference and by a judge."""
    return notebook([
        md("""
# {{title}}

Which model answers our customers' questions best? Each case has a question and a
reference answer written by the support team. Every model's answer is scored by its
word overlap with the reference (`similarity`) and graded by a judge model (`judge`),
next to latency and cost. The outputs declared with `pk.output` are what
`protokit promote` turns into a tested module.
"""),
        code('''
models: list[str] = ["openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5"]  # models to compare, as provider:model
judge_model: str = "openai:gpt-4.1-mini"  # the model that grades each answer against the reference
temperature: float = 0.0  # sampling temperature for every model; 0 keeps answers repeatable
min_similarity: float = 0.3  # an answer is close enough when its word-overlap F1 with the reference reaches this
''', "parameters"),
        code('''
import pandas as pd

import protokit as pk
'''),
        md("## The cases\nSix questions with the answer we want. Add the hard ones you see in production."),
        code('''
cases = pd.DataFrame([
    {"id": "reset-password", "question": "How do I reset my password?",
     "reference": "Click 'Forgot password' on the sign-in page and follow the link we email you."},
    {"id": "refund-window", "question": "Can I still get a refund after three weeks?",
     "reference": "Yes, refunds are accepted within 30 days of purchase if the item is unused."},
    {"id": "change-address", "question": "I moved. How do I change my delivery address?",
     "reference": "Update it under Account > Addresses; orders not yet shipped use the new address."},
    {"id": "cancel-plan", "question": "How do I cancel my subscription?",
     "reference": "Go to Account > Subscription and choose Cancel; you keep access until the period ends."},
    {"id": "invoice-copy", "question": "Where can I download an invoice for my last order?",
     "reference": "Open Orders, select the order and click 'Download invoice' to get a PDF."},
    {"id": "two-factor", "question": "How do I turn on two-factor authentication?",
     "reference": "In Settings > Security choose 'Enable two-factor' and scan the QR code with an authenticator app."},
])
SYSTEM = "You are a helpful support agent. Answer the customer's question in one or two sentences."
PROMPT = "{question}"
cases
'''),
        md("## Compare the models\nEvery call goes through protokit's cache: running again replays the "
           "recorded answers, offline and free."),
        code('''
scorers = [
    pk.scorers.similarity("reference", name="similarity"),
    pk.scorers.judge(
        judge_model,
        "The answer is correct, consistent with the reference answer, and polite.",
        name="judge", scale=(1, 5), columns=["question", "reference"], temperature=0,
    ),
]
cmp = pk.compare(models, prompt=PROMPT, system=SYSTEM, cases=cases, scorers=scorers,
                 options={"temperature": temperature})
cmp.summary[["model", "n", "errors", "score_similarity", "score_judge", "latency_p50", "cost_per_case"]]
'''),
        md("Try other prompts or models interactively (left out of the promoted module):"),
        code('''
pk.Compare(models, PROMPT, cases, scorers=scorers, system=SYSTEM, options={"temperature": temperature})
''', "explore"),
        md("## The verdict"),
        code('''
print(cmp.report("similarity"))
'''),
        code('''
chosen = cmp.best("similarity")
close = cmp.results["score_similarity"] >= min_similarity
pk.output("chosen_model", chosen)
pk.output("mean_similarity", {m: round(float(s), 4) for m, s in
                              zip(cmp.summary["model"], cmp.summary["score_similarity"], strict=True)})
pk.output("share_close", {m: round(float(c), 4) for m, c in
                          close.groupby(cmp.results["model"], sort=False).mean().items()});
'''),
    ])


def classify() -> nbformat.NotebookNode:
    """Customer feedback labelled positive, negative or neutral, scored by exact match."""
    return notebook([
        md("""
# {{title}}

Which model labels customer feedback correctly? Each case is a piece of feedback and
the label a person gave it. A model's answer must be exactly that label (`accuracy`)
and one of the allowed labels at all (`valid_label`), next to latency and cost. The
outputs declared with `pk.output` are what `protokit promote` turns into a tested module.
"""),
        code('''
models: list[str] = ["openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5"]  # models to compare, as provider:model
labels: list[str] = ["positive", "negative", "neutral"]  # the allowed labels, listed in the instructions
temperature: float = 0.0  # sampling temperature for every model; 0 keeps answers repeatable
min_accuracy: float = 0.8  # the accuracy a model needs before we would ship it
''', "parameters"),
        code('''
import pandas as pd

import protokit as pk
'''),
        md("## The cases\nSix labelled pieces of feedback. Add the ambiguous ones you see in production."),
        code('''
cases = pd.DataFrame([
    {"id": "fast-delivery", "text": "Arrived a day early and works perfectly. Thank you!", "label": "positive"},
    {"id": "broken-zip", "text": "The zip broke the second time I used the bag. Really disappointed.",
     "label": "negative"},
    {"id": "question-size", "text": "Does the medium size fit a 15-inch laptop?", "label": "neutral"},
    {"id": "slow-support", "text": "Waited two weeks for a reply from support and still no fix.",
     "label": "negative"},
    {"id": "gift", "text": "Bought it as a gift and my sister loves it.", "label": "positive"},
    {"id": "order-status", "text": "My order shows 'processing' since Monday, is that normal?", "label": "neutral"},
])
SYSTEM = (f"Label the customer feedback with exactly one of: {', '.join(labels)}. "
          "Answer with the label only, in lower case.")
PROMPT = "{text}"
cases
'''),
        md("## Compare the models\nEvery call goes through protokit's cache: running again replays the "
           "recorded answers, offline and free."),
        code('''
def valid_label(output: str) -> bool:
    """The answer is one of the allowed labels (a sentence around it counts as invalid)."""
    return output.strip().strip(".").lower() in labels


scorers = [
    pk.scorers.exact("label", ignore_case=True, ignore_punctuation=True, name="accuracy"),
    pk.scorers.custom(valid_label),
]
cmp = pk.compare(models, prompt=PROMPT, system=SYSTEM, cases=cases, scorers=scorers,
                 options={"temperature": temperature})
cmp.summary[["model", "n", "errors", "score_accuracy", "score_valid_label", "latency_p50", "cost_per_case"]]
'''),
        md("Try other instructions or models interactively (left out of the promoted module):"),
        code('''
pk.Compare(models, PROMPT, cases, scorers=scorers, system=SYSTEM, options={"temperature": temperature})
''', "explore"),
        md("## The verdict"),
        code('''
print(cmp.report("accuracy"))
'''),
        code('''
chosen = cmp.best("accuracy")
accuracy = {m: round(float(a), 4) for m, a in
            zip(cmp.summary["model"], cmp.summary["score_accuracy"], strict=True)}
pk.output("chosen_model", chosen)
pk.output("accuracy", accuracy)
pk.output("ready_to_ship", accuracy[chosen] >= min_accuracy);
'''),
    ])


def extract() -> nbformat.NotebookNode:
    """Invoice fields extracted as JSON, scored by json_valid, json_schema and exact match per field."""
    return notebook([
        md("""
# {{title}}

Which model extracts invoice details as clean JSON? Each case is an invoice email and
the values a person read from it. A model's answer must parse as JSON (`json_valid`),
match the schema (`json_schema`), and hold the right value in each checked field
(`<field>_exact`), next to latency and cost. The outputs declared with `pk.output` are
what `protokit promote` turns into a tested module.
"""),
        code('''
models: list[str] = ["openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5"]  # models to compare, as provider:model
fields: list[str] = ["vendor", "due_date", "currency"]  # fields checked for an exact match with the case's column
temperature: float = 0.0  # sampling temperature for every model; 0 keeps answers repeatable
''', "parameters"),
        code('''
import json

import pandas as pd

import protokit as pk
'''),
        md("## The cases\nSix invoice emails with the values we expect. Add the messy ones you see in production."),
        code('''
cases = pd.DataFrame([
    {"id": "acme", "text": "Invoice INV-1042 from Acme Corp: 1,250.00 USD for March hosting, due 2025-04-15.",
     "vendor": "Acme Corp", "amount": 1250.0, "currency": "USD", "due_date": "2025-04-15"},
    {"id": "nordlicht", "text": "Rechnung von Nordlicht GmbH über 480,50 EUR, zahlbar bis 30.05.2025.",
     "vendor": "Nordlicht GmbH", "amount": 480.5, "currency": "EUR", "due_date": "2025-05-30"},
    {"id": "bluebird", "text": "Hi! Bluebird Design here - our fee for the logo work is GBP 900, "
     "please pay by 1 June 2025.", "vendor": "Bluebird Design", "amount": 900.0, "currency": "GBP",
     "due_date": "2025-06-01"},
    {"id": "cloudpeak", "text": "CloudPeak Ltd. Amount due: $74.99 (USD). Payment due date: July 3, 2025.",
     "vendor": "CloudPeak Ltd.", "amount": 74.99, "currency": "USD", "due_date": "2025-07-03"},
    {"id": "sakura", "text": "Sakura Trading invoice #88: JPY 120000, due on 2025-02-28. Thank you.",
     "vendor": "Sakura Trading", "amount": 120000.0, "currency": "JPY", "due_date": "2025-02-28"},
    {"id": "office-supplies", "text": "From: billing@paperworks.example\\nPaperworks Inc. invoice for office "
     "supplies, total CAD 315.20, net 30 from 2025-03-01 (due 2025-03-31).", "vendor": "Paperworks Inc.",
     "amount": 315.2, "currency": "CAD", "due_date": "2025-03-31"},
])
SCHEMA = {
    "type": "object",
    "properties": {
        "vendor": {"type": "string"},
        "amount": {"type": "number"},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "due_date": {"type": "string", "pattern": "^\\\\d{4}-\\\\d{2}-\\\\d{2}$"},
    },
    "required": ["vendor", "amount", "currency", "due_date"],
    "additionalProperties": False,
}
SYSTEM = ("Extract the invoice details from the message as one JSON object matching this JSON Schema, "
          "with the date as YYYY-MM-DD and the currency as an ISO 4217 code. Answer with the JSON only.\\n"
          + json.dumps(SCHEMA))
PROMPT = "{text}"
cases
'''),
        md("## Compare the models\nEvery call goes through protokit's cache: running again replays the "
           "recorded answers, offline and free."),
        code('''
def field_exact(field: str) -> pk.scorers.Scorer:
    """Exact match of one extracted field with the case column of the same name; 0 when not a JSON object."""
    same = pk.scorers.exact(field, ignore_case=True)

    def score(output: str, case: dict) -> float:
        try:
            data = pk.scorers.parse_json(output)
        except ValueError:
            return 0.0
        if not isinstance(data, dict) or field not in data:
            return 0.0
        return same(str(data[field]), case).value or 0.0

    return pk.scorers.custom(score, name=f"{field}_exact", columns=[field])


scorers = [pk.scorers.json_valid(), pk.scorers.json_schema(SCHEMA), *[field_exact(f) for f in fields]]
cmp = pk.compare(models, prompt=PROMPT, system=SYSTEM, cases=cases, scorers=scorers,
                 options={"temperature": temperature})
cmp.summary[["model", "n", "errors", *[f"score_{s.name}" for s in scorers], "latency_p50", "cost_per_case"]]
'''),
        md("Try other instructions or models interactively (left out of the promoted module):"),
        code('''
pk.Compare(models, PROMPT, cases, scorers=scorers, system=SYSTEM, options={"temperature": temperature})
''', "explore"),
        md("## The verdict"),
        code('''
print(cmp.report("json_schema"))
'''),
        code('''
chosen = cmp.best("json_schema")
summary = cmp.summary.set_index("model")
pk.output("chosen_model", chosen)
pk.output("schema_valid", {m: round(float(s), 4) for m, s in summary["score_json_schema"].items()})
pk.output("field_accuracy", {f: round(float(summary.loc[chosen, f"score_{f}_exact"]), 4) for f in fields});
'''),
    ])


TEMPLATES: dict[str, Callable[[], nbformat.NotebookNode]] = {
    "compare": compare,
    "classify": classify,
    "extract": extract,
}


def main() -> None:
    """Write every template notebook beside this file."""
    for name, build in TEMPLATES.items():
        nb = build()
        nbformat.validate(nb)
        nbformat.write(nb, HERE / f"{name}.ipynb")
        print(f"wrote templates/notebooks/{name}.ipynb")


if __name__ == "__main__":
    main()
