"""The Compare widget without a browser: runs, grid cells, ratings, choice, bad input, cancel, static HTML."""

from __future__ import annotations

import asyncio
import json

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import protokit as pk
from protokit.widgets import Compare
from protokit.widgets.frontend import insert_cell_script
from protokit.widgets.static import cell_html

TICKETS = pd.DataFrame({
    "ticket": ["my card was charged twice", "how do I reset my password", "the app crashes on start"],
    "expected": ["billing", "account", "bug"],
})


def sandbox_models(sb, *names):
    return [pk.model(f"openai:{n}", base_url=sb.openai_base_url, api_key="sandbox-key") for n in names]


def make(sb, **kw):
    kw.setdefault("models", sandbox_models(sb, "echo", "sim"))
    kw.setdefault("prompt", "Ticket: {ticket}")
    kw.setdefault("cases", TICKETS)
    return Compare(**kw)


def test_run_fills_grid_summary_chart_and_verdict(sandbox):
    w = make(sandbox, scorers=[pk.scorers.contains("expected")], run=True)
    assert w.state == "done", w.status
    cmp = w.comparison
    assert cmp is not None and len(cmp.results) == 6
    assert w._grid is not None and w._grid.filled == 6
    # echo answers with the prompt, so each echo cell shows its own case's text
    echo_cell = w._grid.outputs[("0", "openai:echo", 0)].value
    assert "Ticket: my card was charged twice" in echo_cell and "tok" in echo_cell
    assert "score" in echo_cell  # the scorer's badge
    assert "openai:sim" in w._summary.value and "<table" in w._summary.value
    assert w._chart.value[:4] == b"\x89PNG"
    assert w._verdict.value
    assert w._after.layout.display == "flex"
    assert w._progress.value == 6 and "6/6" in w._progress_html.value


def test_grid_changes_only_the_cell_of_each_result(sandbox):
    w = make(sandbox, run=True)
    assert w._grid is not None
    grid_children = w._grid.box.children
    w._grid.put({**w.comparison.results.iloc[0].to_dict(), "output": "changed"})
    assert w._grid.box.children is grid_children  # the grid itself was not rebuilt


def test_rating_is_written_into_results(sandbox):
    w = make(sandbox, run=True)
    toggle = w._grid.ratings[("1", "openai:sim", 0)]
    toggle.value = 1  # what a click on 👍 does
    w.rate(2, "openai:echo", 0)
    results = w.comparison.results
    rated = results[results["rating"].notna()].set_index(["case", "model"])["rating"]
    assert rated.to_dict() == {(1, "openai:sim"): 1, (2, "openai:echo"): 0}
    assert w._grid.ratings[("2", "openai:echo", 0)].value == 0  # rate() shows in the grid too


def test_rating_given_during_the_run_is_kept(sandbox):
    w = make(sandbox, concurrency=1)
    on_result = w._on_result

    def rate_first(row, progress):
        on_result(row, progress)
        if progress.done == 1:
            w._grid.ratings[(str(row["case"]), row["model"], 0)].value = 1

    w._on_result = rate_first
    cmp = w.run_sync()
    assert cmp is not None and cmp.results["rating"].notna().sum() == 1


def test_use_this_model_sets_chosen_and_the_copy_line(sandbox):
    w = make(sandbox, run=True)
    w._grid.use_buttons["openai:sim"].click()
    assert w.chosen == "openai:sim"
    assert w._choice.value == 'model = "openai:sim"'
    assert w._choice_row.layout.display == "flex"
    assert w._grid.use_buttons["openai:sim"].description == "Chosen"
    assert w._grid.use_buttons["openai:echo"].description == "Use this model"
    assert "chosen" in w.to_html()


@pytest.mark.parametrize("typed", ["gpt-4", "nosuchprovider:model", "openai"])
def test_bad_model_name_is_a_message_not_an_exception(sandbox, typed):
    w = make(sandbox)
    w._new_model.value = typed  # what pressing Enter in the box does
    assert w.models == ["openai:echo", "openai:sim"]
    assert "pk-status-error" in w._status.value and w.status
    w._new_model.value = "openai:gpt-4.1-mini"
    assert w.models[-1] == "openai:gpt-4.1-mini" and w._new_model.value == ""


def test_template_naming_a_missing_column_is_a_message(sandbox):
    w = make(sandbox)
    w.prompt = "Ticket: {ticket} ({priority})"
    assert w.run_sync() is None
    assert w.state == "idle" and "{priority}" in w.status and "ticket" in w.status
    assert w.estimate() is None


def test_bad_options_and_no_models_are_messages(sandbox):
    w = make(sandbox)
    w._temperature.value = "warm"
    assert w.run_sync() is None and "temperature" in w.status
    w._temperature.value = "0"
    for check in w._model_checks.children:
        check.value = False
    assert w.run_sync() is None and "no model" in w.status


