"""`protokit promote`: module and golden tests from a validated notebook, differential check, idempotence."""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import inspect
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nbformat
import pytest
from _cli import cli
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import protokit as pk
from protokit.errors import PromoteError
from protokit.notebook import run_notebook
from protokit.notebook.nbfile import content_hash
from protokit.notebook.params import Parameter, ParameterTypeError
from protokit.promote import promote
from protokit.promote.codegen import indent, split_cells, templates_dir
from protokit.promote.translate import translate
from protokit.testing import read_golden

KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}
NO_NETWORK = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "PROTOKIT_RUN_ID")

TRIAGE = (
    ('n_cases: int = 2  # how many tickets\nprefix: str = "ticket"  # prompt prefix\nthreshold: float = 0.5',
     ["parameters"]),
    'import json\nimport protokit as pk\nimport pandas as pd\n\nLABELS = ["bug", "billing"]\n'
    'm = pk.model("openai:echo")',
    'def label_of(text: str) -> str:\n    # a rule stands in for a classifier\n'
    '    return LABELS[len(text) % len(LABELS)]\n\n\ndef ask(i):\n    return m.complete(f"{prefix} {i}").text',
    'template = """Ticket:\n{text}\n  (indented in the string)"""\nanswers = [ask(i) for i in range(n_cases)]\n'
    'rows = [{"answer": a, "label": label_of(a)} for a in answers]\nfor r in rows:\n    display(r)\n'
    'print(json.dumps(rows))\nprint(template.format(text=answers[0]))\nrows[0]',
    '%time frame = pd.DataFrame(rows)\nscore = sum(r["label"] == "bug" for r in rows) / max(len(rows), 1)\n'
    'pk.output("score", score)\npk.output("passed", score >= threshold)\npk.output("frame", frame);',
    ("frame.describe()", ["explore"]),
    "frame.head()",
)


def make_notebook(path: Path, *cells: Any,
                  title: str = "# Ticket triage\n\nClassify tickets with an echo model.") -> Path:
    nb = new_notebook(metadata={"kernelspec": KERNEL})
    nb.cells = [new_markdown_cell(title)]
    for c in cells:
        source, tags = (c, []) if isinstance(c, str) else c
        nb.cells.append(new_code_cell(source, metadata={"tags": tags} if tags else {}))
    nbformat.write(nb, path)
    return path


@contextlib.contextmanager
def recording(root: Path, sandbox: Any):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROTOKIT_CACHE", str(root / "cache.db"))
        mp.setenv("PROTOKIT_CACHE_MODE", "auto")
        mp.setenv("OPENAI_BASE_URL", sandbox.openai_base_url)
        mp.setenv("OPENAI_API_KEY", "sandbox-key")
        yield mp


def offline_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NO_NETWORK}
    env.update(extra)
    return env




@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory, _sandbox_server: Any) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("promote")
    nb = make_notebook(root / "triage.ipynb", *TRIAGE)
    out = root / "pkg"
    with recording(root, _sandbox_server) as mp:
        run_notebook(nb, {}, output_path=nb)  # what saving after "run all" in Jupyter leaves behind
        run_notebook(nb, {"n_cases": 3, "prefix": "case"})
        for var in NO_NETWORK:
            mp.delenv(var, raising=False)
        before = _sandbox_server.stats()["requests"]
        first = promote(nb, "triage", out)
        snapshot = {p: p.read_bytes() for p in first.files}
        code, text = cli("promote", str(nb), "--name", "triage", "--out", str(out))
        after = _sandbox_server.stats()["requests"]
    return SimpleNamespace(root=root, nb=nb, out=out, first=first, snapshot=snapshot, again_code=code,
                           again_text=text, requests=after - before)


def test_writes_module_tests_and_cassette(promoted: SimpleNamespace) -> None:
    r = promoted.first
    assert sorted(r.files) == sorted([promoted.out / "triage.py", promoted.out / "tests" / "test_triage.py",
                                      promoted.out / "tests" / "cassettes" / "triage.json",
                                      promoted.out / "tests" / "cassettes" / "triage.golden.json"])
    assert [c.id for c in r.cases] == ["defaults", "n_cases=3,prefix=case"]
    assert r.outputs is not None and set(r.outputs) == {"score", "passed", "frame"}
    cassette = json.loads(r.cassette_path.read_text())
    prompts = sorted(e["request"]["messages"][-1]["content"] for e in cassette["entries"])
    assert prompts == ["case 0", "case 1", "case 2", "ticket 0", "ticket 1"]
    assert promoted.requests == 0  # promote replays: the gate and the differential never reach the network
    assert r.notes == []


