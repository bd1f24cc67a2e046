"""Images in a messages prompt: sent inline through both SDKs to the sandbox, keyed in the cache by their
hash (never their bytes or path), missing files refused before any call, thumbnails in the widget."""

from __future__ import annotations

import base64
import hashlib
import html.parser
import os
import tempfile
from pathlib import Path

import anthropic
import openai
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import protokit as pk
from protokit.models.images import IMAGE_TOKENS, image_data

KEY = "sandbox-key"
BOTH = pytest.mark.parametrize("provider", ["openai", "anthropic"])
ASK = [{"role": "user", "content": [{"type": "text", "text": "What is in {name}?"},
                                    {"type": "image", "source": "{photo}"}]}]


def model(sb, provider: str, name: str = "echo", **kw):
    url = sb.openai_base_url if provider == "openai" else sb.anthropic_base_url
    return pk.model(f"{provider}:{name}", base_url=url, api_key=KEY, **kw)


def png(path: Path, color: str = "red", size: tuple[int, int] = (24, 16)) -> Path:
    from PIL import Image

    Image.new("RGB", size, color).save(path)
    return path


def seen(path: Path) -> str:
    """What the sandbox's echo says of an image: the first 12 hex of its sha256 and its size."""
    raw = path.read_bytes()
    return f"image sha256:{hashlib.sha256(raw).hexdigest()[:12]} ({len(raw)} bytes)"


def ask(path: Path | str, text: str = "What is this?") -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": text}, {"type": "image", "source": str(path)}]}]


# -- the sandbox reads image parts in both wire formats, as the SDKs send them -------------------------------------