def test_run_refused_by_compare_is_a_message(sandbox):
    w = make(sandbox, scorers=[pk.scorers.exact("no_such_column")])
    assert w.run_sync() is None
    assert w.state == "failed" and "no_such_column" in w.status
    assert w._grid_area.children == () and not w._run_button.disabled


def test_provider_failing_mid_run_shows_in_cells(sandbox):
    sandbox.set_faults("401=0.5", seed=3)
    w = make(sandbox, run=True)
    assert w.state == "done"
    results = w.comparison.results
    failed = results[results["error"].notna()]
    assert 0 < len(failed) < len(results)
    row = failed.iloc[0]
    cell = w._grid.outputs[(str(row["case"]), row["model"], 0)].value
    assert "pk-err" in cell and "auth" in cell
    assert f"{len(failed)} errors" in w.status and "errors" in w._progress_html.value


def test_cancel_keeps_the_finished_rows(sandbox):
    cases = pd.DataFrame({"ticket": [f"ticket number {i}" for i in range(12)]})
    w = make(sandbox, cases=cases, concurrency=1)
    on_result = w._on_result

    def cancel_after_two(row, progress):
        on_result(row, progress)
        if progress.done == 2:
            w.cancel()

    w._on_result = cancel_after_two
    cmp = w.run_sync()
    assert w.state == "cancelled" and cmp is w.comparison and cmp is not None
    finished = cmp.results[cmp.results["error"].isna()]
    assert len(finished) >= 2
    assert all(w._grid.outputs[(str(r.case), r.model, 0)] for r in finished.itertuples())
    assert "cancelled" in w.status and "kept" in w.status
    assert not w._run_button.disabled and w._cancel_button.disabled


def test_run_on_a_running_loop_does_not_block(sandbox):
    w = make(sandbox)

    async def main():
        task = w.run()
        assert isinstance(task, asyncio.Task) and not task.done()
        await asyncio.sleep(0)
        assert w.state == "running"
        assert w.run() is task  # a second Run click while running changes nothing
        return await task

    cmp = asyncio.run(main())
    assert cmp is w.comparison and len(cmp.results) == 6


def test_estimate_shows_calls_before_spending(sandbox):
    w = make(sandbox, samples=2)
    est = w.estimate()
    assert est is not None
    assert "12 calls" in w._estimate_html.value
    assert sandbox.stats()["requests"] == 0


def test_static_html_and_mimebundle(sandbox):
    w = make(sandbox, scorers=[pk.scorers.contains("expected")])
    assert "Not run yet" in w.to_html()
    w.run_sync()
    bundle = w._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    page = bundle["text/html"]
    assert 'class="pk-table pk-grid"' in page and "Ticket: the app crashes on start" in page
    assert "data:image/png;base64," in page and "openai:sim" in page
    assert w._repr_html_() == page


def test_repr_is_cheap_and_says_the_state(sandbox):
    w = make(sandbox)
    assert repr(w) == ("Compare(models=['openai:echo', 'openai:sim'], cases=3, state='idle', results=0, "
                       "chosen=None)")


def test_new_cases_list_their_columns_and_run(sandbox):
    w = make(sandbox, models=sandbox_models(sandbox, "echo"))
    w.cases = [{"id": "a", "ticket": "first", "priority": "high"}, {"id": "b", "ticket": "second", "priority": "low"}]
    assert "{priority}" in w._columns.value
    w.prompt = "{ticket} ({priority})"
    cmp = w.run_sync()
    assert list(cmp.results["output"]) == ["first (high)", "second (low)"]
    assert ("a", "openai:echo") in w._grid.cells


def test_bad_cases_are_a_message(sandbox):
    w = make(sandbox, cases=[])
    assert "no cases" in w.status
    assert w.run_sync() is None


def test_cell_html_escapes_and_folds_long_output():
    row = {"case": 0, "model": "m", "sample": 0, "output": "<b>" + "word " * 200, "latency_s": 0.5,
           "input_tokens": 3, "output_tokens": 200, "cost_usd": 0.0, "cached": True, "error": None,
           "score_exact": 1.0}
    html = cell_html(row)
    assert "&lt;b&gt;" in html and "<details>" in html and "cached" in html and "exact 1" in html
    err = cell_html({**row, "error": "rate_limit", "error_message": "slow down <now>"})
    assert "rate_limit" in err and "slow down &lt;now&gt;" in err


def test_insert_script_carries_the_line_and_its_age():
    script = insert_cell_script('model = "openai:x"', now=1000.0)
    assert json.dumps('model = "openai:x"') in script and "1000000" in script


