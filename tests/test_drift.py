"""`protokit drift`: the promoted quickstart's golden cases re-run live against the sandbox.

The sandbox stands in for the providers. Served with the script the notebook was recorded
with, nothing changes (exit 0); served with a script whose large model now answers
"logistics" for shipping tickets, the outputs change and drift says so, case by case (exit 1).
"""

from __future__ import annotations

import html.parser
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from _cli import cli
from hypothesis import given, settings
from hypothesis import strategies as st

from protokit.drift import CaseDrift, DriftReport, parse_replacements
from protokit.errors import ConfigError
from protokit.sandbox import Sandbox

pytestmark = pytest.mark.slow


@pytest.fixture
def served(demo: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """``served(script)``: the sandbox serving that script, the environment pointed at it."""
    started: list[Sandbox] = []

    def serve(script: Path) -> Sandbox:
        sb = Sandbox(port=0, script=script).start()
        started.append(sb)
        monkeypatch.setenv("OPENAI_BASE_URL", sb.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sandbox")
        monkeypatch.setenv("PROTOKIT_PRICES", str(demo.out / "data" / "simulated_prices.json"))
        return sb

    yield serve
    for sb in started:
        sb.stop()


def _changed_script(demo: SimpleNamespace, tmp_path: Path) -> Path:
    text = (demo.out / "data" / "simulated_models.yaml").read_text()
    old = 'return it", reply: "shipping"}'
    assert old in text
    path = tmp_path / "changed.yaml"
    path.write_text(text.replace(old, 'return it", reply: "logistics"}', 1))
    return path


def test_an_unchanged_model_exits_0(demo: SimpleNamespace, served: Any) -> None:
    sb = served(demo.out / "data" / "simulated_models.yaml")
    code, text = cli("drift", str(demo.module), "--json")
    assert code == 0, text
    report = json.loads(text)
    assert report["ok"] and report["cases_run"] == 3 and report["changed_share"] == 0
    assert report["verdict"] == "OK: 0 of 3 cases changed (0%; threshold 0%)."
    assert sb.stats()["requests"] > 0  # it really went to the (stand-in) provider: no replay
    for case in report["cases"]:
        assert case["live"]["calls"] == case["recorded"]["calls"] > 0
        assert case["live"]["cost_usd"] == pytest.approx(case["recorded"]["cost_usd"])
    assert report["intervals"]["accuracy"]["diff"] == 0


def test_a_changed_model_exits_1_with_a_readable_report(demo: SimpleNamespace, served: Any,
                                                        tmp_path: Path) -> None:
    served(_changed_script(demo, tmp_path))
    page = tmp_path / "drift.html"
    code, text = cli("drift", str(demo.module), "--cases", "2", "--seed", "1", "--html", str(page))
    assert code == 1, text
    assert "2 of 3 golden cases re-run live" in text
    assert "CHANGED" in text and "per_model_accuracy['openai:simulated-large']: expected" in text
    assert "diff of per_model_accuracy:" in text
    assert re.search(r'\n +- "openai:simulated-large": [\d.]+,\n +\+ "openai:simulated-large": 0\.8,', text), text
    assert text.strip().splitlines()[-1].startswith("DRIFT: ")
    assert "per_model_accuracy[openai:simulated-large]: recorded" in text  # the paired interval line
    body = page.read_text()
    assert "<h1>drift of triage.py</h1>" in body and "DRIFT: " in body


def test_the_threshold_lets_some_change_pass(demo: SimpleNamespace, served: Any, tmp_path: Path) -> None:
    served(_changed_script(demo, tmp_path))
    code, text = cli("drift", str(demo.module), "--threshold", "1", "--json")
    assert code == 0, text
    assert json.loads(text)["changed_share"] > 0


def test_a_replacement_model_is_tried_without_editing_the_module(demo: SimpleNamespace, served: Any) -> None:
    served(demo.out / "data" / "simulated_models.yaml")
    before = demo.module.read_bytes()
    code, text = cli("drift", str(demo.module), "--cases", "1", "--model",
                     "openai:simulated-large=openai:echo", "--json")
    assert code == 1, text
    report = json.loads(text)
    assert report["replacements"] == {"openai:simulated-large": "openai:echo"}
    case = report["cases"][0]
    assert any("openai:echo" in line or "chosen_model" in line for line in case["changed"]), case
    assert demo.module.read_bytes() == before


def test_a_gate_the_live_outputs_fail_exits_1(demo: SimpleNamespace, served: Any, tmp_path: Path) -> None:
    served(demo.out / "data" / "simulated_models.yaml")
    copy = tmp_path / "d"
    shutil.copytree(demo.out, copy)
    golden = copy / "tests" / "cassettes" / "triage.golden.json"
    data = json.loads(golden.read_text())
    data["expectations"].append({"name": "accuracy", "op": ">", "value": 1})
    golden.write_text(json.dumps(data))
    code, text = cli("drift", str(copy / "triage.py"), "--cases", "1")
    assert code == 1, text
    assert "gate failed: pk.expect('accuracy', '>', 1): accuracy = " in text
    assert "0 of 1 case changed" in text and "1 pk.expect gate failed" in text


@pytest.mark.parametrize(("args", "message"), [
    (["nowhere.py"], "nowhere.py is not a promoted module"),
    (["{module}", "--model", "gpt-4"], "--model 'gpt-4' should be provider:name"),
    (["{module}", "--model", "x=openai:y"], "should be provider:name, or OLD=NEW"),
    (["{notebook}"], "is not a promoted module"),
])
def test_bad_input_is_one_line(demo: SimpleNamespace, args: list[str], message: str) -> None:
    args = [a.format(module=demo.module, notebook=demo.out / "quickstart.ipynb") for a in args]
    code, text = cli("drift", *args)
    assert code == 1 and message in text, text
    assert len(text.strip().splitlines()) == 1


def test_a_module_without_its_golden_data_is_refused(demo: SimpleNamespace, tmp_path: Path) -> None:
    copy = tmp_path / "triage.py"
    shutil.copy(demo.module, copy)
    code, text = cli("drift", str(copy))
    assert code == 1 and "triage.golden.json is missing" in text and "promote triage.py again" in text


def test_replacements_parse() -> None:
    assert parse_replacements(["openai:x"]) == {"*": "openai:x"}
    assert parse_replacements(["openai:a=anthropic:b"]) == {"openai:a": "anthropic:b"}
    with pytest.raises(ConfigError):
        parse_replacements(["a=b"])


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)


HOSTILE = st.one_of(st.sampled_from(["<script>alert(1)</script>", "</td></tr></table><img src=x onerror=1>",
                                     "&lt;b&gt;", '"><svg onload=1>']), st.text(max_size=40))


@settings(max_examples=100, deadline=None)
@given(case_id=HOSTILE, changed=HOSTILE, error=HOSTILE, diff=HOSTILE, module=HOSTILE)
def test_the_html_report_escapes_every_text(case_id: str, changed: str, error: str, diff: str,
                                            module: str) -> None:
    case = CaseDrift(id=case_id, params={}, changed=[changed], diffs={diff: [diff]}, gates=[changed], error=error,
                     numbers={diff: (1.0, 2.0)})
    report = DriftReport(module=module, threshold=0, replacements={}, cases=[case], total_cases=1,
                         intervals={diff: {"n": 1, "recorded": 1.0, "live": 2.0, "diff": 1.0, "low": 1.0,
                                           "high": 1.0, "p_value": 1.0}})
    parser = _Tags()
    parser.feed(report.html())
    assert parser.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "strong", "table",
                           "tr", "th", "td", "br", "pre"}
