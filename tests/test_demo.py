"""`protokit demo` end to end, and the promoted quickstart held to this repository's standards.

One demo run per session (the ``demo`` fixture in conftest.py, about 35 s: three papermill runs,
validation, promote, the generated tests) gives the module every test here reads: it must pass
``ruff check`` (E, F, W, I, B, UP) and ``mypy --strict`` as written, be the same bytes whether or
not ruff is installed, and carry golden tests with three or more cases whose ``pk.expect`` gates
and tolerances are enforced.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from protokit.models.env import PROVIDER_VARS
from protokit.testing import read_golden

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _generated_tests(demo: SimpleNamespace, root: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (*PROVIDER_VARS, "PROTOKIT_CACHE", "PROTOKIT_CACHE_MODE")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests")],
                          cwd=root, env=env, capture_output=True, text=True, check=False)


def test_the_demo_promotes_a_module_whose_tests_pass_with_three_cases(demo: SimpleNamespace) -> None:
    assert demo.result.tests_failed == 0 and demo.result.tests_passed >= 3, demo.said
    golden = read_golden(demo.golden)
    assert [c["id"] for c in golden.cases] == ["defaults", "n_cases=20", "model=openai:simulated-small"]
    assert golden.expectations == [{"name": "accuracy", "op": ">=", "value": 0.6},
                                   {"name": "cost_per_case_usd", "op": "<=", "value": 0.001}]
    assert golden.tolerances == {"cost_per_case_usd": {"rel": 0.05}}
    # Distinct cases, each its own outputs: not one case repeated.
    assert len({json.dumps(c["outputs"], sort_keys=True) for c in golden.cases}) == 3


def test_the_promoted_module_and_its_tests_pass_ruff(demo: SimpleNamespace) -> None:
    done = subprocess.run([str(BIN / "ruff"), "check", "--isolated", "--select", "E,F,W,I,B,UP", "--line-length",
                           "120", "--output-format", "concise", str(demo.module), str(demo.tests)],
                          cwd=demo.out, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_promoted_module_and_its_tests_pass_mypy_strict(demo: SimpleNamespace) -> None:
    done = subprocess.run([str(BIN / "mypy"), "--strict", "--no-incremental", "--cache-dir", os.devnull,
                           str(demo.module), str(demo.tests)],
                          cwd=demo.out, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_same_bytes_without_ruff(demo: SimpleNamespace, tmp_path: Path) -> None:
    # Promote again in a child where `ruff` cannot be imported or found on PATH: nothing may differ.
    copy = tmp_path / "d"
    shutil.copytree(demo.out, copy)
    (tmp_path / "block").mkdir()
    # A None in sys.modules is how Python marks a module as absent: import fails, find_spec says None.
    (tmp_path / "block" / "sitecustomize.py").write_text("import sys\nsys.modules['ruff'] = None\n")
    env = {k: v for k, v in os.environ.items() if k not in (*PROVIDER_VARS, "PROTOKIT_CACHE_MODE")}
    env.update(PYTHONPATH=str(tmp_path / "block"), PATH="/usr/bin:/bin", PROTOKIT_CACHE=str(copy / "protokit.db"))
    code = ("import importlib.util, sys\n"
            "assert importlib.util.find_spec('ruff') is None\n"
            "from protokit.promote import promote\n"
            "r = promote('quickstart.ipynb', 'triage', '.')\n"
            "print('changed:', [str(p) for p in r.files])\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=copy, env=env, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "changed: []" in done.stdout
    for path in (demo.module, demo.tests, demo.golden):
        assert (copy / path.relative_to(demo.out)).read_bytes() == path.read_bytes()


def _edit_golden(root: Path, edit: Any) -> None:
    path = root / "tests" / "cassettes" / "triage.golden.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_a_gate_the_module_misses_fails_the_generated_tests(demo: SimpleNamespace, tmp_path: Path) -> None:
    copy = tmp_path / "d"
    shutil.copytree(demo.out, copy)
    _edit_golden(copy, lambda d: d["expectations"].append({"name": "accuracy", "op": ">", "value": 1}))
    done = _generated_tests(demo, copy)
    assert done.returncode == 1, done.stdout
    assert "pk.expect('accuracy', '>', 1): accuracy = 0.975, expected > 1" in done.stdout
    assert "3 failed" in done.stdout  # every case is held to the gate


def test_numbers_are_compared_within_the_declared_tolerance(demo: SimpleNamespace) -> None:
    golden = read_golden(demo.golden)
    case = golden.cases[0]
    result = dict(case["outputs"])
    result["cost_per_case_usd"] *= 1.04  # within the notebook's rel_tol=0.05
    golden.check(case, result)
    result["cost_per_case_usd"] *= 1.04  # now 8% off
    with pytest.raises(AssertionError, match="cost_per_case_usd: expected"):
        golden.check(case, result)
    result = dict(case["outputs"], accuracy=case["outputs"]["accuracy"] + 1e-4)  # no tolerance declared
    with pytest.raises(AssertionError, match=r"accuracy: expected 0\.975"):
        golden.check(case, result)
