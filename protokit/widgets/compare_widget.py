"""``pk.Compare``: the comparison as a widget, where the work happens.

Controls (models, prompt template, options, the batch toggle, Estimate, Run, Cancel) feed
:func:`protokit.comparisons.acompare`; its ``on_chunk`` streams each answer into its cell as it
is written (each cell redrawn at most 10 times a second, :mod:`protokit.widgets.streaming`), its
``on_result`` fills the grid cell by cell and a throttled progress line, and with the batch toggle
on, its ``on_batch`` shows the provider batches being waited for (requests submitted, done and
failed, each batch's status in the provider's words) on a line of their own, a few times a second
at most. A case's image (a prompt part ``{"type": "image", "source": "{photo}"}``) is shown as a
thumbnail beside the case. After the run the widget shows the summary, the quality-against-cost
chart and the verdict of the same :class:`Comparison`, which stays available as
``widget.comparison``: everything shown is also data.

A Run click schedules the comparison as a task on the kernel's own event loop
(a widget callback runs on it), so the kernel stays free for Cancel and ratings
while results stream in; ``on_result`` runs on that loop in the kernel's main
thread, where sending widget messages is safe. ``run=True`` runs synchronously
instead, before the widget is displayed, for papermill and nbconvert, whose
saved output then carries a static HTML copy next to the widget view.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import html
import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import traitlets

from protokit import _aio
from protokit.comparisons import CompareArgs, candidate_name, image_columns
from protokit.errors import ConfigError, ProtokitError
from protokit.models import Model
from protokit.models import model as make_model
from protokit.widgets import static
from protokit.widgets.frontend import insert_cell_below
from protokit.widgets.grid import ResultGrid
from protokit.widgets.inputs import (
    RunPlan,
    case_columns,
    case_rows,
    columns_html,
    estimate_html,
    opt_text,
    parse_options,
)
from protokit.widgets.prompt_editor import PromptEditor
from protokit.widgets.streaming import Throttle

if TYPE_CHECKING:
    from protokit.comparisons import BatchProgress, Comparison
    from protokit.runner import Progress, Runner

__all__ = ["BATCH_INTERVAL_S", "PROGRESS_INTERVAL_S", "Compare"]

# The progress line is redrawn at most this often (and once at the end): cheap for big runs.
PROGRESS_INTERVAL_S = 0.1
# The batch line likewise (the batches are looked at 0.2 s apart at first, then less and less often).
BATCH_INTERVAL_S = 0.25


class Compare(widgets.VBox):
    """Pick models, edit the prompt, run, watch results arrive side by side, rate them and choose one.

    Parameters
    ----------
    models
        ``provider:name`` strings, :class:`~protokit.Model` objects or callables, as for ``pk.compare``.
    prompt
        The template, with ``{column}`` fields from ``cases``; or a dict of named prompt variants, as for
        ``pk.compare``: the grid then has a column per model and variant, and "Add variant" adds one
        (templates are editable; a messages list or a function is shown and passed through).
    cases
        The cases, as for ``pk.compare`` (a DataFrame, or a list of dicts).
    scorers
        As for ``pk.compare``.
    run
        Run the comparison synchronously now (for papermill/nbconvert), so the saved output has it.
    **args
        Any other argument of ``pk.compare`` (``samples``, ``options``, ``system``, ``concurrency``,
        ``budget_usd``, ``retries``, ``timeout``, ``batch``): the widget takes the same arguments, checked
        the same way. Samples, the temperature/max tokens options and batch stay editable in the widget.
    """

    chosen = traitlets.Unicode(None, allow_none=True,
                               help="The model id (with variants, the candidate 'model · variant') picked.")

    def __init__(
        self,
        models: Sequence[Any],
        prompt: str | Mapping[str, Any],
        cases: Any,
        scorers: Sequence[Any] = (),
        *,
        run: bool = False,
        **args: Any,
    ) -> None:
        taken = sorted({"on_result", "on_start", "on_chunk", "on_batch"} & set(args))
        if taken:
            raise ConfigError(f"the Compare widget sets {', '.join(taken)} itself; use pk.compare for your own")
        # The one argument spec of a comparison: an unknown name fails here, as it would in pk.compare.
        self.args = CompareArgs(list(models), prompt, cases, list(scorers), **args)
        super().__init__(_dom_classes=("pk-compare",))
        self._cases = cases
        self.scorers = list(scorers)
        self.comparison: Comparison | None = None
        self.state = "idle"  # idle | running | done | cancelled | failed
        self.estimate_result: Any = None
        self._options = dict(self.args.options or {})
        self._models: dict[str, Model] = {}
        self._grid: ResultGrid | None = None
        self._stream: Throttle | None = None  # answers streaming into their cells
        self._task: asyncio.Task[Any] | None = None
        self._runner: Runner | None = None
        self._cancel_requested = False
        self._ratings: dict[tuple[Any, str, int], Any] = {}
        self._last_progress = 0.0
        self._last_batch = 0.0
        self.batch_progress: BatchProgress | None = None  # the last one shown (batch runs)
        self._batch_updates = 0  # batch lines drawn (read by tests)
        self._chart_png = b""
        self._status_text = ""
        self._ui_seconds = 0.0  # time spent updating widgets from on_result (read by the benchmark)
        self._case_rows: list[tuple[Any, dict[str, Any]]] = []
        self._candidates: dict[str, tuple[str, str | None]] = {}  # grid column -> (model id, variant)
        self._run_prompt: Any = None  # the prompt of the last run started
        self._build(prompt, self.args.samples)
        self.cases = cases
        for spec in models:
            self.add_model(spec)
        if run:
            self.run_sync()

    # -- layout -----------------------------------------------------------------------------------
    def _build(self, prompt: str | Mapping[str, Any], samples: int) -> None:
        wide = {"description_width": "initial"}
        self._header = widgets.HTML(static.CSS + '<div class="pk-title">protokit · compare</div>')
        self._model_checks = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self._new_model = widgets.Text(placeholder="provider:name, e.g. openai:gpt-4.1-mini",
                                       continuous_update=False, layout=widgets.Layout(width="22em"))
        self._new_model.observe(lambda _c: self._add_typed(), names="value")
        self._add_button = widgets.Button(description="Add model", icon="plus", layout=widgets.Layout(width="auto"))
        self._add_button.on_click(lambda _b: self._add_typed())
        self._prompts = PromptEditor(prompt)
        self._columns = widgets.HTML()
        self._temperature = widgets.Text(value=opt_text(self._options.pop("temperature", None)),
                                         placeholder="default", description="temperature", style=wide,
                                         layout=widgets.Layout(width="12em"))
        self._max_tokens = widgets.Text(value=opt_text(self._options.pop("max_tokens", None)),
                                        placeholder="default", description="max tokens", style=wide,
                                        layout=widgets.Layout(width="12em"))
        self._samples = widgets.BoundedIntText(value=samples, min=1, max=100, description="samples",
                                               style=wide, layout=widgets.Layout(width="9em"))
        self._batch = widgets.Checkbox(value=bool(self.args.batch), description="batch", indent=False,
                                       tooltip="Send the calls through the providers' batch APIs: half the price, "
                                               "results within 24 h", layout=widgets.Layout(width="auto"))
        self._batch.add_class("pk-batch-toggle")
        self._estimate_button = widgets.Button(description="Estimate", icon="calculator",
                                               tooltip="Calls, tokens, cost and time before spending")
        self._run_button = widgets.Button(description="Run", icon="play", button_style="primary")
        self._cancel_button = widgets.Button(description="Cancel", icon="stop", disabled=True)
        for button, name in ((self._estimate_button, "pk-estimate"), (self._run_button, "pk-run"),
                             (self._cancel_button, "pk-cancel"), (self._add_button, "pk-add")):
            button.add_class(name)  # stable handles for tests and user CSS
        self._estimate_button.on_click(lambda _b: self.estimate())
        self._run_button.on_click(lambda _b: self.run())
        self._cancel_button.on_click(lambda _b: self.cancel())
        self._estimate_html = widgets.HTML()
        self._progress = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(width="16em"))
        self._progress_html = widgets.HTML()
        self._progress_row = widgets.HBox([self._progress, self._progress_html],
                                          layout=widgets.Layout(display="none", align_items="center"))
        self._batch_bar = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(width="16em"))
        self._batch_html = widgets.HTML()
        self._batch_row = widgets.HBox([self._batch_bar, self._batch_html],
                                       layout=widgets.Layout(display="none", align_items="center"))
        self._status = widgets.HTML()
        for line, name in ((self._estimate_html, "pk-estimate-line"), (self._progress_html, "pk-progress"),
                           (self._batch_html, "pk-batch"), (self._status, "pk-status")):
            line.add_class(name)
        self._grid_area = widgets.VBox(layout=widgets.Layout(max_height="44em", overflow="auto"))
        self._summary = widgets.HTML()
        self._chart = widgets.Image(format="png", layout=widgets.Layout(max_width="560px"))
        self._verdict = widgets.HTML()
        self._after = widgets.VBox([
            widgets.HBox([self._summary, self._chart], layout=widgets.Layout(flex_flow="row wrap",
                                                                             align_items="flex-start")),
            self._verdict], layout=widgets.Layout(display="none"))
        self._choice = widgets.Text(layout=widgets.Layout(width="30em"))
        self._choice_row = widgets.HBox(
            [widgets.HTML('<span class="pk-muted">Copy this into your parameters cell:</span>'), self._choice],
            layout=widgets.Layout(display="none", align_items="center"))
        # Hidden: receives the script that inserts the chosen model's cell (see frontend.py).
        self._js = widgets.Output(layout=widgets.Layout(display="none"))
        self.children = (
            self._header,
            widgets.HBox([widgets.HTML("<b>Models</b>&nbsp;"), self._model_checks, self._new_model,
                          self._add_button], layout=widgets.Layout(flex_flow="row wrap", align_items="center")),
            self._prompts.box,
            self._columns,
            widgets.HBox([widgets.HBox([self._temperature, self._max_tokens, self._samples, self._batch],
                                       layout=widgets.Layout(align_items="center")),
                          widgets.HBox([self._estimate_button, self._run_button, self._cancel_button])],
                         layout=widgets.Layout(flex_flow="row wrap", align_items="center")),
            self._estimate_html,
            self._progress_row,
            self._batch_row,
            self._status,
            self._grid_area,
            self._after,
            self._choice_row,
            self._js,
        )

    # -- models and status ------------------------------------------------------------------------
    def add_model(self, spec: Any) -> str | None:
        """Add a model (``provider:name``, a Model or a callable) to the picker; its id, or None if invalid."""
        try:
            m = spec if isinstance(spec, Model) else make_model(spec)
        except ProtokitError as exc:
            self._say(str(exc), error=True)
            return None
        except Exception as exc:  # e.g. a callable the callable adapter refuses
            self._say(f"cannot use {spec!r:.60} as a model: {type(exc).__name__}: {exc}", error=True)
            return None
        if m.id in self._models:
            self._say(f"{m.id} is already in the list")
            return m.id
        self._models[m.id] = m
        check = widgets.Checkbox(value=True, description=m.id, indent=False,
                                 layout=widgets.Layout(width="auto", margin="0 12px 0 0"))
        self._model_checks.children = (*self._model_checks.children, check)
        return m.id

    def _add_typed(self) -> None:
        text = self._new_model.value.strip()
        if not text:
            return
        added = self.add_model(text)
        if added is not None:
            self._new_model.value = ""
            self._say(f"added {added}")

    @property
    def cases(self) -> Any:
        """The cases the next run uses; setting them checks them and lists their columns."""
        return self._cases

    @cases.setter
    def cases(self, value: Any) -> None:
        self._cases = value
        try:
            self._case_rows = case_rows(value)
        except ProtokitError as exc:
            self._case_rows = []
            self._say(str(exc), error=True)
        self._columns.value = columns_html(case_columns(self._case_rows))

    @property
    def models(self) -> list[str]:
        """Ids of the models ticked in the picker, in order."""
        return [c.description for c in self._model_checks.children if c.value]

    @property
    def prompt(self) -> str | dict[str, Any]:
        """The prompt template as currently edited; with variants, the ``{name: template}`` dict."""
        return self._prompts.value

    @prompt.setter
    def prompt(self, value: str | Mapping[str, Any]) -> None:
        self._prompts.value = value

    def add_variant(self, name: str | None = None, template: str | None = None) -> str:
        """Add a prompt variant (what "Add variant" does; a copy of the last template by default); its name."""
        return self._prompts.add(name, template)

    def remove_variant(self, name: str) -> None:
        """Remove a prompt variant by name (the last one stays)."""
        self._prompts.remove(name)

    @property
    def status(self) -> str:
        """The status line's text (messages and errors)."""
        return self._status_text

    def _say(self, text: str, *, error: bool = False, ok: bool = False) -> None:
        self._status_text = text
        tone = "pk-status-error" if error else "pk-status-ok" if ok else "pk-muted"
        self._status.value = f'<span class="{tone}">{html.escape(text)}</span>'

    # -- planning ---------------------------------------------------------------------------------
    def _plan(self) -> RunPlan | None:
        """The run's arguments from the controls, or None after saying what is wrong."""
        models = [self._models[m] for m in self.models]
        if not models:
            self._say("no model is ticked: tick one or add one as provider:name", error=True)
            return None
        prompt = self.prompt
        problem = self._prompts.problem(case_columns(self._case_rows))
        if problem:
            self._say(problem, error=True)
            return None
        options = parse_options(self._options, temperature=self._temperature.value,
                                max_tokens=self._max_tokens.value)
        if isinstance(options, str):
            self._say(options, error=True)
            return None
        samples = int(self._samples.value)
        kwargs = dataclasses.replace(self.args, models=models, prompt=prompt, cases=self.cases,
                                     scorers=self.scorers, samples=samples, options=options or None,
                                     batch=bool(self._batch.value)).as_kwargs()
        return RunPlan(models, prompt, samples, options, kwargs)

    def estimate(self) -> Any:
        """Show (and return) what a run would cost: calls, tokens, cost and time, before spending."""
        plan = self._plan()
        if plan is None:
            return None
        try:
            from protokit.comparisons import estimate

            est = estimate(**plan.kwargs)
        except ProtokitError as exc:
            self._say(str(exc), error=True)
            return None
        except Exception as exc:
            self._say(f"estimate failed: {type(exc).__name__}: {exc}", error=True)
            return None
        self.estimate_result = est
        self._estimate_html.value = estimate_html(est)
        return est

    # -- running ----------------------------------------------------------------------------------
    def run(self) -> asyncio.Task[Any] | None:
        """Start a run: as a task on the running loop (the kernel stays free), else synchronously."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.run_sync()
            return None
        if self.state == "running":
            self._say("already running: Cancel it first")
            return self._task
        self._task = loop.create_task(self.arun())
        return self._task

    def run_sync(self) -> Comparison | None:
        """Run to the end and return the Comparison (None if the run could not start)."""
        return _aio.run_sync(self.arun())

    async def arun(self) -> Comparison | None:
        """Run the comparison with the current controls, updating the widget as results arrive."""
        if self.state == "running":
            self._say("already running: Cancel it first")
            return None
        plan = self._plan()
        if plan is None:
            return None
        self._start(plan)
        try:
            from protokit.comparisons import acompare

            # A batched answer arrives whole (and a streamed call is never batched): no streaming then.
            on_chunk = None if plan.kwargs.get("batch") else self._on_chunk
            comparison = await acompare(**{**plan.kwargs, "on_result": self._on_result, "on_start": self._on_start,
                                           "on_chunk": on_chunk, "on_batch": self._on_batch})
        except ProtokitError as exc:
            self._finish(None, f"the run stopped: {exc}")
        except Exception as exc:  # shown in the widget: a traceback would end the user's flow
            self._finish(None, f"the run stopped: unexpected {type(exc).__name__}: {exc}")
        except asyncio.CancelledError:
            self._finish(None, "the run's task was cancelled")
            raise
        else:
            self._finish(comparison)
        return self.comparison

    def cancel(self) -> None:
        """Stop a run; results that finished stay in the grid and in ``comparison``."""
        if self.state != "running":
            return
        self._cancel_requested = True
        if self._runner is not None:
            self._runner.cancel()
        self._say("cancelling: the finished results stay")

    def _on_start(self, runner: Runner) -> None:
        self._runner = runner
        if self._cancel_requested:
            runner.cancel()

    def _start(self, plan: RunPlan) -> None:
        self.state = "running"
        self._cancel_requested = False
        self._runner = None
        self.comparison = None
        self._ratings.clear()
        self._chart_png = b""
        if self._grid is not None:
            self._grid.close()
        if self._stream is not None:
            self._stream.close()
        self._stream = Throttle(self._show_stream)
        self._run_prompt = plan.prompt
        variants: list[str | None] = list(plan.prompt) if isinstance(plan.prompt, Mapping) else [None]
        self._candidates = {candidate_name(m.id, p): (m.id, p) for m in plan.models for p in variants}
        self._grid = ResultGrid(self._case_rows, list(self._candidates), samples=plan.samples,
                                on_rate=self._rated, on_choose=self.choose,
                                key="candidate" if variants != [None] else "model", images=image_columns(plan.prompt))
        self._grid_area.children = (self._grid.box,)
        if self.chosen:
            self._grid.mark_chosen(self.chosen)
        self._after.layout.display = "none"
        total = len(self._case_rows) * len(self._candidates) * plan.samples
        with self._progress.hold_sync():
            self._progress.max = max(1, total)
            self._progress.value = 0
            self._progress.bar_style = ""
        self._progress_html.value = f'<span class="pk-muted">0/{total}</span>'
        self._progress_row.layout.display = "flex"
        self.batch_progress = None
        self._last_batch = 0.0
        self._batch_row.layout.display = "none"  # shown by the first look at a batch
        self._run_button.disabled = True
        self._cancel_button.disabled = False
        self._say(f"running {total} calls{' (provider batches)' if plan.kwargs.get('batch') else ''}…")

    def _stream_key(self, cell: Mapping[str, Any]) -> tuple[str, str, int, int | None] | None:
        if self._grid is None:
            return None
        turn = cell.get("turn")
        return (str(cell["case"]), str(cell[self._grid.key]), int(cell.get("sample") or 0),
                int(turn) if turn is not None else None)

    def _on_chunk(self, cell: Mapping[str, Any], text: str) -> None:
        """A piece of an answer in flight: into its cell, through the throttle."""
        key = self._stream_key(cell)
        if key is not None and self._stream is not None:
            self._stream.add(key, text)

    def _show_stream(self, key: Any, text: str) -> None:
        started = time.perf_counter()
        try:
            if self._grid is not None:
                case, column, sample, turn = key
                self._grid.stream(case, column, sample, turn, text)
        except Exception as exc:  # a display problem must not stop the run
            self._say(f"could not show a streaming answer: {type(exc).__name__}: {exc}", error=True)
        self._ui_seconds += time.perf_counter() - started

    def _on_result(self, row: Mapping[str, Any], progress: Progress) -> None:
        started = time.perf_counter()
        try:
            key = self._stream_key(row)
            if key is not None and self._stream is not None:
                self._stream.done(key)  # the whole answer replaces what streamed in
            if self._grid is not None:
                self._grid.put(row)
            now = time.monotonic()
            if progress.done >= progress.total or now - self._last_progress >= PROGRESS_INTERVAL_S:
                self._last_progress = now
                self._show_progress(progress)
        except Exception as exc:  # a display problem must not stop the run
            self._say(f"could not show a result: {type(exc).__name__}: {exc}", error=True)
        self._ui_seconds += time.perf_counter() - started

    def _show_progress(self, p: Progress) -> None:
        with self._progress.hold_sync():
            self._progress.max = max(1, p.total)
            self._progress.value = p.done
            self._progress.bar_style = "danger" if p.errors else ""
        errors = f'<span class="pk-status-error">{p.errors} errors</span>' if p.errors else "0 errors"
        self._progress_html.value = (f"&nbsp;{p.done}/{p.total} · {static.fmt_cost(p.cost_usd)} · {errors}"
                                     f" · {p.cached} cached · {p.elapsed_s:.1f} s")

    def _on_batch(self, p: BatchProgress) -> None:
        """The batches after a look at them: a line of their own, redrawn every BATCH_INTERVAL_S at most."""
        now = time.monotonic()
        if p.running and now - self._last_batch < BATCH_INTERVAL_S:
            return  # the last look (every batch ended) is always shown
        self._last_batch = now
        started = time.perf_counter()
        try:
            self.batch_progress = p
            self._batch_updates += 1
            with self._batch_bar.hold_sync():
                self._batch_bar.max = max(1, p.submitted)
                self._batch_bar.value = p.done
                self._batch_bar.bar_style = "danger" if p.failed else ""
            self._batch_html.value = static.batch_html(p, self._progress.max)
            self._batch_row.layout.display = "flex"
        except Exception as exc:  # a display problem must not stop the run
            self._say(f"could not show the batches' progress: {type(exc).__name__}: {exc}", error=True)
        self._ui_seconds += time.perf_counter() - started

    def _finish(self, comparison: Comparison | None, problem: str | None = None) -> None:
        if self._stream is not None:
            self._stream.close()
        self._run_button.disabled = False
        self._cancel_button.disabled = True
        if self._runner is not None:
            self._show_progress(self._runner.progress)
        self._runner = None
        if comparison is None:
            self.state = "failed"
            if self._grid is not None and self._grid.filled == 0:
                self._grid_area.children = ()  # nothing ran: an empty grid would only look pending
            self._say(problem or "the run stopped", error=True)
            return
        self.comparison = comparison
        cancelled = self._cancel_requested or getattr(comparison, "status", "") == "cancelled"
        self.state = "cancelled" if cancelled else "done"
        for (case, model, sample), rating in self._ratings.items():  # given while the run went on
            # Ratings come from rows the grid showed, so a miss means a row vanished: skip it, keep going.
            with contextlib.suppress(ProtokitError):
                comparison.add_rating(case, model, rating, sample=sample)
        self._show_after(comparison)
        results = comparison.results
        errors = int(results["error"].notna().sum()) if "error" in results else 0
        if self.state == "cancelled":
            kept = len(results) - errors
            self._say(f"cancelled: {kept} finished result{'s' if kept != 1 else ''} kept", error=True)
        else:
            self._say(f"done: {len(results)} results, {errors} errors", ok=not errors, error=bool(errors))

    def _show_after(self, comparison: Comparison) -> None:
        notes = []
        try:
            self._summary.value = static.summary_html(comparison.summary)
        except Exception as exc:
            notes.append(f"summary unavailable ({type(exc).__name__}: {exc})")
        self._chart.layout.display = "none"
        if comparison.score_names:  # the chart plots a score; without scorers the verdict says so
            try:
                self._chart_png = static.chart_png(comparison)
                self._chart.value = self._chart_png
                self._chart.layout.display = ""
            except Exception as exc:
                notes.append(f"chart unavailable ({type(exc).__name__}: {exc})")
        try:
            verdict = comparison.report()
        except Exception as exc:
            verdict = ""
            notes.append(f"verdict unavailable ({type(exc).__name__}: {exc})")
        self._verdict.value = static.verdict_html(verdict) + "".join(
            f'<div class="pk-muted">{html.escape(n)}</div>' for n in notes)
        self._after.layout.display = "flex"

    # -- judgement and choice ---------------------------------------------------------------------
    def rate(self, case: Any, model: str, rating: Any, sample: int = 0) -> None:
        """Record a human rating of one result (written to ``comparison.results["rating"]``)."""
        toggle = self._grid.ratings.get((str(case), model, sample)) if self._grid is not None else None
        if toggle is not None and rating in (1, 0) and toggle.value != rating:
            toggle.value = rating  # its observer records it, and the grid shows it
            return
        self._rated(case, model, sample, rating)

    def _rated(self, case: Any, model: str, sample: int, rating: Any) -> None:
        if rating is None:
            return
        self._ratings[(case, model, sample)] = rating
        if self.comparison is not None:
            try:
                self.comparison.add_rating(case, model, rating, sample=sample)
            except ProtokitError as exc:
                self._say(str(exc), error=True)

    def choose(self, model: str) -> None:
        """Pick a model: set ``chosen`` and add a ``model = "..."`` cell below the widget.

        With prompt variants ``model`` is a candidate, and the cell sets ``prompt`` too: the
        variant's template (or, for a variant that is not one, its name as ``prompt_variant``).
        """
        self.chosen = model
        line = f"model = {json.dumps(model)}"
        model_id, variant = self._candidates.get(model, (model, None))
        if variant is not None:  # the variant as it was run, not as edited since
            template = self._run_prompt.get(variant) if isinstance(self._run_prompt, Mapping) else None
            line = f"model = {json.dumps(model_id)}\n" + (
                f"prompt = {json.dumps(template)}" if isinstance(template, str)
                else f"prompt_variant = {json.dumps(variant)}")
        self._choice.value = line.replace("\n", "; ")  # one line in the copy box
        self._choice_row.layout.display = "flex"
        if self._grid is not None:
            self._grid.mark_chosen(model)
        self._say(f"chose {model}: a cell with {line} was added below (if not, copy the line from the box)",
                  ok=True)
        insert_cell_below(self._js, line)

    # -- display ----------------------------------------------------------------------------------
    def to_html(self) -> str:
        """A static HTML copy of the widget: settings, grid, summary, chart, verdict and choice."""
        return static.page_html(
            models=self.models, prompt=self.prompt, cases=self._case_rows, samples=int(self._samples.value),
            status=self._status_text, comparison=self.comparison, summary=self._summary.value,
            chart_png=self._chart_png, verdict=self._verdict.value, chosen=self.chosen,
            choice=self._choice.value or None, images=image_columns(self.prompt))

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        # The widget view for a live front end, and static HTML for the rest (papermill, nbconvert, GitHub).
        bundle: dict[str, Any] = dict(super()._repr_mimebundle_(**kwargs) or {})
        bundle["text/html"] = self.to_html()
        return bundle

    def __repr__(self) -> str:
        results = 0 if self.comparison is None else len(self.comparison.results)
        return (f"Compare(models={self.models!r}, cases={len(self._case_rows)}, state={self.state!r}, "
                f"results={results}, chosen={self.chosen!r})")
