"""The Compare widget as a person uses it: JupyterLab in headless Chromium, models from the sandbox.

Starts ``protokit sandbox`` (the demo's simulated models) and JupyterLab whose kernels
inherit OPENAI_BASE_URL/OPENAI_API_KEY pointing at it, opens a notebook with a Compare
widget, runs it, clicks Estimate and Run, waits for the grid, rates a cell, clicks
"Use this model" and checks both the new cell and the results frame; a second widget is
cancelled mid-run, then finished through the provider's batch API (its batch toggle). Lab runs WITHOUT
expose_app_in_browser, so the cell insertion is tested the way users get it.
Screenshots go to tests/artifacts/; with PROTOKIT_UPDATE_SCREENSHOT=1 the widget's is copied to
docs/widget.png, the README's picture.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

playwright_sync = pytest.importorskip("playwright.sync_api")
nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS", Path(__file__).parent / "artifacts"))
DOCS_SHOT = ROOT / "docs" / "widget.png"
DATA = ROOT / "notebooks" / "data"
CHROME_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
MODELS = ["openai:simulated-small", "openai:simulated-large"]
# Tickets where the simulated models agree and where the small one goes wrong.
ROWS = [0, 1, 3, 8, 11, 15]
N_CASES = len(ROWS)

SETUP = f"""import pandas as pd
import protokit as pk

cases = pd.read_csv({str(DATA / "tickets.csv")!r}).iloc[{ROWS!r}]
checks = [pk.scorers.exact("label", ignore_case=True, ignore_punctuation=True, name="accuracy")]
SYSTEM = "Classify the support message: billing, technical, account, shipping or other. Answer with the category."
"""
WIDGET = f"""w = pk.Compare(models={MODELS!r},
               prompt="{{ticket}}", system=SYSTEM, cases=cases, scorers=checks)
w"""
# A second, slow widget (one call at a time) to cancel mid-run.
SLOW = f"""slow = pk.Compare(models=[{MODELS[1]!r}], prompt="{{ticket}}", cases=cases, concurrency=1)
slow"""
CHECK = """rated = 0 if w.comparison is None else int(w.comparison.results["rating"].notna().sum())
print(f"RATED={rated} CHOSEN={w.chosen}")"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()  # SIGTERM: Lab shuts its kernels down
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    exe = Path(sys.executable).with_name("protokit")
    proc = subprocess.Popen([str(exe), "sandbox", "--port", "0", "--latency", "0.05",
                             "--script", str(DATA / "simulated_models.yaml")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        _stop(proc)
        pytest.fail(f"sandbox did not start: {line!r}")
    yield line.removeprefix("listening on ")
    _stop(proc)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, sandbox_url: str) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("lab")
    home = root / ".home"
    settings = home / "settings"
    # The news toast is a client-side prompt that news_url=None does not stop.
    notif = settings / "@jupyterlab" / "apputils-extension"
    notif.mkdir(parents=True)
    (notif / "notification.jupyterlab-settings").write_text(json.dumps(
        {"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True}))
    port, token = _free_port(), secrets.token_hex(16)
    # Kernels inherit this environment: the SDK reads OPENAI_BASE_URL/OPENAI_API_KEY itself.
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), OPENAI_BASE_URL=sandbox_url.rstrip("/") + "/v1",
               OPENAI_API_KEY="sandbox-key", PROTOKIT_CACHE=str(root / "cache.db"),
               PROTOKIT_CACHE_MODE="auto", PROTOKIT_PRICES=str(DATA / "simulated_prices.json"))
    jupyter = str(Path(sys.executable).with_name("jupyter"))
    # No --LabApp.expose_app_in_browser: users do not have window.jupyterapp, so neither does the test.
    cmd = [jupyter, "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.token={token}", "--allow-root", f"--ServerApp.root_dir={root}",
           "--LabApp.news_url=None",  # each LabApp option once: a duplicate makes Lab ignore them all
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={home / 'workspaces'}"]
    log = open(root / "server.log", "w")  # noqa: SIM115 - closed after the server stops
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1)
            break
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                _stop(proc)
                log.close()
                pytest.fail("jupyter lab did not start:\n" + (root / "server.log").read_text())
            time.sleep(0.2)
    yield {"base": base, "token": token, "root": root}
    _stop(proc)
    log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} missing (apt-get install chromium)")
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROME_ARGS)
        yield b
        b.close()


def _write_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP), nbformat.v4.new_code_cell(WIDGET),
                nbformat.v4.new_code_cell(CHECK), nbformat.v4.new_code_cell(SLOW)]
    # A kernelspec makes Lab start the kernel instead of asking which one.
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, path)


