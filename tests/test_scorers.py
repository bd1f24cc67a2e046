"""Each scorer on hand-made outputs, the judge against a scripted sandbox model, and scorer errors."""

from __future__ import annotations

import pytest

import protokit as pk
from protokit.sandbox import Sandbox
from protokit.scorers import Score, ScorerTypeError

JUDGE_SCRIPT = """
models:
  grader:
    rules:
      - match: "(?s)<<<\\\\s*Paris"
        reply: "SCORE: 5\\nREASON: names the right capital"
      - match: "(?s)<<<\\\\s*Lyon"
        reply: "I would rather not say"
      - reply: "SCORE: 1\\nREASON: wrong capital"
"""


@pytest.fixture(scope="module")
def judge_sandbox(tmp_path_factory):
    script = tmp_path_factory.mktemp("judge") / "script.yaml"
    script.write_text(JUDGE_SCRIPT, encoding="utf-8")
    with Sandbox(port=0, script=script) as sb:
        yield sb


def test_exact_normalisation_options():
    case = {"expected": "Billing"}
    assert pk.scorers.exact("expected")("  Billing\n", case).value == 1.0
    miss = pk.scorers.exact("expected")("billing", case)
    assert miss.value == 0.0 and miss.reason == "expected 'Billing', got 'billing'"
    assert pk.scorers.exact("expected", ignore_case=True)("billing", case).value == 1.0
    assert pk.scorers.exact("expected", ignore_whitespace=False)("Billing ", case).value == 0.0
    assert pk.scorers.exact("expected", ignore_punctuation=True)("Billing.", case).value == 1.0
    assert pk.scorers.exact("expected").columns == ("expected",)


def test_contains_and_regex():
    case = {"kw": "Refund", "pat": r"\d{3}"}
    assert pk.scorers.contains("kw")("we issued a refund today", case).value == 1.0
    assert pk.scorers.contains("kw", ignore_case=False)("a refund", case).value == 0.0
    assert pk.scorers.contains(text="sorry", name="apology")("I'm SORRY", {}).value == 1.0
    assert pk.scorers.regex(r"^order \d+$")("order 42", {}).value == 1.0
    assert pk.scorers.regex(column="pat")("code 12", case).reason == r"no match for /\d{3}/"
    with pytest.raises(pk.ConfigError, match="bad pattern"):
        pk.scorers.regex("(")
    with pytest.raises(pk.ConfigError, match="not both"):
        pk.scorers.contains("kw", text="x")


def test_json_valid_and_schema():
    assert pk.scorers.json_valid()('```json\n{"a": 1}\n```', {}).value == 1.0
    bad = pk.scorers.json_valid()("{a: 1}", {})
    assert bad.value == 0.0 and bad.reason.startswith("not JSON")
    schema = {"type": "object", "required": ["label"],
              "properties": {"label": {"enum": ["billing", "bug"]}, "tags": {"type": "array",
                                                                             "items": {"type": "string"}}}}
    sc = pk.scorers.json_schema(schema)
    assert sc('{"label": "bug", "tags": ["x"]}', {}).value == 1.0
    wrong = sc('{"label": "other"}', {})
    assert wrong.value == 0.0 and wrong.reason.startswith("label:")
    assert sc('{"tags": [1]}', {}).value == 0.0
    with pytest.raises(pk.ConfigError, match="invalid schema"):
        pk.scorers.json_schema({"type": "no-such-type"})
    per_case = pk.scorers.json_schema(column="schema")
    assert per_case("[1, 2]", {"schema": '{"type": "array"}'}).value == 1.0


def test_numeric_tolerance():
    case = {"answer": "1,250"}
    assert pk.scorers.numeric("answer")("so the total is 1,250.", case).value == 1.0
    assert pk.scorers.numeric("answer", tolerance=5)("about 1246", case).value == 1.0
    assert pk.scorers.numeric("answer", tolerance=0.01, relative=True)("1262", case).value == 1.0
    off = pk.scorers.numeric("answer")("1200 + 40 = 1240", case)
    assert off.value == 0.0 and off.reason == "expected 1250, got 1240"  # the last number counts
    assert pk.scorers.numeric("answer", pick="first")("1250, not 3", case).value == 1.0
    assert pk.scorers.numeric("answer")("no idea", case).reason.startswith("no number")
    assert pk.scorers.numeric("x")("-0.5", {"x": -0.5}).value == 1.0


def test_similarity_token_f1_and_rouge_l():
    f1 = pk.scorers.similarity("ref")
    # 3 shared tokens; precision 3/3, recall 3/6 -> F1 = 2/3.
    assert f1("The cat sat", {"ref": "the cat sat on the mat"}).value == pytest.approx(2 / 3)
    assert f1.name == "f1"
    rl = pk.scorers.similarity("ref", method="rouge_l")
    # LCS of "the cat sat on mat" / "the cat on the mat" is the,cat,on,mat: 4/5 both ways -> 0.8.
    assert rl("the cat sat on mat", {"ref": "the cat on the mat"}).value == pytest.approx(0.8)
    assert rl.name == "rouge_l"
    assert f1("", {"ref": ""}).value == 1.0 and f1("x", {"ref": "y"}).value == 0.0


