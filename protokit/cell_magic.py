"""The ``%%compare`` cell magic: ``%load_ext protokit``, then ``%%compare MODEL ... --cases df``, the cell the prompt.

::

    %%compare openai:gpt-4.1-mini anthropic:claude-haiku-4-5 --cases df --scorers checks
    Classify this support ticket: {ticket}

shows a :class:`~protokit.widgets.Compare` widget and stores it in the notebook
as ``_compare`` (or ``--name``). Mistakes in the magic line are one-line usage
errors, not tracebacks.

A cell whose first line is ``=== NAME ===`` holds prompt variants, each one starting with such
a line; every model is run with every variant (``prompt={NAME: template, ...}``)::

    %%compare openai:gpt-4.1-mini --cases df
    === terse ===
    Label: {ticket}
    === polite ===
    Please read this support ticket and give its label: {ticket}
"""

from __future__ import annotations

import re
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

__all__ = ["ProtokitMagics", "load_ipython_extension", "split_variants"]

_VARIANT = re.compile(r"^===[ \t]*(\S(?:.*\S)?)[ \t]*===[ \t]*$")


def split_variants(cell: str) -> str | dict[str, str]:
    """The cell's prompt: its text, or ``{name: template}`` when its first line is ``=== NAME ===``."""
    lines = cell.strip("\n").split("\n")
    if not lines or _VARIANT.match(lines[0]) is None:
        return cell.strip("\n")
    variants: dict[str, list[str]] = {}
    current: list[str] = []
    for line in lines:
        m = _VARIANT.match(line)
        if m is None:
            current.append(line)
            continue
        name = m.group(1)
        if name in variants:
            raise UsageError(f"%%compare: two prompt variants are named {name!r}; give each its own name")
        current = variants[name] = []
    out = {name: "\n".join(body).strip("\n") for name, body in variants.items()}
    empty = [name for name, text in out.items() if not text.strip()]
    if empty:
        raise UsageError(f"%%compare: prompt variant {empty[0]!r} is empty; write its template under its === line")
    return out


@magics_class
class ProtokitMagics(Magics):
    """protokit's notebook magics."""

    @magic_arguments()
    @argument("models", nargs="+", help="Models as provider:name (or names of model variables).")
    @argument("--cases", required=True, help="The cases: a DataFrame (or list of dicts) variable.")
    @argument("--scorers", default=None, help="A variable holding a list of scorers.")
    @argument("--name", default="_compare", help="Variable to store the widget in (default: _compare).")
    @argument("--samples", type=int, default=1, help="Samples per case and model.")
    @argument("--system", default=None, help="A variable holding the system prompt.")
    @argument("--run", action="store_true", help="Run now, synchronously (for papermill/nbconvert).")
    @cell_magic
    def compare(self, line: str, cell: str) -> None:
        """Compare models on cases with the cell as the prompt template, in a widget."""
        from IPython.display import display

        from protokit.widgets import Compare

        args = parse_argstring(self.compare, line)  # bad arguments raise UsageError: one line, no traceback
        prompt = split_variants(cell)
        if isinstance(prompt, str) and not prompt.strip():
            raise UsageError("%%compare: the cell body is the prompt template, and it is empty")
        if not args.name.isidentifier():
            raise UsageError(f"%%compare: --name {args.name!r} is not a valid variable name")
        models = [self._model(spec) for spec in args.models]
        cases = self._lookup(args.cases, "--cases")
        scorers = self._lookup(args.scorers, "--scorers") if args.scorers else ()
        if callable(scorers):
            scorers = [scorers]
        system = self._lookup(args.system, "--system") if args.system else None
        widget = Compare(models=models, prompt=prompt, cases=cases, scorers=list(scorers),
                         samples=args.samples, system=system, run=args.run)
        self._ns()[args.name] = widget
        display(widget)

    def _ns(self) -> dict[str, Any]:
        if self.shell is None:
            raise UsageError("%%compare needs an IPython shell")
        ns: dict[str, Any] = self.shell.user_ns
        return ns

    def _lookup(self, expr: str, flag: str) -> Any:
        """A notebook variable (or expression such as ``df.head(5)``) by its text."""
        ns = self._ns()
        if expr in ns:
            return ns[expr]
        try:
            return eval(expr, ns)  # the user's own expression, in the user's own namespace
        except Exception as exc:
            raise UsageError(f"%%compare: {flag} {expr}: no such variable in the notebook "
                             f"({type(exc).__name__}: {exc})") from None

    def _model(self, spec: str) -> Any:
        # provider:name is a model spec; a bare name may be a variable holding a Model or callable.
        if ":" in spec:
            return spec
        return self._lookup(spec, "model")


def load_ipython_extension(ipython: Any) -> None:
    """Register protokit's magics (``%load_ext protokit.cell_magic``, or ``%load_ext protokit``)."""
    ipython.register_magics(ProtokitMagics)
