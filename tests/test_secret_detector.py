"""protokit.secrets, the one secret detector: a corpus of secrets and look-alikes, properties, and `run -p`.

Key-shaped values are built at run time from pieces (here and in tests/hostile/secrets_corpus.py),
so the repository holds no complete key literal; all of them are fake.
"""

from __future__ import annotations

import importlib.util
import re
import string
from pathlib import Path
from typing import Any

import nbformat
import pytest
from _cli import cli
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from protokit.errors import ConfigError
from protokit.notebook import run_notebook
from protokit.notebook.execute import refuse_secret_parameters
from protokit.scorers import find_pii
from protokit.secrets import (
    REDACTED,
    SecretHit,
    find_secrets,
    is_credential_name,
    looks_like_key,
    looks_like_secret,
    mask,
    redact,
    scrub,
)

_CORPUS = Path(__file__).parent / "hostile" / "secrets_corpus.py"
_spec = importlib.util.spec_from_file_location("secrets_corpus", _CORPUS)
assert _spec is not None and _spec.loader is not None
corpus: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)

GITHUB_TOKEN = "ghp" + "_" + "Rk7Lm2Qx9Wv4Tz1Np6Hs3Jd8Fb5Gc0Ya2Ue"
PROJECT_KEY = "sk-" + "proj-" + "A1b2" * 10


# -- the corpus ----------------------------------------------------------------------------
def test_corpus_is_large() -> None:
    assert len(corpus.SECRETS) >= 30 and len(corpus.LOOK_ALIKES) >= 30
    assert len({note for note, *_ in corpus.SECRETS + corpus.LOOK_ALIKES}) == \
        len(corpus.SECRETS) + len(corpus.LOOK_ALIKES)


@pytest.mark.parametrize(("note", "text", "secret"), corpus.SECRETS, ids=[s[0] for s in corpus.SECRETS])
def test_every_secret_is_caught_and_redacted(note: str, text: str, secret: str) -> None:
    hits = find_secrets(text)
    assert hits, note
    # The hit covers the secret itself (not only something near it), and redact removes it.
    where = text.index(secret)
    assert any(h.start <= where < h.end for h in hits), (note, hits)
    redacted = redact(text)
    assert secret not in redacted, redacted
    assert redact(redacted) == redacted
    assert looks_like_secret(text)


@pytest.mark.parametrize(("note", "text"), corpus.LOOK_ALIKES, ids=[s[0] for s in corpus.LOOK_ALIKES])
def test_no_look_alike_is_flagged(note: str, text: str) -> None:
    assert find_secrets(text) == [], note
    assert redact(text) == text
    assert not looks_like_secret(text)
    assert not looks_like_key(text)


@pytest.mark.parametrize(("note", "text", "secret"), corpus.SECRETS, ids=[s[0] for s in corpus.SECRETS])
def test_the_answer_check_sees_every_key_shape(note: str, text: str, secret: str) -> None:
    # looks_like_key runs on every model answer: the shapes only, never an assignment the full scan needs.
    kinds = {h.kind for h in find_secrets(text)}
    if any(not k.startswith("a value assigned") for k in kinds):
        assert looks_like_key(text), note
    else:
        assert not looks_like_key(text), note


# -- hits, masks, redaction ------------------------------------------------------------------
def test_hits_have_kind_line_span_and_mask() -> None:
    text = f'# setup\nclient = OpenAI(api_key="{PROJECT_KEY}")\npassword = "hunter2hunter2"\n'
    first, second = find_secrets(text)
    assert first == SecretHit("an OpenAI project key", "sk-p…", 2, text.index(PROJECT_KEY),
                              text.index(PROJECT_KEY) + len(PROJECT_KEY))
    assert second.kind == "a value assigned to 'password'" and second.line == 3 and second.masked == "hunt…"
    assert text[second.start:second.end] == "hunter2hunter2"
    assert mask(PROJECT_KEY) == "sk-p…"
    # Only the value is replaced: the name, the quotes and the rest of the line stay readable.
    assert redact(text) == '# setup\nclient = OpenAI(api_key="sk-p…")\npassword = "hunt…"\n'


def test_the_url_slug_that_used_to_be_eaten() -> None:
    url = "https://example.com/blog/task-management-best-practices"
    assert find_secrets(url) == [] and redact(url) == url
    assert redact(f"read {url} then use {PROJECT_KEY}") == f"read {url} then use sk-p…"


