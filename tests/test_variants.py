"""Prompt variants and settings: a candidate is a (model, prompt variant) pair everywhere; ``pk.sweep``.

Provider calls go through the official SDKs to the sandbox, whose ``echo`` model answers with
the prompt, so what each variant sent shows in its output. Callable models stand in where no
provider is involved (diff, the hostile-name tests).
"""

from __future__ import annotations

import html
import json
from html.parser import HTMLParser

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

import protokit as pk
from protokit.cli.runs import command as runs_cli
from protokit.widgets import Compare

CASES = [
    {"ticket": "refund please", "expected": "refund please"},
    {"ticket": "app crashes", "expected": "Please: app crashes"},
    {"ticket": "hello", "expected": "hello"},
    {"ticket": "reset password", "expected": "Please: reset password"},
]
VARIANTS = {"plain": "{ticket}", "polite": "Please: {ticket}"}


def echo(sb, name="echo", **kw):
    return pk.model(f"openai:{name}", base_url=sb.openai_base_url, api_key="sandbox-key", **kw)


def claude(sb, name="echo", **kw):
    return pk.model(f"anthropic:{name}", base_url=sb.anthropic_base_url, api_key="sandbox-key", **kw)


@pytest.fixture
def priced():
    pk.set_price("openai:echo", input=1.0, output=2.0)
    pk.set_price("anthropic:echo", input=10.0, output=20.0)


# -- prompt variants -------------------------------------------------------------------------------

def test_variants_are_candidates_in_results_summary_and_statistics(sandbox, priced):
    cmp = pk.compare([echo(sandbox), claude(sandbox)], VARIANTS, CASES, [pk.scorers.exact("expected")])
    r = cmp.results
    assert list(r.columns[:6]) == ["case", "ticket", "expected", "model", "prompt", "candidate"]
    assert len(r) == 16 and sandbox.stats()["requests"] == 16
    mine = r[r["candidate"] == "openai:echo · polite"]
    assert mine["output"].tolist() == [f"Please: {c['ticket']}" for c in CASES]  # echo shows what was sent
    assert (mine["model"] == "openai:echo").all() and (mine["prompt"] == "polite").all()
    assert cmp.prompts == ["plain", "polite"] and cmp.key == "candidate"
    assert cmp.candidates == ["openai:echo · plain", "openai:echo · polite", "anthropic:echo · plain",
                              "anthropic:echo · polite"]
    s = cmp.summary
    assert list(s.columns[:4]) == ["candidate", "model", "prompt", "n"]
    assert s["candidate"].tolist() == cmp.candidates and s["n"].tolist() == [4, 4, 4, 4]
    assert s.set_index("candidate")["score_exact"].tolist() == [0.5, 0.5, 0.5, 0.5]
    # Each variant answers half the cases right, and different halves: no difference, so the cheapest wins.
    assert cmp.best() == "openai:echo · plain"
    pair = cmp.compare_pair("openai:echo · polite", "openai:echo · plain")
    with pytest.raises(pk.ConfigError, match="'echo · polite' could be openai:echo · polite or anthropic:echo · pol"):
        cmp.compare_pair("echo · polite", "openai:echo · plain")  # a short model name, when it is unambiguous
    assert (pair.a, pair.b, pair.n, pair.diff) == ("openai:echo · polite", "openai:echo · plain", 4, 0.0)
    assert cmp.pareto() == ["openai:echo · plain"]  # "Please: " costs tokens and scores no better
    assert cmp.per_case("anthropic:echo · polite").tolist() == [0.0, 1.0, 0.0, 1.0]
    text = cmp.report()
    assert text.startswith("openai:echo · plain scores 0.50") and "Use openai:echo · plain: " in text
    assert "Median latency: openai:echo · plain" in text
    assert "2 models x 2 prompts x 4 cases" in repr(cmp)
    fig = cmp.plot()
    assert isinstance(fig, Figure)
    assert {t.get_text() for t in fig.axes[0].texts} == set(cmp.candidates)
    page = cmp.to_html()
    assert "openai:echo · polite" in page and "Use openai:echo · plain" in page
    assert set(cmp.samples_summary["candidate"]) == set(cmp.candidates)


