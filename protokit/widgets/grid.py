"""The live side-by-side grid: one row per case, one column per model (candidate), filled cell by cell.

With prompt variants a column is a candidate, ``model · variant``, and rows find their
column by their ``candidate`` value rather than their ``model``.

The grid is built once per run as a ``GridBox`` whose children never change
afterwards. A result touches only its own cell: it creates one ``HTML`` (its
output and figures) and one rating ``ToggleButtons``, and sets that cell's
``children``. So the messages sent to the front end per result are constant in
number and bounded in size, and the traffic of a run grows linearly with its
results. Layouts and styles are shared widgets, so a cell costs no extra
Layout/Style models.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import ipywidgets as widgets
from ipywidgets.widgets.widget_string import HTMLStyle

from protokit.widgets.static import case_html, cell_html, streaming_html

__all__ = ["RATING_ICONS", "RATING_OPTIONS", "ResultGrid"]

# Thumbs up/down, written into results["rating"] as 1 / 0 (so a mean is the share rated good).
# Icons (FontAwesome, shipped with Lab) rather than emoji, which not every system font has. The
# labels must differ: the front end finds each button by its label to mark the selected one.
RATING_OPTIONS: list[tuple[str, int]] = [(" ", 1), ("  ", 0)]
RATING_ICONS = ["thumbs-up", "thumbs-down"]

CellKey = tuple[str, str]  # (case id as text, model id or candidate name)
Part = tuple[int, int]  # (sample, turn): a cell shows its samples' (and a conversation's turns') answers in order
W = TypeVar("W", bound=widgets.Widget)


class ResultGrid:
    """A GridBox of cases x models (or candidates, ``key="candidate"``) filled one cell at a time by :meth:`put`."""

    def __init__(
        self,
        cases: Sequence[tuple[Any, Mapping[str, Any]]],
        models: Sequence[str],
        *,
        samples: int = 1,
        on_rate: Callable[[Any, str, int, int | None], None] | None = None,
        on_choose: Callable[[str], None] | None = None,
        key: str = "model",
        images: Sequence[str] = (),
    ) -> None:
        self.models = list(models)
        self.key = key
        use = "Use this model" if key == "model" else "Use this one"
        self._use_label = use
        self.samples = samples
        self._on_rate = on_rate
        self._on_choose = on_choose
        self._case_ids: dict[str, Any] = {str(case): case for case, _ in cases}
        # Every widget made here, so close() can free them (ipywidgets keeps them alive otherwise).
        self._owned: list[widgets.Widget] = []
        # Shared models: one Layout/Style for all cells instead of one per widget.
        self._cell_layout = self._own(widgets.Layout(min_width="0"))
        self._html_layout = self._own(widgets.Layout(width="auto", margin="0"))
        self._html_style = self._own(HTMLStyle())
        self._rate_layout = self._own(widgets.Layout(width="auto", margin="2px 0 0 0"))
        self._rate_style = self._own(widgets.ToggleButtonsStyle(button_width="2.4em"))
        # One model shown in every empty cell: a pending cell costs no widget of its own.
        pending = self._html('<span class="pk-pending">waiting…</span>')

        self.cells: dict[CellKey, widgets.VBox] = {}
        self.outputs: dict[tuple[str, str, int], widgets.HTML] = {}
        self.ratings: dict[tuple[str, str, int], widgets.ToggleButtons] = {}
        self.use_buttons: dict[str, widgets.Button] = {}
        self._filled: dict[CellKey, dict[Part, tuple[widgets.Widget, ...]]] = {}
        self.streaming: dict[tuple[str, str, int, int], widgets.HTML] = {}  # answers in flight

        children: list[widgets.Widget] = [self._html('<span class="pk-muted">case</span>')]
        for model in self.models:
            button = self._own(widgets.Button(description=use, tooltip=f'use "{model}"' if key != "model"
                                              else f'model = "{model}"',
                                              icon="check", layout=self._html_layout, _dom_classes=("pk-use",)))
            button.on_click(lambda _b, m=model: self._choose(m))
            self.use_buttons[model] = button
            head_html = self._html(f'<div class="pk-head">{html.escape(model)}</div>')
            children.append(self._own(widgets.VBox([head_html, button], layout=self._cell_layout)))
        for case, columns in cases:
            children.append(self._html(case_html(case, columns, images=images)))
            for model in self.models:
                # Classes given at creation travel in the opening message, not in one more update.
                cell = self._own(widgets.VBox([pending], layout=self._cell_layout, _dom_classes=("pk-gridcell",)))
                self.cells[(str(case), model)] = cell
                children.append(cell)
        columns_css = f"minmax(8em, 1fr) repeat({len(self.models)}, minmax(14em, 2fr))"
        # flex: none, or a scrolling parent shrinks the grid's rows and hides the header's buttons.
        self.box = self._own(widgets.GridBox(children, layout=self._own(widgets.Layout(
            grid_template_columns=columns_css, grid_gap="4px", width="100%", flex="0 0 auto")),
            _dom_classes=("pk-grid",)))

    def _own(self, widget: W) -> W:
        self._owned.append(widget)
        return widget

    def _html(self, value: str) -> widgets.HTML:
        return self._own(widgets.HTML(value, layout=self._html_layout, style=self._html_style))

    def _choose(self, model: str) -> None:
        if self._on_choose is not None:
            self._on_choose(model)

    def mark_chosen(self, model: str | None) -> None:
        """Show which column was chosen on its button."""
        for m, button in self.use_buttons.items():
            chosen = m == model
            button.button_style = "success" if chosen else ""
            button.description = "Chosen" if chosen else self._use_label

    def put(self, row: Mapping[str, Any]) -> None:
        """Show one result row in its cell (only that cell's widgets change)."""
        case, model = str(row["case"]), str(row[self.key])
        cell = self.cells.get((case, model))
        if cell is None:
            return  # a model or case this grid was not built for (e.g. a row from an older run)
        sample = int(row.get("sample") or 0)
        turn = row.get("turn")
        part: Part = (sample, int(turn) if turn is not None else 0)
        self.streaming.pop((case, model, part[0], part[1]), None)
        parts: tuple[widgets.Widget, ...] = (self._html(cell_html(row, samples=self.samples)),)
        if turn is None:
            self.outputs[(case, model, sample)] = parts[0]
        error = row.get("error")
        # A conversation's turns are rated in results (Comparison.add_rating(..., turn=)), not here.
        if not (isinstance(error, str) and error) and turn is None:
            rating = self._own(widgets.ToggleButtons(options=RATING_OPTIONS, index=None,
                                                     icons=RATING_ICONS, tooltips=["good", "bad"],
                                                     layout=self._rate_layout, style=self._rate_style,
                                                     _dom_classes=("pk-rating",)))
            rating.observe(lambda change, c=case, m=model, s=sample: self._rate(c, m, s, change["new"]),
                           names="value")
            self.ratings[(case, model, sample)] = rating
            parts = (*parts, rating)
        self._show(cell, (case, model), part, parts)

    def stream(self, case: Any, model: str, sample: int, turn: int | None, text: str) -> None:
        """Show an answer still streaming in (its text so far) in its cell, until :meth:`put` replaces it."""
        key = (str(case), model)
        cell = self.cells.get(key)
        if cell is None:
            return
        part: Part = (sample, turn if turn is not None else 0)
        value = streaming_html(text, samples=self.samples, sample=sample, turn=turn)
        where = (key[0], key[1], part[0], part[1])
        shown = self.streaming.get(where)
        if shown is not None:
            shown.value = value  # one message per update: the cell's layout does not change
            return
        shown = self.streaming[where] = self._html(value)
        self._show(cell, key, part, (shown,))

    def _show(self, cell: widgets.VBox, key: CellKey, part: Part, widgets_: tuple[widgets.Widget, ...]) -> None:
        filled = self._filled.setdefault(key, {})
        filled[part] = widgets_
        cell.children = tuple(w for p in sorted(filled) for w in filled[p])

    def _rate(self, case: str, model: str, sample: int, value: int | None) -> None:
        if self._on_rate is not None:
            self._on_rate(self._case_ids.get(case, case), model, sample, value)

    @property
    def filled(self) -> int:
        """How many results the grid shows (answers still streaming in not counted)."""
        return sum(len(parts) for parts in self._filled.values()) - len(self.streaming)

    def close(self) -> None:
        """Close every widget of the grid (their front-end models go too)."""
        for widget in reversed(self._owned):
            widget.close()
        self._owned.clear()
