"""`pk.expect` gates and `pk.output` tolerances: checked at once in a notebook, logged in a promoted run(),
asserted by the generated tests; numbers compared within the tolerance the notebook declared."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import protokit as pk
from protokit.errors import ConfigError, ExpectationFailed, NotebookError
from protokit.notebook.execute import load_runs, run_notebook
from protokit.notebook.expect import check_expectations, expectations_in
from protokit.notebook.outputs import collect_outputs, diff_values, encode_value, outputs_in, tolerances_in

KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}


@pytest.fixture(autouse=True)
def _fresh_declared(monkeypatch: pytest.MonkeyPatch) -> None:
    import protokit.notebook.outputs as outputs

    monkeypatch.setattr(outputs, "_declared", {})


def test_a_gate_that_holds_returns_true_and_one_that_fails_raises() -> None:
    pk.output("accuracy", 0.8)
    assert pk.expect("accuracy", ">=", 0.75) is True
    assert pk.expect("accuracy", "!=", 0.5) is True
    with pytest.raises(ExpectationFailed, match=r"accuracy = 0\.8, expected >= 0\.9; fix the notebook"):
        pk.expect("accuracy", ">=", 0.9)


@pytest.mark.parametrize(("args", "message"), [
    (("nothing", ">=", 1), "no output named 'nothing' yet; declare it first with pk.output"),
    (("accuracy", "=>", 1), "the operator must be one of >= > <= < == !="),
    (("accuracy", ">=", "high"), ">= needs a finite number"),
    (("accuracy", "<", float("nan")), "< needs a finite number"),
])
def test_bad_gates_are_one_clear_line(args: tuple[Any, ...], message: str) -> None:
    pk.output("accuracy", 0.8)
    with pytest.raises(ConfigError, match=message) as info:
        pk.expect(*args)
    assert "\n" not in str(info.value)


def test_ordering_a_value_that_is_not_a_number_fails_the_gate() -> None:
    pk.output("label", "billing")
    with pytest.raises(ExpectationFailed, match="is not a number"):
        pk.expect("label", ">=", 1)
    assert pk.expect("label", "==", "billing") is True


def test_inside_a_promoted_run_a_failing_gate_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="protokit"), collect_outputs() as outputs:
        pk.output("accuracy", 0.5)
        assert pk.expect("accuracy", ">=", 0.9) is False
    assert outputs == {"accuracy": 0.5}
    assert [r.getMessage() for r in caplog.records] == ["expectation failed: accuracy = 0.5, expected >= 0.9"]


def test_check_expectations_names_each_failure() -> None:
    gates = [{"name": "accuracy", "op": ">=", "value": 0.9}, {"name": "cost", "op": "<=", "value": 0.01},
             {"name": "absent", "op": "==", "value": 1}]
    assert check_expectations(gates, {"accuracy": 0.95, "cost": 0.001, "absent": 1}) == []
    problems = check_expectations(gates, {"accuracy": 0.5, "cost": 0.001})
    assert problems == ["pk.expect('accuracy', '>=', 0.9): accuracy = 0.5, expected >= 0.9",
                        "pk.expect('absent', ...): run() returned no output 'absent'"]


@pytest.mark.parametrize("bad", [-0.1, float("inf"), "0.1", True])
def test_a_bad_tolerance_is_refused(bad: Any) -> None:
    with pytest.raises(ConfigError, match="rel_tol must be a number >= 0"):
        pk.output("x", 1.0, rel_tol=bad)


def test_tolerances_apply_to_numbers_lists_and_frames() -> None:
    tol = {"rel": 0.05}
    assert diff_values(1.0, 1.04, "x", tol) is None
    assert diff_values(1.0, 1.06, "x", tol) == "x: expected 1.0, got 1.06 (tolerance {'rel': 0.05})"
    assert diff_values(1.0, 1.0 + 1e-5, "x") is not None  # the default is strict: relative 1e-6
    assert diff_values([1.0, {"a": 2.0}], [1.01, {"a": 2.02}], "x", tol) is None
    assert diff_values(0.0, 0.004, "x", {"abs": 0.005}) is None
    frame = pd.DataFrame({"model": ["a", "b"], "score": [0.5, 0.75]})
    moved = frame.assign(score=[0.51, 0.76])
    assert diff_values(encode_value(frame), encode_value(moved), "f", tol) is None
    assert diff_values(encode_value(frame), encode_value(moved), "f") is not None
    assert diff_values("the model's text", "the model's text.", "t", {"rel": 1.0}) is not None  # text: exact


def _notebook(path: Path, *cells: str) -> Path:
    nb = new_notebook(metadata={"kernelspec": KERNEL})
    nb.cells = [new_code_cell("n: int = 3", metadata={"tags": ["parameters"]}),
                *(new_code_cell(c) for c in cells)]
    nbformat.write(nb, path)
    return path


def test_in_a_kernel_gates_and_tolerances_are_stored_and_a_failing_run_is_no_golden_case(tmp_path: Path) -> None:
    nb = _notebook(tmp_path / "gated.ipynb", "import protokit as pk\n"
                   "pk.output('score', n / 10, abs_tol=0.01)\npk.expect('score', '<=', 0.5)")
    out = run_notebook(nb, {}, output_path=tmp_path / "ran.ipynb", cache_mode="off")
    executed = nbformat.read(out, as_version=4)
    assert outputs_in(executed.cells) == {"score": 0.3}
    assert tolerances_in(executed.cells) == {"score": {"abs": 0.01}}
    assert expectations_in(executed.cells) == [{"name": "score", "op": "<=", "value": 0.5}]
    with pytest.raises(NotebookError, match=r"score = 0\.9, expected <= 0\.5"):
        run_notebook(nb, {"n": 9}, cache_mode="off")
    assert [r.get("parameters") for r in load_runs(nb)] == [{}]  # the failed run is not recorded