def test_a_candidate_is_named_by_its_variant_when_there_is_one_model(sandbox):
    cmp = pk.compare(echo(sandbox), VARIANTS, CASES, [pk.scorers.exact("expected")])
    assert cmp.compare_pair("polite", "plain").a == "openai:echo · polite"
    cmp.add_rating(1, "polite", 1)
    assert cmp.results.loc[cmp.results["rating"].notna(), "candidate"].tolist() == ["openai:echo · polite"]
    assert cmp.summary.set_index("candidate").loc["openai:echo · polite", "rating"] == 1.0
    with pytest.raises(pk.ConfigError, match=r"no candidate 'rude'.*openai:echo · plain, openai:echo · polite"):
        cmp.compare_pair("rude", "plain")
    with pytest.raises(pk.ConfigError, match="no candidate 'openai:echo'"):  # which variant? it does not guess
        cmp.per_case("openai:echo")


def test_variants_may_be_messages_or_functions(sandbox):
    prompts = {
        "chat": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q: {ticket}"}],
        "fn": lambda case: case["ticket"].upper(),
    }
    cmp = pk.compare([echo(sandbox)], prompts, CASES[:2])
    assert cmp.results.set_index(["case", "prompt"])["output"].to_dict() == {
        (0, "chat"): "Q: refund please", (0, "fn"): "REFUND PLEASE",
        (1, "chat"): "Q: app crashes", (1, "fn"): "APP CRASHES"}
    stored = pk.load_run(cmp.run_id)
    assert stored.prompt["chat"] == json.dumps(prompts["chat"])
    assert stored.prompt["fn"].startswith("<function ") and "<lambda>" in stored.prompt["fn"]


def test_a_single_prompt_keeps_todays_columns_and_a_dict_of_one_adds_them(sandbox):
    cases = [{"prompt": "a case column may be called prompt", "candidate": "or candidate"}]
    one = pk.compare([echo(sandbox)], "{prompt}", cases)
    assert "candidate" in one.results and one.results["prompt"].tolist() == [cases[0]["prompt"]]
    assert one.prompts == [] and one.key == "model" and one.candidates == ["openai:echo"]
    assert list(one.summary.columns[:2]) == ["model", "n"]
    named = pk.compare([echo(sandbox)], {"only": "{ticket}"}, CASES[:1])
    assert named.results["candidate"].tolist() == ["openai:echo · only"]
    assert named.summary["candidate"].tolist() == ["openai:echo · only"]


@pytest.mark.parametrize(("prompt", "cases", "message"), [
    ({}, CASES, "empty dict"),
    ({"": "{ticket}"}, CASES, "non-empty strings"),
    ({1: "{ticket}"}, CASES, "non-empty strings"),
    ({"a": {"b": "{ticket}"}}, CASES, "variant 'a' is a dict"),
    ({"a": "{ticket}", "b": "{label}"}, CASES, r"prompt variant 'b': the prompt uses \{label\}"),
    ({"a": 42}, CASES, "prompt variant 'a': prompt must be a template string"),
    ({"a": "{prompt}"}, [{"prompt": "x"}], "case column 'prompt' clashes"),
    ({"a": "{ticket}"}, [{"ticket": "x", "candidate": "y"}], "case column 'candidate' clashes"),
])
def test_variant_mistakes_fail_before_any_call(sandbox, prompt, cases, message):
    with pytest.raises(pk.ConfigError, match=message):
        pk.compare([echo(sandbox)], prompt, cases)
    with pytest.raises(pk.ConfigError, match=message):
        pk.estimate([echo(sandbox)], prompt, cases)
    assert sandbox.stats()["requests"] == 0


def test_estimate_counts_each_candidate(sandbox, priced):
    args = ([echo(sandbox), claude(sandbox)], VARIANTS, CASES)
    est = pk.estimate(*args, options={"max_tokens": 10})
    assert est.calls == 16 and est.cached == 0
    assert [(e["candidate"], e["model"], e["prompt"], e["calls"]) for e in est.by_model] == [
        ("openai:echo · plain", "openai:echo", "plain", 4), ("openai:echo · polite", "openai:echo", "polite", 4),
        ("anthropic:echo · plain", "anthropic:echo", "plain", 4),
        ("anthropic:echo · polite", "anthropic:echo", "polite", 4)]
    plain, polite = est.by_model[0], est.by_model[1]
    assert polite["input_tokens"] > plain["input_tokens"]  # "Please: " is in every polite prompt
    pk.compare([echo(sandbox)], {"plain": "{ticket}"}, CASES, options={"max_tokens": 10})
    again = pk.estimate(*args, options={"max_tokens": 10})
    assert again.cached == 4 and again.by_model[0]["cached"] == 4 and again.by_model[1]["cached"] == 0
    assert sandbox.stats()["requests"] == 4


