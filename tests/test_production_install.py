"""`pip install protokit` is the runtime of a promoted module; `protokit[lab]` adds the notebook side.

The runtime tests run in a fresh interpreter where a ``sys.meta_path`` finder (a ``sitecustomize``
on ``PYTHONPATH``) refuses every package of the notebook side, as a production install lacks them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Import names a production install does not have.
BLOCKED = ("jupyterlab", "jupyter_server", "papermill", "nbval", "ipywidgets", "ipykernel", "nbformat", "nbclient",
           "IPython", "matplotlib", "zmq")
# Distribution names (normalized) of the notebook side.
LAB_DISTS = {"jupyterlab", "jupyter-server", "papermill", "nbval", "ipywidgets", "ipykernel", "nbformat", "nbclient",
             "ipython", "matplotlib", "pyzmq", "jinja2"}
LAB_REQUIRED = {"jupyterlab", "ipykernel", "ipywidgets", "nbval", "papermill", "nbformat", "nbclient", "matplotlib",
                "jinja2"}

SITECUSTOMIZE = f"""
import sys

_BLOCKED = {set(BLOCKED)!r}


class _RuntimeOnly:
    \"\"\"Refuse the notebook side's packages, as an install without protokit[lab] would.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in _BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)", name=name)
        return None


sys.meta_path.insert(0, _RuntimeOnly())
"""

# An expression, for the child interpreters: the blocked packages it has imported.
LEAKED = f"sorted({{m.split('.')[0] for m in sys.modules}} & {set(BLOCKED)!r})"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory, _sandbox_server: Any) -> Path:
    """A promoted ticket router (module, tests, cassette, golden data): written here, as a fresh clone has none."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from protokit.notebook.execute import run_notebook
    from protokit.promote import promote

    root = tmp_path_factory.mktemp("example")
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [new_code_cell("ticket: str = 'I was charged twice.'  # the message\n"
                              "model: str = 'openai:echo'  # the model that routes it",
                              metadata={"tags": ["parameters"]}),
                new_code_cell("import protokit as pk"),
                new_code_cell("reply = pk.model(model, temperature=0).complete(ticket)\n"
                              "queue = reply.text.strip().lower()\npk.output('queue', queue)")]
    nbformat.write(nb, root / "ticket_router.ipynb")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROTOKIT_CACHE", str(root / "record.db"))
        mp.setenv("PROTOKIT_CACHE_MODE", "auto")
        mp.setenv("OPENAI_BASE_URL", _sandbox_server.openai_base_url)
        mp.setenv("OPENAI_API_KEY", "sandbox-key")
        run_notebook(root / "ticket_router.ipynb", output_path=root / "ticket_router.ipynb")
        mp.delenv("OPENAI_BASE_URL")
        mp.delenv("OPENAI_API_KEY")
        promote(root / "ticket_router.ipynb", "ticket_router", root / "out")
    return root / "out"


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _project() -> dict[str, Any]:
    tomllib = pytest.importorskip("tomllib")
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return project


def test_core_dependencies_hold_no_notebook_side() -> None:
    core = {_name(r) for r in _project()["dependencies"]}
    assert not core & LAB_DISTS, core & LAB_DISTS
    assert {"openai", "anthropic", "pandas", "click", "aiohttp", "pyyaml"} <= core


def test_the_lab_extra_holds_the_notebook_side_and_dev_holds_the_lab() -> None:
    extras = _project()["optional-dependencies"]
    lab = {_name(r) for r in extras["lab"]}
    assert lab >= LAB_REQUIRED, LAB_REQUIRED - lab
    assert "protokit[lab]" in extras["dev"]  # the test suite needs the notebook side too


@pytest.fixture
def runtime_only(tmp_path: Path) -> dict[str, str]:
    """The environment of a production process: the lab blocked, no PROTOKIT_* settings, no keys."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PROTOKIT_") and k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL",
                                                          "ANTHROPIC_BASE_URL", "PYTHONPATH")}
    env.update(PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1")
    return env


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty working directory: nothing may appear in it."""
    path = tmp_path / "work"
    path.mkdir()
    return path


