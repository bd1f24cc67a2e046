"""`protokit run NB --grid grid.yaml -j N`: a notebook over a parameter grid, N kernels at once."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from _cli import cli
from hypothesis import given
from hypothesis import strategies as st
from nbformat.v4 import new_code_cell, new_notebook

from protokit.errors import ConfigError
from protokit.notebook.execute import load_runs
from protokit.notebook.grid import grid_output_name, read_grid

KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}


def _notebook(folder: Path) -> Path:
    nb = new_notebook(metadata={"kernelspec": KERNEL})
    nb.cells = [new_code_cell("n: int = 1\nlabel: str = 'x'", metadata={"tags": ["parameters"]}),
                new_code_cell("import protokit as pk\nif n == 2:\n    raise ValueError('two is not allowed')"),
                new_code_cell("pk.output('square', n * n)\npk.output('label', label)")]
    path = folder / "sq.ipynb"
    nbformat.write(nb, path)
    return path


def test_one_failing_run_of_three_and_the_table(tmp_path: Path) -> None:
    nb = _notebook(tmp_path)
    (tmp_path / "grid.yaml").write_text("n: [1, 2, 3]\n")
    code, text = cli("run", str(nb), "--grid", str(tmp_path / "grid.yaml"), "-j", "2", "-p", "label", "y",
                     "--cache-mode", "off")
    assert code == 1, text
    lines = text.splitlines()
    assert lines[0] == f"running {nb} over 3 parameter sets, 2 at a time"
    assert lines[1].split() == ["label", "n", "status", "square", "label"]
    rows = [line.split() for line in lines[2:5]]
    assert rows == [["y", "1", "ok", "1", "y"], ["y", "2", "failed"], ["y", "3", "ok", "9", "y"]]
    assert "ValueError: two is not allowed" in text
    assert lines[-1].startswith("2 ok, 1 failed; notebooks in ")
    folder = tmp_path / "sq-grid"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["sq--label=y,n=1.ipynb", "sq--label=y,n=2.failed.ipynb", "sq--label=y,n=3.ipynb"]
    # Each successful run is recorded for promote, as a plain `protokit run` is.
    assert sorted(r["parameters"]["n"] for r in load_runs(nb)) == [1, 3]


def test_a_list_of_sets_runs_as_given(tmp_path: Path) -> None:
    nb = _notebook(tmp_path)
    (tmp_path / "grid.yaml").write_text("- {n: 4}\n- {n: 5, label: z}\n")
    code, text = cli("run", str(nb), "--grid", str(tmp_path / "grid.yaml"), "-o", str(tmp_path / "out"),
                     "--cache-mode", "off")
    assert code == 0, text
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sq--n=4.ipynb", "sq--n=5,label=z.ipynb"]
    assert "2 ok, 0 failed" in text


@pytest.mark.parametrize(("content", "message"), [
    ("n: 3\n", "'n' needs a non-empty list of values"),
    ("n: []\n", "'n' needs a non-empty list of values"),
    ("[1, 2]\n", "holds no parameter sets"),
    ("n: [1\n", "is not valid YAML (line 2)"),
    ("", "holds no parameter sets"),
])
def test_a_bad_grid_file_is_one_line_and_runs_nothing(tmp_path: Path, content: str, message: str) -> None:
    nb = _notebook(tmp_path)
    (tmp_path / "grid.yaml").write_text(content)
    code, text = cli("run", str(nb), "--grid", str(tmp_path / "grid.yaml"))
    assert code == 1 and message in text, text
    assert len(text.strip().splitlines()) == 1
    assert not (tmp_path / "sq-grid").exists()


def test_a_value_that_does_not_fit_fails_before_any_kernel(tmp_path: Path) -> None:
    nb = _notebook(tmp_path)
    (tmp_path / "grid.yaml").write_text("n: [1, lots]\n")
    code, text = cli("run", str(nb), "--grid", str(tmp_path / "grid.yaml"))
    assert code != 0 and "'n'" in text and "int" in text, text
    assert not (tmp_path / "sq-grid").exists() and load_runs(nb) == []


def test_a_parameter_in_both_places_is_refused(tmp_path: Path) -> None:
    nb = _notebook(tmp_path)
    (tmp_path / "grid.yaml").write_text("n: [1, 2]\n")
    code, text = cli("run", str(nb), "--grid", str(tmp_path / "grid.yaml"), "-p", "n", "3")
    assert code == 1 and "'n' is given both on the command line and in the grid" in text


def test_read_grid_is_every_combination_in_order(tmp_path: Path) -> None:
    (tmp_path / "g.yaml").write_text("a: [1, 2]\nb: [x, y]\n")
    assert read_grid(tmp_path / "g.yaml") == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"},
                                              {"a": 2, "b": "y"}]
    with pytest.raises(ConfigError, match="cannot read the grid file"):
        read_grid(tmp_path / "missing.yaml")


@given(st.dictionaries(st.text(min_size=1, max_size=20), st.one_of(st.text(max_size=60), st.integers(),
                                                                   st.lists(st.integers(), max_size=3)),
                       max_size=4))
def test_output_names_are_safe_and_distinct(params: dict[str, object]) -> None:
    # Parameter values are user text: the file name they become stays one plain name in the folder.
    name = grid_output_name("nb", params)
    assert "/" not in name and "\\" not in name and "\x00" not in name and not name.startswith(".")
    assert name.endswith(".ipynb") and len(name) < 120
    other = dict(params, **{"zz_extra": 1})
    assert grid_output_name("nb", other) != name
