"""Cases and prompts: load a case table, render each case's prompt, check everything up front.

Everything here runs before the first model call, so a mistake (a missing
column, an empty table, a duplicate model) costs nothing: one ConfigError line
that names the fix.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple, ParamSpec, TypeVar, cast

import pandas as pd

from protokit.batch import OnBatch
from protokit.comparisons.prompts import (
    Prompt,
    SinglePrompt,
    describe_prompt,
    image_columns,
    prompt_variants,
    render_prompts,
)
from protokit.comparisons.tables import candidate_name
from protokit.comparisons.turns import TURN_COLUMN, TURNS_COLUMN, Conversation, case_conversations
from protokit.errors import ConfigError
from protokit.models import Model
from protokit.models import model as make_model
from protokit.models.prompts import template_fields
from protokit.models.structured import check_schema
from protokit.models.tools import check_tools
from protokit.runner import Call, Progress, RetryPolicy, Runner
from protokit.scorers import Scorer, as_scorer
from protokit.scorers._judge import Judge

__all__ = [
    "DEFAULT_CONCURRENCY",
    "RESULT_COLUMNS",
    "VARIANT_COLUMNS",
    "CompareArgs",
    "OnBatch",
    "OnChunk",
    "OnResult",
    "OnStart",
    "Plan",
    "Slot",
    "build_plan",
    "check_scorers",
    "columns_for",
    "describe_prompt",
    "image_columns",
    "load_cases",
    "prompt_variants",
    "render_prompts",
    "resolve_models",
    "same_arguments",
    "template_fields",
]

# Columns every results frame has besides the case's own, scores and reasons.
RESULT_COLUMNS = (
    "case", "model", "sample", "output", "latency_s", "ttft_s", "input_tokens", "output_tokens",
    "cost_usd", "cached", "finish_reason", "secret_shaped", "error", "error_status", "error_message", "attempts",
    "served_by", "price_date", "scorer_error", "judge_cost_usd", "rating",
)  # fmt: skip
# Columns a results frame has only with prompt variants (so a single-prompt run may have a case
# column of either name, as before): the variant's name, and the candidate, "model · variant".
VARIANT_COLUMNS = ("prompt", "candidate")
# Columns a results frame has only when calls carry tools= (the calls made) or schema= (the checked answer).
ANSWER_COLUMNS = ("tool_calls", "parsed")
DEFAULT_CONCURRENCY = 16
OnResult = Callable[[dict[str, Any], Progress], None]
OnStart = Callable[[Runner], None]
# fn(cell, text): a piece of a streaming answer; cell names its row ({"case", "model", "sample"}, and
# "prompt"/"candidate" with prompt variants, "turn" with turns).
OnChunk = Callable[[dict[str, Any], str], None]


def _read_path(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise ConfigError(f"cases file {path} does not exist; give a DataFrame, a list of dicts, "
                          "or the path of a .csv or .jsonl file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        # keep_default_na=False: an empty cell is "", not NaN rendered as "nan" in a prompt.
        return pd.read_csv(path, keep_default_na=False)
    if suffix in (".jsonl", ".ndjson"):
        rows = []
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except ValueError as exc:
                        raise ConfigError(f"{path} line {n} is not JSON ({exc}); one object per line") from None
        return _from_records(rows, str(path))
    if suffix == ".json":
        return _from_records(json.loads(path.read_text(encoding="utf-8")), str(path))
    raise ConfigError(f"cannot read cases from {path}: use a .csv, .jsonl or .json file")


def _from_records(rows: Any, where: str) -> pd.DataFrame:
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        raise ConfigError(f"cases from {where} must be a list of dicts (one per case)")
    return pd.DataFrame([dict(r) for r in rows])


def _native(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    item = getattr(value, "item", None)  # numpy scalars -> Python, so rows serialise as JSON
    if callable(item) and not isinstance(value, (str, bytes)):
        try:
            return _native(item())
        except (TypeError, ValueError):
            return value
    return value


def load_cases(cases: Any) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The cases as a frame with a ``case`` id column first, and one plain dict per case (id first).

    The id is the ``case`` column, else an ``id`` column, when one exists with unique
    values; otherwise the row position (0, 1, ...).
    """
    if isinstance(cases, pd.DataFrame):
        frame = cases.reset_index(drop=True)
    elif isinstance(cases, (str, os.PathLike)):
        frame = _read_path(Path(cases))
    elif isinstance(cases, Sequence) and not isinstance(cases, (bytes, str)):
        frame = _from_records(list(cases), "the list")
    else:
        raise ConfigError(f"cases must be a DataFrame, a list of dicts or a .csv/.jsonl path, "
                          f"got {type(cases).__name__}")
    if len(frame) == 0:
        raise ConfigError("there are no cases: give at least one row")
    frame.columns = [str(c) for c in frame.columns]
    if frame.columns.duplicated().any():
        dup = frame.columns[frame.columns.duplicated()][0]
        raise ConfigError(f"the cases have two columns named {dup!r}; rename one")
    clash = [c for c in frame.columns if (c in RESULT_COLUMNS and c != "case")
             or c.startswith(("score_", "reason_"))]
    if clash:
        raise ConfigError(f"case column {clash[0]!r} clashes with a results column; rename it "
                          f"(e.g. expected_{clash[0]})")
    id_col = next((c for c in ("case", "id") if c in frame.columns), None)
    if id_col == "case" and not frame["case"].is_unique:
        raise ConfigError("the 'case' column must hold a unique id per row; rename it or remove duplicates")
    if id_col == "id" and not frame["id"].is_unique:
        id_col = None  # not an id after all: use positions
    records = [{k: _native(v) for k, v in row.items()} for row in frame.to_dict("records")]
    ids = [r[id_col] for r in records] if id_col else list(range(len(records)))
    if any(isinstance(i, (list, dict)) or i is None for i in ids):
        raise ConfigError(f"case ids from column {id_col!r} must be strings or numbers; rename the column")
    if "case" not in frame.columns:
        frame.insert(0, "case", ids)
    else:
        frame = frame[["case", *[c for c in frame.columns if c != "case"]]]
    # Each case dict starts with its id, as the frame's row does.
    records = [{"case": cid, **{k: v for k, v in rec.items() if k != "case"}} for cid, rec in zip(ids, records,
                                                                                               strict=True)]
    return frame, records


