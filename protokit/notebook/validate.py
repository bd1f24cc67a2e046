"""``validate(path)``: the promotion gate's entry point (the checks live in :mod:`protokit.notebook.gate`).

This module stays import-light and ``protokit.notebook`` imports it eagerly, so
that ``protokit.notebook.validate`` is always this function, never the submodule
of the same name, whichever import path callers use.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from protokit.notebook.gate import Report

__all__ = ["validate"]


def validate(path: str | os.PathLike[str], *, execute_cells: bool = True) -> Report:
    """Run the promotion gate on a notebook; ``report.ok`` is False when any error was found."""
    from protokit.notebook.gate import validate as run_gate

    return run_gate(path, execute_cells=execute_cells)