def _python(code: str, env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_the_blocker_blocks(runtime_only: dict[str, str], workdir: Path) -> None:
    code = textwrap.dedent(f"""
        import importlib
        for m in {BLOCKED!r}:
            try:
                importlib.import_module(m)
            except ImportError:
                pass
            else:
                print("imported", m)
    """)
    done = _python(code, runtime_only, workdir)
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr


def test_a_promoted_module_runs_on_the_runtime_alone(runtime_only: dict[str, str], workdir: Path,
                                                     sandbox: Any, example: Path) -> None:
    env = dict(runtime_only, OPENAI_BASE_URL=sandbox.openai_base_url, OPENAI_API_KEY="sandbox-key")
    code = textwrap.dedent(f"""
        import importlib.util, json, sys
        import protokit as pk
        spec = importlib.util.spec_from_file_location("ticket_router", {str(example / "ticket_router.py")!r})
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        ticket = "My parcel never arrived."
        first, second = mod.run(ticket=ticket), mod.run(ticket=ticket)
        print(json.dumps({{"first": first, "second": second, "leaked": {LEAKED},
                          "mode": pk.cache.get_cache().mode}}))
    """)
    before = sandbox.stats()["requests"]
    done = _python(code, env, workdir)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["first"] == result["second"] and result["first"]["queue"]
    assert result["leaked"] == []
    assert result["mode"] == "off"
    # The same input twice went to the provider twice: nothing was recorded, nothing replayed...
    assert sandbox.stats()["requests"] - before == 2
    # ...and nothing was written where the service runs.
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize(("args", "missing"), [
    (["run", "nb.ipynb", "-p", "ticket", "hi"], "nbformat"),
    (["validate", "nb.ipynb"], "nbformat"),
    (["promote", "nb.ipynb", "--name", "router"], "nbformat"),
    (["demo"], "nbformat"),
    (["new", "triage"], "nbformat"),
    (["lab"], "jupyterlab"),
])
def test_notebook_commands_say_which_extra_to_install(runtime_only: dict[str, str], workdir: Path,
                                                      args: list[str], missing: str) -> None:
    done = _python("import sys\nfrom protokit.cli.main import main\nsys.exit(main())", runtime_only, workdir, *args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: protokit {args[0]} needs the notebook extra ({missing} is not installed): pip install 'protokit[lab]'"
    ]
    assert list(workdir.iterdir()) == []


def test_runtime_commands_and_help_work_without_the_lab(runtime_only: dict[str, str], workdir: Path) -> None:
    main = "import sys\nfrom protokit.cli.main import main\nsys.exit(main())"
    helped = _python(main, runtime_only, workdir, "run", "--help")
    assert helped.returncode == 0 and "Usage: protokit run" in helped.stdout, helped.stderr
    stats = _python(main, dict(runtime_only, PROTOKIT_CACHE=str(workdir.parent / "c.db")), workdir, "cache", "stats")
    assert "Traceback" not in stats.stderr and "notebook extra" not in stats.stderr, stats.stderr


def test_notebook_features_in_python_say_which_extra_to_install(runtime_only: dict[str, str], workdir: Path) -> None:
    code = textwrap.dedent(f"""
        import json, sys
        import protokit as pk
        import protokit.notebook
        import protokit.promote

        said = {{}}
        def attempt(label, fn):
            try:
                fn()
            except pk.ConfigError as exc:
                said[label] = [type(exc).__name__, isinstance(exc, ImportError), str(exc)]

        attempt("widget", lambda: pk.Compare)
        attempt("validate", lambda: protokit.notebook.validate)
        attempt("run_notebook", lambda: protokit.notebook.run_notebook)
        attempt("promote", lambda: protokit.promote.promote("nb.ipynb", "router", "."))
        cmp = pk.compare(models=[pk.model(lambda text: text, name="echo")], prompt="{{q}}",
                         cases=[{{"q": "a"}}, {{"q": "b"}}], scorers=[pk.scorers.exact("q")])
        attempt("plot", cmp.plot)
        page = cmp.to_html()
        print(json.dumps({{"said": said, "page": "No chart: matplotlib is not installed" in page,
                          "output": pk.output("x", 1), "leaked": {LEAKED}}}))
    """)
    done = _python(code, dict(runtime_only, PROTOKIT_CACHE_MODE="off"), workdir)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert set(result["said"]) == {"widget", "validate", "run_notebook", "promote", "plot"}
    for label, (kind, is_import_error, message) in result["said"].items():
        assert kind == "MissingExtraError" and is_import_error, label
        assert message.endswith("pip install 'protokit[lab]'") and "\n" not in message, message
    assert result["page"] and result["output"] == 1 and result["leaked"] == []
    assert list(workdir.iterdir()) == []


def test_generated_tests_pass_on_the_runtime_alone(runtime_only: dict[str, str], tmp_path: Path,
                                                   example: Path) -> None:
    # A checkout of the promoted module where it is deployed; pytest is the only thing added to the runtime.
    service = tmp_path / "service"
    service.mkdir()
    shutil.copy(example / "ticket_router.py", service)
    shutil.copytree(example / "tests", service / "tests")
    # nbval is installed in this venv and its own plugin would import nbformat (blocked here); a production
    # install has no nbval, so it is turned off. protokit's pytest plugin still loads, and must not break.
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:nbval", "-p", "no:cacheprovider", "-q",
                           "--trace-config", "tests"], cwd=service, env=runtime_only, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", done.stdout), done.stdout[-2000:]
    assert "protokit.notebook.nbval_plugin" in done.stdout  # the plugin was loaded, and did no harm
