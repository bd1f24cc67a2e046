"""The promotion gate behind ``protokit validate`` and ``promote``.

Static checks first (the file, the parameters cell, stored execution order and
errors, output sizes, secrets, magics and shell lines, direct SDK calls, exits,
names), then, when they pass, a fresh top-to-bottom run with model calls
replayed from the cache and no keys, whose outputs must match the stored ones.
"""

from __future__ import annotations

import ast
import itertools
import json
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbformat import NotebookNode

from protokit.errors import CellError, NotebookError
from protokit.notebook.execute import Execution, execute, notebook_parameters
from protokit.notebook.names import check_names, statement_names
from protokit.notebook.nbfile import INJECTED, content_hash, first_line, is_exported, read_notebook, tags
from protokit.notebook.outputs import MIME, diff_values
from protokit.notebook.params import Parameter
from protokit.notebook.rewrite_magics import parse_cell, rewrite_cell
from protokit.notebook.sanitize import normalize_stream, sanitize_text
from protokit.notebook.secrets import secrets_in_cell, secrets_in_metadata
from protokit.secrets import redact

__all__ = ["Finding", "Report", "validate"]

MAX_CELL_OUTPUT_BYTES = 2 * 1024 * 1024
_SKIP_MIME = ("image/", "application/vnd.jupyter.widget", "application/javascript", "text/latex")
_IGNORE_MARKERS = ("NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP", "PYTEST_VALIDATE_IGNORE_OUTPUT")
_CLIENTS = {"openai.OpenAI", "openai.AsyncOpenAI", "openai.AzureOpenAI", "anthropic.Anthropic",
            "anthropic.AsyncAnthropic", "OpenAI", "AsyncOpenAI", "AzureOpenAI", "Anthropic", "AsyncAnthropic"}
_CLIENT_METHODS = (".chat.completions.create", ".messages.create", ".responses.create",
                   ".completions.create", ".messages.stream")
_EXITS = {"sys.exit", "exit", "quit", "os._exit", "os.abort"}


@dataclass(frozen=True)
class Finding:
    """One thing validate found: severity, the cell (index and first line), what and how to fix."""

    severity: str
    check: str
    message: str
    fix: str = ""
    cell_index: int | None = None
    first_line: str = ""

    def __str__(self) -> str:
        where = "notebook" if self.cell_index is None else (
            f"cell {self.cell_index} (`{self.first_line}`)" if self.first_line else f"cell {self.cell_index}")
        return f"{self.severity}: {where}: {self.message}" + (f"\n    fix: {self.fix}" if self.fix else "")


