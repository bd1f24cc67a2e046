"""The generated module's import block, written the way ruff's isort rules (I001) want it.

Promote writes code that passes ``ruff check`` as it comes out, without running ruff: the
output must be the same bytes whether or not ruff is installed. So the block is sorted here,
following ruff's defaults: sections (``__future__``, standard library, third party, first
party, local folder) separated by one blank line; in each section the ``import x`` lines
first, then the ``from x import ...`` lines, both by module name compared case-insensitively
with numbers in natural order; the names of one ``from`` import merged onto one line
(constants, then classes, then the rest), a name imported ``as`` another on its own line, and
a line longer than :data:`LINE_LENGTH` wrapped one name per line in parentheses.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["LINE_LENGTH", "import_block"]

# The line length the generated code is written for (this repository's own setting).
LINE_LENGTH = 120
_FUTURE, _STDLIB, _THIRD, _FIRST, _LOCAL = range(5)
_DIGITS = re.compile(r"(\d+)")


def _natural(text: str, fold: bool = True) -> tuple[tuple[int, int | str], ...]:
    """A sort key that compares runs of digits as numbers, and the rest case-insensitively when ``fold``."""
    return tuple((0, int(part)) if part.isdigit() else (1, part.lower() if fold else part)
                 for part in _DIGITS.split(text) if part)


def _member_type(name: str) -> int:
    """0 for a CONSTANT, 1 for a Class, 2 for anything else (ruff's order-by-type)."""
    if len(name) > 1 and name.upper() == name and name.lower() != name:
        return 0
    return 1 if name[:1].isupper() else 2


def _member_key(name: str) -> tuple[object, ...]:
    return (_member_type(name), _natural(name), name)


@dataclass(frozen=True)
class _From:
    level: int
    module: str
    names: tuple[str, ...]  # merged names, or one name when it has an alias
    alias: str | None

    def key(self) -> tuple[object, ...]:
        first = _member_key(self.names[0]) if self.names else ()
        # Relative imports go furthest first (`..` before `.`), ruff's default.
        return (-self.level, _natural(self.module), self.module, first, _natural(self.alias or "", fold=False))

    def text(self) -> str:
        where = "." * self.level + self.module
        if self.alias is not None:
            return f"from {where} import {self.names[0]} as {self.alias}"
        one = f"from {where} import {', '.join(self.names)}"
        if len(one) <= LINE_LENGTH:
            return one
        return f"from {where} import (\n" + "".join(f"    {n},\n" for n in self.names) + ")"


def _straight_key(item: tuple[str, str | None]) -> tuple[object, ...]:
    module, alias = item
    return (_natural(module), module, _natural(alias or "", fold=False))


def _section(module: str, level: int, first_party: Callable[[str], bool]) -> int:
    if level:
        return _LOCAL
    top = module.split(".")[0]
    if top == "__future__":
        return _FUTURE
    if top in sys.stdlib_module_names:
        return _STDLIB
    return _FIRST if first_party(top) else _THIRD


def import_block(statements: Iterable[str], first_party: Callable[[str], bool] = lambda _: False) -> str:
    """The sorted import block (no trailing newline) for import statements given as source text.

    ``first_party(name)`` says whether a top-level module is the project's own (ruff counts a
    module found beside the file as first party).
    """
    straight: dict[int, set[tuple[str, str | None]]] = {}
    merged: dict[tuple[int, int, str], set[str]] = {}
    aliased: dict[int, set[_From]] = {}
    for text in statements:
        for node in ast.parse(text).body:
            if isinstance(node, ast.Import):
                for a in node.names:
                    straight.setdefault(_section(a.name, 0, first_party), set()).add((a.name, a.asname))
            elif isinstance(node, ast.ImportFrom):
                module, level = node.module or "", node.level
                section = _section(module, level, first_party)
                for a in node.names:
                    if a.asname is None:
                        merged.setdefault((section, level, module), set()).add(a.name)
                    else:
                        aliased.setdefault(section, set()).add(_From(level, module, (a.name,), a.asname))
            else:
                raise ValueError(f"not an import statement: {text!r}")
    sections: list[str] = []
    for section in range(5):
        ordered = sorted(straight.get(section, ()), key=_straight_key)
        lines = [f"import {m}" + (f" as {a}" if a else "") for m, a in ordered]
        froms = [_From(level, module, tuple(sorted(names, key=_member_key)), None)
                 for (sec, level, module), names in merged.items() if sec == section]
        froms += aliased.get(section, set())
        lines += [f.text() for f in sorted(froms, key=_From.key)]
        if lines:
            sections.append("\n".join(lines))
    return "\n\n".join(sections)
