"""`protokit new`: each starter template is written, well formed, and runs top to bottom against the sandbox."""

from __future__ import annotations

import ast
import importlib.util
import io
import tokenize
from pathlib import Path
from typing import Any

import nbformat
import pytest
from click.testing import CliRunner
from nbclient import NotebookClient

from protokit.cli.main import cli, main
from protokit.cli.new import TEMPLATES, check_name, new_notebook, template_path, title_for
from protokit.errors import ConfigError
from protokit.notebook.outputs import outputs_in
from protokit.sandbox import Sandbox

EXPECTED_OUTPUTS = {
    "compare": {"chosen_model", "mean_similarity", "share_close"},
    "classify": {"chosen_model", "accuracy", "ready_to_ship"},
    "extract": {"chosen_model", "schema_valid", "field_accuracy"},
}
EXPECTED_SCORERS = {
    "compare": ("pk.scorers.similarity", "pk.scorers.judge"),
    "classify": ("pk.scorers.exact",),
    "extract": ("pk.scorers.json_valid", "pk.scorers.json_schema", "pk.scorers.exact"),
}


def tags(cell: Any) -> list[str]:
    """A cell's tags."""
    return list(cell.get("metadata", {}).get("tags", []))


def commented_lines(source: str) -> set[int]:
    """Line numbers that carry a ``#`` comment."""
    return {tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(source).readline)
            if tok.type == tokenize.COMMENT}


@pytest.mark.parametrize("template", list(TEMPLATES))
def test_template_is_a_well_formed_starter(template: str, tmp_path: Path) -> None:
    path = new_notebook("ticket_triage", template, tmp_path)
    assert path == tmp_path / "ticket_triage.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec == {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                      "language": "python"}
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# Ticket triage\n")
    assert "{{" not in path.read_text()  # every placeholder filled
    assert "protokit validate ticket_triage.ipynb" in nb.cells[-1].source
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)

    params = [c for c in code if "parameters" in tags(c)]
    assert len(params) == 1
    tree = ast.parse(params[0].source)
    assigns = [n for n in tree.body if isinstance(n, ast.AnnAssign)]
    assert len(assigns) == len(tree.body) >= 2  # only annotated literal assignments
    for node in assigns:
        assert node.value is not None
        ast.literal_eval(node.value)
    assert {n.lineno for n in assigns} <= commented_lines(params[0].source)  # each has its help text
    models = next(ast.literal_eval(n.value) for n in assigns if ast.unparse(n.target) == "models" and n.value)
    assert models == ["openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5"]

    explore = [c for c in code if "explore" in tags(c)]
    assert len(explore) == 1 and "pk.Compare(" in explore[0].source
    exported = "\n".join(c.source for c in code if "explore" not in tags(c))
    assert "pk.compare(" in exported and "print(cmp.report(" in exported and "pk.output(" in exported
    for scorer in EXPECTED_SCORERS[template]:
        assert scorer + "(" in exported


@pytest.mark.slow
@pytest.mark.parametrize("template", list(TEMPLATES))
def test_template_executes_against_the_sandbox(template: str, tmp_path: Path, sandbox: Sandbox,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel inherits this process's environment, so these reach the SDKs inside it.
    monkeypatch.setenv("OPENAI_BASE_URL", sandbox.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sandbox-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", sandbox.anthropic_base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sandbox-key")
    monkeypatch.setenv("PROTOKIT_CACHE", str(tmp_path / "cache.db"))
    path = new_notebook(f"try_{template}", template, tmp_path)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # raises on any cell error
    assert set(outputs_in(nb.cells)) == EXPECTED_OUTPUTS[template]
    assert outputs_in(nb.cells)["chosen_model"] in ("openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5")
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", [])
                      if o.get("output_type") == "stream" and o.get("name") == "stdout")
    assert "Use openai:" in printed or "Use anthropic:" in printed  # the report's verdict
    assert {"gpt-4.1-mini", "claude-haiku-4-5"} <= set(sandbox.stats()["by_model"])  # really called


def test_committed_templates_match_their_generator() -> None:
    script = template_path("compare").parent / "make_templates.py"
    spec = importlib.util.spec_from_file_location("make_templates", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert set(module.TEMPLATES) == set(TEMPLATES)
    for name, build in module.TEMPLATES.items():
        assert nbformat.writes(build()) + "\n" == template_path(name).read_text(encoding="utf-8"), (
            f"templates/notebooks/{name}.ipynb is stale; run templates/notebooks/make_templates.py")


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "out"  # tmp_path also holds the test's cache
    path = new_notebook("triage", "classify", out)
    path.write_text("mine")
    with pytest.raises(ConfigError, match=r"triage\.ipynb already exists; pass --force"):
        new_notebook("triage", "compare", out)
    assert path.read_text() == "mine"
    new_notebook("triage", "compare", out, force=True)
    assert "# Triage" in path.read_text()
    assert [p.name for p in out.iterdir()] == ["triage.ipynb"]  # no temporary file left behind


@pytest.mark.parametrize(("name", "hint"), [
    ("my-notebook", "my_notebook"), ("2fast", "nb_2fast"), ("../escape", "escape"), ("with space", "with_space"),
    ("class", "class_nb"), ("", None), ("trailing\n", "trailing"),
])
def test_bad_name_is_one_clear_error(name: str, hint: str | None, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        new_notebook(name, "compare", tmp_path / "out")
    message = str(info.value)
    assert "\n" not in message and repr(name) in message
    if hint is not None:
        assert f"try {hint!r}" in message
    assert not (tmp_path / "out").exists()


def test_names_and_titles() -> None:
    assert check_name("ticket_triage.ipynb") == "ticket_triage"
    assert check_name("_v2") == "_v2"
    assert title_for("ticket_triage") == "Ticket triage"
    assert title_for("_x") == "X"


def test_cli_writes_and_names_the_next_steps(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "nbs"
    result = runner.invoke(cli, ["new", "triage", "--template", "extract", "--out", str(out)])
    assert result.exit_code == 0, result.output
    path = out / "triage.ipynb"
    assert path.is_file()
    assert f"wrote {path}" in result.output
    assert "protokit lab" in result.output and f"protokit validate {path}" in result.output
    assert "json_schema" in path.read_text()

    again = runner.invoke(cli, ["new", "triage", "--out", str(out)])
    assert isinstance(again.exception, ConfigError) and "--force" in str(again.exception)
    forced = runner.invoke(cli, ["new", "triage", "--out", str(out), "--force"])
    assert forced.exit_code == 0, forced.output
    assert "pk.scorers.judge" in path.read_text()  # now the compare template

    helped = runner.invoke(cli, ["new", "--help"])
    assert "[compare|classify|extract]" in helped.output


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["new", "bad-name", "--out", str(tmp_path)])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: 'bad-name' is not a valid name") and err.count("\n") == 1
