"""Which names each cell binds and reads, so validate can find what the module would lack.

A statement's reads split in two: *now* (evaluated when the statement runs: the
top level, class bodies, comprehensions, defaults and decorators) and *later*
(global names read inside function bodies, needed only when the function is
called). Names read now must be bound by an earlier exported cell; names read
later by any exported cell.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["BUILTINS", "NameIssue", "StatementNames", "check_names", "statement_names"]

BUILTINS = frozenset(dir(builtins)) | {"__name__", "__doc__"}
# Names IPython puts in the user namespace; a module has none of them.
_IPYTHON_ONLY = {"In": "IPython's input history", "Out": "IPython's output history",
                 "_": "the last output", "__": "an earlier output", "___": "an earlier output",
                 "_i": "IPython's input history", "_oh": "IPython's output history",
                 "get_ipython": "IPython's shell object"}
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp,
           ast.DictComp, ast.GeneratorExp)


@dataclass
class StatementNames:
    """The names one top-level statement binds, reads now, and reads later (in function bodies)."""

    binds: set[str] = field(default_factory=set)
    now: list[tuple[str, int]] = field(default_factory=list)
    later: list[tuple[str, int]] = field(default_factory=list)
    star_import: bool = False


@dataclass(frozen=True)
class NameIssue:
    """A name an exported cell reads that the module would not have."""

    cell_index: int
    line: int
    name: str
    message: str
    fix: str


class _Scan:
    """Bindings, reads and nested scopes of a list of nodes, not descending into nested scopes."""

    def __init__(self) -> None:
        self.binds: set[str] = set()
        self.loads: list[tuple[str, int]] = []
        self.scopes: list[ast.AST] = []
        self.globals: set[str] = set()
        self.star = False

    def visit(self, node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.binds.add(node.name)
            for part in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
                if part is not None:
                    self.visit(part)
            self.scopes.append(node)
            return
        if isinstance(node, ast.ClassDef):
            self.binds.add(node.name)
            for part in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
                self.visit(part)
            self.scopes.append(node)
            return
        if isinstance(node, ast.Lambda):
            for part in [*node.args.defaults, *node.args.kw_defaults]:
                if part is not None:
                    self.visit(part)
            self.scopes.append(node)
            return
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            self.visit(node.generators[0].iter)  # evaluated in the enclosing scope
            self.scopes.append(node)
            return
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                self.loads.append((node.id, node.lineno))
            else:
                self.binds.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    self.star = True
                else:
                    self.binds.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            self.globals.update(node.names)
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            self.binds.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            self.binds.add(node.rest)
        for child in ast.iter_child_nodes(node):
            self.visit(child)


def _params(args: ast.arguments) -> set[str]:
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    return {a.arg for a in every if a is not None}


def _free(scope: ast.AST) -> tuple[list[tuple[str, int]], set[str]]:
    """Names a nested scope reads from outside itself, and names it declares global and binds."""
    scan = _Scan()
    local: set[str] = set()
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        local |= _params(scope.args)
        for stmt in scope.body:
            scan.visit(stmt)
    elif isinstance(scope, ast.Lambda):
        local |= _params(scope.args)
        scan.visit(scope.body)
    elif isinstance(scope, ast.ClassDef):
        for stmt in scope.body:
            scan.visit(stmt)
    else:  # a comprehension: its targets are local, its first iterable was read outside
        comp = scope
        assert isinstance(comp, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp))
        for i, gen in enumerate(comp.generators):
            scan.visit(gen.target)
            if i:
                scan.visit(gen.iter)
            for cond in gen.ifs:
                scan.visit(cond)
        for part in ([comp.key, comp.value] if isinstance(comp, ast.DictComp) else [comp.elt]):
            scan.visit(part)
    local |= scan.binds - scan.globals
    free = [(n, line) for n, line in scan.loads if n not in local]
    declared = scan.binds & scan.globals
    for inner in scan.scopes:
        inner_free, inner_declared = _free(inner)
        # Methods do not see their class body's names; other nested scopes see the enclosing locals.
        hidden = set() if isinstance(scope, ast.ClassDef) else local
        free += [(n, line) for n, line in inner_free if n not in hidden]
        declared |= inner_declared
    return free, declared


def statement_names(stmt: ast.stmt) -> StatementNames:
    """What one top-level statement binds and reads (now and later)."""
    scan = _Scan()
    scan.visit(stmt)
    result = StatementNames(binds=set(scan.binds), now=list(scan.loads), star_import=scan.star)
    for scope in scan.scopes:
        free, declared = _free(scope)
        result.binds |= declared
        if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            result.later += free
        elif isinstance(scope, ast.ClassDef):
            # A class body runs now; its methods' reads are later, but _free merges them: be lenient.
            result.later += free
        else:
            result.now += free
    return result


def check_names(cells: Sequence[tuple[int, ast.Module, bool]], given: Iterable[str] = ()) -> list[NameIssue]:
    """Issues for names exported cells read but no earlier exported cell (or parameter) binds.

    ``cells`` is ``(cell_index, parsed tree, exported)`` in notebook order; ``given``
    are names defined from the start (the parameters).
    """
    explore_binds: dict[str, int] = {}
    exported_binds: dict[str, int] = {}
    per_cell: list[tuple[int, bool, list[StatementNames]]] = []
    for index, tree, exported in cells:
        stmts = [statement_names(s) for s in tree.body]
        per_cell.append((index, exported, stmts))
        for names in stmts:
            for name in names.binds:
                (exported_binds if exported else explore_binds).setdefault(name, index)
        if any(s.star_import for s in stmts) and exported:
            return []  # `from x import *`: the names it binds are unknown, so nothing can be checked
    defined = set(BUILTINS) | set(given)
    issues: list[NameIssue] = []
    later: list[tuple[int, str, int]] = []
    reported: set[str] = set()
    for index, exported, stmts in per_cell:
        if not exported:
            continue
        for names in stmts:
            for name, line in names.now:
                if name == "display":
                    continue  # a top-level display(...) is display-only: the module leaves it out
                if name not in defined and name not in names.binds and name not in reported:
                    reported.add(name)
                    issues.append(_issue(index, line, name, exported_binds, explore_binds, later=False))
            defined |= names.binds
            later += [(index, n, line) for n, line in names.later]
    for index, name, line in later:
        if name not in defined and name not in reported:
            reported.add(name)
            issues.append(_issue(index, line, name, exported_binds, explore_binds, later=True))
    return issues


def _issue(index: int, line: int, name: str, exported: dict[str, int], explore: dict[str, int],
           later: bool) -> NameIssue:
    if name in _IPYTHON_ONLY:
        return NameIssue(index, line, name, f"`{name}` is {_IPYTHON_ONLY[name]}, which a module does not have",
                         "compute the value again or keep it in a variable")
    if name == "display":
        return NameIssue(index, line, name, "`display` is IPython's and is used inside a function",
                         "return the value instead, or add `from IPython.display import display`")
    if name in exported and not later:
        return NameIssue(index, line, name, f"`{name}` is used before it is defined (cell {exported[name]} "
                                            "defines it later)", "move the definition above its first use")
    if name in explore:
        return NameIssue(index, line, name, f"`{name}` is only defined in explore cell {explore[name]}, which "
                                            "the module leaves out",
                         f"move its definition out of the explore cell or remove the `explore` tag of cell "
                         f"{explore[name]}")
    return NameIssue(index, line, name, f"`{name}` is not defined by any exported cell",
                     "define or import it in an earlier cell (a deleted cell may have defined it)")