def resolve_models(models: Any) -> list[Model]:
    """Models from Model objects, ``provider:name`` specs or callables; ids must be distinct."""
    if isinstance(models, (Model, str)) or callable(models):
        models = [models]
    try:
        built = [make_model(m) for m in models]
    except TypeError:
        raise ConfigError("models must be a list of pk models or specs like 'openai:gpt-4.1-mini'") from None
    if not built:
        raise ConfigError("no models to compare: give at least one")
    seen: set[str] = set()
    for m in built:
        if m.id in seen:
            raise ConfigError(f"model {m.id} appears twice; remove one or name each setting, e.g. "
                              f"pk.model({m.spec!r}, name='{m.name}-2', ...)")
        seen.add(m.id)
    return built


def check_scorers(scorers: Any, columns: Sequence[str]) -> list[Scorer]:
    """Scorers as Scorer objects, with distinct names and every column they read present."""
    if scorers is None:
        return []
    if isinstance(scorers, Scorer) or callable(scorers):
        scorers = [scorers]
    out = [as_scorer(s) for s in scorers]
    names: set[str] = set()
    for s in out:
        if s.name in names:
            raise ConfigError(f"two scorers are named {s.name!r}; pass name='...' to one of them")
        names.add(s.name)
        for col in s.columns:
            if col not in columns:
                raise ConfigError(f"scorer {s.name!r} reads column {col!r}, which the cases do not have "
                                  f"(columns: {', '.join(columns)}); add it or fix the scorer")
    return out


def columns_for(case_columns: Sequence[str], score_names: Sequence[str], reason_names: Sequence[str],
                judge: bool, *, variants: bool = False, tools: bool = False, schema: bool = False,
                turns: bool = False) -> list[str]:
    """The column order of a results frame (with variants, ``prompt`` and ``candidate`` follow ``model``;
    with tools or a schema, ``tool_calls`` and ``parsed`` follow ``output``; with turns, ``turn`` follows
    ``sample``)."""
    fixed = [c for c in RESULT_COLUMNS[1:] if c not in ("scorer_error", "judge_cost_usd", "rating")]
    if turns:
        fixed.insert(fixed.index("sample") + 1, TURN_COLUMN)
    at = fixed.index("output") + 1
    fixed[at:at] = [c for c, used in zip(ANSWER_COLUMNS, (tools, schema), strict=True) if used]
    if variants:
        at = fixed.index("model") + 1
        fixed[at:at] = VARIANT_COLUMNS
    scores = [f"score_{n}" for n in score_names] + [f"reason_{n}" for n in reason_names]
    tail = ["scorer_error", *(["judge_cost_usd"] if judge else []), "rating"]
    return ["case", *[c for c in case_columns if c != "case"], *fixed, *scores, *tail]


class Slot(NamedTuple):
    """Where a call's row goes: its case and candidate (indexes), its sample and, with turns, its turn."""

    case: int
    candidate: int
    sample: int
    turn: int | None = None


