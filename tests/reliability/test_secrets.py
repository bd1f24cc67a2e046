"""Secrets drill: key-shaped keys in the environment, in a cell and as a parameter never leak.

Through the public command line only (``protokit run``, ``validate``, ``promote``
as subprocesses, kernels talking to the sandbox), with fake keys that have the
shape of real ones (built at run time, so no key-shaped literal sits in the repo):

- keys in the environment: a notebook is run twice, validated and promoted; no
  key, whole or in part, is in any file written (cache and its -wal/-shm, the
  executed notebooks, the run record, the module, its tests, the cassette) nor in
  any command's output, nor in the output of the generated tests;
- a key in a cell: validate and promote refuse the notebook, mention the key
  masked only, and write nothing; the cache never holds it;
- a key passed as a notebook parameter: the gate refuses the executed notebook
  (masked, nothing written); ``protokit run`` itself should neither print nor
  store the key (expected to fail until run redacts or refuses key-shaped values).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from _drills import protokit_cli
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from protokit.sandbox import Sandbox

KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}
# Built here so the repository holds no key-shaped literal; shaped like real project and Anthropic keys.
OPENAI_KEY = "sk-" + "proj-" + "Zx9" * 16
ANTHROPIC_KEY = "sk-" + "ant-api03-" + "Qw7" * 20
# A run of each key's body: finding one means a key leaked in part (a mask keeps only 4 characters).
FRAGMENTS = (OPENAI_KEY, ANTHROPIC_KEY, "Zx9" * 3, "Qw7" * 3)
MASKED = OPENAI_KEY[:4] + "…"
_SCRUBBED_ENV = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "PROTOKIT_RUN_ID",
                 "PROTOKIT_CACHE", "PROTOKIT_CACHE_MODE")


@dataclass
class Workspace:
    """A folder of notebooks, the environment its commands run in, and everything they printed."""

    root: Path
    env: dict[str, str]
    logs: list[str] = field(default_factory=list)

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run ``protokit ARGS`` in the folder; its output is kept for the leak scan."""
        done = subprocess.run([str(protokit_cli()), *args], cwd=self.root, env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=False)
        self.logs.append(f"$ protokit {' '.join(args)}\n{done.stdout}\n{done.stderr}")
        return done

    def files(self) -> dict[Path, bytes]:
        """Every file under the folder (hidden ones included) and its bytes."""
        return {p: p.read_bytes() for p in sorted(self.root.rglob("*")) if p.is_file()}


def _leaks(data: bytes | str) -> list[str]:
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    return [f for f in FRAGMENTS if f in text]


def _leaking_files(ws: Workspace, *, allowed: tuple[Path, ...] = ()) -> dict[str, list[str]]:
    return {str(p.relative_to(ws.root)): found for p, data in ws.files().items()
            if p not in allowed and (found := _leaks(data))}


def _notebook(path: Path, *cells: str | tuple[str, list[str]]) -> Path:
    nb = new_notebook(metadata={"kernelspec": KERNEL})
    nb.cells = [new_markdown_cell(f"# {path.stem}")]
    for cell in cells:
        source, tags = (cell, []) if isinstance(cell, str) else cell
        nb.cells.append(new_code_cell(source, metadata={"tags": tags} if tags else {}))
    nbformat.write(nb, path)
    return path


def _workspace(root: Path, sb: Sandbox) -> Workspace:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.update(OPENAI_API_KEY=OPENAI_KEY, ANTHROPIC_API_KEY=ANTHROPIC_KEY, OPENAI_BASE_URL=sb.openai_base_url,
               ANTHROPIC_BASE_URL=sb.anthropic_base_url, PROTOKIT_CACHE=str(root / "cache.db"),
               PROTOKIT_CACHE_MODE="auto")
    return Workspace(root, env)


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[Sandbox]:
    """A sandbox for this module's kernels (it does not check keys; the SDKs still send them)."""
    with Sandbox(port=0) as sb:
        yield sb


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory, sandbox_server: Sandbox) -> Workspace:
    """A notebook run with keys in the environment, then validated and promoted, all by the CLI."""
    ws = _workspace(tmp_path_factory.mktemp("secrets-env"), sandbox_server)
    _notebook(ws.root / "echo.ipynb",
              ('n_cases: int = 2  # how many prompts\nprefix: str = "ticket"  # prompt prefix', ["parameters"]),
              'import protokit as pk\n\n'
              'gpt = pk.model("openai:echo")  # keys and endpoints come from the environment\n'
              'claude = pk.model("anthropic:echo")',
              'answers = [m.complete(f"{prefix} {i}").text for m in (gpt, claude) for i in range(n_cases)]\n'
              'print(answers)\npk.output("answers", answers)')
    before = sandbox_server.stats()["requests"]
    for args in (("run", "echo.ipynb", "-o", "echo.ipynb"),
                 ("run", "echo.ipynb", "-p", "n_cases", "3", "-p", "prefix", "case"),
                 ("validate", "echo.ipynb"),
                 ("promote", "echo.ipynb", "--name", "echo_mod", "--out", "pkg")):
        done = ws.cli(*args)
        assert done.returncode == 0, ws.logs[-1]
    # The kernels did call the providers' endpoints, so the keys were read and sent.
    assert sandbox_server.stats()["requests"] - before == 2 * 2 + 2 * 3
    return ws