def test_pii_detector_finds_and_masks():
    sc = pk.scorers.pii()
    assert sc("Your order ships Tuesday; call 2 times.", {}).value == 1.0
    hit = sc("Mail jane.doe@example.com or call +1 415-555-0100, card 4242 4242 4242 4242, "
             "key sk-abcdefghijklmnopqrstuvwx", {})
    assert hit.value == 0.0
    for kind in ("email", "phone", "card", "secret"):
        assert kind in hit.reason
    assert "jane.doe@" not in hit.reason and "4242 4242" not in hit.reason  # values are masked
    assert pk.scorers.luhn_ok("4242424242424242") and not pk.scorers.luhn_ok("4242424242424241")
    assert sc("ref 4242 4242 4242 4241", {}).value == 1.0  # fails Luhn: not a card
    assert sc("build 2024-01-15 id 1234567890", {}).value == 1.0  # dates and bare ids are not phones
    assert pk.scorers.pii(kinds=["email"])("call +1 415-555-0100", {}).value == 1.0
    with pytest.raises(pk.ConfigError, match="unknown kind"):
        pk.scorers.pii(kinds=["ssn"])


def test_classifier_hook():
    toxic = pk.scorers.classifier(lambda t: 0.9 if "idiot" in t else 0.1, name="non_toxic", invert=True)
    assert toxic("you idiot", {}).value == pytest.approx(0.1)
    assert toxic("thanks", {}).value == pytest.approx(0.9)
    flagged = pk.scorers.classifier(lambda t: 0.7, name="flag", threshold=0.5)
    assert flagged("x", {}).value == 1.0

    def hf(text):
        return [[{"label": "toxic", "score": 0.2}, {"label": "neutral", "score": 0.8}]]

    picked = pk.scorers.classifier(hf, name="tox", label="toxic")("x", {})
    assert picked.value == pytest.approx(0.2) and picked.reason == "toxic (0.20)"
    top_only = pk.scorers.classifier(lambda t: {"label": "neutral", "score": 0.8}, name="t", label="toxic")
    assert top_only("x", {}).value == pytest.approx(0.2)


def test_callables_and_return_types():
    def polite(output, case):
        return {"score": "please" in output, "reason": "checked"}

    sc = pk.scorers.as_scorer(polite)
    assert sc.name == "polite" and sc.reasons
    assert sc("please do", {}) == Score(1.0, "checked")
    one_arg = pk.scorers.custom(lambda out: len(out) / 10, name="length")
    assert one_arg("abcde", {}).value == 0.5
    assert pk.scorers.as_scorer(lambda o, c: True).name == "custom"
    with pytest.raises(ScorerTypeError, match="returned str"):
        pk.scorers.custom(lambda o, c: "good", name="bad")("x", {})
    with pytest.raises(ScorerTypeError, match="without 'score'"):
        pk.scorers.custom(lambda o, c: {"value": 1}, name="bad")("x", {})
    with pytest.raises(pk.ConfigError, match="letters, digits"):
        pk.scorers.custom(lambda o, c: 1, name="has space")
    with pytest.raises(pk.ConfigError, match=r"pk\.scorers\.exact"):
        pk.scorers.as_scorer("expected")


def test_parse_verdict_forms():
    assert pk.scorers.parse_verdict("SCORE: 4\nREASON: fine") == (4.0, "fine")
    assert pk.scorers.parse_verdict('{"score": 0.5, "reason": "half"}') == (0.5, "half")
    assert pk.scorers.parse_verdict(" 3 ") == (3.0, None)
    assert pk.scorers.parse_verdict("**Score:** 2") == (2.0, None)
    with pytest.raises(ValueError, match="no score"):
        pk.scorers.parse_verdict("I cannot grade this")


def test_judge_against_a_scripted_sandbox_model(judge_sandbox):
    grader = pk.model("openai:grader", base_url=judge_sandbox.openai_base_url, api_key="sandbox-key")
    pk.set_price("openai:grader", input=1.0, output=1.0)
    judge = pk.scorers.judge(grader, "Does the answer name the capital of {country}?", scale=(1, 5))
    assert judge.columns == ("country",) and judge.is_async
    good = judge("Paris", {"country": "France"})
    assert good.value == 1.0 and good.reason == "names the right capital"
    assert good.cost_usd is not None and good.cost_usd > 0
    bad = judge("Berlin", {"country": "France"})
    assert bad.value == 0.0 and bad.reason == "wrong capital"
    assert "country: France" in judge.prompt("Paris", {"country": "France"})
    with pytest.raises(ValueError, match="no score"):
        judge("Lyon", {"country": "France"})
    with pytest.raises(pk.ConfigError, match="rubric"):
        pk.scorers.judge(grader, "  ")
    with pytest.raises(pk.ConfigError, match="unknown option"):
        pk.scorers.judge(grader, "ok?", colour="red")