@dataclass
class Plan:
    """Everything a run needs, built and checked before any call.

    ``calls`` are what the runner is handed; with turns, each is a conversation's first turn and the
    others follow it (``Call.then``). A call's tag is its row: ``slots[tag]`` says where it goes.
    """

    models: list[Model]
    frame: pd.DataFrame
    records: list[dict[str, Any]]
    scorers: list[Scorer]
    calls: list[Call]
    samples: int
    columns: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    prompts: list[str] = field(default_factory=list)  # the variants' names; empty for one prompt
    candidates: list[tuple[Model, str | None]] = field(default_factory=list)  # in call order within a case
    slots: list[Slot] = field(default_factory=list)  # one per row, in row order
    turns: bool = False  # the cases' turns are played (a `turn` column)

    @property
    def total(self) -> int:
        """Rows (calls) of the run, every turn counted."""
        return len(self.slots)

    @property
    def candidate_names(self) -> list[str]:
        """Each candidate's name: the model id, or ``model · variant`` with prompt variants."""
        return [candidate_name(m.id, p) for m, p in self.candidates]

    def candidate_of(self, tag: int) -> tuple[Model, str | None]:
        """The (model, variant name) a call belongs to, from its tag (its index in ``calls``)."""
        return self.candidates[self.slots[tag].candidate]


@dataclass(frozen=True)
class CompareArgs:
    """The arguments of a comparison: the one spec ``compare``, ``acompare``, ``estimate`` and the widget share.

    Each of them is declared with :func:`same_arguments` over this class, so their
    parameters (and defaults) are written here only. See :func:`protokit.compare` for
    what each one means.
    """

    models: Any
    prompt: Prompt
    cases: Any
    scorers: Any = None
    _: KW_ONLY
    samples: int = 1
    concurrency: int = DEFAULT_CONCURRENCY
    budget_usd: float | None = None
    system: str | None = None
    options: Mapping[str, Any] | None = None
    on_result: OnResult | None = None
    on_start: OnStart | None = None
    on_chunk: OnChunk | None = None
    stream: bool = False
    retries: int | RetryPolicy | None = None
    timeout: float | None = None
    tools: Any = None
    schema: Any = None
    run_tools: bool = False
    max_steps: int | None = None
    batch: bool = False  # through the providers' batch APIs (protokit.batch)
    on_batch: OnBatch | None = None  # fn(BatchProgress) while waiting for them

    def as_kwargs(self) -> dict[str, Any]:
        """The arguments by name, ready for ``compare(**args.as_kwargs())``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


P = ParamSpec("P")
R = TypeVar("R")


def same_arguments(spec: Callable[P, Any]) -> Callable[[Callable[..., R]], Callable[P, R]]:
    """Declare a function as taking exactly ``spec``'s parameters (shown by help(), IDEs, type checkers)."""
    def declare(fn: Callable[..., R]) -> Callable[P, R]:
        own = inspect.signature(fn).return_annotation
        fn.__signature__ = inspect.signature(spec).replace(return_annotation=own)  # type: ignore[attr-defined]
        return cast("Callable[P, R]", fn)
    return declare


def _answer_columns(calls: Sequence[Call], case_columns: Sequence[str]) -> dict[str, bool]:
    """Which of ``tool_calls`` and ``parsed`` the results have: those some call asks for."""
    used = {"tools": any("tools" in c.request.options for c in calls),
            "schema": any("schema" in c.request.options for c in calls)}
    for column, flag in zip(ANSWER_COLUMNS, used.values(), strict=True):
        if flag and column in case_columns:
            raise ConfigError(f"case column {column!r} clashes with the results column {column!r}; rename it "
                              f"(e.g. expected_{column})")
    return used


def _stored_options(opts: Mapping[str, Any]) -> dict[str, Any]:
    """Options as a run stores them: tools and schema in their JSON form (never a function's repr)."""
    stored = dict(opts)
    if opts.get("tools") is not None:
        stored["tools"] = check_tools(opts["tools"])[0]
    if opts.get("schema") is not None:
        stored["schema"] = check_schema(opts["schema"])[0]
    return stored


