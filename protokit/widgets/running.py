"""A Compare's run: start it, stream answers into the grid, draw progress and batch lines, cancel, finish.

:class:`RunMixin` holds the run side of :class:`protokit.widgets.compare_widget.Compare`: the
controls are built and read there (``_plan``), and this feeds them to
:func:`protokit.comparisons.acompare`. Its ``on_chunk`` streams each answer into its cell as it is
written (each cell redrawn at most 10 times a second, :mod:`protokit.widgets.streaming`), its
``on_result`` fills the grid cell by cell and a throttled progress line, and with the batch toggle
on, its ``on_batch`` shows the provider batches being waited for (requests submitted, done and
failed, each batch's status in the provider's words) on a line of their own, a few times a second
at most. After the run it shows the summary, the quality-against-cost chart and the verdict of the
same :class:`Comparison`, kept as ``widget.comparison``.

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
import html
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from protokit import _aio
from protokit.comparisons import candidate_name, image_columns
from protokit.errors import ProtokitError
from protokit.widgets import static
from protokit.widgets.grid import ResultGrid
from protokit.widgets.streaming import Throttle

if TYPE_CHECKING:
    import ipywidgets as widgets

    from protokit.comparisons import BatchProgress, Comparison
    from protokit.runner import Progress, Runner
    from protokit.widgets.inputs import RunPlan

__all__ = ["BATCH_INTERVAL_S", "PROGRESS_INTERVAL_S", "RunMixin"]

# The progress line is redrawn at most this often (and once at the end): cheap for big runs.
PROGRESS_INTERVAL_S = 0.1
# The batch line likewise (the batches are looked at 0.2 s apart at first, then less and less often).
BATCH_INTERVAL_S = 0.25


class RunMixin:
    """The run side of the Compare widget: Run, Cancel and what the widget shows while and after it runs."""

    if TYPE_CHECKING:
        # Made by Compare (its cases, its controls and its other methods); named here for the type checker.
        chosen: str | None
        _case_rows: list[tuple[Any, dict[str, Any]]]
        _progress: widgets.IntProgress
        _progress_html: widgets.HTML
        _progress_row: widgets.HBox
        _batch_bar: widgets.IntProgress
        _batch_html: widgets.HTML
        _batch_row: widgets.HBox
        _run_button: widgets.Button
        _cancel_button: widgets.Button
        _grid_area: widgets.VBox
        _summary: widgets.HTML
        _chart: widgets.Image
        _verdict: widgets.HTML
        _after: widgets.VBox

        def _say(self, text: str, *, error: bool = False, ok: bool = False) -> None: ...
        def _plan(self) -> RunPlan | None: ...
        def _rated(self, case: Any, model: str, sample: int, rating: Any) -> None: ...
        def choose(self, model: str) -> None: ...

    def _init_run(self) -> None:
        """The state of no run yet (Compare calls this before building its controls)."""
        self.comparison: Comparison | None = None
        self.state = "idle"  # idle | running | done | cancelled | failed
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
        self._ui_seconds = 0.0  # time spent updating widgets from on_result (read by the benchmark)
        self._candidates: dict[str, tuple[str, str | None]] = {}  # grid column -> (model id, variant)
        self._run_prompt: Any = None  # the prompt of the last run started

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