def test_module_source_layout(promoted: SimpleNamespace) -> None:
    src = promoted.first.module_path.read_text()
    lines = src.splitlines()
    assert lines[0].startswith("# Generated by `protokit promote` from ../triage.ipynb")
    assert lines[2] == f"# protokit-hash: {content_hash(nbformat.read(promoted.nb, as_version=4))}"
    assert '"""Ticket triage\n\nClassify tickets with an echo model.' in src
    tree = ast.parse(src)
    top = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert top == {"label_of", "run", "main"}  # ask() needs the model made in run(): it stays inside
    assert 'LABELS = ["bug", "billing"]' in lines
    assert "        def ask(i):" in src
    assert '    template = """Ticket:\n{text}\n  (indented in the string)"""' in src
    for gone in ("display(", "frame.head()", "frame.describe()", "%time", "rows[0]\n"):
        assert gone not in src
    assert "            pass" in src  # display(r) inside the loop became pass
    assert 'def run(\n    *,\n    n_cases: int = 2,\n    prefix: str = "ticket",\n    threshold: float = 0.5,\n' in src
    assert "    n_cases : int, default 2\n        how many tickets\n" in src


def load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("triage_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_module_imports_without_side_effects_and_checks_types(promoted: SimpleNamespace,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    module = load(promoted.first.module_path)
    assert capsys.readouterr().out == ""
    sig = inspect.signature(module.run)
    assert all(p.kind is p.KEYWORD_ONLY for p in sig.parameters.values())
    assert {n: p.default for n, p in sig.parameters.items()} == {"n_cases": 2, "prefix": "ticket", "threshold": 0.5}
    with pytest.raises(ParameterTypeError) as info:
        module.run(n_cases="2")
    assert str(info.value) == "parameter 'n_cases' expects int, got str '2'"
    with pytest.raises(TypeError):
        module.run(3)  # keyword-only


def test_run_replays_the_cassette_in_process(promoted: SimpleNamespace, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    cache = pk.cache.configure(path=tmp_path / "replay.db", mode="replay")
    cache.load(pk.cache.read_cassette(promoted.first.cassette_path))
    module = load(promoted.first.module_path)
    result = module.run(n_cases=3, prefix="case", threshold=1)
    assert set(result) == {"score", "passed", "frame"} and result["frame"].shape == (3, 2)
    assert result["passed"] is True and math.isclose(result["score"], 1.0)  # "case i" has 6 letters: bug
    assert capsys.readouterr().out.startswith('[{"answer": "case 0", "label": "bug"}')


def test_generated_tests_pass_offline(promoted: SimpleNamespace) -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                          cwd=promoted.out, env=offline_env(PROTOKIT_CACHE=str(promoted.root / "nope" / "x.db")),
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout


def test_command_line_of_the_module(promoted: SimpleNamespace, tmp_path: Path) -> None:
    with pk.cache.Cache(tmp_path / "c.db", "auto") as cache:
        cache.load(pk.cache.read_cassette(promoted.first.cassette_path))
    env = offline_env(PROTOKIT_CACHE=str(tmp_path / "c.db"), PROTOKIT_CACHE_MODE="replay")
    done = subprocess.run([sys.executable, str(promoted.first.module_path), "--n-cases", "3", "--prefix", "case"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    printed = done.stdout.split("\n{", 1)[1]
    outputs = json.loads("{" + printed)
    assert outputs["passed"] is True or outputs["passed"] is False
    assert outputs["frame"]["$pk"] == "dataframe" and len(outputs["frame"]["data"]) == 3
    bad = subprocess.run([sys.executable, str(promoted.first.module_path), "--n-cases", "three"], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 2 and "parameter 'n_cases' expects int" in bad.stderr


def test_promote_is_idempotent(promoted: SimpleNamespace) -> None:
    assert promoted.again_code == 0, promoted.again_text
    assert "unchanged:" in promoted.again_text and "wrote" not in promoted.again_text
    for path, data in promoted.snapshot.items():
        assert path.read_bytes() == data


def test_check_detects_a_changed_notebook(promoted: SimpleNamespace, tmp_path: Path) -> None:
    result = promote(promoted.nb, "triage", promoted.out, check=True)
    assert result.files == []
    code, text = cli("promote", str(promoted.nb), "--name", "triage", "--out", str(promoted.out), "--check")
    assert code == 0 and "is up to date" in text
    nb = nbformat.read(promoted.nb, as_version=4)
    nb.cells[1].source = nb.cells[1].source.replace("n_cases: int = 2", "n_cases: int = 4")
    changed = tmp_path / "triage.ipynb"
    nbformat.write(nb, changed)
    with pytest.raises(PromoteError, match=r"changed since .*triage.py was generated"):
        promote(changed, "triage", promoted.out, check=True)
    code, text = cli("promote", str(changed), "--name", "triage", "--out", str(promoted.out), "--check")
    assert code == 1 and "run `protokit promote` again" in text
    code, text = cli("promote", str(changed), "--name", "triage", "--out", str(tmp_path / "empty"), "--check")
    assert code == 1 and "no generated module" in text


def test_bad_names_are_refused(promoted: SimpleNamespace, tmp_path: Path) -> None:
    for name in ("json", "1abc", "class", "my-module"):
        with pytest.raises(PromoteError, match="--name"):
            promote(promoted.nb, name, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_no_parameters_cell_gives_run_without_arguments(tmp_path: Path, _sandbox_server: Any) -> None:
    nb = make_notebook(tmp_path / "hello.ipynb", 'import protokit as pk\nprint(pk.model("openai:echo").complete("hi"))',
                       title="# Hello")
    with recording(tmp_path, _sandbox_server) as mp:
        run_notebook(nb, output_path=nb)
        for var in NO_NETWORK:
            mp.delenv(var, raising=False)
        code, text = cli("promote", str(nb), "--name", "hello", "--out", str(tmp_path / "out"))
    assert code == 0, text
    assert "note: no cell is tagged `parameters`: the module's run() takes no arguments" in text
    src = (tmp_path / "out" / "hello.py").read_text()
    assert "def run() -> None:" in src and "    return None" in src
    golden = read_golden(tmp_path / "out" / "tests" / "cassettes" / "hello.golden.json")
    # No pk.output: what the notebook printed is all there is to check.
    assert golden.compare == "stdout" and golden.cases == [{"id": "defaults", "params": {}, "stdout": "hi\n"}]


def test_differential_check_fails_and_writes_nothing(tmp_path: Path, _sandbox_server: Any) -> None:
    nb = make_notebook(tmp_path / "odd.ipynb", 'import sys\nimport protokit as pk\n'
                       'pk.output("in_kernel", "ipykernel" in sys.modules)\nprint("kernel" if "ipykernel" in '
                       'sys.modules else "module")')
    with recording(tmp_path, _sandbox_server):
        run_notebook(nb, output_path=nb)
        with pytest.raises(PromoteError) as info:
            promote(nb, "odd", tmp_path / "out")
    message = str(info.value)
    assert "differential check" in message
    assert "[defaults] in_kernel: expected True, got False" in message
    assert "printed output differs: notebook 'kernel\\n', run() 'module\\n'" in message
    assert not (tmp_path / "out").exists()


# -- code generation pieces ---------------------------------------------------------------
def test_hoisting_rules() -> None:
    sources = {
        1: "import os\nimport json as js\nLIMIT = 3\nm = make()\n",
        2: "def pure(x):\n    return js.dumps(x)[:LIMIT]\n\n\ndef uses_m():\n    return m\n\n\nclass Box:\n    pass\n",
        3: "SCALE = 2\nSCALE = SCALE * 2\nos = None\nprint(pure(1), uses_m(), threshold)\n",
    }
    layout = split_cells(sources, [Parameter("threshold", "float", 0.5)])
    assert layout.imports == ["import json as js"]  # `os` is rebound in the body, so it stays there
    hoisted = "\n".join(layout.hoisted)
    assert "LIMIT = 3" in hoisted and "def pure" in hoisted and "class Box" in hoisted
    assert "uses_m" not in hoisted and "SCALE" not in hoisted
    body = "\n".join(layout.body)
    assert body.startswith("# cell 1\nimport os") and "def uses_m" in body and "SCALE = 2" in body
    assert not layout.has_outputs
    with pytest.raises(PromoteError, match="cell 4 defines `run`"):
        split_cells({4: "def run():\n    pass\n"}, [])
    with pytest.raises(PromoteError, match="uses `global`"):
        split_cells({5: "count = 0\ndef bump():\n    global count\n    count += 1\n"}, [])


def test_indent_leaves_multiline_strings_alone() -> None:
    code = 'x = """a\n  b\nc"""\nif x:\n    y = 1\n\nz = f"""{x}\nend"""'
    assert indent(code, "    ") == '    x = """a\n  b\nc"""\n    if x:\n        y = 1\n\n    z = f"""{x}\nend"""'


@pytest.mark.parametrize("value", [None, True, False, 0, -3, 2.5, 1e-300, "plain", "it's \"quoted\"\nand\ttabbed",
                                   "unicode ✓", [1, [2, "x"]], (1,), (), {"k": [1.0, None], "n": {"z": True}}])
def test_translators_round_trip(value: Any) -> None:
    assert ast.literal_eval(translate(value)) == value


def test_translators_non_finite_and_unsupported() -> None:
    assert math.isnan(eval(translate(float("nan")))) and eval(translate(float("-inf"))) == float("-inf")
    with pytest.raises(TypeError):
        translate({1, 2})


def test_templates_are_found() -> None:
    assert (templates_dir() / "module.py.j2").is_file() and (templates_dir() / "test_module.py.j2").is_file()


def test_injected_parameters_become_the_first_case(tmp_path: Path, _sandbox_server: Any) -> None:
    nb = make_notebook(tmp_path / "sq.ipynb", ("n: int = 2", ["parameters"]),
                       "import protokit as pk\npk.output('square', n * n)\nprint(n)")
    with recording(tmp_path, _sandbox_server):
        run_notebook(nb, {"n": 3}, output_path=nb)  # saved with papermill's injected cell: n = 3
        result = promote(nb, "sq", tmp_path / "out")
    assert [(c.id, c.params, c.outputs) for c in result.cases] == [("n=3", {"n": 3}, {"square": 9})]


def test_check_verifies_every_generated_file(promoted: SimpleNamespace, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(promoted.out, out)
    assert promote(promoted.nb, "triage", out, check=True).files == []
    test_file = out / "tests" / "test_triage.py"
    test_file.write_text(test_file.read_text() + "\n# a hand edit\n")
    code, text = cli("promote", str(promoted.nb), "--name", "triage", "--out", str(out), "--check")
    assert code == 1 and "test_triage.py was edited since promote wrote it" in text
    assert len([line for line in text.splitlines() if line.strip()]) == 1
    shutil.copy(promoted.out / "tests" / "test_triage.py", test_file)
    (out / "tests" / "cassettes" / "triage.json").unlink()
    with pytest.raises(PromoteError, match=r"triage\.json is missing"):
        promote(promoted.nb, "triage", out, check=True)
    shutil.copy(promoted.out / "tests" / "cassettes" / "triage.json", out / "tests" / "cassettes" / "triage.json")
    module = out / "triage.py"
    module.write_text(module.read_text().replace("def run(", "def run(  ", 1))
    with pytest.raises(PromoteError, match=r"triage\.py was edited"):
        promote(promoted.nb, "triage", out, check=True)


def test_a_hand_written_file_is_not_overwritten_without_force(promoted: SimpleNamespace, tmp_path: Path,
                                                             _sandbox_server: Any) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    mine = out / "triage.py"
    mine.write_text("# my own triage module\nVALUE = 1\n")
    code, text = cli("promote", str(promoted.nb), "--name", "triage", "--out", str(out))
    assert code == 1 and "was not written by protokit promote" in text and "--force" in text
    assert mine.read_text() == "# my own triage module\nVALUE = 1\n"
    assert sorted(p.name for p in out.iterdir()) == ["triage.py"]  # nothing else written either
    with recording(promoted.root, _sandbox_server) as mp:
        for var in NO_NETWORK:
            mp.delenv(var, raising=False)
        code, text = cli("promote", str(promoted.nb), "--name", "triage", "--out", str(out), "--force")
    assert code == 0, text
    assert mine.read_text().startswith("# Generated by `protokit promote`")


def test_in_production_the_module_records_and_replays_nothing(promoted: SimpleNamespace, tmp_path: Path,
                                                               _sandbox_server: Any) -> None:
    # A service: no PROTOKIT_* settings, a provider to talk to, its own working directory.
    env = {k: v for k, v in offline_env().items() if not k.startswith("PROTOKIT_")}
    env.update(OPENAI_BASE_URL=_sandbox_server.openai_base_url, OPENAI_API_KEY="sandbox-key")
    service = tmp_path / "service"  # (tmp_path itself holds this test's own cache)
    service.mkdir()
    before = _sandbox_server.stats()["requests"]
    for _ in range(2):
        done = subprocess.run([sys.executable, str(promoted.first.module_path.absolute()), "--n-cases", "2"],
                              cwd=service, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
    # Both runs asked the provider (2 tickets each): nothing was answered from a recording...
    assert _sandbox_server.stats()["requests"] - before == 4
    # ...and no cache file appeared where the service runs.
    assert list(service.iterdir()) == []
