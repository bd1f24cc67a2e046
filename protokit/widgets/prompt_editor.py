"""The widget's prompt editor: one template, or named prompt variants to edit, add and remove.

A single template is one text area, as it always was. "Add variant" turns it into named
variants (the template becomes ``v1``, a copy to edit ``v2``), each a name box, a text area
and a remove button; its value is then the ``{name: template}`` dict ``pk.compare`` takes.
A variant that is not a template (a messages list or a function of the case) is shown as
text and passed through unchanged; so is a single prompt that is not one (a messages list with
image parts, or None for the cases' own messages and turns).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from protokit.widgets.inputs import template_problem

__all__ = ["PromptEditor"]


def _rows(text: str) -> int:
    return max(3, min(10, text.count("\n") + 2))


def _describe(value: Any) -> str:
    if callable(value):
        return f"<function {getattr(value, '__qualname__', '?')}>"
    return repr(value)


@dataclass
class _Variant:
    name: widgets.Text
    editor: widgets.Textarea | None  # None: not a template, passed through as ``fixed``
    fixed: Any
    row: widgets.HBox
    remove: widgets.Button

    @property
    def value(self) -> Any:
        return self.editor.value if self.editor is not None else self.fixed


class PromptEditor:
    """One template (``value`` is a str) or named variants (``value`` is a ``{name: template}`` dict)."""

    def __init__(self, prompt: str | Mapping[str, Any]) -> None:
        self._label = widgets.HTML()
        self._add = widgets.Button(description="Add variant", icon="plus", tooltip="Compare another prompt",
                                   layout=widgets.Layout(width="auto"), _dom_classes=("pk-add-variant",))
        self._add.on_click(lambda _b: self.add())
        self._body = widgets.VBox()
        self.box = widgets.VBox([widgets.HBox([self._label, self._add], layout=widgets.Layout(align_items="center")),
                                 self._body])
        self._single: widgets.Textarea | None = None
        self._fixed: widgets.HTML | None = None  # a single prompt that is not a template: shown, passed through
        self._fixed_value: Any = None
        self._variants: list[_Variant] = []
        self.value = prompt

    # -- the value ------------------------------------------------------------------------------------
    @property
    def value(self) -> str | dict[str, Any]:
        """The template, or the variants by name (in order) once there are variants."""
        if self._single is not None:
            return str(self._single.value)
        if self._fixed is not None:
            return self._fixed_value
        return {v.name.value.strip(): v.value for v in self._variants}

    @value.setter
    def value(self, prompt: str | Mapping[str, Any]) -> None:
        self._variants = []
        self._fixed = None
        if isinstance(prompt, Mapping):
            self._single = None
            for name, value in prompt.items():
                self._append(str(name), value)
        elif not isinstance(prompt, str):
            self._single = None
            self._fixed_value = prompt
            self._fixed = widgets.HTML(f'<pre class="pk-out">{html.escape(_describe(prompt))}</pre>')
        else:
            self._single = widgets.Textarea(value=prompt, rows=_rows(prompt), layout=widgets.Layout(width="100%"))
        self._show()

    @property
    def names(self) -> list[str]:
        """The variants' names; empty for a single template."""
        return [v.name.value.strip() for v in self._variants] if self._single is None and self._fixed is None \
            else []

    def editor(self, name: str | None = None) -> widgets.Textarea | None:
        """The text area of a variant (of the template when ``name`` is None); None if it has none."""
        if name is None:
            return self._single
        return next((v.editor for v in self._variants if v.name.value.strip() == name), None)

    # -- editing --------------------------------------------------------------------------------------
    def add(self, name: str | None = None, template: str | None = None) -> str:
        """Add a variant (a copy of the last template by default); a single template becomes ``v1``."""
        if self._single is not None:
            first = str(self._single.value)
            self._single = None
            self._append("v1", first)
        elif self._fixed is not None:
            self._fixed = None
            self._append("v1", self._fixed_value)
        if template is None:
            last = next((v.editor.value for v in reversed(self._variants) if v.editor is not None), "")
            template = str(last)
        taken = set(self.names)
        if name is None:
            name = next(f"v{i}" for i in range(1, len(taken) + 2) if f"v{i}" not in taken)
        self._append(name, template)
        self._show()
        return name

    def remove(self, name: str) -> None:
        """Remove a variant by name (the last one stays)."""
        if len(self._variants) <= 1:
            return
        gone = [v for v in self._variants if v.name.value.strip() == name]
        self._variants = [v for v in self._variants if v not in gone]
        self._show()
        for v in gone:  # ipywidgets keeps a widget alive until it is closed
            for widget in (*v.row.children, v.row):
                widget.close()

    def _append(self, name: str, value: Any) -> None:
        box = widgets.Text(value=name, placeholder="name", layout=widgets.Layout(width="9em"),
                           _dom_classes=("pk-variant-name",))
        remove = widgets.Button(icon="times", tooltip="Remove this variant", layout=widgets.Layout(width="2.4em"),
                                _dom_classes=("pk-remove-variant",))
        editor: widgets.Textarea | None = None
        if isinstance(value, str):
            editor = widgets.Textarea(value=value, rows=_rows(value), layout=widgets.Layout(flex="1 1 auto"))
            shown: widgets.Widget = editor
        else:  # messages or a function: shown, not editable here
            shown = widgets.HTML(f'<pre class="pk-out">{html.escape(_describe(value))}</pre>',
                                 layout=widgets.Layout(flex="1 1 auto"))
        row = widgets.HBox([box, shown, remove], layout=widgets.Layout(width="100%", align_items="flex-start"))
        variant = _Variant(box, editor, value, row, remove)
        remove.on_click(lambda _b, v=variant: self.remove(v.name.value.strip()))
        self._variants.append(variant)

    def _show(self) -> None:
        if self._single is not None:
            self._label.value = "<b>Prompt template</b>&nbsp;"
            self._body.children = (self._single,)
            return
        if self._fixed is not None:
            self._label.value = "<b>Prompt</b>&nbsp;"
            self._body.children = (self._fixed,)
            return
        self._label.value = "<b>Prompt variants</b>&nbsp;"
        self._body.children = tuple(v.row for v in self._variants)
        for v in self._variants:
            v.remove.disabled = len(self._variants) == 1

    # -- checks ---------------------------------------------------------------------------------------
    def problem(self, columns: Sequence[str]) -> str | None:
        """What stops a run (a missing column, an empty or repeated name), or None."""
        if self._single is not None:
            return template_problem(str(self._single.value), columns)
        if self._fixed is not None:
            return None  # checked by compare, which names what is wrong
        seen: set[str] = set()
        for v in self._variants:
            name = v.name.value.strip()
            if not name:
                return "a prompt variant has no name: name each one"
            if name in seen:
                return f"two prompt variants are named {name!r}: rename one"
            seen.add(name)
            if v.editor is not None:
                problem = template_problem(str(v.editor.value), columns)
                if problem:
                    return f"prompt variant {name!r}: {problem}"
        return None
