"""ipywidgets views over a Comparison: ``pk.Compare`` puts the comparison where the work happens."""

from __future__ import annotations

from protokit._extras import require_lab

require_lab("pk.Compare (the widget)", "ipywidgets", "IPython")

from protokit.widgets.compare_widget import Compare  # noqa: E402  (after the one-line check above)

__all__ = ["Compare"]
