"""Notebook support: ``pk.output``, the parameters cell, ``protokit run`` and the validation gate.

>>> from protokit.notebook import validate, run_notebook, parse_parameters
>>> report = validate("triage.ipynb")
>>> report.ok, [str(f) for f in report.findings]
>>> run_notebook("triage.ipynb", {"n_cases": 5}, output_path="out.ipynb")

Submodules load on first use: papermill and nbclient only when a notebook runs, and
``pk.output`` and the parameter checks (what a promoted module uses) need none of the
notebook extra (``pip install 'protokit[lab]'``), which the others ask for by name. No
submodule is named ``validate``, so ``protokit.notebook.validate`` is always the function
(the gate's, from :mod:`protokit.notebook.gate`), whichever import path callers use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from protokit._extras import NOTEBOOK, require_lab

if TYPE_CHECKING:  # the names below load lazily at run time
    from protokit.notebook.execute import load_runs, run_notebook
    from protokit.notebook.gate import Finding, Report, validate
    from protokit.notebook.outputs import MIME, output
    from protokit.notebook.params import Parameter, parse_parameters

__all__ = [
    "MIME",
    "Finding",
    "Parameter",
    "Report",
    "load_runs",
    "output",
    "parse_parameters",
    "run_notebook",
    "validate",
]

_LAZY = {
    "MIME": "protokit.notebook.outputs",
    "output": "protokit.notebook.outputs",
    "Parameter": "protokit.notebook.params",
    "parse_parameters": "protokit.notebook.params",
    "run_notebook": "protokit.notebook.execute",
    "load_runs": "protokit.notebook.execute",
    "Finding": "protokit.notebook.gate",
    "Report": "protokit.notebook.gate",
    "validate": "protokit.notebook.gate",
}


# Modules that run or read notebooks need the notebook extra; outputs and params need only the runtime.
_NEEDS_LAB = {"protokit.notebook.execute", "protokit.notebook.gate"}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'protokit.notebook' has no attribute {name!r}")
    if module_name in _NEEDS_LAB:
        require_lab(f"protokit.notebook.{name}", *NOTEBOOK)
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
