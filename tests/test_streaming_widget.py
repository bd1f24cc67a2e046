"""Answers stream into the widget's cells, each cell redrawn at most 10 times a second (proved on a simulated
clock), and time to first token (ttft_s) reaches results, the summary and the chart's x axis."""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field

import pandas as pd
import pytest

import protokit as pk
from protokit.widgets import Compare
from protokit.widgets import running as running_mod
from protokit.widgets.streaming import STREAM_INTERVAL_S, Throttle

KEY = "sandbox-key"
LONG = pd.DataFrame({"ticket": [" ".join(f"word{i}" for i in range(60)), "short one", "two words here"]})


def model(sb, provider: str = "openai", name: str = "echo", **kw):
    url = sb.openai_base_url if provider == "openai" else sb.anthropic_base_url
    return pk.model(f"{provider}:{name}", base_url=url, api_key=KEY, **kw)


@dataclass
class _Timer:
    due: float
    fn: object
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class FakeTime:
    """A clock and a timer queue driven by hand: no sleeping, no flaky timing."""

    now: float = 0.0
    timers: list[_Timer] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def call_later(self, delay: float, fn) -> _Timer:
        timer = _Timer(round(self.now + delay, 9), fn)  # times in whole nanoseconds: no float drift
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        end = round(self.now + seconds, 9)
        while True:
            due = sorted((t for t in self.timers if not t.cancelled and t.due <= end), key=lambda t: t.due)
            if not due:
                break
            timer = due[0]
            self.timers.remove(timer)
            self.now = timer.due
            timer.fn()
        self.now = end


def throttle(fake: FakeTime, draws: list[tuple[float, object, str]]) -> Throttle:
    return Throttle(lambda key, text: draws.append((fake.now, key, text)), clock=fake.clock,
                    call_later=fake.call_later)


# -- the throttle, on a simulated clock ------------------------------------------------------------------------------


def test_many_pieces_make_at_most_ten_draws_a_second_per_cell():
    fake, draws = FakeTime(), []
    t = throttle(fake, draws)
    cells = ["a", "b", "c"]
    pieces = 3000
    for i in range(pieces):  # 3000 pieces over 3 simulated seconds, a piece per millisecond, cells in turn
        t.add(cells[i % 3], f"{i} ")
        fake.advance(0.001)
    fake.advance(1.0)  # the trailing draws come due
    assert STREAM_INTERVAL_S == 0.1
    for cell in cells:
        times = [when for when, key, _ in draws if key == cell]
        for second in range(4):
            assert sum(second <= w < second + 1 for w in times) <= 10, (cell, second)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= STREAM_INTERVAL_S - 1e-9
        assert len(times) >= 28  # it keeps up: a draw about every interval while pieces arrive
        last = [text for _, key, text in draws if key == cell][-1]
        assert last == t.text(cell) == "".join(f"{i} " for i in range(pieces) if cells[i % 3] == cell)
    assert t.updates == len(draws) < pieces / 10


def test_a_burst_is_drawn_at_once_and_its_rest_at_the_end_of_the_interval():
    fake, draws = FakeTime(), []
    t = throttle(fake, draws)
    for i in range(50):
        t.add("cell", f"w{i} ")
    assert [text for _, _, text in draws] == ["w0 "]  # the first piece shows at once
    fake.advance(STREAM_INTERVAL_S / 2)
    assert len(draws) == 1
    fake.advance(STREAM_INTERVAL_S / 2)
    assert len(draws) == 2 and draws[-1] == (STREAM_INTERVAL_S, "cell", "".join(f"w{i} " for i in range(50)))
    fake.advance(5)
    assert len(draws) == 2  # nothing new, nothing drawn
    t.add("cell", "late")
    assert len(draws) == 3 and draws[-1][2].endswith("late")  # after a pause: drawn at once


def test_a_finished_cell_is_not_drawn_again():
    fake, draws = FakeTime(), []
    t = throttle(fake, draws)
    t.add("cell", "a")
    t.add("cell", "b")
    assert t.done("cell") == "ab"
    fake.advance(1)
    assert len(draws) == 1 and t.text("cell") == ""
    assert all(timer.cancelled for timer in fake.timers)


# -- the widget streams into its cells through the throttle -----------------------------------------------------------