def test_compare_widget_in_jupyterlab(browser: Any, lab: dict[str, Any]) -> None:
    _write_notebook(lab["root"] / "compare.ipynb")
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(60_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        page.goto(f"{lab['base']}/lab/tree/compare.ipynb?reset&token={lab['token']}")
        page.wait_for_selector(".jp-Notebook .jp-Cell")
        # Running cells before the kernel is up pops a "Select Kernel" dialog and nothing runs.
        page.locator(".jp-StatusBar-TextItem", has_text="| Idle").wait_for()
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-item:not(.lm-mod-disabled) .lm-Menu-itemLabel",
                     has_text="Run All Cells").first.click()

        widget = page.locator(".jp-OutputArea-output .pk-compare").first
        slow = page.locator(".jp-OutputArea-output .pk-compare").nth(1)
        slow.wait_for()
        page.locator(".jp-OutputArea-output", has_text="RATED=0 CHOSEN=None").wait_for()

        widget.locator("button.pk-estimate").click()
        estimate = widget.locator(".pk-estimate-line", has_text="estimate:")
        estimate.wait_for()
        assert f"{N_CASES * len(MODELS)} calls" in estimate.inner_text()

        widget.locator("button.pk-run").click()
        widget.locator(".pk-status", has_text="done:").wait_for(timeout=60_000)
        outputs = widget.locator(".pk-gridcell .pk-out")
        assert outputs.count() == N_CASES * len(MODELS)
        assert widget.locator(".pk-gridcell .pk-pending").count() == 0
        widget.locator("img").first.wait_for()  # the chart
        assert widget.locator("table.pk-table").count() >= 1  # the summary

        # Rate the first cell of the second model with a thumbs up.
        cells = widget.locator(".pk-gridcell")
        cells.nth(1).locator(".pk-rating button").first.click()
        # Choose the second model: a new cell with its line appears under the widget's cell.
        widget.locator("button.pk-use").nth(1).click()
        line = f'model = "{MODELS[1]}"'
        page.locator(".jp-Cell .jp-InputArea-editor", has_text=line).wait_for(timeout=30_000)
        editors = page.locator(".jp-Cell .jp-InputArea-editor").all_inner_texts()
        assert editors.index(line) == editors.index(next(e for e in editors if e.startswith("w = pk.Compare"))) + 1
        assert page.locator("[data-protokit-insert=ok]").count() == 1
        assert widget.locator("input[type=text]").last.input_value() == line  # the copy box too
        assert widget.locator("button.pk-use").nth(1).inner_text().strip() == "Chosen"

        page.screenshot(path=str(ARTIFACTS / "lab.png"))
        # An element screenshot needs the whole element on screen: grow the window to the widget.
        height = int(widget.bounding_box()["height"]) + 400
        page.set_viewport_size({"width": 1280, "height": max(1000, height)})
        widget.scroll_into_view_if_needed()
        widget.screenshot(path=str(ARTIFACTS / "widget.png"))
        page.set_viewport_size({"width": 1280, "height": 1000})

        # Run the check cell: the rating and the choice reached the kernel's data.
        page.locator(".jp-Cell .jp-InputArea-editor", has_text="RATED=").click()
        page.keyboard.press("Shift+Enter")
        page.locator(".jp-OutputArea-output", has_text=f"RATED=1 CHOSEN={MODELS[1]}").wait_for(timeout=30_000)

        # Cancel mid-run: the click is handled while the run goes on (the kernel is not blocked),
        # and the results that finished stay.
        slow.locator("button.pk-run").click()
        slow.locator(".pk-gridcell .pk-out").first.wait_for()
        slow.locator("button.pk-cancel").click()
        slow.locator(".pk-status", has_text="cancelled:").wait_for(timeout=30_000)
        finished = slow.locator(".pk-gridcell .pk-out").count()
        assert 1 <= finished < N_CASES
        assert slow.locator(".pk-gridcell .pk-err", has_text="cancelled").count() == N_CASES - finished
        slow.screenshot(path=str(ARTIFACTS / "cancelled.png"))

        # The rest through the provider's batch API: the batch toggle, then the batch's line.
        slow.locator(".pk-batch-toggle input[type=checkbox]").check()
        slow.locator("button.pk-run").click()
        slow.locator(".pk-status", has_text="done:").wait_for(timeout=60_000)
        batch_line = slow.locator(".pk-batch").inner_text()
        left = N_CASES - finished
        assert f"{left} of {N_CASES} calls submitted in 1 batch · {left} done · 0 failed · openai completed" in \
            batch_line, batch_line
        assert slow.locator(".pk-gridcell .pk-out").count() == N_CASES
        if os.environ.get("PROTOKIT_UPDATE_SCREENSHOT"):  # refresh the README's picture on request only
            DOCS_SHOT.parent.mkdir(exist_ok=True)
            shutil.copyfile(ARTIFACTS / "widget.png", DOCS_SHOT)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "widget-FAIL.png"), full_page=True)
        raise
    finally:
        page.close()