@dataclass
class Report:
    """Everything validate found, plus what promote reuses (parameters, rewritten cells, the fresh run)."""

    path: Path
    findings: list[Finding] = field(default_factory=list)
    parameters: list[Parameter] = field(default_factory=list)
    parameters_cell: int | None = None
    notebook_hash: str = ""
    nb: NotebookNode | None = None
    sources: dict[int, str] = field(default_factory=dict)
    execution: Execution | None = None
    fallback_names: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings and notes do not block promotion)."""
        return not self.errors

    @property
    def errors(self) -> list[Finding]:
        """The findings that block promotion."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """The findings worth a look that do not block promotion."""
        return [f for f in self.findings if f.severity == "warning"]

    def add(self, severity: str, check: str, message: str, fix: str = "", cell: int | None = None) -> None:
        """Record a finding about a cell (or the whole notebook when ``cell`` is None); secrets masked."""
        line = first_line(self.nb.cells[cell]) if self.nb is not None and cell is not None \
            and 0 <= cell < len(self.nb.cells) else ""
        self.findings.append(Finding(severity, check, redact(message), redact(fix), cell, line))

    def format(self) -> str:
        """The findings, one per line with their fix, and a summary line."""
        order = {"error": 0, "warning": 1, "note": 2}
        shown = sorted(self.findings, key=lambda f: (-1 if f.cell_index is None else f.cell_index,
                                                     order.get(f.severity, 3)))
        lines = [str(f) for f in shown]
        n_err, n_warn = len(self.errors), len(self.warnings)
        verdict = "ready to promote" if self.ok else "not ready to promote"
        lines.append(f"{self.path}: {n_err} error{'s' * (n_err != 1)}, {n_warn} warning"
                     f"{'s' * (n_warn != 1)}: {verdict}")
        return "\n".join(lines)


def validate(path: str | os.PathLike[str], *, execute_cells: bool = True) -> Report:
    """Run the promotion gate on a notebook; ``report.ok`` is False when any error was found."""
    report = Report(Path(path))
    try:
        nb = read_notebook(path)
    except NotebookError as exc:
        report.add("error", "notebook", str(exc), "give a Jupyter notebook (nbformat 4) file", exc.cell_index)
        return report
    report.nb = nb
    report.notebook_hash = content_hash(nb)
    _check_parameters(report, nb)
    _check_stored(report, nb)
    _check_secrets(report, nb)
    _check_code(report, nb)
    if not report.ok:
        if execute_cells:
            report.add("note", "re-execution", "re-execution skipped until the errors above are fixed")
        return report
    if execute_cells:
        _check_rerun(report, nb)
    return report


def _detail(exc: NotebookError) -> str:
    return exc.detail if isinstance(exc, CellError) else str(exc)


def _check_parameters(report: Report, nb: NotebookNode) -> None:
    try:
        report.parameters_cell, report.parameters = notebook_parameters(nb)
    except NotebookError as exc:
        report.add("error", "parameters", _detail(exc),
                   "keep only literal assignments (`n: int = 3  # help`) in one parameters cell", exc.cell_index)
        # The names it meant to define still count, so the names check does not pile on.
        report.fallback_names = _assigned_names(nb)
        return
    if report.parameters_cell is None:
        report.add("note", "parameters", "no cell is tagged `parameters`: the module's run() takes no arguments",
                   "tag the cell of literal settings `parameters` to make them arguments")


def _assigned_names(nb: NotebookNode) -> set[str]:
    names: set[str] = set()
    for cell in nb.cells:
        if "parameters" in tags(cell):
            try:
                tree = ast.parse(str(cell.source))
            except SyntaxError:
                continue
            for stmt in tree.body:
                names |= statement_names(stmt).binds
    return names


def _check_stored(report: Report, nb: NotebookNode) -> None:
    code = [(i, c) for i, c in enumerate(nb.cells) if c.get("cell_type") == "code" and INJECTED not in tags(c)]
    for i, cell in code:
        size = len(json.dumps(cell.get("outputs", [])))
        if size > MAX_CELL_OUTPUT_BYTES:
            report.add("error", "outputs", f"stores {size / 2**20:.1f} MB of output (limit "
                       f"{MAX_CELL_OUTPUT_BYTES // 2**20} MB)", "print a summary instead, or clear the output", i)
    ran = [(i, c.get("execution_count")) for i, c in code if c.get("execution_count") is not None]
    if code and not ran and any(str(c.source).strip() for _, c in code):
        report.add("error", "hidden-state", "the notebook has no stored outputs: it was never run (or was "
                   "cleared)", "run it top to bottom and save (or `protokit run NB.ipynb -o NB.ipynb`)")
        return
    for (_, prev), (i, count) in itertools.pairwise(ran):
        if count <= prev:
            report.add("error", "hidden-state", f"execution count [{count}] comes after [{prev}]: cells were "
                       "run out of order, so stored outputs may depend on hidden state",
                       "restart the kernel, run all cells top to bottom and save", i)
            break
    last_ran = ran[-1][0] if ran else -1
    for i, cell in code:
        if cell.get("execution_count") is None and i < last_ran and str(cell.source).strip() and is_exported(cell):
            report.add("error", "hidden-state", "was not run although later cells were",
                       "restart the kernel, run all cells top to bottom and save", i)
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error" and is_exported(cell):
                value = _one_line(redact(str(out.get("evalue", ""))))  # redacted before it is shortened
                if out.get("ename") == "SystemExit":  # papermill and `protokit run` let sys.exit(0) pass
                    report.add("error", "exit", f"exited (SystemExit {value or 'with no code'}) when last run: a "
                               "promoted module must not exit the interpreter that imports it",
                               "raise an exception instead of calling sys.exit", i)
                    break
                raised = f"raised {out.get('ename')}: {value}" if value else f"raised {out.get('ename')} (no message)"
                report.add("error", "errors", f"{raised} when last run",
                           "fix the cell so the notebook runs top to bottom without errors", i)
                break


def _one_line(text: Any) -> str:
    lines = str(text).strip().splitlines()
    line = lines[0] if lines else ""
    return line if len(line) <= 120 else line[:119] + "…"


def _check_secrets(report: Report, nb: NotebookNode) -> None:
    fix = "delete it, rotate the key, and read it from the environment (os.environ) instead; clear the output"
    for i, cell in enumerate(nb.cells):
        for where, hit in secrets_in_cell(cell):
            label = "injected parameters" if INJECTED in tags(cell) else where
            report.add("error", "secrets", f"{hit.kind} `{hit.masked}` in its {label} (line {hit.line})", fix, i)
    for hit in secrets_in_metadata(nb.metadata):
        report.add("error", "secrets", f"{hit.kind} `{hit.masked}` in the recorded run parameters "
                   "(notebook metadata)", "pass secrets through the environment, not as parameters")


def _dotted(node: ast.expr) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # pragma: no cover - unparse handles every expression the parser makes
        return ""


def _check_code(report: Report, nb: NotebookNode) -> None:
    trees: list[tuple[int, ast.Module, bool]] = []
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code" or INJECTED in tags(cell) or "parameters" in tags(cell):
            continue
        exported = is_exported(cell)
        rewritten = rewrite_cell(str(cell.source))
        if exported:
            for issue in rewritten.refused:
                report.add("error", "magics", f"line {issue.line} `{issue.text}`: {issue.message}", issue.fix, i)
            for note in rewritten.notes:
                report.add("note", "magics", f"rewritten for the module: {note}", "", i)
        if rewritten.dropped:
            continue
        source = rewritten.source
        if rewritten.refused:
            # Blank the refused lines (already reported) so the rest of the cell still counts.
            lines = source.split("\n")
            for issue in rewritten.refused:
                if 0 < issue.line <= len(lines):
                    line = lines[issue.line - 1]
                    lines[issue.line - 1] = line[: len(line) - len(line.lstrip())] + "pass"
            source = "\n".join(lines)
        try:
            tree = parse_cell(source)
        except SyntaxError as exc:
            if exported and not rewritten.refused:
                report.add("error", "syntax", f"line {exc.lineno} does not parse: {exc.msg}",
                           "fix the syntax, or tag the cell `explore` to leave it out", i)
            continue
        # A refused cell still defines its names, so later cells are not blamed for its magic line.
        trees.append((i, tree, exported))
        if exported and not rewritten.refused:
            report.sources[i] = rewritten.source
            _check_calls(report, i, tree)
    given = {p.name for p in report.parameters} | report.fallback_names
    for problem in check_names(trees, given=given):
        report.add("error", "names", f"line {problem.line}: {problem.message}", problem.fix, problem.cell_index)


def _check_calls(report: Report, i: int, tree: ast.Module) -> None:
    seen: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Await) and "await" not in seen and _top_level_await(tree, node):
            seen.add("await")
            report.add("error", "syntax", f"line {node.lineno}: top-level `await` works only in IPython",
                       "call the synchronous API (m.complete(...)) or wrap it in a function", i)
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if name in _CLIENTS or name.endswith(_CLIENT_METHODS):
            if name not in seen:
                seen.add(name)
                report.add("error", "cache", f"line {node.lineno}: `{name}(...)` calls the provider SDK "
                           "directly, bypassing protokit's cache, so promote could not replay it",
                           "use pk.model('openai:NAME').complete(prompt) (or 'anthropic:NAME')", i)
        elif name in _EXITS and name not in seen:
            seen.add(name)
            report.add("error", "exit", f"line {node.lineno}: `{name}()` would stop the interpreter that "
                       "imports the module", "raise an exception instead", i)


def _top_level_await(tree: ast.Module, target: ast.Await) -> bool:
    def inside(nodes: Iterable[ast.AST]) -> bool:
        for node in nodes:
            if node is target:
                return True
            if isinstance(node, (ast.AsyncFunctionDef, ast.FunctionDef, ast.Lambda)):
                continue
            if inside(ast.iter_child_nodes(node)):
                return True
        return False

    return inside(tree.body)


# -- re-execution ---------------------------------------------------------------------
def _check_rerun(report: Report, nb: NotebookNode) -> None:
    try:
        run = execute(report.path, nb, None, cache_mode="replay", offline=True)
    except NotebookError as exc:
        message = _detail(exc)
        fix = ("run the notebook once with the cache in auto mode (`protokit run NB.ipynb`) to record the "
               "model calls" if "CacheMiss" in message else
               "fix the cell so the notebook runs top to bottom in a fresh kernel, with no keys or network")
        report.add("error", "re-execution", f"fails in a fresh kernel (cache replay, no keys): {message}",
                   fix, exc.cell_index)
        return
    report.execution = run
    for i, (stored, fresh) in enumerate(zip(nb.cells, run.source_cells(), strict=True)):
        if stored.get("cell_type") != "code" or _ignored(stored):
            continue
        diff = _diff_outputs(stored.get("outputs", []), fresh.get("outputs", []))
        if diff:
            severity = "error" if is_exported(stored) or "parameters" in tags(stored) else "warning"
            report.add(severity, "re-execution", f"stored output differs from a fresh top-to-bottom run: {diff}",
                       "restart the kernel, run all cells and save: the stored output came from hidden state "
                       "(or mark the cell with the `nbval-ignore-output` tag if it is volatile)", i)


def _ignored(cell: Any) -> bool:
    if any(t in ("nbval-ignore-output", "nbval-skip") for t in tags(cell)):
        return True
    return any(line.strip().lstrip("#").strip() in _IGNORE_MARKERS for line in str(cell.source).splitlines()
               if line.strip().startswith("#"))


def _comparable(outputs: list[Any]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = defaultdict(list)
    streams: dict[str, str] = {}
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            streams[out.get("name", "stdout")] = streams.get(out.get("name", "stdout"), "") + str(out.get("text", ""))
        elif kind == "error":
            found["error"].append(f"{out.get('ename')}: {_one_line(out.get('evalue', ''))}")
        elif kind in ("execute_result", "display_data"):
            data = out.get("data", {})
            for mime, value in data.items():
                if mime.startswith(_SKIP_MIME) or (mime == "text/plain" and MIME in data):
                    continue
                found[mime].append(value if mime == MIME else sanitize_text(_text(value)))
    for name, text in streams.items():
        found[f"stream:{name}"].append(sanitize_text(normalize_stream(text)))
    return found


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _diff_outputs(stored: list[Any], fresh: list[Any]) -> str | None:
    left, right = _comparable(stored), _comparable(fresh)
    for key in sorted(set(left) | set(right)):
        a, b = left.get(key, []), right.get(key, [])
        if key == "stream:stderr":
            continue  # warnings and logs vary with the environment
        if len(a) != len(b):
            return f"{len(a)} stored {key} output(s), {len(b)} now"
        for x, y in zip(a, b, strict=True):
            if key == MIME:
                if not (isinstance(x, dict) and isinstance(y, dict)):
                    d = None if x == y else "a pk.output value is not readable"
                elif x.get("name") != y.get("name"):
                    d = f"pk.output {x.get('name')!r} stored, {y.get('name')!r} now"
                else:
                    d = diff_values(x.get("value"), y.get("value"), f"pk.output {x.get('name')!r}",
                                    x.get("tolerance"))
                if d:
                    return d
            elif x != y:
                return f"{key} stored `{_short(x)}`, now `{_short(y)}`"
    return None


def _short(text: Any) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= 60 else s[:59] + "…"

