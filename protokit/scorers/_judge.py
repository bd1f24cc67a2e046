"""LLM-as-judge: any pk model grades each output against a rubric, with a score and a reason."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from protokit.errors import ConfigError
from protokit.models.prompts import render_template, template_fields
from protokit.scorers._base import Score, Scorer, rebuildable

__all__ = ["DEFAULT_TEMPLATE", "Judge", "judge", "parse_verdict"]

DEFAULT_TEMPLATE = """You are grading an answer produced by an AI model.

Rubric:
{rubric}

Case:
{case}

Answer to grade:
<<<
{output}
>>>

Grade the answer against the rubric. Reply with exactly two lines:
SCORE: <a number from {low} to {high}>
REASON: <one short sentence>"""

_SCORE = re.compile(r"(?im)^\W*score\W*[:=]?\s*(-?\d+(?:\.\d+)?)")
_REASON = re.compile(r"(?ims)^\W*reason\W*[:=]\s*(.+)")
_BARE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*$")


def parse_verdict(text: str) -> tuple[float, str | None]:
    """``(score, reason)`` from a judge's reply: ``SCORE: x`` / ``REASON: y`` lines, JSON, or a bare number."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("score"), (int, float)):
            reason = data.get("reason")
            return float(data["score"]), None if reason is None else str(reason)
    m = _SCORE.search(text) or _BARE.match(text)
    if m is None:
        shown = stripped if len(stripped) <= 60 else stripped[:60] + "…"
        raise ValueError(f"no score in the judge's reply {shown!r}")
    r = _REASON.search(text)
    return float(m.group(1)), r.group(1).strip() if r else None


class Judge(Scorer):
    """Asks a model to grade each output against a rubric; its cost is counted in judge_cost_usd."""

    is_async = True

    def __init__(self, model: Any, rubric: str, *, name: str, scale: tuple[float, float],
                 columns: Sequence[str] | None, template: str, system: str | None,
                 options: Mapping[str, Any]) -> None:
        from protokit.models import model as make_model

        if not isinstance(rubric, str) or not rubric.strip():
            raise ConfigError("pk.scorers.judge needs a rubric: what a good answer does, in words")
        low, high = scale
        if not high > low:
            raise ConfigError(f"pk.scorers.judge: scale must be (low, high) with high > low, got {scale!r}")
        placeholders = set(template_fields(template, what="the judge template"))
        if not {"rubric", "output"} <= placeholders:
            raise ConfigError("a judge template must contain {rubric} and {output}")
        rubric_cols = [f for f in template_fields(rubric, what="the judge's rubric") if f != "output"]
        shown = list(columns) if columns is not None else None
        super().__init__(name, columns=[*rubric_cols, *(shown or [])], reasons=True)
        self.model = make_model(model)
        self.rubric = rubric
        self.scale = (float(low), float(high))
        self.shown = shown
        self.template = template
        self.system = system
        self.options = dict(options)
        self.model.check_options(self.options)  # a bad option fails now, not on the first grade

    def prompt(self, output: str, case: Mapping[str, Any]) -> str:
        """The grading prompt for one output."""
        keys = self.shown if self.shown is not None else list(case)
        case_text = "\n".join(f"{k}: {case[k]}" for k in keys) or "(none)"
        rubric = render_template(self.rubric, {**case, "output": output}, what="the judge's rubric")
        low, high = self.scale
        return render_template(self.template, {"rubric": rubric, "case": case_text, "output": output,
                                               "low": f"{low:g}", "high": f"{high:g}"}, what="the judge template")

    def score(self, output: str, case: Mapping[str, Any]) -> Score:
        """Synchronous grading (outside compare)."""
        from protokit import _aio

        result: Score = _aio.run_sync(self.ascore(output, case))
        return result

    async def ascore(self, output: str, case: Mapping[str, Any]) -> Score:
        """Ask the judge model, parse its score (rescaled to 0-1) and reason."""
        response = await self.model.acomplete(self.prompt(output, case), system=self.system, **self.options)
        raw, reason = parse_verdict(response.text)
        low, high = self.scale
        if not low <= raw <= high:
            raise ValueError(f"the judge replied {raw:g}, outside its scale {low:g}-{high:g}")
        return Score((raw - low) / (high - low), reason, response.cost_usd, cached=response.cached)

    def describe(self) -> dict[str, Any]:
        """Name, kind, columns, the judge model and the rubric."""
        return {**super().describe(), "model": self.model.id, "rubric": self.rubric, "scale": list(self.scale)}


@rebuildable
def judge(model: Any, rubric: str, *, name: str = "judge", scale: tuple[float, float] = (0, 1),
          columns: Sequence[str] | None = None, template: str = DEFAULT_TEMPLATE,
          system: str | None = None, **options: Any) -> Scorer:
    """LLM-as-judge: ``model`` (a pk model or spec) grades each output against ``rubric``.

    The rubric may use ``{column}`` placeholders from the case and ``{output}``. The
    judge sees the case's ``columns`` (all by default) and replies ``SCORE: x`` on
    ``scale``, rescaled to 0-1; its reason goes to ``reason_<name>`` and its cost to
    ``judge_cost_usd``. Extra keyword options (``temperature=0``, ...) go to each call.
    """
    return Judge(model, rubric, name=name, scale=scale, columns=columns, template=template,
                 system=system, options=options)
