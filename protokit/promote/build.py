"""The texts of promote's files: the module and its tests, rendered from the gate's report, and the
cassette, all proven by the differential run before anything is written."""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protokit.errors import PromoteError
from protokit.promote.codegen import Case

if TYPE_CHECKING:
    from protokit.promote.pipeline import PromoteResult

__all__ = ["FILE_LINE", "build_files", "notebook_title", "text_hash", "with_manifest", "without_manifest"]


def notebook_title(nb: Any) -> tuple[str, str]:
    """(title, description) from the notebook's first non-empty markdown cell; empty strings when none."""
    for cell in nb.cells:
        if cell.get("cell_type") == "markdown" and str(cell.source).strip():
            lines = str(cell.source).strip().splitlines()
            title = lines[0].lstrip("#").strip()
            rest = "\n".join(lines[1:]).strip()
            return title, rest
    return "", ""


def _first_party(out: Path) -> Callable[[str], bool]:
    """Whether a top-level module is the project's own: a ``.py`` file or a package beside the module (where
    ruff, run from there, finds first-party code)."""
    def own(module: str) -> bool:
        return (out / f"{module}.py").is_file() or (out / module / "__init__.py").is_file()

    return own


def build_files(path: str | os.PathLike[str], name: str, out: Path, report: Any, cases: list[Case],
                exported: list[Any], result: PromoteResult) -> dict[Path, str]:
    """``{target path: text}`` for the module, its tests, the cassette and the golden data; PromoteError when
    the module does not compile or does not reproduce the notebook. Fills in ``result``'s cases, outputs and
    timings."""
    from protokit.promote.cassette import export_cassette
    from protokit.promote.codegen import render_module, render_tests, split_cells
    from protokit.promote.differential import check_module
    from protokit.promote.golden import golden_data

    layout = split_cells(report.sources, report.parameters)
    if any(c.outputs for c in cases):
        layout.has_outputs = True
    for case in cases:
        case.outputs = (case.outputs or {}) if layout.has_outputs else None
    source = Path(os.path.relpath(Path(path).absolute(), out.absolute())).as_posix()
    title, description = notebook_title(report.nb)
    # Written in the shape ruff wants, never formatted by ruff: the same bytes whether or not it is installed.
    module_src = render_module(name=name, source=source, notebook_hash=report.notebook_hash, title=title,
                               description=description, parameters=report.parameters, layout=layout,
                               first_party=_first_party(out))
    try:
        compile(module_src, f"{name}.py", "exec")
    except SyntaxError as exc:
        raise PromoteError(f"the generated module does not compile (line {exc.lineno}: {exc.msg}); "
                           "please report this with the notebook") from None
    keys = [k for case in cases for k in case.cache_keys]
    cassette_text = export_cassette(path, keys)
    golden = golden_data(name, cases, exported, layout.has_outputs, posixpath.dirname(source) or ".")
    _, seconds = check_module(module_src, name, cassette_text, cases, golden, Path(path).absolute().parent)
    result.seconds["differential"] = seconds
    tests_src = render_tests(name=name, source=source, first_party=_first_party(out))
    golden_text = golden.to_json()
    result.cases = cases
    result.outputs = cases[0].outputs
    module_src = with_manifest(module_src, {
        result.test_path.relative_to(out).as_posix(): tests_src,
        result.cassette_path.relative_to(out).as_posix(): cassette_text,
        result.golden_path.relative_to(out).as_posix(): golden_text})
    return {result.module_path: module_src, result.test_path: tests_src, result.cassette_path: cassette_text,
            result.golden_path: golden_text}


_HASH_LINE = "# protokit-hash: "
FILE_LINE = "# protokit-file: "


def text_hash(text: str) -> str:
    """``sha256:`` and the first 128 bits of the hex digest of a file's text (as UTF-8): enough to tell an
    edit, and short enough that a manifest line stays within the generated code's line length."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def without_manifest(module_src: str) -> str:
    """The module's text without its ``# protokit-file:`` lines: what its own hash covers."""
    return "".join(line for line in module_src.splitlines(keepends=True) if not line.startswith(FILE_LINE))


def with_manifest(module_src: str, others: dict[str, str]) -> str:
    """The module with one ``# protokit-file: PATH sha256:...`` line per generated file, itself included,
    after its notebook hash line, so ``promote --check`` can tell an edited or missing file."""
    lines = [f"{FILE_LINE}{rel} {text_hash(text)}\n" for rel, text in others.items()]
    lines.append(f"{FILE_LINE}. {text_hash(module_src)}\n")  # "." is the module itself, manifest lines left out
    head, sep, rest = module_src.partition(_HASH_LINE)
    hash_line, nl, body = rest.partition("\n")
    return head + sep + hash_line + nl + "".join(lines) + body
