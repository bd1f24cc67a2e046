"""The Compare widget with its batch toggle: the provider batches' progress (submitted, done, failed, the
provider's status) shown on a line of its own while they are polled, a few times a second at most."""

from __future__ import annotations

import time

import pandas as pd
import pytest

import protokit as pk
from protokit.comparisons import BatchProgress
from protokit.widgets import Compare
from protokit.widgets.compare_widget import BATCH_INTERVAL_S

KEY = "sandbox-key"
TICKETS = pd.DataFrame({"ticket": [f"ticket number {i}" for i in range(6)]})


@pytest.fixture
def sb(sandbox):
    sandbox.set_batch_delay(1.2)  # long enough for a few looks while the batch runs
    yield sandbox
    sandbox.set_batch_delay(0.0)


def widget(sb, **kw) -> Compare:
    ms = [pk.model("openai:echo", base_url=sb.openai_base_url, api_key=KEY),
          pk.model("anthropic:echo", base_url=sb.anthropic_base_url, api_key=KEY)]
    return Compare(models=ms, prompt="{ticket}", cases=TICKETS, **kw)


def test_the_batch_toggle_sits_with_the_run_options_and_sends_batches(sb, capsys):
    w = widget(sb)
    options = next(box for box in w.children[4].children if w._samples in box.children)
    assert w._batch in options.children and w._batch.value is False and "pk-batch-toggle" in w._batch._dom_classes
    w._batch.value = True  # what a click on the toggle does
    assert "12 calls in provider batches" in str(w.estimate())

    shown: list[tuple[BatchProgress, str]] = []
    on_batch = w._on_batch

    def record(progress: BatchProgress) -> None:
        on_batch(progress)
        shown.append((progress, w._batch_html.value))

    w._on_batch = record
    started = time.monotonic()
    cmp = w.run_sync()
    elapsed = time.monotonic() - started
    assert cmp is not None and w.state == "done" and cmp.results["error"].isna().all()
    assert sb.stats()["batches"] == {"openai": 1, "anthropic": 1}
    assert "batch [" not in capsys.readouterr().err  # the widget shows the progress, not the text bar

    # Looked at while running: some requests done, each batch's status in its provider's words.
    running = [html for p, html in shown if p.running]
    assert running and any("openai in_progress" in html and "anthropic in_progress" in html for html in running)
    last = w.batch_progress
    assert last is not None and last == shown[-1][0]
    assert (last.batches, last.running, last.submitted, last.done, last.failed) == (2, 0, 12, 12, 0)
    assert last.statuses == ("openai completed", "anthropic ended")
    html = w._batch_html.value
    assert "12 of 12 calls submitted in 2 batches · 12 done · 0 failed · openai completed, anthropic ended" in html
    assert w._batch_row.layout.display == "flex" and w._batch_bar.value == w._batch_bar.max == 12
    # A few times a second at most (and the last look always).
    assert w._batch_updates <= elapsed / BATCH_INTERVAL_S + 1


def test_failed_requests_show_on_the_batch_line(sb):
    sb.set_faults("500=1")
    w = widget(sb, batch=True)
    w.run_sync()
    last = w.batch_progress
    assert last is not None and last.failed == last.done == 12
    assert "12 failed" in w._batch_html.value and "pk-status-error" in w._batch_html.value
    assert w._batch_bar.bar_style == "danger"


def test_the_batch_line_is_throttled_and_hidden_without_batches(sb):
    w = widget(sb)
    w.run_sync()  # no batch: no batch line
    assert w._batch_row.layout.display == "none" and w.batch_progress is None and w._batch_updates == 0

    def look(done: int, running: int) -> BatchProgress:
        return BatchProgress(batches=1, running=running, submitted=10, done=done, failed=0,
                             statuses=("openai in_progress" if running else "openai completed",), elapsed_s=1.0)

    for done in range(10):  # ten looks in a few milliseconds: one is drawn
        w._on_batch(look(done, 1))
    assert w._batch_updates == 1 and w.batch_progress.done == 0
    w._on_batch(look(10, 0))  # the last look (every batch ended) is always drawn
    assert w._batch_updates == 2 and "10 done" in w._batch_html.value


def test_the_widget_sets_on_batch_itself(sb):
    with pytest.raises(pk.ConfigError, match="on_batch"):
        widget(sb, on_batch=print)


def test_compare_on_batch_replaces_the_text_bar_and_a_broken_one_never_stops_the_run(sb, capsys, caplog):
    seen: list[BatchProgress] = []
    m = pk.model("openai:echo", base_url=sb.openai_base_url, api_key=KEY)
    cmp = pk.compare([m], "{ticket}", TICKETS, batch=True, on_batch=seen.append)
    assert cmp.results["error"].isna().all() and seen and seen[-1].statuses == ("openai completed",)
    assert "batch [" not in capsys.readouterr().err

    def broken(progress: BatchProgress) -> None:
        raise RuntimeError("display gone")

    caplog.set_level("WARNING", logger="protokit")
    again = pk.compare([m], "{ticket} again", TICKETS, batch=True, on_batch=broken)
    assert again.status == "finished" and again.results["error"].isna().all()
    assert any(r.getMessage().startswith("batch progress: on_batch raised RuntimeError: display gone")
               for r in caplog.records)