def test_sandbox_reads_openai_image_parts_through_the_sdk(sandbox, tmp_path):
    photo = png(tmp_path / "cat.png")
    data = base64.b64encode(photo.read_bytes()).decode()
    client = openai.OpenAI(base_url=sandbox.openai_base_url, api_key=KEY, max_retries=0)
    content = [{"type": "text", "text": "look"},
               {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
               {"type": "image_url", "image_url": {"url": "https://example.com/dog.jpg"}}]
    r = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": content}])
    assert r.choices[0].message.content == f"look\n{seen(photo)}\nimage url:https://example.com/dog.jpg"
    bad = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,not base64!"}}]
    with pytest.raises(openai.BadRequestError, match="base64"):
        client.chat.completions.create(model="echo", messages=[{"role": "user", "content": bad}])


def test_sandbox_reads_anthropic_image_blocks_through_the_sdk(sandbox, tmp_path):
    photo = png(tmp_path / "cat.png")
    data = base64.b64encode(photo.read_bytes()).decode()
    client = anthropic.Anthropic(base_url=sandbox.anthropic_base_url, api_key=KEY, max_retries=0)
    content = [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
               {"type": "image", "source": {"type": "url", "url": "https://example.com/dog.jpg"}},
               {"type": "text", "text": "what are these?"}]
    r = client.messages.create(model="echo", max_tokens=50, messages=[{"role": "user", "content": content}])
    assert r.content[0].text == f"{seen(photo)}\nimage url:https://example.com/dog.jpg\nwhat are these?"
    tiff = [{"type": "image", "source": {"type": "base64", "media_type": "image/tiff", "data": data}}]
    with pytest.raises(anthropic.BadRequestError, match="media type"):
        client.messages.create(model="echo", max_tokens=50, messages=[{"role": "user", "content": tiff}])


# -- a model call sends the file inline, each provider in its own form -----------------------------------------------


@BOTH
@pytest.mark.parametrize("stream", [False, True])
def test_a_local_image_is_sent_inline_streamed_or_not(sandbox, tmp_path, provider, stream):
    photo = png(tmp_path / "cat.png")
    m = model(sandbox, provider)
    if stream:
        s = m.stream(ask(photo))
        text = "".join(s)
        assert s.response is not None and s.response.ttft_s is not None
    else:
        text = m.complete(ask(photo)).text
    assert text == f"What is this?\n{seen(photo)}"


@BOTH
def test_an_image_url_and_a_data_url_are_sent_as_such(sandbox, tmp_path, provider):
    photo = png(tmp_path / "cat.png")
    data_url = "data:image/png;base64," + base64.b64encode(photo.read_bytes()).decode()
    m = model(sandbox, provider)
    assert m.complete(ask("https://example.com/a.png", "url")).text == "url\nimage url:https://example.com/a.png"
    assert m.complete(ask(data_url, "inline")).text == f"inline\n{seen(photo)}"


def test_the_wire_form_of_each_provider(tmp_path):
    from protokit.models.anthropic_adapter import _wire as anthropic_wire
    from protokit.models.openai_adapter import _wire as openai_wire

    photo = png(tmp_path / "cat.jpg.png")
    data = base64.b64encode(photo.read_bytes()).decode()
    request = pk.model("openai:x", api_key="k").request(ask(photo))
    assert openai_wire(request.messages[0])["content"][1] == {
        "type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}
    assert anthropic_wire(list(request.messages))[0]["content"][1] == {
        "type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
    by_url = pk.model("openai:x", api_key="k").request(ask("https://example.com/a.webp"))
    assert anthropic_wire(list(by_url.messages))[0]["content"][1] == {
        "type": "image", "source": {"type": "url", "url": "https://example.com/a.webp"}}


# -- the cache holds the hash, not the bytes, and a changed file is a new recording ----------------------------------


def test_the_cache_key_holds_the_hash_not_the_bytes_nor_the_path(sandbox, tmp_path):
    photo = png(tmp_path / "big.png", size=(400, 400))
    os.truncate(photo, 0)
    from PIL import Image

    Image.effect_noise((400, 400), 90).convert("RGB").save(photo)  # noise: a PNG that does not compress
    assert photo.stat().st_size > 100_000
    m = model(sandbox, "anthropic")
    assert not m.complete(ask(photo)).cached
    [record] = pk.cache.get_cache().entries()
    part = record["request"]["messages"][0]["content"][1]
    digest = hashlib.sha256(photo.read_bytes()).hexdigest()
    assert part == {"type": "image", "media_type": "image/png", "sha256": digest, "bytes": photo.stat().st_size}
    stored = Path(pk.cache.get_cache().path).read_bytes()
    assert base64.b64encode(photo.read_bytes())[:64] not in stored and str(tmp_path).encode() not in stored
    # The same picture elsewhere replays; the same path with other bytes is a new recording.
    moved = tmp_path / "moved.png"
    moved.write_bytes(photo.read_bytes())
    assert m.complete(ask(moved)).cached
    png(photo, "blue")
    again = m.complete(ask(photo))
    assert not again.cached and again.text == f"What is this?\n{seen(photo)}"
    assert len(pk.cache.get_cache().entries()) == 2


def test_a_file_changed_after_the_request_was_built_is_refused_when_sent(tmp_path):
    photo = png(tmp_path / "cat.png")
    request = pk.model("openai:x", api_key="k").request(ask(photo))
    part = request.messages[0]["content"][1]
    assert image_data(part)[0] == "image/png"
    png(photo, "green")
    with pytest.raises(pk.ConfigError, match="changed after the request was built"):
        image_data(part)


def test_the_budget_and_the_estimate_count_an_image(sandbox, tmp_path):
    photo = png(tmp_path / "cat.png")
    m = model(sandbox, "openai", price={"input": 1.0, "output": 1.0})
    request = m.request(ask(photo))
    assert m.estimate_cost(request, 0) >= IMAGE_TOKENS / 1_000_000
    est = pk.estimate([m], ASK, [{"name": "a cat", "photo": str(photo)}])
    assert est.input_tokens >= IMAGE_TOKENS and sandbox.stats()["requests"] == 0


# -- in a comparison: a template field per case, checked before any call --------------------------------------------


@BOTH
def test_compare_sends_each_cases_image_from_its_column(sandbox, tmp_path, provider):
    cats = [png(tmp_path / f"{c}.png", c) for c in ("red", "green", "blue")]
    cases = pd.DataFrame({"name": ["red", "green", "blue"], "photo": [str(p) for p in cats]})
    cmp = pk.compare([model(sandbox, provider)], ASK, cases,
                     scorers=[pk.scorers.custom(lambda out, case: seen(Path(case["photo"])) in out, name="saw")])
    expected = [f"What is in {n}?\n{seen(p)}" for n, p in zip(cases["name"], cats, strict=True)]
    assert list(cmp.results["output"]) == expected
    assert cmp.summary["score_saw"].tolist() == [1.0]
    # Recorded per image: a second run replays all of them.
    assert pk.compare([model(sandbox, provider)], ASK, cases).results["cached"].all()


def test_a_missing_image_is_one_line_naming_the_case_and_the_path_before_any_call(sandbox, tmp_path):
    ok = png(tmp_path / "ok.png")
    cases = [{"id": "first", "name": "a", "photo": str(ok)}, {"id": "second", "name": "b", "photo": "no/such.png"}]
    with pytest.raises(pk.ConfigError) as info:
        pk.compare([model(sandbox, "openai")], ASK, cases)
    message = str(info.value)
    assert "\n" not in message and "'second'" in message and "no/such.png" in message
    assert sandbox.stats()["requests"] == 0
    with pytest.raises(pk.ConfigError, match=r"'second'.*no/such\.png"):
        pk.estimate([model(sandbox, "openai")], ASK, cases)


@pytest.mark.parametrize("messages,needle", [
    ([{"role": "system", "content": [{"type": "image", "source": "x.png"}]}, {"role": "user", "content": "hi"}],
     "user messages only"),
    ([{"role": "user", "content": [{"type": "audio", "source": "x.wav"}]}], "message 0 part 0"),
    ([{"role": "user", "content": [{"type": "image"}]}], "needs a 'source'"),
    ([{"role": "user", "content": [{"type": "image", "source": "x.png", "detail": "high"}]}], "unknown key 'detail'"),
    ([{"role": "user", "content": []}], "empty list"),
])
def test_bad_parts_are_config_errors(messages, needle):
    with pytest.raises(pk.ConfigError, match=needle):
        pk.model("openai:x", api_key="k").request(messages)


def test_a_file_that_is_no_image_is_refused(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(pk.ConfigError, match="not a PNG, JPEG, GIF or WebP"):
        pk.model("openai:x", api_key="k").request(ask(notes))


def test_a_fallback_rebuilds_image_parts_for_its_members(sandbox, tmp_path):
    photo = png(tmp_path / "cat.png")
    down = pk.model("openai:primary", base_url="http://127.0.0.1:9/v1", api_key="k")
    with pk.call_context(retries=0):
        r = pk.fallback(down, model(sandbox, "anthropic")).complete(ask(photo))
    assert r.text == f"What is this?\n{seen(photo)}" and r.served_by == "anthropic:echo"


# -- the widget shows a thumbnail of each case's image, as safe HTML -------------------------------------------------


def test_the_widget_shows_a_thumbnail_of_each_cases_image(sandbox, tmp_path):
    from protokit.widgets import Compare

    cats = [png(tmp_path / f"{c}.png", c, (800, 600)) for c in ("red", "blue")]
    cases = pd.DataFrame({"name": ["red", "blue"], "photo": [str(p) for p in cats]})
    w = Compare([model(sandbox, "openai")], ASK, cases, run=True)
    assert w.state == "done", w.status
    label = w._grid.box.children[2].value  # the first case's row label
    assert '<img class="pk-thumb"' in label and "data:image/png;base64," in label
    src = label.split('src="', 1)[1].split('"', 1)[0]
    import io

    from PIL import Image

    thumb = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
    assert max(thumb.size) <= 192  # scaled down: the notebook does not carry the photo
    assert str(cats[0]) not in label.replace(f'alt="{cats[0]}"', "")  # the path only as the alt text
    assert w.to_html().count('class="pk-thumb"') == 2


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _check_safe(markup: str, shown: str) -> None:
    parser = _Tags()
    parser.feed(markup)
    parser.close()
    for tag, attrs in parser.tags:
        assert tag in {"div", "b", "br", "span", "img"}, (tag, markup)
        allowed = {"class", "alt", "src", "loading", "style"} if tag == "img" else {"class"}
        assert set(attrs) <= allowed, (attrs, markup)
        if tag == "img":
            assert attrs["src"].startswith(("data:image/png;base64,", "https://", "http://")), markup
            assert attrs["style"].startswith("max-width:")
    assert shown[:200] in "".join(parser.text) + "".join(
        str(a.get("alt")) for t, a in parser.tags if t == "img"), markup


_NAME = st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), min_size=1,
                max_size=40).filter(lambda s: s not in (".", ".."))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=_NAME, case=st.text(max_size=30), real=st.booleans())
def test_a_hostile_image_path_never_injects_html(name, case, real):
    from protokit.widgets.static import case_html

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, name)
        if real:
            try:
                png(Path(path))
            except (OSError, ValueError):  # a name the file system or Pillow refuses (too long, odd suffix)
                with open(path, "wb") as fh:
                    fh.write(b"\x89PNG\r\n\x1a\n not really")
        markup = case_html(case, {"photo": path, "note": name}, images=["photo"])
        _check_safe(markup, path)
        assert ("data:image/png;base64," in markup) <= real


@settings(max_examples=40, deadline=None)
@given(tail=st.text(max_size=40))
def test_a_hostile_image_url_never_injects_html(tail):
    from protokit.widgets.static import case_html

    source = "https://example.com/" + tail
    markup = case_html("c", {"photo": source}, images=["photo"])
    _check_safe(markup, source)
