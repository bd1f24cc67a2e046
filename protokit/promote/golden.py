"""The golden cases: the notebook's own run first, then every recorded run of the same version of it."""

from __future__ import annotations

import json
import os
import re
from typing import Any

from protokit.promote.codegen import Case
from protokit.testing import Golden

__all__ = ["case_id", "golden_cases", "golden_data"]


def case_id(params: dict[str, Any], taken: set[str]) -> str:
    """A short test id from the parameters (``n=3,model=openai:gpt-4.1``), unique among ``taken`` (which it
    joins). Ids are data in the golden file, never code; other characters still become ``_`` so the id
    reads the same in every terminal and test report."""
    text = ",".join(f"{k}={v if isinstance(v, str) else json.dumps(v, sort_keys=True)}"
                    for k, v in params.items()) or "defaults"
    text = re.sub(r"[^A-Za-z0-9_=.,:+-]+", "_", text).replace("::", "_")[:48]
    candidate, n = text, 2
    while candidate in taken:
        candidate, n = f"{text}-{n}", n + 1
    taken.add(candidate)
    return candidate


def golden_cases(path: str | os.PathLike[str], report: Any, exported: list[Any], notes: list[str]) -> list[Case]:
    """One Case per distinct parameter set the gate's notebook version ran with; ``notes`` says what was left out.

    ``report`` is the gate's Report (its executed notebook and parameters); ``exported`` the
    executed cells that go into the module, whose outputs are the first case's expectations.
    """
    from protokit.notebook.execute import load_runs
    from protokit.notebook.outputs import outputs_in, printed_in
    from protokit.notebook.params import injected_values

    taken: set[str] = set()
    defaults = {p.name: p.default for p in report.parameters}
    # A notebook saved from `protokit run -o NB.ipynb` ran with papermill's injected values, not the defaults.
    stored = {k: v for k, v in injected_values(report.nb).items() if k in defaults and v != defaults[k]}
    cases = [Case(case_id(stored, taken), stored, outputs_in(exported), printed_in(exported),
                  list(report.execution.cache_keys))]
    seen = {json.dumps({**defaults, **stored}, sort_keys=True, default=list)}
    stale = 0
    for record in load_runs(path):
        if record.get("notebook_hash") != report.notebook_hash:
            stale += 1
            continue
        params = record.get("parameters") or {}
        full = json.dumps({**defaults, **params}, sort_keys=True, default=list)
        if full in seen or not set(params) <= set(defaults):
            continue
        seen.add(full)
        cases.append(Case(case_id(params, taken), params, record.get("outputs") or {},
                          record.get("stdout", ""), list(record.get("cache_keys", []))))
    if stale:
        notes.append(f"{stale} recorded run{'s' * (stale != 1)} of an earlier version of the notebook "
                     "left out; repeat them with `protokit run` to test those parameters too")
    return cases


def golden_data(name: str, cases: list[Case], exported: list[Any], has_outputs: bool, workdir: str) -> Golden:
    """What the generated tests check: each case's outputs (or, for a notebook that declares none, what it
    printed), with the tolerances and ``pk.expect`` gates read from the exported cells' outputs."""
    from protokit.notebook.expect import expectations_in
    from protokit.notebook.outputs import tolerances_in

    if not has_outputs:
        return Golden(module=name, compare="stdout", workdir=workdir,
                      cases=[{"id": c.id, "params": c.params, "stdout": c.stdout} for c in cases])
    return Golden(module=name, compare="outputs", workdir=workdir,
                  cases=[{"id": c.id, "params": c.params, "outputs": c.outputs or {}} for c in cases],
                  tolerances=tolerances_in(exported), expectations=expectations_in(exported))
