"""Reading notebooks safely, naming their cells, and hashing what they contain."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from protokit._files import atomic_write_text
from protokit.errors import CellError, NotebookError

# CellError lives in protokit.errors with every other error; still importable from here.
__all__ = [
    "EXPLORE",
    "INJECTED",
    "PARAMETERS",
    "CellError",
    "cell_label",
    "code_cells",
    "content_hash",
    "first_line",
    "is_exported",
    "read_notebook",
    "tags",
    "write_notebook",
]

PARAMETERS = "parameters"
INJECTED = "injected-parameters"
EXPLORE = "explore"
# Larger files are refused before parsing: they are almost always stored outputs gone wild.
MAX_FILE_BYTES = 64 * 1024 * 1024


PAPERMILL_ERROR_MARKER = "papermill-error-cell-tag"  # papermill.execute.ERROR_MARKER_TAG


def read_notebook(path: str | os.PathLike[str]) -> NotebookNode:
    """Read an nbformat 4 notebook; any other input is a NotebookError that says what it is."""
    p = Path(path)
    shown = os.fspath(path)
    if not p.exists():
        raise NotebookError(f"{shown}: no such file", path=shown)
    if p.is_dir():
        raise NotebookError(f"{shown} is a directory; give a .ipynb file", path=shown)
    if p.stat().st_size > MAX_FILE_BYTES:
        raise NotebookError(f"{shown} is {p.stat().st_size / 2**20:.0f} MB; clear its outputs "
                            f"(jupyter nbconvert --clear-output) and try again", path=shown)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise NotebookError(f"{shown} is not a notebook (not UTF-8 text: {exc.reason})", path=shown) from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise NotebookError(f"{shown} is not a notebook: invalid JSON at line {getattr(exc, 'lineno', '?')} "
                            f"({getattr(exc, 'msg', exc)}); open it in Jupyter and save it again",
                            path=shown) from exc
    if not isinstance(data, dict) or "nbformat" not in data:
        raise NotebookError(f"{shown} is JSON but not a notebook (no 'nbformat' field)", path=shown)
    major = data.get("nbformat")
    if major != 4:
        raise NotebookError(f"{shown} is nbformat {major}; protokit reads nbformat 4: convert it with "
                            "'jupyter nbconvert --to notebook --nbformat 4'", path=shown)
    if not isinstance(data.get("cells"), list):
        raise NotebookError(f"{shown} is not a notebook (no 'cells' list)", path=shown)
    try:
        # reads() joins sources stored as lists of lines; validation is ours, with the cell named.
        nb = nbformat.reads(text, as_version=4, capture_validation_error={})
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        where = "/".join(str(p) for p in getattr(exc, "absolute_path", []))
        cell = _cell_of(where)
        raise NotebookError(f"{shown} is not a valid notebook at {where or 'top level'}: "
                            f"{str(getattr(exc, 'message', exc))[:200]}", cell_index=cell, path=shown) from exc
    # A notebook papermill saved after a failure carries its error-marker cells. papermill drops them
    # before running it again; so does protokit, so cell numbers mean the same to both.
    nb.cells = [c for c in nb.cells if PAPERMILL_ERROR_MARKER not in (c.get("metadata", {}).get("tags") or [])]
    return nb


def _cell_of(where: str) -> int | None:
    parts = where.split("/")
    if len(parts) >= 2 and parts[0] == "cells" and parts[1].isdigit():
        return int(parts[1])
    return None


def write_notebook(nb: NotebookNode, path: str | os.PathLike[str], *, mode: int | None = None) -> Path:
    """Write a notebook atomically (temp file, then rename); ``mode`` (e.g. 0o600) instead of the umask's."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(out, nbformat.writes(nb), mode=mode)


def tags(cell: Any) -> list[str]:
    """The cell's tags (an empty list when there are none or they are malformed)."""
    found = cell.get("metadata", {}).get("tags", [])
    return [t for t in found if isinstance(t, str)] if isinstance(found, list) else []


def first_line(cell: Any, width: int = 60) -> str:
    """The first non-blank line of a cell's source, secrets masked, shortened for messages."""
    from protokit.secrets import redact

    for line in str(cell.get("source", "")).splitlines():
        if line.strip():
            line = redact(line.strip())
            return line if len(line) <= width else line[: width - 1] + "…"
    return ""


def cell_label(index: int, cell: Any) -> str:
    """``cell 3 (`x = f()`)``: how every message names a cell."""
    line = first_line(cell)
    return f"cell {index} (`{line}`)" if line else f"cell {index}"


def is_exported(cell: Any) -> bool:
    """True for code cells that go into the promoted module (not explore, parameters or injected)."""
    if cell.get("cell_type") != "code":
        return False
    t = tags(cell)
    return EXPLORE not in t and PARAMETERS not in t and INJECTED not in t


def code_cells(nb: NotebookNode) -> Iterator[tuple[int, Any]]:
    """(index, cell) for every code cell that is not papermill's injected-parameters cell."""
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") == "code" and INJECTED not in tags(cell):
            yield i, cell


def content_hash(nb: NotebookNode) -> str:
    """sha256 of the cells' types, sources and role tags: outputs and run metadata do not count."""
    parts = []
    for cell in nb.cells:
        t = tags(cell)
        if INJECTED in t:
            continue  # papermill's injected cell is a run's input, not the notebook's content
        role = sorted(set(t) & {PARAMETERS, EXPLORE})
        parts.append([cell.get("cell_type"), str(cell.get("source", "")), role])
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