def test_a_stored_run_keeps_its_variants(sandbox, priced, tmp_path):
    cmp = pk.compare([echo(sandbox), claude(sandbox)], VARIANTS, CASES, [pk.scorers.exact("expected")])
    loaded = pk.load_run(cmp.run_id)
    assert loaded.prompts == ["plain", "polite"] and loaded.candidates == cmp.candidates
    assert loaded.prompt == VARIANTS
    pd.testing.assert_frame_equal(loaded.results, cmp.results, check_dtype=False)
    pd.testing.assert_frame_equal(loaded.summary, cmp.summary)
    assert loaded.best() == cmp.best() and loaded.report() == cmp.report()
    assert loaded.compare_pair("openai:echo · plain", "anthropic:echo · polite").n == 4
    cmp.add_rating(0, "anthropic:echo · polite", 0)
    rated = pk.load_run(cmp.run_id).results
    assert rated.loc[rated["rating"].notna(), ["case", "candidate"]].values.tolist() == [
        [0, "anthropic:echo · polite"]]
    path = str(pk.cache.get_cache().path)
    out = CliRunner().invoke(runs_cli, ["show", cmp.run_id, "--path", path])
    assert out.exit_code == 0, out.output
    assert "prompt variants: plain, polite" in out.output and "anthropic:echo · polite" in out.output


def _shouting(until: str, extra: bool = False) -> pk.Comparison:
    cases = [{"x": w, "y": w.upper()} for w in "abcdefghijklmnopqrstuvwxyz"]
    prompts = {"asis": "{x}", "shout": lambda c: c["x"].upper() if c["x"] < until else c["x"]}
    if extra:
        prompts["new"] = "{y}"
    return pk.compare([pk.model(lambda s: s, name="parrot")], prompts, cases, [pk.scorers.exact("y")])


def test_diff_pairs_runs_by_case_and_candidate():
    base, now = _shouting("z"), _shouting("h", extra=True)
    d = now.diff(base)
    s = d.summary.set_index("candidate")
    assert s.loc["callable:parrot · shout", "changed"] == 18
    assert s.loc["callable:parrot · asis", "changed"] == 0
    assert s.loc["callable:parrot · shout", "exact_change"] == pytest.approx(-18 / 26)
    assert set(d.table.columns[:2]) == {"case", "candidate"}
    lines = d.verdict().splitlines()
    assert lines[0] == "callable:parrot · asis: 0 of 26 outputs changed (0%); exact unchanged at 0.00."
    assert lines[1].startswith("callable:parrot · shout: 18 of 26 outputs changed (69%); exact 0.96 -> 0.27")
    assert lines[2] == "Only in this run: callable:parrot · new."
    # A single-prompt run against a run with variants: nothing pairs, and the verdict says so.
    single = pk.compare([pk.model(lambda s: s, name="parrot")], "{x}", [{"x": "a", "y": "A"}])
    mixed = single.diff(base)
    assert mixed.only_here == ["callable:parrot"] and "callable:parrot · asis" in mixed.only_baseline


# -- settings: one model, several candidates ---------------------------------------------------------

def test_sweep_names_one_model_per_value_and_per_combination():
    models = pk.sweep("openai:gpt-4.1-mini", temperature=[0, 0.7, 1])
    assert [m.id for m in models] == ["gpt-4.1-mini temperature=0", "gpt-4.1-mini temperature=0.7",
                                      "gpt-4.1-mini temperature=1"]
    assert [m.defaults for m in models] == [{"temperature": 0}, {"temperature": 0.7}, {"temperature": 1}]
    assert {m.spec for m in models} == {"openai:gpt-4.1-mini"}
    grid = pk.sweep("anthropic:claude-haiku-4-5", name="haiku", temperature=(0, 1), top_p=[0.5, 1],
                    max_tokens=300, stop=[["\n"]])
    assert [m.id for m in grid] == [
        'haiku temperature=0 top_p=0.5 stop=["\\n"]', 'haiku temperature=0 top_p=1 stop=["\\n"]',
        'haiku temperature=1 top_p=0.5 stop=["\\n"]', 'haiku temperature=1 top_p=1 stop=["\\n"]']
    assert all(m.defaults["max_tokens"] == 300 and m.defaults["stop"] == ["\n"] for m in grid)