def test_pem_keeps_its_markers_and_loses_its_body() -> None:
    redacted = redact(corpus.PEM)
    assert redacted.startswith("-----BEGIN RSA PRIVATE KEY-----\n") and redacted.endswith(
        "\n-----END RSA PRIVATE KEY-----")
    assert corpus.PEM_BODY[:20] not in redacted and "MIIE…" in redacted
    # Without its END line, the key lines after BEGIN still go.
    cut = corpus.PEM.rsplit("\n", 1)[0]
    assert corpus.PEM_BODY.splitlines()[1] not in redact(cut)


def test_aws_secret_needs_its_key_id_or_its_name() -> None:
    assert find_secrets(f"blob {corpus.AWS_SECRET} here") == []  # any 40 base64 characters
    assert [h.kind for h in find_secrets(f"{corpus.AWS_KEY_ID} {corpus.AWS_SECRET}")] == [
        "an AWS access key id", "an AWS secret access key"]


@pytest.mark.parametrize("name", [
    "token", "api_key", "apiKey", "OPENAI_API_KEY", "X-Api-Key", "password", "db_password", "dbPassword", "passwd",
    "pwd", "secret", "client_secret", "clientSecret", "aws_secret_access_key", "access_token", "refresh_token",
    "github_token", "githubToken", "private_key", "secret_key", "Authorization", "proxy-authorization", "auth",
    "credentials", "cookie", "self.api_key", "config.password", "smtp_pass", "MISTRAL_API_KEY", "bearer",
])
def test_credential_names(name: str) -> None:
    assert is_credential_name(name)


@pytest.mark.parametrize("name", [
    "tokenizer", "max_tokens", "tokens", "token_count", "prompt_tokens", "eos_token", "pad_token_id", "digest",
    "checksum", "sha256", "hash", "password_hint", "password_hint_shown", "secret_name", "api_key_env",
    "access_key_id", "key", "cache_key", "model_key", "sort_key", "public_key", "auth_type", "token_url",
    "author", "passport", "pass_rate", "bypass", "monkey", "keyword", "user", "commit", "token_budget",
])
def test_not_credential_names(name: str) -> None:
    assert not is_credential_name(name)


def test_scrub_drops_credential_keys_at_any_depth_and_masks_strings() -> None:
    headers = {"Authorization": f"Bearer {corpus.BEARER}", "X-Api-Key": PROJECT_KEY, "Accept": "json"}
    request = {"model": "m", "api_key": PROJECT_KEY, "options": {"extra_headers": headers, "temperature": 0},
               "user": PROJECT_KEY, "notes": ("token " + GITHUB_TOKEN, 3), "max_tokens": 10}
    clean = scrub(request)
    assert clean == {"model": "m", "options": {"extra_headers": {"Accept": "json"}, "temperature": 0},
                     "user": "sk-p…", "notes": ["token ghp_…", 3], "max_tokens": 10}
    # A logprobs entry's "token" is a piece of text, kept; a token-shaped one is dropped.
    assert scrub({"token": "hello", "logprob": -0.1}) == {"token": "hello", "logprob": -0.1}
    assert scrub({"token": corpus.HEX40}) == {}
    assert REDACTED == "[redacted]" and redact(REDACTED) == REDACTED


def test_pii_scorer_uses_the_same_detector() -> None:
    assert find_pii(f"here: {GITHUB_TOKEN}", kinds=["secret"]) == [("secret", "ghp_…")]
    assert find_pii("see https://example.com/blog/task-management-best-practices", kinds=["secret"]) == []


# -- properties ------------------------------------------------------------------------------
_B62 = string.ascii_letters + string.digits
_B64URL = _B62 + "-_"
_REPEATS = re.compile(r"(.)\1{5}")  # a generated key never repeats a character 6 times running


def _key(prefix: str, alphabet: str, size: int, *, max_size: int | None = None) -> st.SearchStrategy[str]:
    """prefix + a random body with upper case, lower case and digits, as generated keys have."""
    body = st.text(alphabet, min_size=size, max_size=max_size or size).filter(
        lambda b: any(c.isupper() for c in b) and any(c.islower() for c in b) and any(c.isdigit() for c in b)
        and not _REPEATS.search(b))
    return body.map(lambda b: prefix + b)


