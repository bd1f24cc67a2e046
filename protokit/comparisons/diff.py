"""Run against run: which outputs changed since a baseline, how each score moved, and whether that is real.

Rows are paired by case id and model: the same case, answered by the same model, in the
baseline and in this run. With prompt variants, by case id and candidate (``model · variant``): a
variant is paired with the variant of the same name and model, and the tables name candidates.
A score's change is the paired difference over the cases both runs scored, with its 95% interval
and the sign-flip test, as ``compare_pair`` gives for two models. The verdict is written in the
same plain language as ``report()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from protokit.comparisons import stats
from protokit.comparisons.tables import per_case, score_column

__all__ = ["RunDiff", "diff_runs"]

ALPHA = 0.05


@dataclass
class RunDiff:
    """This run against a baseline.

    ``table`` has one row per shared case x model: both outputs, ``changed``, and each score
    before, after and its change. ``summary`` has one row per model: cases compared, outputs
    changed, and per score the means, the mean change, its 95% interval and p-value. When either
    run has prompt variants, both tables have a ``candidate`` column in place of ``model``.
    """

    table: pd.DataFrame
    summary: pd.DataFrame
    score_names: list[str]
    only_baseline: list[str]
    only_here: list[str]
    key: str = "model"

    def verdict(self) -> str:
        """A few plain sentences, one per model, and a line for models only one run has."""
        lines = []
        for r in self.summary.to_dict("records"):
            n, changed = int(r["cases"]), int(r["changed"])
            parts = [f"{r[self.key]}: {changed} of {n} output{'s' * (n != 1)} changed ({changed / max(n, 1):.0%})"]
            for name in self.score_names:
                before, after, delta = r[f"{name}_before"], r[f"{name}_after"], r[f"{name}_change"]
                if pd.isna(delta):
                    continue
                low, high, p = r[f"{name}_low"], r[f"{name}_high"], r[f"{name}_p"]
                if delta == 0 and low == high == 0:
                    parts.append(f"{name} unchanged at {after:.2f}")
                    continue
                sig = "a significant change" if p < ALPHA else "not a significant change"
                parts.append(f"{name} {before:.2f} -> {after:.2f} ({delta:+.2f}, 95% interval {low:+.2f} to "
                             f"{high:+.2f}), {sig} (p = {p:.2g})")
            lines.append("; ".join(parts) + ".")
        if self.only_baseline:
            lines.append(f"Only in the baseline: {', '.join(self.only_baseline)}.")
        if self.only_here:
            lines.append(f"Only in this run: {', '.join(self.only_here)}.")
        return "\n".join(lines) or "The two runs share no model."

    def __str__(self) -> str:
        return self.verdict()


def _outputs(results: pd.DataFrame, key: str) -> pd.Series:
    """Each case x model's (candidate's) answer: its samples' outputs joined, an error as ``error: kind``."""
    text = results["output"].where(results["error"].isna(), "error: " + results["error"].astype(str))
    return text.fillna("").groupby([results["case"], results[key]], sort=False).agg("\n---\n".join)


def diff_runs(here: pd.DataFrame, base: pd.DataFrame, models: Sequence[str], base_models: Sequence[str],
              score_names: Sequence[str], base_score_names: Sequence[str], *, key: str = "model",
              base_key: str = "model") -> RunDiff:
    """Pair two runs' results by case and model (candidate: ``key`` names its column); see :class:`RunDiff`."""
    col = "candidate" if "candidate" in (key, base_key) else "model"
    shared_models = [m for m in models if m in base_models]
    scores = [s for s in score_names if s in base_score_names]
    after, before = _outputs(here, key), _outputs(base, base_key)
    joined = pd.concat([before.rename("output_before"), after.rename("output_after")], axis=1, join="inner")
    joined = joined[joined.index.get_level_values(1).isin(shared_models)]
    table = joined.reset_index()
    table.columns = ["case", col, *table.columns[2:]]
    table["changed"] = table["output_before"] != table["output_after"]
    rows = []
    for model in shared_models:
        mine = table[table[col] == model]
        row: dict[str, object] = {col: model, "cases": len(mine), "changed": int(mine["changed"].sum())}
        for name in scores:
            a = per_case(here, model, score_column(name, score_names), key)
            b = per_case(base, model, score_column(name, base_score_names), base_key)
            pair = pd.concat([b.rename("b"), a.rename("a")], axis=1, join="inner").dropna()
            r = stats.paired_difference(pair["a"].to_numpy(), pair["b"].to_numpy())
            row.update({f"{name}_before": r.mean_b, f"{name}_after": r.mean_a, f"{name}_change": r.diff,
                        f"{name}_low": r.low, f"{name}_high": r.high, f"{name}_p": r.p_value})
            deltas = (a - b).rename(f"{name}_change")
            table.loc[table[col] == model, f"{name}_change"] = table.loc[
                table[col] == model, "case"].map(deltas)
        rows.append(row)
    return RunDiff(table=table, summary=pd.DataFrame(rows), score_names=scores,
                   only_baseline=[m for m in base_models if m not in models],
                   only_here=[m for m in models if m not in base_models], key=col)
