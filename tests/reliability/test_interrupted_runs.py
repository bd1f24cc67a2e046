"""A comparison killed mid-run is listed as ``interrupted``, not ``running`` forever.

A child process runs ``pk.compare`` against a sandbox with latency, so it is mid-run when
the test kills it: with SIGKILL (nothing in the child runs again) its run must show as
``interrupted`` in ``protokit runs`` and ``protokit runs show``; with SIGINT (Ctrl-C) the
child itself ends the run as ``cancelled``. While the child is alive the run is ``running``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _drills import child_env, protokit_cli, spawn, wait_for_answers

from protokit.sandbox import Sandbox

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

CHILD = """
import pandas as pd, sys
import protokit as pk

m = pk.model("openai:echo", base_url=sys.argv[1], api_key="k", timeout=30)
cases = pd.DataFrame({"case": [f"c{i}" for i in range(400)], "text": [f"kill me {i}" for i in range(400)]})
pk.compare([m], "{text}", cases, concurrency=2)
print("finished")
"""


@pytest.fixture
def slow_sandbox() -> Iterator[Sandbox]:
    with Sandbox(port=0, latency="0.02", seed=1) as sb:
        yield sb


def _runs(cache: Path) -> list[dict[str, object]]:
    done = subprocess.run([str(protokit_cli()), "runs", "--json", "--path", str(cache)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    runs: list[dict[str, object]] = json.loads(done.stdout)
    return runs


def _mid_run(proc: subprocess.Popen[str], sb: Sandbox, answers: int = 10, timeout: float = 120.0) -> None:
    wait_for_answers(proc, sb, answers, timeout, "it was mid-run")


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGKILL, "interrupted"), (signal.SIGINT, "cancelled")],
                         ids=["sigkill", "ctrl-c"])
def test_killed_comparison_is_not_running_forever(sig: signal.Signals, status: str, slow_sandbox: Sandbox,
                                                  tmp_path: Path) -> None:
    cache = tmp_path / "runs.db"
    proc = spawn(CHILD, [slow_sandbox.openai_base_url], child_env(cache), cwd=tmp_path)
    try:
        _mid_run(proc, slow_sandbox)
        [alive] = _runs(cache)
        assert alive["status"] == "running"  # its writer is still there
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "finished" not in out, err
    [run] = _runs(cache)
    assert run["status"] == status, err
    done = subprocess.run([str(protokit_cli()), "runs", "show", str(run["id"]), "--path", str(cache)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"run {run['id']} ({status}):")
    table = subprocess.run([str(protokit_cli()), "runs", "--path", str(cache)], capture_output=True, text=True,
                           timeout=120).stdout
    assert status in table.splitlines()[1].split()
