"""`protokit run`: papermill execution with typed parameters, cache keys in metadata, and the run record."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nbformat
import pytest
from _cli import cli
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from protokit.cache import Cache
from protokit.cli.main import main
from protokit.errors import ConfigError, NotebookError
from protokit.notebook import load_runs, run_notebook

KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}


def make_notebook(path: Path, *cells: Any) -> Path:
    """A notebook of code cells (strings or (source, tags) pairs) after a markdown title."""
    nb = new_notebook(metadata={"kernelspec": KERNEL})
    nb.cells = [new_markdown_cell("# Triage\n\nEcho-classify tickets.")]
    for c in cells:
        source, tags = (c, []) if isinstance(c, str) else c
        nb.cells.append(new_code_cell(source, metadata={"tags": tags} if tags else {}))
    nbformat.write(nb, path)
    return path


def triage(path: Path) -> Path:
    return make_notebook(
        path,
        ('n_cases: int = 2  # cases to classify\nlabels: list[str] = ["bug"]  # allowed labels', ["parameters"]),
        'import protokit as pk\nm = pk.model("openai:echo")',
        'answers = [m.complete(f"ticket {i}").text for i in range(n_cases)]\nprint(answers)',
        'pk.output("n", len(answers))\npk.output("labels", labels);',
    )




@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, _sandbox_server: Any) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("run")
    nb_path = triage(root / "triage.ipynb")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROTOKIT_CACHE", str(root / "cache.db"))
        mp.setenv("PROTOKIT_CACHE_MODE", "auto")
        mp.setenv("OPENAI_BASE_URL", _sandbox_server.openai_base_url)
        mp.setenv("OPENAI_API_KEY", "sandbox-key")
        mp.delenv("PROTOKIT_RUN_ID", raising=False)
        out = run_notebook(nb_path, {"n_cases": 3, "labels": ["x"]}, output_path=root / "out.ipynb")
        code, text = cli("run", str(nb_path), "-p", "n_cases", "1", "-p", "labels", "[y, z]")
    return SimpleNamespace(root=root, nb=nb_path, out=out, cli_code=code, cli_text=text)


def test_output_notebook_records_parameters_and_cache_keys(recorded: SimpleNamespace) -> None:
    nb = nbformat.read(recorded.out, as_version=4)
    meta = nb.metadata["protokit"]
    assert meta["parameters"] == {"n_cases": 3, "labels": ["x"]}
    assert meta["source"] == "triage.ipynb" and meta["notebook_hash"].startswith("sha256:")
    assert len(meta["cache_keys"]) == 3 and all(re.fullmatch(r"[0-9a-f]{64}", k) for k in meta["cache_keys"])
    with Cache(recorded.root / "cache.db", "replay") as cache:
        assert len(cache.entries(meta["cache_keys"])) == 3
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "n_cases = 3" in injected[0].source
    printed = [o for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stdout"]
    assert printed[0]["text"] == "['ticket 0', 'ticket 1', 'ticket 2']\n"


def test_runs_are_recorded_beside_the_notebook(recorded: SimpleNamespace) -> None:
    runs = load_runs(recorded.nb)
    assert [r["parameters"] for r in runs] == [{"n_cases": 3, "labels": ["x"]}, {"n_cases": 1, "labels": ["y", "z"]}]
    first = runs[0]
    assert first["outputs"] == {"n": 3, "labels": ["x"]}
    assert first["stdout"] == "['ticket 0', 'ticket 1', 'ticket 2']\n"
    assert first["output_path"] == "out.ipynb" and len(first["cache_keys"]) == 3
    assert (recorded.root / ".protokit" / "runs.json").exists()


def test_cli_types_values_by_the_parameters_cell(recorded: SimpleNamespace) -> None:
    assert recorded.cli_code == 0, recorded.cli_text
    assert "ran " in recorded.cli_text and "n_cases=1" in recorded.cli_text
    written = Path(recorded.cli_text.split("wrote ", 1)[1].strip())
    assert written.parent == recorded.root / ".protokit" / "runs"
    assert nbformat.read(written, as_version=4).metadata["protokit"]["parameters"] == {
        "n_cases": 1, "labels": ["y", "z"]}


def test_replay_runs_offline_with_the_same_keys(recorded: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROTOKIT_CACHE", str(recorded.root / "cache.db"))
    out = run_notebook(recorded.nb, {"n_cases": 3, "labels": ["x"]}, output_path=recorded.root / "replay.ipynb",
                       cache_mode="replay")
    meta = nbformat.read(out, as_version=4).metadata["protokit"]
    first = nbformat.read(recorded.out, as_version=4).metadata["protokit"]
    assert meta["cache_keys"] == first["cache_keys"] and meta["cache_mode"] == "replay"
    # A parameter set never recorded cannot replay: the error names the cell, nothing is written.
    with pytest.raises(NotebookError) as info:
        run_notebook(recorded.nb, {"n_cases": 5}, output_path=recorded.root / "miss.ipynb", cache_mode="replay")
    assert info.value.cell_index == 3
    assert "cell 3 (`answers = [m.complete" in str(info.value) and "CacheMiss" in str(info.value)
    assert not (recorded.root / "miss.ipynb").exists()


def test_bad_parameters_fail_before_any_kernel(recorded: SimpleNamespace) -> None:
    with pytest.raises(ConfigError, match=r"unknown parameter 'n'; the notebook's parameters are: n_cases \(int\), "
                                          r"labels \(list\[str\]\)"):
        run_notebook(recorded.nb, {"n": 1})
    with pytest.raises(ConfigError, match="parameter 'n_cases' expects int, got str '2'"):
        run_notebook(recorded.nb, {"n_cases": "2"})
    # A command-line value that does not fit its parameter is a usage error (exit 2) that says how to give one.
    code, text = cli("run", str(recorded.nb), "-p", "n_cases", "two")
    assert code == 2 and text.strip() == ("error: parameter 'n_cases' expects int, got 'two' which is not one; "
                                          "pass one like `-p n_cases 2`; see 'protokit run --help'")
    code, text = cli("run", str(recorded.nb), "-p", "labels", "{a: 1}")
    assert code == 2 and "parameter 'labels' expects list[str]" in text
    code, text = cli("run", str(recorded.nb), "-p", "nope", "1")
    assert code == 1 and "unknown parameter 'nope'" in text and "n_cases (int)" in text


def test_unreadable_notebooks_and_no_parameters_cell(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    with pytest.raises(NotebookError, match="is not a notebook: invalid JSON"):
        run_notebook(bad)
    plain = make_notebook(tmp_path / "plain.ipynb", "x = 1")
    with pytest.raises(ConfigError, match=r"none \(no parameters cell\)"):
        run_notebook(plain, {"x": 2})
    code, text = cli("run", str(tmp_path / "missing.ipynb"))
    assert code == 1 and "no such file" in text


def test_a_failing_run_keeps_its_notebook_and_says_what_was_raised(tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "fail.ipynb", ("n = 1", ["parameters"]), "print('before')", "raise ValueError()")
    out = tmp_path / "out.ipynb"
    with pytest.raises(NotebookError) as info:
        run_notebook(nb, output_path=out)
    message = str(info.value)
    assert "cell 3" in message and "raised ValueError (with no message)" in message
    kept = tmp_path / "out.failed.ipynb"
    assert f"is {kept}" in message and not out.exists()
    executed = nbformat.read(kept, as_version=4)
    assert any(o.get("ename") == "ValueError" for c in executed.cells for o in c.get("outputs", []))
    # Without -o the failure is kept privately under .protokit/runs/.
    with pytest.raises(NotebookError, match=r"\.protokit/runs/fail\.failed\.ipynb"):
        run_notebook(nb)
    assert (tmp_path / ".protokit" / "runs" / "fail.failed.ipynb").stat().st_mode & 0o777 == 0o600


def test_papermills_error_markers_do_not_shift_cell_numbers(tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "fail.ipynb", ("n = 1", ["parameters"]), "x = 2", "raise KeyError('gone')")
    with pytest.raises(NotebookError):
        run_notebook(nb, output_path=tmp_path / "out.ipynb")
    saved = tmp_path / "out.failed.ipynb"  # as papermill saved it: error-marker cells included
    assert "papermill-error-cell-tag" in saved.read_text()
    for args in (["run", str(saved)], ["validate", str(saved)]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(err), pytest.raises(SystemExit):
            main(args)
        assert "cell 3 (`raise KeyError('gone')`)" in err.getvalue(), (args, err.getvalue())
        assert "Traceback" not in err.getvalue()