def build_plan(args: CompareArgs) -> Plan:
    """Load and check everything, render every prompt and build every request; no call is made."""
    models, prompt, cases, scorers = args.models, args.prompt, args.cases, args.scorers
    samples, concurrency, budget_usd, system, options = (args.samples, args.concurrency, args.budget_usd,
                                                         args.system, args.options)
    if args.timeout is not None and (isinstance(args.timeout, bool) or not isinstance(args.timeout, (int, float))
                                     or args.timeout <= 0):
        raise ConfigError(f"timeout must be a positive number of seconds or None, got {args.timeout!r}")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ConfigError(f"samples must be a positive integer, got {samples!r}")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError(f"concurrency must be a positive integer, got {concurrency!r}")
    if budget_usd is not None and (not isinstance(budget_usd, (int, float)) or budget_usd < 0):
        raise ConfigError(f"budget_usd must be a non-negative number or None, got {budget_usd!r}")
    if system is not None and not isinstance(system, str):
        raise ConfigError(f"system must be a string, got {type(system).__name__}")
    if options is not None and not isinstance(options, Mapping):
        raise ConfigError(f"options must be a dict such as {{'temperature': 0}}, got {type(options).__name__}")
    opts = dict(options or {})
    # tools= and schema= go to every call (each model checks them); run_tools and max_steps bound its tool loop.
    opts.update({k: v for k, v in (("tools", args.tools), ("schema", args.schema)) if v is not None})
    if args.run_tools or args.max_steps is not None:
        opts.update(run_tools=args.run_tools, max_steps=args.max_steps)
    frame, records = load_cases(cases)
    columns = [str(c) for c in frame.columns]
    built = resolve_models(models)
    scorer_list = check_scorers(scorers, columns)
    variants = prompt_variants(prompt)
    ids = [r["case"] for r in records]
    rendered: dict[str | None, list[Any]] = {}
    turns: list[list[str]] | None = None
    if prompt is None:  # each case is its own prompt: its messages, and its turns played one by one
        rendered[None], turns = case_conversations(records, columns, ids)
        if turns is not None:
            _check_turns(args, columns)
    elif variants is None:
        _no_turns(records, columns)
        rendered[None] = render_prompts(cast("SinglePrompt", prompt), records, columns, ids)
    else:
        _no_turns(records, columns)
        clash = [c for c in VARIANT_COLUMNS if c in columns]
        if clash:
            raise ConfigError(f"case column {clash[0]!r} clashes with the results column that names each "
                              f"prompt variant's candidates; rename it (e.g. case_{clash[0]})")
        for name, variant in variants.items():
            try:
                rendered[name] = render_prompts(variant, records, columns, ids)
            except ConfigError as exc:
                raise ConfigError(f"prompt variant {name!r}: {exc}") from exc.__cause__
    candidates = [(m, p) for m in built for p in rendered]
    seen: set[str] = set()
    for m, p in candidates:
        name = candidate_name(m.id, p)
        if name in seen:  # only possible when a model id or a variant name holds the separator
            raise ConfigError(f"two candidates are both named {name!r}; rename a prompt variant")
        seen.add(name)
    # Streamed calls measure their time to first token (ttft_s); on_chunk shows the pieces as they come.
    stream = bool(args.stream) or args.on_chunk is not None
    calls: list[Call] = []
    slots: list[Slot] = []
    for i in range(len(records)):
        for c, (m, p) in enumerate(candidates):
            for s in range(samples):
                if turns is None:
                    calls.append(Call(m, m.request(rendered[p][i], system=system, sample=s, stream=stream, **opts),
                                      tag=len(slots)))
                    slots.append(Slot(i, c, s))
                    continue
                talk = Conversation(m, rendered[p][i], turns[i], len(slots), s, system, stream, opts)
                calls.append(talk.call())
                slots.extend(Slot(i, c, s, k) for k in range(len(turns[i])))
    names = [s.name for s in scorer_list]
    cols = columns_for(columns, names, [s.name for s in scorer_list if s.reasons],
                       any(isinstance(s, Judge) for s in scorer_list), variants=variants is not None,
                       turns=turns is not None, **_answer_columns(calls, columns))
    run_options: dict[str, Any] = {"samples": samples, "system": system, "options": _stored_options(opts),
                                   "concurrency": concurrency, "budget_usd": budget_usd}
    if variants is not None:
        run_options["prompts"] = list(variants)  # a reloaded run knows its variants
    meta = {
        "prompt": describe_prompt(prompt), "models": [m.id for m in built], "options": run_options,
        "scorers": [s.describe() for s in scorer_list], "score_names": names, "columns": cols,
        "cases": records, "total": len(slots),
    }
    return Plan(built, frame, records, scorer_list, calls, samples, cols, meta, list(variants or ()), candidates,
                slots, turns is not None)


def _check_turns(args: CompareArgs, columns: Sequence[str]) -> None:
    """What playing turns cannot go with: a case column named ``turn``, provider batches."""
    if TURN_COLUMN in columns:
        raise ConfigError(f"case column {TURN_COLUMN!r} clashes with the results column that numbers each turn; "
                          f"rename it (e.g. case_{TURN_COLUMN})")
    if getattr(args, "batch", False):
        raise ConfigError("batch=True cannot play turns: each turn needs the answer to the one before; "
                          "run the conversation without batch=True")


def _no_turns(records: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """A ``turns`` column of lists with a prompt given is a mistake: turns are played with ``prompt=None``."""
    if TURNS_COLUMN in columns and any(isinstance(r.get(TURNS_COLUMN), list) for r in records):
        raise ConfigError(f"the cases have a {TURNS_COLUMN!r} column of user turns, which are played with "
                          "prompt=None (each case's own messages and turns); pass prompt=None or rename the column")
