"""The one template parser: prompt templates are Python's ``str.format`` fields, ``{ticket}``.

Compare's prompts, a judge's rubric and its grading template all go through here, so
they accept the same syntax and fail with the same one-line messages::

    >>> template_fields("Classify: {ticket} ({lang!r})")
    ['ticket', 'lang']
    >>> render_template("Classify: {ticket}", {"ticket": "refund"})
    'Classify: refund'

Literal braces are written ``{{`` and ``}}``. A field may index or look into its value
(``{case[title]}``, ``{user.name}``); its name is what comes before. A positional field
(``{}``, ``{0}``) is refused: every field names a column.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any

from protokit.errors import ConfigError

__all__ = ["render_template", "template_fields"]

_ROOT = re.compile(r"[.\[]")
_CONVERSIONS = frozenset({None, "r", "s", "a"})
_MALFORMED = "{what} is malformed ({problem}); write literal braces as {{{{ and }}}}"


def _shown(text: str) -> str:
    """A template's text quoted on one line: newlines and other controls escaped, as repr() shows them."""
    return repr(text)[1:-1]


def template_fields(template: str, *, what: str = "the prompt template") -> list[str]:
    """The names a ``{column}`` template refers to, in order (repeats kept); ConfigError when it is malformed.

    ``what`` names the template in messages (``"the judge's rubric"``). Fields inside a
    format spec (``{score:{width}}``) count too: filling the template needs them.
    """
    names: list[str] = []
    _collect(template, what, names, depth=0)
    return names


def _collect(template: str, what: str, names: list[str], depth: int) -> None:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(_MALFORMED.format(what=what, problem=exc)) from None
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        root = _ROOT.split(field, maxsplit=1)[0]
        if root == "" or root.isdigit():
            raise ConfigError(f"{what} has a positional {{}} placeholder; name a column: {{ticket}}")
        if conversion not in _CONVERSIONS:
            problem = f"unknown conversion !{_shown(conversion or '')} in {{{_shown(field)}}}"
            raise ConfigError(_MALFORMED.format(what=what, problem=problem))
        names.append(root)
        if spec:
            nested: list[str] = []
            _collect(spec, what, nested, depth + 1)
            if nested and depth:  # str.format allows fields one level down in a format spec, no deeper
                problem = f"fields nested too deep in {{{_shown(field)}}}"
                raise ConfigError(_MALFORMED.format(what=what, problem=problem))
            names.extend(nested)


def render_template(template: str, values: Mapping[str, Any], *, what: str = "the prompt template") -> str:
    """``template`` with its fields filled from ``values``; ConfigError naming what did not fit.

    A template with no fields is returned unchanged, ``{{`` included, so that text with
    literal braces and no placeholders reads the same whether or not it is meant as one.
    """
    if not template_fields(template, what=what):
        return template
    try:
        return template.format_map(values)
    except KeyError as exc:
        raise ConfigError(f"{what} uses {{{exc.args[0]}}} but there is no value for it; "
                          f"known: {', '.join(map(str, values)) or 'none'}") from None
    except (ValueError, IndexError, AttributeError, TypeError) as exc:
        raise ConfigError(f"{what} could not be filled: {exc}") from None
