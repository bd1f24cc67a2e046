"""Promote's steps in order: check the name and the --out folder, run the validation gate, gather
the golden cases, build and prove the files, write them all or none."""

from __future__ import annotations

import keyword
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protokit._extras import NOTEBOOK, require_lab
from protokit.errors import GateError, PromoteError
from protokit.promote.files import journal_path

__all__ = ["PromoteResult", "check_module_name", "promote"]

_HASH_LINE = re.compile(r"^# protokit-hash: (sha256:[0-9a-f]{64})$", re.MULTILINE)


@dataclass
class PromoteResult:
    """What promote wrote (or, with check, found): paths, the test cases and their outputs, notes."""

    name: str
    module_path: Path
    test_path: Path
    cassette_path: Path
    notebook_hash: str
    golden_path: Path = Path()
    files: list[Path] = field(default_factory=list)
    outputs: dict[str, Any] | None = None
    cases: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    changed: bool = False
    seconds: dict[str, float] = field(default_factory=dict)


def check_module_name(name: str) -> None:
    """PromoteError unless ``name`` can name the promoted module (an identifier that shadows nothing)."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise PromoteError(f"--name {name!r} must be a Python identifier (letters, digits, _), e.g. triage")
    if name in sys.stdlib_module_names or name in ("protokit", "pytest", "test", "tests", "conftest"):
        raise PromoteError(f"--name {name!r} would shadow the module of the same name; pick another")


def _stored_hash(module_path: Path) -> str | None:
    try:
        head = module_path.read_text(encoding="utf-8")[:2000]
    except OSError:
        return None
    found = _HASH_LINE.search(head)
    return found.group(1) if found else None


def _check_files(module_path: Path, out: Path) -> None:
    """PromoteError naming the first generated file that is missing or was edited since promote wrote it."""
    from protokit.promote.build import FILE_LINE, text_hash, without_manifest

    module_src = module_path.read_text(encoding="utf-8")
    entries = [line[len(FILE_LINE):].rsplit(" ", 1) for line in module_src.splitlines() if line.startswith(FILE_LINE)]
    if not entries:
        raise PromoteError(f"{module_path} lists no generated files (promoted by an older protokit); "
                           "run `protokit promote` again")
    for rel, digest in entries:
        target = module_path if rel == "." else out / rel
        try:
            text = without_manifest(module_src) if rel == "." else target.read_text(encoding="utf-8")
        except OSError:
            raise PromoteError(f"{target} is missing; run `protokit promote` again") from None
        if text_hash(text) != digest:
            raise PromoteError(f"{target} was edited since promote wrote it; edit the notebook and run "
                               "`protokit promote` again (or `--force` to overwrite the edit)")


def promote(path: str | os.PathLike[str], name: str, out_dir: str | os.PathLike[str] = ".",
            check: bool = False, force: bool = False) -> PromoteResult:
    """Promote a notebook to ``OUT/NAME.py`` with golden tests, after the validation gate.

    Parameters
    ----------
    path
        The notebook (.ipynb), executed and saved.
    name
        The module name: ``OUT/NAME.py``, ``OUT/tests/test_NAME.py``, ``OUT/tests/cassettes/NAME.json``
        (the recorded calls) and ``OUT/tests/cassettes/NAME.golden.json`` (the cases the tests check).
    out_dir
        Where to write; created if needed.
    check
        Write nothing; raise PromoteError when the notebook changed since the module was generated,
        or a generated file (module, tests, cassette) is missing or was edited.
    force
        Overwrite files at the targets that promote did not write (refused otherwise).

    Returns
    -------
    PromoteResult
        The files written (only those whose content changed), the test cases and the default outputs.

    Raises
    ------
    GateError
        The notebook failed validation (``.report`` has every finding); nothing is written.
    PromoteError
        Code generation or the differential check failed; nothing is written.
    """
    require_lab("protokit.promote.promote()", *NOTEBOOK, "jinja2")
    from protokit.notebook.nbfile import content_hash, is_exported, read_notebook

    check_module_name(name)
    out = Path(out_dir)
    result = PromoteResult(name, out / f"{name}.py", out / "tests" / f"test_{name}.py",
                           out / "tests" / "cassettes" / f"{name}.json", "",
                           out / "tests" / "cassettes" / f"{name}.golden.json")
    if check:
        nb = read_notebook(path)
        result.notebook_hash = content_hash(nb)
        stored = _stored_hash(result.module_path)
        if stored is None:
            raise PromoteError(f"no generated module at {result.module_path}; run promote without --check first")
        if stored != result.notebook_hash:
            raise PromoteError(f"{path} changed since {result.module_path} was generated (hash {stored[7:19]} "
                               f"is now {result.notebook_hash[7:19]}); run `protokit promote` again")
        if journal_path(result.module_path).exists():
            raise PromoteError(f"a promotion into {out} was interrupted while writing its files; run "
                               "`protokit promote` again to finish it")
        _check_files(result.module_path, out)
        return result

    # Loaded here, not at import: `protokit.promote` stays cheap for the CLI and --check.
    from protokit.notebook.gate import validate
    from protokit.promote.build import build_files
    from protokit.promote.cassette import check_cache_writable
    from protokit.promote.files import check_out, recover, write_all
    from protokit.promote.golden import golden_cases

    targets = [result.module_path, result.test_path, result.cassette_path, result.golden_path]
    recover(result.module_path, targets)  # a promotion killed halfway is finished (or undone) first
    check_out(out, targets, force=force)
    check_cache_writable(path)
    start = time.perf_counter()
    report = validate(path)
    result.seconds["validate"] = time.perf_counter() - start
    if not report.ok or report.execution is None or report.nb is None:
        raise GateError(report)
    result.notebook_hash = report.notebook_hash
    result.notes = [f.message for f in report.findings if f.severity == "note" and f.check == "parameters"]
    nb, run = report.nb, report.execution
    exported = [c for c, src in zip(run.source_cells(), nb.cells, strict=True) if is_exported(src)]
    cases = golden_cases(path, report, exported, result.notes)
    files = build_files(path, name, out, report, cases, exported, result)
    result.files = write_all(files, journal_path(result.module_path))
    result.changed = bool(result.files)
    result.seconds["total"] = time.perf_counter() - start
    return result
