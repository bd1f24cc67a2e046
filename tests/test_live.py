"""Live checks against the real providers; skipped unless a key is set (marker ``live``).

Run: ``OPENAI_API_KEY=... ANTHROPIC_API_KEY=... .venv/bin/pytest -m live``.
"""

from __future__ import annotations

import os

import pytest

import protokit as pk

pytestmark = pytest.mark.live


@pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="needs OPENAI_API_KEY")
def test_openai_live_complete_stream_and_cost():
    m = pk.model("openai:gpt-4.1-nano", temperature=0, max_tokens=5)
    r = m.complete("Reply with the single word: pong")
    assert "pong" in r.text.lower()
    assert r.input_tokens and r.output_tokens and r.cost_usd is not None and r.cost_usd > 0
    assert "".join(m.stream("Reply with the single word: ping")).strip()
    assert m.complete("Reply with the single word: pong").cached


@pytest.mark.skipif(not os.environ.get("ANTHROPIC_API_KEY"), reason="needs ANTHROPIC_API_KEY")
def test_anthropic_live_complete_stream_and_cost():
    m = pk.model("anthropic:claude-haiku-4-5", temperature=0, max_tokens=5)
    r = m.complete("Reply with the single word: pong")
    assert "pong" in r.text.lower()
    assert r.input_tokens and r.output_tokens and r.cost_usd is not None and r.cost_usd > 0
    assert "".join(m.stream("Reply with the single word: ping")).strip()