def test_the_widget_streams_answers_into_cells_through_the_throttle(sandbox, monkeypatch):
    fake = FakeTime()  # frozen: a cell is drawn once when its answer starts, then only by its result
    made: list[Throttle] = []

    def frozen(show, **kw):
        made.append(Throttle(show, clock=fake.clock, call_later=fake.call_later))
        return made[-1]

    monkeypatch.setattr(running_mod, "Throttle", frozen)
    w = Compare([model(sandbox), model(sandbox, "anthropic")], "{ticket}", LONG)
    pieces: list[tuple[tuple, str]] = []
    shown: list[tuple[str, str, str]] = []
    on_chunk = w._on_chunk

    def count(cell, text):
        pieces.append((tuple(sorted(cell.items())), text))
        on_chunk(cell, text)

    w._on_chunk = count
    grid_stream = running_mod.ResultGrid.stream

    def spy(grid, case, column, sample, turn, text):
        shown.append((case, column, text))
        grid_stream(grid, case, column, sample, turn, text)

    monkeypatch.setattr(running_mod.ResultGrid, "stream", spy)
    cmp = w.run_sync()
    assert w.state == "done", w.status
    assert len(pieces) > 60 * 2  # the long answer came word by word from both providers
    assert made[0].updates == len(shown) == 6  # one draw per cell: the clock never moved
    outputs = {(str(r.case), r.model): r.output for r in cmp.results.itertuples()}
    for case, column, text in shown:
        assert outputs[(case, column)].startswith(text) and text  # the first words of that very answer
    assert w._grid.streaming == {} and w._grid.filled == 6  # every answer replaced by its result
    long_cell = w._grid.outputs[("0", "openai:echo", 0)].value
    assert "word59" in long_cell and "pk-streaming" not in long_cell and "first token" in long_cell
    assert cmp.results["ttft_s"].notna().all()
    assert "ttft p50" in w._summary.value


def test_a_replayed_run_streams_nothing_and_still_fills_the_grid(sandbox):
    Compare([model(sandbox)], "{ticket}", LONG, run=True)
    w = Compare([model(sandbox)], "{ticket}", LONG)
    w.run_sync()
    assert w.comparison.results["cached"].all() and w._stream is not None and w._stream.updates == 0
    assert w._grid.filled == 3


def test_the_widget_refuses_an_on_chunk_of_its_own(sandbox):
    with pytest.raises(pk.ConfigError, match="on_chunk"):
        Compare([model(sandbox)], "{ticket}", LONG, on_chunk=lambda cell, text: None)


# -- time to first token: results, summary, chart --------------------------------------------------------------------


def test_on_chunk_gets_every_piece_with_its_cell(sandbox):
    got: dict[tuple, list[str]] = {}
    cmp = pk.compare([model(sandbox), model(sandbox, "anthropic")], {"plain": "{ticket}", "asked": "Q: {ticket}"},
                     LONG, on_chunk=lambda cell, text: got.setdefault(tuple(cell.items()), []).append(text))
    for r in cmp.results.itertuples():
        cell = (("case", r.case), ("model", r.model), ("prompt", r.prompt), ("candidate", r.candidate),
                ("sample", 0))
        assert "".join(got[cell]) == r.output
    assert len(got) == len(cmp.results) == 12


def test_a_failing_on_chunk_warns_once_and_the_run_goes_on(sandbox):
    def broken(cell, text):
        raise ValueError("display gone")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cmp = pk.compare([model(sandbox)], "{ticket}", LONG, on_chunk=broken)
    assert cmp.results["error"].isna().all() and cmp.results["output"].iloc[1] == "short one"
    assert [str(w.message) for w in caught if "on_chunk" in str(w.message)] == [
        "on_chunk raised ValueError: display gone; the run goes on"]


def test_ttft_in_results_summary_and_as_a_chart_axis(sandbox):
    pytest.importorskip("matplotlib")
    models = [model(sandbox, price={"input": 1, "output": 2}), model(sandbox, "anthropic", price={"input": 3,
                                                                                                  "output": 4})]
    cmp = pk.compare(models, "{ticket}", LONG, scorers=[pk.scorers.contains("ticket")], stream=True)
    r = cmp.results
    assert r["ttft_s"].notna().all() and (r["ttft_s"] <= r["latency_s"]).all()
    s = cmp.summary.set_index("model")
    for m in ("openai:echo", "anthropic:echo"):
        ttft = r.loc[r["model"] == m, "ttft_s"]
        assert s.loc[m, "ttft_p50"] == pytest.approx(ttft.median())
        assert s.loc[m, "ttft_p50"] <= s.loc[m, "ttft_p95"] <= ttft.max()
    fig = cmp.plot("contains", x="ttft")
    assert fig.axes[0].get_xlabel() == "median time to first token (s)"
    assert "time to first token" in fig.axes[0].get_title()
    assert set(cmp.pareto("contains", by="ttft")) <= {"openai:echo", "anthropic:echo"}
    replayed = pk.compare(models, "{ticket}", LONG, scorers=[pk.scorers.contains("ticket")])
    assert replayed.results["cached"].all()
    assert replayed.results["ttft_s"].tolist() == r["ttft_s"].tolist()  # recorded with the answer


def test_without_streaming_there_is_no_ttft_axis(sandbox):
    cmp = pk.compare([model(sandbox)], "{ticket}", LONG, scorers=[pk.scorers.contains("ticket")])
    assert cmp.results["ttft_s"].isna().all() and "ttft_p50" not in cmp.summary
    with pytest.raises(pk.ConfigError, match="stream=True"):
        cmp.plot("contains", x="ttft")
    with pytest.raises(pk.ConfigError, match="'cost', 'latency' or 'ttft'"):
        cmp.plot("contains", x="speed")
