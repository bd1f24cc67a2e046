"""The example notebooks replay from their committed cassettes, offline and with no keys.

Each ``notebooks/NAME.ipynb`` was recorded by ``notebooks/make_notebooks.py --record``
against the sandbox; its calls are in ``notebooks/cassettes/NAME.json``. Here a copy of
the folder runs twice from a cache loaded with that cassette: through the real
``protokit run --cache-mode replay`` (its ``pk.output`` values must equal the committed
notebook's) and under ``pytest --nbval`` (every stored output must come back, after
protokit's sanitizers).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from protokit.cache import Cache, read_cassette
from protokit.notebook.outputs import diff_outputs, outputs_in

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb"))
PROTOKIT = Path(sys.executable).with_name("protokit")
# What the record step had and a replay must do without: keys, endpoints, the simulated price table.
_RECORDING_ENV = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL")
_TIMEOUT = 300


def _replay_copy(name: str, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of notebooks/ and the environment of a machine that has only the cassette."""
    folder = tmp_path / "notebooks"
    # Leave out what a local run leaves behind (caches, run logs, the promote tour's work folder).
    shutil.copytree(NOTEBOOKS_DIR, folder, ignore=shutil.ignore_patterns(
        "promote-example", ".protokit", "*.db", "*.db-*", ".ipynb_checkpoints", "__pycache__"))
    cache_path = tmp_path / "replay.db"
    with Cache(cache_path, "auto") as cache:
        cache.load(read_cassette(folder / "cassettes" / f"{name}.json"))
    env = {k: v for k, v in os.environ.items() if k not in _RECORDING_ENV and not k.startswith("PROTOKIT_")}
    env["PROTOKIT_CACHE"] = str(cache_path)
    return folder, env


def _tail(done: subprocess.CompletedProcess[str]) -> str:
    return (done.stdout + done.stderr)[-4000:]


def test_every_notebook_has_a_cassette() -> None:
    assert set(NOTEBOOKS) >= {"quickstart", "providers", "promote"}
    for name in NOTEBOOKS:
        assert (NOTEBOOKS_DIR / "cassettes" / f"{name}.json").is_file(), \
            f"no cassette for {name}.ipynb; run .venv/bin/python notebooks/make_notebooks.py --record {name}"


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_replays_through_protokit_run(name: str, tmp_path: Path) -> None:
    folder, env = _replay_copy(name, tmp_path)
    out = tmp_path / f"{name}-replayed.ipynb"
    done = subprocess.run([str(PROTOKIT), "run", f"{name}.ipynb", "--cache-mode", "replay", "-o", str(out)],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    assert done.returncode == 0, _tail(done)
    expected = outputs_in(nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4).cells)
    assert expected, f"{name}.ipynb stores no pk.output values; record it with make_notebooks.py --record"
    assert diff_outputs(expected, outputs_in(nbformat.read(out, as_version=4).cells)) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_passes_nbval(name: str, tmp_path: Path) -> None:
    folder, env = _replay_copy(name, tmp_path)
    # protokit's pytest plugin starts nbval's kernel in replay mode and adds its sanitizers.
    done = subprocess.run([sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "-p", "no:cacheprovider",
                           "-q", f"{name}.ipynb"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    assert done.returncode == 0, _tail(done)
    assert re.search(r"\d+ passed", done.stdout) and " failed" not in done.stdout, _tail(done)