def test_stop_and_tools_are_swept_only_by_a_list_of_lists():
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    fixed = pk.sweep("openai:x", temperature=[0, 1], stop=["\n"], tools=[get_weather])
    assert [m.id for m in fixed] == ["x temperature=0", "x temperature=1"]
    assert all(m.defaults["stop"] == ["\n"] and "tools" in m.defaults for m in fixed)
    swept = pk.sweep("openai:x", tools=[[], [get_weather]])
    assert [m.id for m in swept] == ["x tools=[]", 'x tools=["get_weather"]']


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    (("openai:x",), {}, "needs an option given as a list"),
    (("openai:x",), {"temperature": 0.5}, "needs an option given as a list"),
    (("openai:x",), {"temperature": []}, r"temperature=\[\] gives no value"),
    (("openai:x",), {"temperature": [0, 1, 0]}, "temperature lists 0 twice"),
    (("openai:x",), {"temperature": [0, 1], "name": " "}, "name= must be a non-empty string"),
    (("openai:x",), {"temprature": [0, 1]}, "unknown option 'temprature'"),
    (("openai:x",), {"temperature": [0, 9]}, "temperature=9"),
    (("gpt-4",), {"temperature": [0, 1]}, "should look like 'provider:name'"),
])
def test_sweep_mistakes_say_the_fix(args, kwargs, message):
    with pytest.raises(pk.ConfigError, match=message):
        pk.sweep(*args, **kwargs)


def test_sweep_refuses_a_built_model():
    with pytest.raises(pk.ConfigError, match=r"give its options to pk.sweep instead, e.g. pk.sweep\('openai:x'"):
        pk.sweep(pk.model("openai:x"), temperature=[0, 1])


def test_two_settings_of_one_model_are_two_candidates(sandbox):
    cases = [{"ticket": "one two three four five"}]
    sweep = pk.sweep("openai:echo", max_tokens=[1, 3], base_url=sandbox.openai_base_url, api_key="sandbox-key")
    named = pk.model("openai:echo", name="echo-long", max_tokens=4, base_url=sandbox.openai_base_url,
                     api_key="sandbox-key")
    cmp = pk.compare([*sweep, named], "{ticket}", cases)
    assert cmp.models == ["echo max_tokens=1", "echo max_tokens=3", "echo-long"]
    assert cmp.results["output"].tolist() == ["one", "one two three", "one two three four"]
    assert sandbox.stats()["requests"] == 3  # three settings, three cache entries
    # Settings and prompt variants together: one candidate per setting and variant.
    both = pk.compare(sweep, {"plain": "{ticket}", "quoted": '"{ticket}"'}, cases)
    assert both.candidates == ["echo max_tokens=1 · plain", "echo max_tokens=1 · quoted",
                               "echo max_tokens=3 · plain", "echo max_tokens=3 · quoted"]
    assert both.results["output"].tolist() == ["one", '"one', "one two three", '"one two three']
    assert sandbox.stats()["requests"] == 5  # the plain ones were replayed from the cache


def test_sweep_of_a_function_passes_each_value():
    def fn(prompt: str, temperature: float = 0.0) -> str:
        return f"{prompt} at {temperature}"

    models = pk.sweep(fn, temperature=[0, 0.5])
    assert [m.id for m in models] == ["fn temperature=0", "fn temperature=0.5"]
    cmp = pk.compare(models, "{x}", [{"x": "hi"}])
    assert cmp.results["output"].tolist() == ["hi at 0", "hi at 0.5"]


# -- the widget ------------------------------------------------------------------------------------

TICKETS = pd.DataFrame({"ticket": ["my card was charged twice", "the app crashes on start"]})


def test_widget_shows_each_variant_as_columns(sandbox):
    w = Compare(models=[echo(sandbox), echo(sandbox, name="sim")], prompt={"plain": "{ticket}", "asked": "Q: {ticket}"},
                cases=TICKETS, run=True)
    assert w.state == "done", w.status
    assert w._grid.models == ["openai:echo · plain", "openai:echo · asked", "openai:sim · plain", "openai:sim · asked"]
    assert w._grid.filled == 8
    assert "Q: the app crashes on start" in w._grid.outputs[("1", "openai:echo · asked", 0)].value
    assert "openai:sim · asked" in w._summary.value
    page = w.to_html()
    assert "prompt asked:" in page and "<th>openai:echo · asked</th>" in page
    w._grid.ratings[("0", "openai:sim · plain", 0)].value = 1
    assert w.comparison.results.loc[w.comparison.results["rating"].notna(), "candidate"].tolist() == [
        "openai:sim · plain"]
    w._grid.use_buttons["openai:echo · asked"].click()
    assert w.chosen == "openai:echo · asked"
    assert w._choice.value == 'model = "openai:echo"; prompt = "Q: {ticket}"'
    assert w._grid.use_buttons["openai:echo · asked"].description == "Chosen"
    assert w._grid.use_buttons["openai:sim · asked"].description == "Use this one"