def _pem(lines: list[str]) -> str:
    return "-----BEGIN PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END PRIVATE KEY-----"


# (strategy of the text to embed, function giving the secret part of it)
SECRET_KINDS: dict[str, st.SearchStrategy[tuple[str, str]]] = {
    "openai": _key("sk-", _B62, 48).map(lambda k: (k, k)),
    "openai_project": _key("sk-proj-", _B64URL, 40, max_size=120).map(lambda k: (k, k)),
    "anthropic": _key("sk-ant-api03-", _B64URL, 90).map(lambda k: (k, k)),
    "aws_key_id": st.text(string.ascii_uppercase + "234567", min_size=16, max_size=16).filter(
        lambda b: not _REPEATS.search(b) and "EXAMPLE" not in b).map(lambda b: ("AKIA" + b,) * 2),
    "github": _key("ghp_", _B62, 36).map(lambda k: (k, k)),
    "github_oauth": _key("gho_", _B62, 36).map(lambda k: (k, k)),
    "github_pat": _key("github_pat_", _B62 + "_", 82).map(lambda k: (k, k)),
    "slack": _key("", _B62, 24).map(lambda b: ("xoxb-2048613579-4096824680135-" + b,) * 2),
    "google": _key("AIza", _B64URL, 35).map(lambda k: (k, k)),
    "bearer": _key("", _B64URL + ".~+/", 20, max_size=60).filter(lambda b: not b.endswith(".")).map(
        lambda t: ("Authorization: Bearer " + t, t)),
    "jwt": st.tuples(_key("", _B64URL, 20, max_size=40), _key("", _B64URL, 20, max_size=80),
                     _key("", _B64URL, 43)).map(lambda p: ("eyJ" + ".".join(p),) * 2),
    "pem": st.lists(_key("", _B62 + "+/", 64), min_size=2, max_size=5).map(
        lambda lines: (_pem(lines), "\n".join(lines))),
    "password": st.text(string.ascii_letters + string.digits + "!@#^&*-_+=", min_size=8, max_size=30).filter(
        lambda v: any(c.isdigit() for c in v) and any(c.islower() for c in v) and not re.search(r"(.)\1\1", v)
        and not re.search(r"(?i)x{2}|todo|tbd|your|my-|sandbox|example|dummy|redacted|change|replace|fake", v)
    ).map(lambda v: (f'password = "{v}"', v)),
}
_PROSE = st.text(st.characters(codec="utf-8"), max_size=60)  # utf-8: no lone surrogates
_SEPARATORS = st.sampled_from([" ", "\n", ", ", ". ", "; ", " (", ") ", ": ", "\t", " — "])
_settings = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


@_settings
@given(st.text(max_size=300))
def test_redact_is_idempotent_on_any_text(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


@_settings
@given(st.text(alphabet=string.printable + "…é", max_size=300))
def test_nothing_found_means_nothing_changed(text: str) -> None:
    if find_secrets(text) == []:
        assert redact(text) == text
    else:
        assert redact(text) != text


@pytest.mark.parametrize("kind", sorted(SECRET_KINDS))
def test_a_secret_in_any_prose_is_found_and_removed(kind: str) -> None:
    @_settings
    @given(SECRET_KINDS[kind], _PROSE, _SEPARATORS, _PROSE, _SEPARATORS)
    def check(secret: tuple[str, str], before: str, sep1: str, after: str, sep2: str) -> None:
        embedded, value = secret
        assume(value not in before + after)
        text = before + sep1 + embedded + sep2 + after
        hits = find_secrets(text)
        start = len(before) + len(sep1) + embedded.index(value)
        assert any(h.start <= start < h.end for h in hits), (text, hits)
        redacted = redact(text)
        assert value not in redacted
        assert redact(redacted) == redacted

    check()


_WORDS = st.one_of(st.text(string.ascii_lowercase, min_size=1, max_size=20),
                   st.text(string.digits, min_size=1, max_size=4))


@_settings
@given(st.lists(st.text(string.ascii_lowercase, min_size=2, max_size=12), min_size=1, max_size=3),
       st.lists(st.lists(_WORDS, min_size=1, max_size=12), min_size=1, max_size=3),
       st.sampled_from(["", "/", ".html", "?ref=top-stories", "#section-two"]))
def test_url_slugs_are_never_flagged(host: list[str], segments: list[list[str]], tail: str) -> None:
    url = "https://" + ".".join(host) + ".com/" + "/".join("-".join(words) for words in segments) + tail
    for text in (url, f"See {url} for more.", f'link = "{url}"'):
        assert find_secrets(text) == [], text


@pytest.mark.parametrize("text", [
    "a" * 1_000_000,
    "sk-" * 340_000,
    ("sk-" + "a" * 30 + "-") * 30_000,
    "eyJ" * 340_000,
    "-----BEGIN RSA PRIVATE KEY-----\n" * 32_000,
    'password = "' * 85_000,
    "token: " * 145_000,
    "Bearer " * 145_000,
    "https://a:b" * 90_000,
    ("AKIA" + "Q7ZRT4XK2MPL9WJB" + " " + "aB3/" * 10 + " ") * 16_000,
    'f("token", ' * 90_000,
    "'a" * 500_000,
    'a="' * 340_000,
    'x: y = "' * 125_000,
], ids=lambda t: repr(t[:16]))
def test_a_megabyte_of_hostile_text_finishes(text: str) -> None:
    # No timing assertion: every pattern is linear, so this takes well under a second per case;
    # a backtracking pattern would hang here instead (and the suite's timeout would say so).
    redact(text)


# -- protokit run -p --------------------------------------------------------------------------
KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}


