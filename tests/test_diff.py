"""`cmp.diff(baseline)`: run against run, paired by case and model, in plain words."""

from __future__ import annotations

import pytest

import protokit as pk
from protokit.errors import ConfigError

CASES = [{"x": w, "y": w.upper()} for w in "abcdefghijklmnopqrstuvwxyz"]


def _run(upper_until: str, extra: bool = False) -> pk.Comparison:
    models = [pk.model(lambda s: s.upper() if s < upper_until else s, name="shifting"),
              pk.model(lambda s: s.upper(), name="steady")]
    if extra:
        models.append(pk.model(lambda s: s, name="newcomer"))
    return pk.compare(models=models, prompt="{x}", cases=CASES, scorers=[pk.scorers.exact("y")])


def test_changed_outputs_and_score_moves_per_model() -> None:
    base, now = _run("z"), _run("h", extra=True)
    d = now.diff(base)
    summary = d.summary.set_index("model")
    assert summary.loc["callable:shifting", "changed"] == 18  # "h".."y" no longer upper-cased
    assert summary.loc["callable:steady", "changed"] == 0
    assert summary.loc["callable:shifting", "exact_change"] == pytest.approx(-18 / 26)
    assert summary.loc["callable:shifting", "exact_p"] < 0.05
    rows = d.table[(d.table["model"] == "callable:shifting") & (d.table["case"] == 10)].iloc[0]
    assert (rows["output_before"], rows["output_after"], rows["changed"], rows["exact_change"]) == ("K", "k", True, -1)
    verdict = d.verdict().splitlines()
    assert verdict[0].startswith("callable:shifting: 18 of 26 outputs changed (69%); exact 0.96 -> 0.27 (-0.69,")
    assert "), a significant change (p = " in verdict[0]
    assert verdict[1] == "callable:steady: 0 of 26 outputs changed (0%); exact unchanged at 1.00."
    assert verdict[2] == "Only in this run: callable:newcomer."


def test_a_small_change_is_not_called_significant() -> None:
    d = _run("y").diff(_run("z"))
    line = d.verdict().splitlines()[0]
    assert line.startswith("callable:shifting: 1 of 26 outputs changed (4%)")
    assert "not a significant change" in line


def test_a_stored_run_id_is_a_baseline() -> None:
    base = _run("z")
    assert base.run_id is not None
    d = _run("z").diff(base.run_id)
    assert d.summary["changed"].tolist() == [0, 0]


def test_a_baseline_that_is_not_a_run_is_refused() -> None:
    with pytest.raises(ConfigError, match="takes a Comparison or a stored run id"):
        _run("z").diff(42)  # type: ignore[arg-type]
