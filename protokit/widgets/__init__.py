"""ipywidgets views over a Comparison: ``pk.Compare`` puts the comparison where the work happens."""

from __future__ import annotations

from protokit.widgets.compare_widget import Compare

__all__ = ["Compare"]
