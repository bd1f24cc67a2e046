"""``pk.Compare``: the comparison as a widget, where the work happens.

Controls (models, prompt template, options, the batch toggle, Estimate, Run, Cancel) are built and
read here, and feed :func:`protokit.comparisons.acompare` through the run side in
:mod:`protokit.widgets.running` (streaming into the grid, the progress and batch lines, Cancel, and
the summary, chart and verdict after the run). A case's image (a prompt part
``{"type": "image", "source": "{photo}"}``) is shown as a thumbnail beside the case. Rating a
result and choosing a model are here too; the :class:`Comparison` stays available as
``widget.comparison``: everything shown is also data.
"""

from __future__ import annotations

import dataclasses
import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import traitlets

from protokit.comparisons import CompareArgs, image_columns
from protokit.errors import ConfigError, ProtokitError
from protokit.models import Model
from protokit.models import model as make_model
from protokit.widgets import static
from protokit.widgets.frontend import insert_cell_below
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
from protokit.widgets.running import BATCH_INTERVAL_S, PROGRESS_INTERVAL_S, RunMixin

# The redraw intervals live in running.py; re-exported because importers found them here first.
__all__ = ["BATCH_INTERVAL_S", "PROGRESS_INTERVAL_S", "Compare"]


class Compare(RunMixin, widgets.VBox):
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
        self.estimate_result: Any = None
        self._options = dict(self.args.options or {})
        self._models: dict[str, Model] = {}
        self._status_text = ""
        self._case_rows: list[tuple[Any, dict[str, Any]]] = []
        self._init_run()  # comparison, state, grid and the rest of the run's state: see running.py
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