def _keyed_notebook(path: Path) -> Path:
    nb = new_notebook(metadata={"kernelspec": KERNEL})
    nb.cells = [new_markdown_cell("# Keyed"),
                new_code_cell('prefix: str = "ticket"  # prompt prefix\nn: int = 2  # how many\n'
                              'api_key: str = ""  # a key for this run\ntoken: str = ""\npassword: str = ""',
                              metadata={"tags": ["parameters"]}),
                new_code_cell("print(prefix, n)")]
    nbformat.write(nb, path)
    return path




@pytest.mark.parametrize(("name", "value", "says"), [
    ("api_key", "plain-words-value", "named like a credential"),
    ("password", "hunter2hunter2", "named like a credential"),
    ("token", GITHUB_TOKEN, "a GitHub token (ghp_…)"),
    ("prefix", PROJECT_KEY, "an OpenAI project key (sk-p…)"),
    ("n", GITHUB_TOKEN, "a GitHub token (ghp_…)"),  # refused before typing, whose error would quote it
])
def test_run_refuses_a_credential_parameter(tmp_path: Path, name: str, value: str, says: str) -> None:
    nb = _keyed_notebook(tmp_path / "keyed.ipynb")
    before = sorted(tmp_path.rglob("*"))
    code, text = cli("run", str(nb), "-p", name, value, "-o", str(tmp_path / "out.ipynb"))
    assert code == 1, text
    assert text.count("\n") == 1 and text.startswith("error: "), text  # one line, no traceback
    assert f"parameter {name!r}" in text and says in text and "environment" in text
    assert (value[4:] or value) not in text.replace("os.environ", "")  # at most the 4 characters of a mask
    assert sorted(tmp_path.rglob("*")) == before  # no output notebook, no run record


def test_run_notebook_refuses_before_binding(tmp_path: Path) -> None:
    nb = _keyed_notebook(tmp_path / "keyed.ipynb")
    with pytest.raises(ConfigError, match="parameter 'api_key' is named like a credential") as info:
        run_notebook(nb, {"api_key": "anything-at-all"})
    assert "anything" not in str(info.value)
    with pytest.raises(ConfigError, match=r"parameter 'n' holds a GitHub token \(ghp_…\)"):
        run_notebook(nb, {"n": GITHUB_TOKEN})  # an int parameter: the type error would have shown it
    assert not (tmp_path / ".protokit").exists()


def test_ordinary_parameters_pass() -> None:
    refuse_secret_parameters({"prefix": "ticket", "n": 3, "max_tokens": 50, "labels": ["bug", "task-management"],
                              "api_key": "", "token": None, "url": "https://example.com/blog/a-b-c-d-e"})
    with pytest.raises(ConfigError, match="parameter 'cfg' holds a value assigned to 'password'"):
        refuse_secret_parameters({"cfg": {"user": "me", "password": "hunter2hunter2"}})