def test_headless_notebook_keeps_the_results_as_html(sandbox, monkeypatch, tmp_path):
    """papermill/nbconvert: run=True runs before display, and the saved output has a static copy."""
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    monkeypatch.setenv("OPENAI_BASE_URL", sandbox.openai_base_url)  # the kernel inherits these
    monkeypatch.setenv("OPENAI_API_KEY", "sandbox-key")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import pandas as pd, protokit as pk\n"
        "cases = pd.DataFrame({'ticket': ['lost parcel', 'double charge']})\n"
        "pk.Compare(models=['openai:echo'], prompt='Ticket: {ticket}', cases=cases, run=True)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    results = [o for o in nb.cells[0].outputs if o.output_type == "execute_result"]
    assert len(results) == 1, nb.cells[0].outputs
    data = results[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "pk-grid" in data["text/html"] and "Ticket: double charge" in data["text/html"]
    assert "done: 2 results" in data["text/html"]


# -- the %%compare magic -------------------------------------------------------------------------

@pytest.fixture
def shell(sandbox, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    from protokit.cell_magic import load_ipython_extension

    monkeypatch.setenv("OPENAI_BASE_URL", sandbox.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sandbox-key")
    ip = InteractiveShell.instance()
    load_ipython_extension(ip)
    ip.user_ns["df"] = TICKETS
    ip.user_ns["checks"] = [pk.scorers.contains("expected")]
    yield ip
    for name in ("df", "checks", "_compare", "mine"):
        ip.user_ns.pop(name, None)


def test_compare_magic_shows_and_stores_the_widget(shell):
    shell.run_cell_magic("compare", "openai:echo openai:sim --cases df --scorers checks --run",
                         "Classify: {ticket}\n")
    w = shell.user_ns["_compare"]
    assert isinstance(w, Compare) and w.prompt == "Classify: {ticket}"
    assert w.state == "done" and len(w.comparison.results) == 6
    assert w.comparison.score_names == ["contains"] and "score_contains" in w.comparison.results
    shell.run_cell_magic("compare", "openai:echo --cases df.head(1) --name mine", "Say {ticket}")
    assert shell.user_ns["mine"].models == ["openai:echo"] and shell.user_ns["mine"].state == "idle"


def test_compare_magic_takes_prompt_variants(shell):
    cell = "=== terse ===\nLabel: {ticket}\n\n===  polite one ===\nPlease label: {ticket}\n"
    shell.run_cell_magic("compare", "openai:echo --cases df --run", cell)
    w = shell.user_ns["_compare"]
    assert w.prompt == {"terse": "Label: {ticket}", "polite one": "Please label: {ticket}"}
    r = w.comparison.results
    assert sorted(set(r["candidate"])) == ["openai:echo · polite one", "openai:echo · terse"] and len(r) == 6
    assert set(r.loc[r["prompt"] == "terse", "output"]) == {f"Label: {t}" for t in TICKETS["ticket"]}


@pytest.mark.parametrize("cell,needle", [
    ("=== a ===\nx {ticket}\n=== a ===\ny {ticket}", "two prompt variants are named 'a'"),
    ("=== a ===\nx {ticket}\n=== b ===\n\n", "variant 'b' is empty"),
])
def test_compare_magic_variant_mistakes_are_usage_errors(shell, cell, needle):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match=needle):
        shell.run_cell_magic("compare", "openai:echo --cases df", cell)


_LINE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85"
                                                                                "\u2028\u2029"), max_size=12)


@settings(max_examples=200, deadline=None)
@given(variants=st.dictionaries(
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=8)
    .filter(lambda n: "===" not in n),
    st.lists(_LINE.filter(lambda line: not line.lstrip().startswith("===")), min_size=1, max_size=3)
    .map("\n".join).filter(lambda t: t.strip() and t == t.strip("\n")),
    min_size=1, max_size=4))
def test_variant_cells_split_back_into_their_templates(variants):
    from protokit.cell_magic import split_variants

    cell = "".join(f"=== {name} ===\n{text}\n" for name, text in variants.items())
    assert split_variants(cell) == variants
    assert split_variants("Plain {ticket}\n=== not a variant ===\n") == "Plain {ticket}\n=== not a variant ==="


@pytest.mark.parametrize("line,needle", [
    ("openai:echo", "--cases"),
    ("openai:echo --cases nope", "nope"),
    ("openai:echo --cases df --scorers missing", "missing"),
    ("openai:echo --cases df --name 2bad", "2bad"),
])
def test_compare_magic_mistakes_are_usage_errors(shell, line, needle):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match=needle):
        shell.run_cell_magic("compare", line, "Say {ticket}")


@pytest.mark.skipif(not hasattr(pk, "load_ipython_extension"),
                    reason="protokit/__init__.py does not delegate load_ipython_extension yet")
def test_load_ext_protokit(shell):
    shell.run_line_magic("load_ext", "protokit")
    assert "compare" in shell.magics_manager.magics["cell"]