def test_keys_in_the_environment_are_written_nowhere(promoted: Workspace) -> None:
    files = promoted.files()
    names = {str(p.relative_to(promoted.root)) for p in files}
    # Everything the drill means to scan was written.
    assert {"cache.db", "echo.ipynb", ".protokit/runs.json", "pkg/echo_mod.py", "pkg/tests/test_echo_mod.py",
            "pkg/tests/cassettes/echo_mod.json"} <= names, names
    assert any(n.startswith(".protokit/runs/echo-") and n.endswith(".ipynb") for n in names), names
    assert _leaking_files(promoted) == {}
    assert _leaks("\n".join(promoted.logs)) == []


def test_the_generated_tests_pass_without_printing_a_key(promoted: Workspace) -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                          cwd=promoted.root / "pkg", env=promoted.env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert _leaks(done.stdout + done.stderr) == []
    assert _leaking_files(promoted) == {}


def _refused(ws: Workspace, nb: str, out: str) -> None:
    """validate and promote both refuse ``nb`` over the key, masked, and promote writes nothing."""
    before = ws.files()
    checked = ws.cli("validate", nb, "--no-execute")
    assert checked.returncode == 1, ws.logs[-1]
    assert MASKED in checked.stdout, ws.logs[-1]
    done = ws.cli("promote", nb, "--name", "leaky", "--out", out)
    assert done.returncode != 0, ws.logs[-1]
    assert MASKED in done.stdout + done.stderr, ws.logs[-1]
    assert not (ws.root / out).exists()
    assert ws.files() == before  # refused means nothing written or changed, anywhere in the folder
    assert _leaks(ws.logs[-2] + ws.logs[-1]) == []


def test_a_key_in_a_cell_is_refused_masked_and_never_cached(tmp_path: Path, sandbox_server: Sandbox) -> None:
    ws = _workspace(tmp_path, sandbox_server)
    # Pasted into the code and used: the classic mistake the gate is for.
    nb = _notebook(tmp_path / "leaky.ipynb", f'import protokit as pk\n\nKEY = "{OPENAI_KEY}"\n'
                   'gpt = pk.model("openai:echo", api_key=KEY)',
                   'print(gpt.complete("hello").text)\npk.output("answer", gpt.complete("hello").text)')
    done = ws.cli("run", "leaky.ipynb", "-o", "leaky.ipynb")
    assert done.returncode == 0, ws.logs[-1]
    _refused(ws, "leaky.ipynb", "pkg")
    # The key was used for a real call, yet only the notebook the user wrote holds it.
    assert (tmp_path / "cache.db").exists()
    assert _leaking_files(ws, allowed=(nb,)) == {}
    assert _leaks("\n".join(ws.logs)) == []


KEYED_CELLS = (('prefix: str = "ticket"  # prompt prefix\napi_key: str = ""  # a key for this run', ["parameters"]),
               'import protokit as pk\n\ngpt = pk.model("openai:echo", api_key=api_key or None)',
               'answers = [gpt.complete(f"{prefix} {i}").text for i in range(2)]\npk.output("answers", answers)')


def test_a_notebook_run_with_a_key_parameter_is_refused_by_the_gate(tmp_path: Path,
                                                                    sandbox_server: Sandbox) -> None:
    ws = _workspace(tmp_path, sandbox_server)
    ws.env.pop("OPENAI_API_KEY")  # the parameter is the only key the kernel gets
    _notebook(tmp_path / "keyed.ipynb", *KEYED_CELLS)
    done = ws.cli("run", "keyed.ipynb", "-p", "api_key", OPENAI_KEY, "-o", "keyed.ipynb")
    if done.returncode != 0:  # refusing the key up front is as good as the gate refusing it later
        assert MASKED in done.stdout + done.stderr and _leaks(done.stdout + done.stderr) == []
        return
    _refused(ws, "keyed.ipynb", "pkg")
    assert _leaks((tmp_path / "cache.db").read_bytes()) == []


def test_protokit_run_neither_prints_nor_stores_a_key_parameter(tmp_path: Path, sandbox_server: Sandbox) -> None:
    ws = _workspace(tmp_path, sandbox_server)
    ws.env.pop("OPENAI_API_KEY")
    nb = _notebook(tmp_path / "keyed.ipynb", *KEYED_CELLS)
    done = ws.cli("run", "keyed.ipynb", "-p", "api_key", OPENAI_KEY)
    assert done.returncode != 0 and MASKED in done.stderr  # refused up front, the key shown masked
    assert _leaks(done.stdout + done.stderr) == []
    assert _leaking_files(ws, allowed=(nb,)) == {}
