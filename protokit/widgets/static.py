"""HTML for the widget: one cell's content, the styles, and the static page shown without a front end.

The live grid and the static copy use the same :func:`cell_html`, so a notebook
executed by papermill or nbconvert shows what the widget showed.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from protokit.widgets.thumbs import thumbnail_html

if TYPE_CHECKING:
    import pandas as pd

    from protokit.comparisons import BatchProgress, Comparison

__all__ = [
    "CSS",
    "batch_html",
    "cell_html",
    "chart_png",
    "error_text",
    "fmt_cost",
    "grid_table",
    "page_html",
    "streaming_html",
    "summary_html",
    "verdict_html",
]

# Output shown in full up to this many characters; longer text folds into <details>.
PREVIEW_CHARS = 280
# Hard cap on the characters of one output sent to the front end (keeps messages small).
MAX_CHARS = 4000

# Scoped to .pk-compare, using JupyterLab's theme variables (with fallbacks for nbconvert/GitHub).
CSS = """
<style>
.pk-compare { --pk-border: var(--jp-border-color2, #e0e0e0); --pk-muted: var(--jp-ui-font-color2, #666);
  --pk-bg: var(--jp-layout-color1, #fff); --pk-bg2: var(--jp-layout-color2, #f5f5f5);
  --pk-good: var(--jp-success-color1, #388e3c); --pk-bad: var(--jp-error-color1, #d32f2f);
  font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: 13px; }
.pk-compare .pk-title { font-weight: 600; font-size: 15px; margin: 2px 0 4px; }
.pk-compare .pk-muted { color: var(--pk-muted); }
.pk-compare .pk-status-error { color: var(--pk-bad); }
.pk-compare .pk-status-ok { color: var(--pk-good); }
.pk-compare .pk-cols code { background: var(--pk-bg2); padding: 0 3px; border-radius: 3px; margin-right: 4px; }
.pk-compare .pk-out { white-space: pre-wrap; word-break: break-word; line-height: 1.35;
  font-family: var(--jp-code-font-family, monospace); font-size: 12px; max-height: 14em; overflow: auto; }
.pk-compare .pk-meta { color: var(--pk-muted); font-size: 11px; margin-top: 3px; }
.pk-compare .pk-score { display: inline-block; padding: 0 5px; border-radius: 8px; margin: 2px 3px 0 0;
  font-size: 11px; background: var(--pk-bg2); }
.pk-compare .pk-score.pk-hi { background: #c8e6c9; color: #1b5e20; }
.pk-compare .pk-score.pk-lo { background: #ffcdd2; color: #b71c1c; }
.pk-compare .pk-err { color: var(--pk-bad); font-size: 12px; white-space: pre-wrap; word-break: break-word; }
.pk-compare .pk-err b { text-transform: uppercase; font-size: 11px; }
.pk-compare .pk-pending { color: var(--pk-muted); font-style: italic; }
.pk-compare .pk-sample { color: var(--pk-muted); font-size: 11px; }
.pk-compare .pk-case { font-size: 12px; word-break: break-word; }
.pk-compare .pk-case b { font-family: var(--jp-code-font-family, monospace); }
.pk-compare .pk-head { font-weight: 600; font-family: var(--jp-code-font-family, monospace); font-size: 12px;
  word-break: break-all; }
.pk-compare .pk-gridcell { border: 1px solid var(--pk-border); border-radius: 4px; padding: 4px 6px;
  background: var(--pk-bg); }
.pk-compare .pk-verdict { white-space: pre-wrap; line-height: 1.4; }
.pk-compare table.pk-table { border-collapse: collapse; font-size: 12px; margin: 4px 8px 4px 0; line-height: 1.35; }
.pk-compare table.pk-summary td { white-space: nowrap; }
.pk-compare table.pk-table th, .pk-compare table.pk-table td { border: 1px solid var(--pk-border);
  padding: 3px 6px; text-align: left; vertical-align: top; }
.pk-compare table.pk-table th { background: var(--pk-bg2); }
.pk-compare table.pk-grid td { min-width: 14em; max-width: 32em; }
.pk-compare .pk-grid .widget-html-content { line-height: 1.35; }
.pk-compare .pk-rating .widget-toggle-button { padding: 0 2px; height: 24px; }
.pk-compare .pk-rating .widget-toggle-button.mod-active:nth-of-type(1) { background: #a5d6a7; color: #1b5e20; }
.pk-compare .pk-rating .widget-toggle-button.mod-active:nth-of-type(2) { background: #ef9a9a; color: #b71c1c; }
.pk-compare .pk-rated { font-size: 11px; padding: 0 5px; border-radius: 8px; background: var(--pk-bg2); }
</style>
"""


def _num(value: Any) -> float | None:
    """A finite float, or None for missing values (None, NaN, pandas NA)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def fmt_cost(value: Any) -> str:
    """Dollars with enough digits to tell small costs apart ("$0.00042")."""
    x = _num(value)
    if x is None:
        return "–"
    if x == 0:
        return "$0"
    if x >= 1:
        return f"${x:.2f}"
    # Small costs in plain decimals ($0.0000029, not $2.9e-06): easier to compare by eye.
    return "$" + f"{x:.{max(2, 2 - math.floor(math.log10(x)))}f}".rstrip("0")


def _fmt_int(value: Any) -> str:
    x = _num(value)
    return "–" if x is None else str(int(x))


def error_text(row: Mapping[str, Any]) -> str:
    """The error message of a result row ("" when it has none)."""
    for key in ("error_message", "error_msg", "message"):
        text = row.get(key)
        if isinstance(text, str) and text:
            return text
    return ""


def _has_error(row: Mapping[str, Any]) -> bool:
    error = row.get("error")
    return isinstance(error, str) and bool(error)


def _output_html(text: str) -> str:
    text = text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + " …"
    if len(text) <= PREVIEW_CHARS:
        return f'<div class="pk-out">{html.escape(text)}</div>'
    # Cut at a word boundary so the preview does not end mid-word.
    cut = text.rfind(" ", 0, PREVIEW_CHARS)
    cut = cut if cut > PREVIEW_CHARS // 2 else PREVIEW_CHARS
    return (f'<div class="pk-out">{html.escape(text[:cut])}<details><summary class="pk-muted">'
            f"{len(text) - cut} more characters</summary>{html.escape(text[cut:])}</details></div>")


def _scores_html(row: Mapping[str, Any], score_names: Sequence[str] | None) -> str:
    if score_names is None:
        score_names = [str(k)[6:] for k in row if str(k).startswith("score_")]
    parts = []
    for name in score_names:
        x = _num(row.get(f"score_{name}"))
        if x is None:
            continue
        # Colour only scores on a 0..1 scale, where high is good; other scales stay neutral.
        tone = "" if not 0 <= x <= 1 else " pk-hi" if x >= 0.75 else " pk-lo" if x <= 0.25 else ""
        parts.append(f'<span class="pk-score{tone}">{html.escape(name)} {x:.3g}</span>')
    return "".join(parts)


def cell_html(row: Mapping[str, Any], score_names: Sequence[str] | None = None, *, samples: int = 1) -> str:
    """One result (case x model x sample) as HTML: the output or the error, then the figures."""
    head = f'<div class="pk-sample">sample {int(row.get("sample") or 0)}</div>' if samples > 1 else ""
    turn = _num(row.get("turn"))
    if turn is not None:  # a conversation's turn: what the user said, then the answer
        said = row.get("turns")
        asked = said[int(turn)] if isinstance(said, list) and 0 <= turn < len(said) else ""
        head += (f'<div class="pk-sample">turn {int(turn)}' + (f": {html.escape(str(asked)[:200])}" if asked else "")
                 + "</div>")
    if _has_error(row):
        message = error_text(row)
        return (f'{head}<div class="pk-err"><b>{html.escape(str(row["error"]))}</b> '
                f"{html.escape(message[:500])}</div>")
    meta = []
    latency = _num(row.get("latency_s"))
    if latency is not None:
        meta.append(f"{latency:.2f} s")
    ttft = _num(row.get("ttft_s"))
    if ttft is not None:
        meta.append(f"first token {ttft:.2f} s")
    meta.append(f'{_fmt_int(row.get("input_tokens"))}→{_fmt_int(row.get("output_tokens"))} tok')
    meta.append(fmt_cost(row.get("cost_usd")))
    if row.get("cached") is True:
        meta.append("cached")
    output = row.get("output")
    text = output if isinstance(output, str) else "" if output is None else str(output)
    return (f'{head}{_output_html(text)}<div class="pk-meta">{" · ".join(meta)}</div>'
            f"{_scores_html(row, score_names)}")


def streaming_html(text: str, *, samples: int = 1, sample: int = 0, turn: int | None = None) -> str:
    """An answer still streaming in: the text so far (escaped, capped) and a mark that more is coming."""
    head = f'<div class="pk-sample">sample {sample}</div>' if samples > 1 else ""
    if turn is not None:
        head += f'<div class="pk-sample">turn {turn}</div>'
    shown = text if len(text) <= MAX_CHARS else "… " + text[-MAX_CHARS:]  # the newest text, as it grows
    return f'{head}<div class="pk-out pk-streaming">{html.escape(shown)}<span class="pk-muted"> ▍</span></div>'


def case_html(case: Any, columns: Mapping[str, Any], width: int = 60, images: Sequence[str] = ()) -> str:
    """The row label of a case: its id, a thumbnail of each image column, a short look at its other columns."""
    parts = [f"<b>{html.escape(str(case))}</b>"]
    parts += [thumbnail_html(columns[name]) for name in images if columns.get(name) not in (None, "")]
    # The id column already heads the label; showing it again wastes a line per case.
    shown = [(k, v) for k, v in columns.items()
             if not (k in ("id", "case") and str(v) == str(case)) and k not in images]
    for name, value in shown[:3]:
        text = str(value)
        text = text if len(text) <= width else text[: width - 1] + "…"
        parts.append(f'<span class="pk-muted">{html.escape(str(name))}:</span> {html.escape(text)}')
    return '<div class="pk-case">' + "<br>".join(parts) + "</div>"


def _rating_mark(value: Any) -> str:
    x = _num(value)
    if x is None:
        return ""
    label = "good" if x == 1 else "bad" if x == 0 else f"{x:g}"
    return f' <span class="pk-rated">rated {label}</span>'


def grid_table(results: pd.DataFrame, models: Sequence[str], cases: Sequence[tuple[Any, Mapping[str, Any]]],
               score_names: Sequence[str] | None = None, samples: int = 1, max_cases: int = 100,
               key: str = "model", images: Sequence[str] = ()) -> str:
    """The side-by-side grid as a plain HTML table (one row per case, one column per model or candidate).

    Only the first ``max_cases`` cases are drawn, so a big run does not bloat the saved notebook.
    """
    by_cell: dict[tuple[str, str], list[str]] = {}
    for record in results.to_dict("records"):
        row = {str(k): v for k, v in record.items()}
        mark = _rating_mark(row.get("rating"))
        by_cell.setdefault((str(row["case"]), str(row[key])), []).append(
            cell_html(row, score_names, samples=samples) + mark)
    head = "".join(f"<th>{html.escape(m)}</th>" for m in models)
    body = []
    for case, columns in cases[:max_cases]:
        tds = "".join(
            "<td>" + ("".join(by_cell.get((str(case), m), [])) or '<span class="pk-pending">not run</span>')
            + "</td>" for m in models)
        body.append(f"<tr><th>{case_html(case, columns, images=images)}</th>{tds}</tr>")
    more = len(cases) - max_cases
    note = (f'<div class="pk-muted">{more} more cases are not drawn here: see comparison.results</div>'
            if more > 0 else "")
    return (f'<table class="pk-table pk-grid"><thead><tr><th>case</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>{note}")


def summary_html(summary: pd.DataFrame) -> str:
    """The per-model summary, compact: scores as "mean (low-high)", costs in dollars, quiet columns dropped."""
    frame = summary.copy()
    shown: dict[str, list[str]] = {}
    for col in frame.columns:
        name = str(col)
        if name.endswith(("_lo", "_hi")) or name in ("cases", "error_rate"):
            continue
        if name == "scorer_errors" and not frame[col].fillna(0).astype(bool).any():
            continue
        cells = []
        for i in range(len(frame)):
            value = frame[col].iloc[i]
            if name.startswith("cost") or name.endswith("cost_usd"):
                cells.append(fmt_cost(value))
            elif f"{name}_lo" in frame.columns and _num(value) is not None:
                lo, hi = _num(frame[f"{name}_lo"].iloc[i]), _num(frame[f"{name}_hi"].iloc[i])
                band = f" ({lo:.2f}–{hi:.2f})" if lo is not None and hi is not None else ""
                cells.append(f"{float(value):.2f}{band}")
            elif name.startswith(("latency", "ttft")) and _num(value) is not None:
                cells.append(f"{float(value):.2f} s")
            elif isinstance(value, float):
                cells.append("–" if _num(value) is None else f"{value:.3g}")
            else:
                cells.append(str(value))
        shown[name.removeprefix("score_").replace("_", " ")] = cells
    head = "".join(f"<th>{html.escape(k)}</th>" for k in shown)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(v[i])}</td>" for v in shown.values()) + "</tr>"
                   for i in range(len(frame)))
    return f'<table class="pk-table pk-summary"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def batch_html(p: BatchProgress, calls: int) -> str:
    """The line about the provider batches a run waits for (of its ``calls``): submitted, done, failed, statuses."""
    failed = f'<span class="pk-status-error">{p.failed} failed</span>' if p.failed else "0 failed"
    batches = f"{p.batches} batch{'es' if p.batches != 1 else ''}"
    return (f"&nbsp;{p.submitted} of {calls} calls submitted in {batches} · {p.done} done · {failed} · "
            f"{html.escape(', '.join(p.statuses))} · {p.elapsed_s:.0f} s")


def verdict_html(text: str) -> str:
    """The plain-language verdict, escaped, keeping its line breaks."""
    return f'<div class="pk-verdict">{html.escape(text.strip())}</div>'


def chart_png(comparison: Comparison, score: str | None = None) -> bytes:
    """The quality-against-cost chart as PNG bytes (the figure is closed afterwards)."""
    fig = comparison.plot(score=score)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    finally:
        # Only pyplot-made figures need closing; closing stops the inline backend showing it twice.
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            pyplot.close(fig)
    return buf.getvalue()


def png_img(png: bytes, alt: str = "chart") -> str:
    """An <img> tag with the PNG inlined as base64."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}" style="max-width:100%">'


def _prompt_html(prompt: str | Mapping[str, Any]) -> str:
    if not isinstance(prompt, Mapping):
        return f'<pre class="pk-out">{html.escape(prompt if isinstance(prompt, str) else repr(prompt))}</pre>'
    return "".join(f'<div class="pk-muted">prompt {html.escape(str(name))}:</div>'
                   f'<pre class="pk-out">{html.escape(value if isinstance(value, str) else repr(value))}</pre>'
                   for name, value in prompt.items())


def page_html(*, models: Sequence[str], prompt: str | Mapping[str, Any],
              cases: Sequence[tuple[Any, Mapping[str, Any]]],
              samples: int, status: str, comparison: Comparison | None, summary: str, chart_png: bytes,
              verdict: str, chosen: str | None, choice: str | None = None, images: Sequence[str] = ()) -> str:
    """The whole widget as static HTML: settings, grid, summary, chart, verdict and choice."""
    parts = [CSS, '<div class="pk-compare"><div class="pk-title">protokit · compare</div>',
             f'<div class="pk-muted">models: {html.escape(", ".join(models) or "none")} · '
             f"{len(cases)} cases · samples {samples}</div>",
             _prompt_html(prompt)]
    if status:
        parts.append(f'<div class="pk-muted">{html.escape(status)}</div>')
    if comparison is None:
        parts.append('<div class="pk-pending">Not run yet. Pass run=True to run it when the notebook '
                     "is executed (papermill, nbconvert), so the output keeps the results.</div>")
    else:
        parts.append(grid_table(comparison.results, comparison.candidates, cases, samples=samples,
                                key=comparison.key, images=images))
        parts.append(summary)
        if chart_png:
            parts.append(png_img(chart_png, "quality against cost"))
        parts.append(verdict)
    if chosen:
        line = choice or f"model = {json.dumps(chosen)}"  # with prompt variants the line sets the prompt too
        parts.append(f"<div>chosen: <code>{html.escape(line)}</code></div>")
    parts.append("</div>")
    return "".join(parts)
