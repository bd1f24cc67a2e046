"""What a promoted module's golden tests check, and how: the golden data file and one check per case.

``protokit promote`` writes ``tests/cassettes/NAME.golden.json`` beside the cassette: every
parameter set the notebook ran with successfully, what ``run()`` must return for it, the
tolerances the notebook declared (``pk.output(..., rel_tol=, abs_tol=)``) and its gates
(``pk.expect``). The generated test module reads it with :func:`read_golden` and calls
:meth:`Golden.check` for each case, so the tests hold no long literals and compare by type:
numbers within their tolerance, frames by their values, model text exactly (it replays).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protokit.notebook.expect import check_expectations
from protokit.notebook.outputs import diff_outputs, encode_value
from protokit.notebook.sanitize import sanitize_text

__all__ = ["GOLDEN_FORMAT", "Golden", "read_golden"]

GOLDEN_FORMAT = 1


@dataclass
class Golden:
    """The golden data of one promoted module.

    ``compare`` is ``"outputs"`` when the notebook declares ``pk.output`` values (only they are
    checked: what a notebook prints, protokit's reports included, is prose) and ``"stdout"``
    for a notebook that declares none, whose printed text is then all there is to check.
    """

    module: str
    compare: str
    cases: list[dict[str, Any]]
    tolerances: dict[str, dict[str, float]] = field(default_factory=dict)
    expectations: list[dict[str, Any]] = field(default_factory=list)
    workdir: str = "."  # where run() runs, relative to the module's folder: the notebook's own folder

    def problems(self, case: Mapping[str, Any], encoded: Mapping[str, Any] | None, printed: str) -> list[str]:
        """What differs between one case and run()'s result (``encoded`` in protokit's encoded form)."""
        if self.compare == "stdout":
            if sanitize_text(printed) != sanitize_text(case.get("stdout", "")):
                return [f"printed output differs: expected {case.get('stdout', '')!r}, got {printed!r}"]
            return []
        found = diff_outputs(case.get("outputs") or {}, encoded or {}, self.tolerances)
        return found + check_expectations(self.expectations, encoded or {})

    def check(self, case: Mapping[str, Any], result: Mapping[str, Any] | None, printed: str = "") -> None:
        """Assert that run()'s ``result`` (and what it ``printed``) is what the notebook gave for ``case``."""
        encoded = None if result is None else {k: encode_value(v, k) for k, v in result.items()}
        found = self.problems(case, encoded, printed)
        assert not found, f"run() differs from the notebook for case {case.get('id')!r}:\n  " + "\n  ".join(found)

    def to_json(self) -> str:
        """The file's text: stable (sorted keys), readable, one trailing newline."""
        from protokit.cache.records import dumps

        return dumps({"protokit_golden": GOLDEN_FORMAT, "module": self.module, "compare": self.compare,
                      "workdir": self.workdir, "tolerances": self.tolerances, "expectations": self.expectations,
                      "cases": self.cases},
                     indent=1, separators=(",", ": ")) + "\n"


def read_golden(path: str | os.PathLike[str]) -> Golden:
    """The golden data written by promote; ValueError naming the file when it is not one."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("protokit_golden") != GOLDEN_FORMAT:
        raise ValueError(f"{path} is not protokit golden data (format {GOLDEN_FORMAT}); run `protokit promote` again")
    return Golden(module=data["module"], compare=data["compare"], cases=data["cases"],
                  tolerances=data.get("tolerances") or {}, expectations=data.get("expectations") or [],
                  workdir=data.get("workdir") or ".")