def test_widget_adds_edits_and_removes_variants(sandbox):
    w = Compare(models=[echo(sandbox)], prompt="{ticket}", cases=TICKETS)
    assert w.prompt == "{ticket}"
    assert w.add_variant() == "v2"
    assert w.prompt == {"v1": "{ticket}", "v2": "{ticket}"}
    w._prompts.editor("v2").value = "Urgent: {ticket}"  # what typing in its box does
    w._prompts._add.click()  # the "Add variant" button
    assert list(w.prompt) == ["v1", "v2", "v3"] and w.prompt["v3"] == "Urgent: {ticket}"
    w.remove_variant("v1")
    cmp = w.run_sync()
    assert cmp is not None and cmp.prompts == ["v2", "v3"]
    assert cmp.results["output"].tolist() == ["Urgent: my card was charged twice"] * 2 + \
        ["Urgent: the app crashes on start"] * 2
    w._prompts._variants[0].name.value = "v3"
    assert w.run_sync() is None and "two prompt variants are named 'v3'" in w.status
    w._prompts._variants[0].name.value = " "
    assert w.estimate() is None and "has no name" in w.status
    w._prompts._variants[0].name.value = "mine"
    w._prompts.editor("mine").value = "{ticket} ({priority})"
    assert w.run_sync() is None and "prompt variant 'mine'" in w.status and "{priority}" in w.status
    w.remove_variant("v3")
    w.remove_variant("mine")  # the last one stays
    assert list(w.prompt) == ["mine"] and w._prompts._variants[0].remove.disabled


def test_widget_shows_a_variant_that_is_not_a_template(sandbox):
    w = Compare(models=[echo(sandbox)], prompt={"fn": lambda c: c["ticket"][:6], "t": "{ticket}"}, cases=TICKETS,
                run=True)
    assert w.state == "done", w.status
    assert w.comparison.results["output"].tolist()[:2] == ["my car", "my card was charged twice"]
    assert w._prompts.editor("fn") is None and "&lt;function" in w._prompts._variants[0].row.children[1].value


# -- user text into HTML stays text ------------------------------------------------------------------

HOSTILE = st.one_of(st.sampled_from(["<script>alert(1)</script>", "</td></tr></table><img src=x onerror=1>",
                                     "&lt;b&gt;", '"><svg onload=1>', "--><script>x</script>", "$\\frac{$",
                                     "a · b"]),
                    st.text(min_size=1, max_size=30).filter(lambda s: s.strip() != ""))


class _Page(HTMLParser):
    """Tags outside inline SVG charts (whose glyph count follows the text), and every attribute name."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: set[str] = set()
        self.svg = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attrs.update(a for a, _ in attrs)
        if tag == "svg":
            self.svg += 1
        if not self.svg:
            self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.svg -= 1


def _structure(page: str) -> tuple[list[str], set[str]]:
    parser = _Page()
    parser.feed(page)
    return parser.tags, parser.attrs


def _variant_run(name: str) -> pk.Comparison:
    cases = [{"q": "a", "y": "a"}, {"q": "b", "y": "B"}]
    return pk.compare([pk.model(lambda s: s, name="m")], {name: "{q}", "plain": "{q}!"}, cases,
                      [pk.scorers.exact("y")])


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
@settings(max_examples=25, deadline=None)
@given(name=HOSTILE)
def test_a_variant_name_stays_text_in_the_html_report(name: str) -> None:
    assume(name.strip() != "plain")
    page = _variant_run(name).to_html()
    tags, attrs = _structure(page)
    assert (tags, attrs) == _structure(_variant_run("x").to_html())  # the same page, whatever the name
    assert html.escape(f"callable:m · {name}") in page


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
@settings(max_examples=15, deadline=None)
@given(name=HOSTILE)
def test_a_variant_name_stays_text_in_the_widget(name: str) -> None:
    assume(name.strip() != "plain")
    cases = [{"q": "a"}, {"q": "b"}]

    def widget(variant: str) -> Compare:
        w = Compare(models=[pk.model(lambda s: s, name="m")], prompt={variant: "{q}", "plain": "{q}!"}, cases=cases,
                    run=True)
        assert w.state == "done", w.status
        w.choose(f"callable:m · {variant.strip()}")  # the widget's name boxes trim a name
        return w

    w, ref = widget(name), widget("x")
    candidate = f"callable:m · {name.strip()}"
    assert _structure(w.to_html()) == _structure(ref.to_html())
    head = w._grid.box.children[1].children[0].value
    assert head == f'<div class="pk-head">{html.escape(candidate)}</div>'
    assert _structure(w._summary.value + w._verdict.value) == _structure(ref._summary.value + ref._verdict.value)
