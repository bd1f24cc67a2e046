"""The one secret detector: key-shaped strings and credential assignments, found, masked, redacted.

Every place that must keep credentials off disk or off the screen uses this module: the
notebook gate, ``protokit run -p``, the cache (request options, headers, error texts),
exports, the run store, logs and the CLI. It imports nothing of protokit, so any layer may
use it.

Model *answers* and prompt *messages* are never rewritten with it (a replay must be exact);
an answer that looks like a live key is only flagged (:func:`looks_like_secret`).

Two kinds of evidence are used:

- **Key shapes**: provider prefixes (``sk-``, ``sk-proj-``, ``sk-ant-``, ``AKIA``, ``ghp_``,
  ``github_pat_``, ``xoxb-``, ``AIza``...), JWTs, PEM private keys, bearer and
  ``Authorization`` values, passwords in connection URLs. Each pattern starts and ends on a
  "word boundary" that also counts ``-`` and ``_`` as word characters, so nothing fires in
  the middle of a URL slug (``task-management``) or an identifier, and each checks that
  its body looks generated (mixed character classes) rather than like hyphenated words.
- **Assignments** of a literal to a credential-like *name* (``password = "..."``,
  ``"api_key": "..."``, ``TOKEN=...``, ``f(secret="...")``, ``?token=...``). Names are
  judged on their parts (split on ``_ - .`` and camelCase): ``api_key``, ``db_password``,
  ``clientSecret`` are credentials; ``max_tokens``, ``tokenizer``, ``token_count``,
  ``digest``, ``checksum`` are not. Placeholders (``""``, ``"changeme"``,
  ``"<your-api-key>"``, ``"${TOKEN}"``, env var names, paths, URLs, prose) are not secrets.

Every regex is linear: patterns begin with a look-behind that rejects the body's own
characters, so a run of key characters is scanned from its start only, bodies are single
character classes, and PEM blocks are paired by position rather than by a lazy regex. A
megabyte of text, hostile or not, takes well under a second; typical texts take microseconds.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

__all__ = ["REDACTED", "SecretHit", "find_secrets", "is_credential_name", "looks_like_key", "looks_like_secret",
           "mask", "redact", "scrub"]

REDACTED = "[redacted]"


@dataclass(frozen=True)
class SecretHit:
    """A secret found in some text: what it looks like, where (1-based line, [start, end) offsets), masked."""

    kind: str
    masked: str
    line: int
    start: int
    end: int


def mask(secret: str) -> str:
    """The first 4 characters and an ellipsis: enough to recognise a key, not to use it."""
    return secret[:4] + "…"


# -- value shapes -----------------------------------------------------------------------
def _classes(value: str) -> int:
    """How many of upper case, lower case and digits (ASCII) ``value`` holds."""
    return (any("A" <= c <= "Z" for c in value) + any("a" <= c <= "z" for c in value)
            + any("0" <= c <= "9" for c in value))


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


_SEPARATORS = re.compile(r"[-_]+")


def _longest_run(body: str) -> int:
    return max((len(part) for part in _SEPARATORS.split(body)), default=0)


# A key's body is random; text made to look like one is not. Any of these inside a key-shaped
# string says "documentation example": AWS's AKIAIOSFODNN7EXAMPLE, sk-xxxxxxxx..., sk-your-key-here.
_SHAPE_PLACEHOLDER = re.compile(r"example|(.)\1{7,}|your[-_]?(?:api[-_]?)?(?:key|token)|placeholder|redacted",
                                re.IGNORECASE)


def _generated(body: str) -> bool:
    """A body after a distinctive prefix (``sk-proj-``, ``ghp_``): two character classes, or a long run."""
    return _classes(body) >= 2 or _longest_run(body) >= 20


def _bare_sk_body(body: str) -> bool:
    """The body after a bare ``sk-``: stricter, since ``sk-`` also starts slugs (``/sk-guide-2024``)."""
    if "-" not in body and "_" not in body:
        # Legacy keys are 48 base62 characters; a 24+ letter run is no English word either.
        return len(body) >= 24 or _classes(body) >= 2
    # Hyphenated: words in a slug are lower case; a real key's body mixes all three classes.
    seps = len(body) - sum(c.isalnum() for c in body)
    return _classes(body) == 3 and (_longest_run(body) >= 16 or seps * 10 <= len(body))


@dataclass(frozen=True)
class _Shape:
    kind: str
    regex: re.Pattern[str]
    triggers: tuple[str, ...]  # a literal the text must hold for the regex to be worth running
    ok: Callable[[re.Match[str]], bool]


_K = "A-Za-z0-9_\\-"  # characters of most key bodies, and of slugs and identifiers
_NB = f"(?<![{_K}])"  # not preceded by one: never starts inside a slug or an identifier
_NA = f"(?![{_K}])"  # not followed by one: a longer run is something else


def _body(m: re.Match[str]) -> str:
    return m.group("body")


def _openai(m: re.Match[str]) -> bool:
    return _generated(_body(m)) if m.group("sub") else _bare_sk_body(_body(m))


def _slack(m: re.Match[str]) -> bool:
    last = m.group(0).rsplit("-", 1)[-1]
    return len(last) >= 8 and _classes(last) >= 2


_SHAPES: tuple[_Shape, ...] = (
    _Shape("an Anthropic API key",
           re.compile(rf"{_NB}sk-ant-(?:[a-z]{{3,8}}\d{{2}}-)?(?P<body>[{_K}]{{20,}})"), ("sk-ant-",),
           lambda m: _generated(_body(m))),
    _Shape("an OpenAI project key", re.compile(rf"{_NB}sk-proj-(?P<body>[{_K}]{{20,}})"), ("sk-proj-",),
           lambda m: _generated(_body(m))),
    _Shape("an OpenAI API key",
           re.compile(rf"{_NB}sk-(?!ant-|proj-)(?P<sub>(?:svcacct|admin|None)-)?(?P<body>[{_K}]{{20,}})"),
           ("sk-",), _openai),
    _Shape("an AWS access key id", re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
           ("AKIA", "ASIA", "ABIA", "ACCA"), lambda m: True),
    _Shape("a GitHub token",
           re.compile(rf"{_NB}(?:gh[pousr]_(?P<body>[A-Za-z0-9]{{30,}})|github_pat_(?P<pat>[A-Za-z0-9_]{{40,}})){_NA}"),
           ("gh", "github_pat_"), lambda m: _classes(m.group("body") or m.group("pat")) >= 2),
    _Shape("a Slack token", re.compile(rf"{_NB}xox[abeprs](?:\.xox[a-z])?-[0-9]+-[A-Za-z0-9\-]{{8,}}{_NA}"),
           ("xox",), _slack),
    _Shape("a Slack webhook URL",
           re.compile(r"https://hooks\.slack\.com/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]{16,}"),
           ("hooks.slack.com",), lambda m: True),
    _Shape("a Google API key", re.compile(rf"{_NB}AIza[A-Za-z0-9_\-]{{35}}{_NA}"), ("AIza",), lambda m: True),
    _Shape("a Stripe secret key", re.compile(rf"{_NB}[sr]k_(?:live|test)_(?P<body>[A-Za-z0-9]{{20,}}){_NA}"),
           ("k_live_", "k_test_"), lambda m: _classes(_body(m)) >= 2),
    _Shape("a Hugging Face token", re.compile(rf"{_NB}hf_(?P<body>[A-Za-z0-9]{{30,}}){_NA}"), ("hf_",),
           lambda m: any(c.isupper() for c in _body(m)) and any(c.islower() for c in _body(m))),
    _Shape("a GitLab token", re.compile(rf"{_NB}glpat-(?P<body>[{_K}]{{20,}}){_NA}"), ("glpat-",),
           lambda m: _generated(_body(m))),
    _Shape("a Groq API key", re.compile(rf"{_NB}gsk_(?P<body>[A-Za-z0-9]{{40,}}){_NA}"), ("gsk_",),
           lambda m: _classes(_body(m)) >= 2),
    # header.payload.signature, each base64url; the header is JSON, so it starts `{"` = "eyJ".
    # The signature may be empty (alg "none").
    _Shape("a JWT", re.compile(rf"{_NB}eyJ[{_K}]{{10,}}\.[{_K}]{{10,}}\.(?:[{_K}]{{10,}})?(?![{_K}]|\.[{_K}])"),
           ("eyJ",), lambda m: True),
)

# Credentials known by what precedes them; each regex's `value` group is the credential. Only the
# value is redacted: "Bearer", "Authorization:" and a URL's user name stay readable.
_BEARER = re.compile(r"(?<![A-Za-z0-9_\-])(?i:bearer)[ \t]+(?P<value>[A-Za-z0-9._~+/=\-]{16,})")
_AUTH_HEADER = re.compile(
    r"(?<![A-Za-z0-9_\-])(?i:(?:proxy-)?authorization)[\"']?[ \t]*[:=][ \t]*[\"']?"
    r"(?:(?i:basic|token|digest|apikey)[ \t]+)?(?P<value>[A-Za-z0-9._~+/=:\-]{8,})")
# scheme://user:password@host — the password only.
_DSN = re.compile(r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{1,20}://(?P<user>[^\s:/@?#'\"<>]{1,64}):"
                  r"(?P<value>[^\s:/@?#'\"<>]{3,128})@")
# An AWS secret access key is 40 base64 characters; alone it is any blob, next to a key id it is the key.
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_AWS_WINDOW = 400

# PEM blocks are found by their markers (a lazy regex across lines would rescan on every BEGIN).
_PEM_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_PEM_BODY = re.compile(r"[A-Za-z0-9+/=:,.\s\\\-]*")  # base64, headers (Proc-Type: 4,ENCRYPTED), escaped \n


# -- credential names --------------------------------------------------------------------
_NAME_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_STRONG_WORDS = frozenset({
    "password", "passwd", "passphrase", "pwd", "secret", "secrets", "credential", "credentials", "creds",
    "cookie", "cookies", "bearer", "authorization", "apikey", "apitoken", "apisecret", "accesstoken",
    "authtoken", "refreshtoken", "sessiontoken", "secretkey", "privatekey", "accesskey", "clientsecret",
})
# A single word ending in one of these still names a credential: dbpassword, githubtoken, OPENAIAPIKEY.
_STRONG_ENDINGS = ("password", "passwd", "token", "secret", "apikey", "secretkey", "accesskey")
# `key` alone is a dict key, a cache key, a sort key; with one of these before it, a credential.
_KEY_QUALIFIERS = frozenset({
    "api", "access", "secret", "private", "signing", "encryption", "master", "client", "app", "auth", "session",
    "ssh", "deploy", "account", "subscription", "service", "license", "webhook", "hmac", "jwt", "consumer",
    "admin", "write", "read", "live", "prod", "openai", "anthropic", "aws", "azure", "gcp", "google", "gemini",
    "github", "gitlab", "slack", "stripe", "hf", "huggingface", "cohere", "mistral", "groq", "together",
    "replicate", "pinecone", "langsmith", "langchain", "wandb", "sendgrid", "twilio", "mailgun",
})
# A token that is a piece of text, not a credential (tokenizers' special tokens, usage counters).
_TEXT_TOKEN = frozenset({
    "eos", "bos", "pad", "unk", "sep", "cls", "mask", "stop", "special", "prompt", "completion", "reasoning",
    "cached", "input", "output", "start", "end", "image", "audio", "word", "sub", "subword",
})
# Qualifiers before a credential word that make the name about something else.
_NOT_BEFORE = frozenset({"max", "min", "num", "n", "count", "total", "hashed", "is", "has", "use", "show", "no",
                         "require", "requires", "needs", "with", "public"})
# Qualifiers after one: the name holds a fact *about* the credential, not the credential.
_NEUTRAL_AFTER = frozenset({
    "count", "counts", "len", "length", "size", "limit", "limits", "max", "min", "num", "total", "budget", "usage",
    "used", "cost", "price", "rate", "ratio", "type", "types", "kind", "scheme", "method", "mode", "provider",
    "policy", "strength", "format", "pattern", "regex", "re", "encoding", "encoder", "url", "uri", "urls",
    "endpoint", "host", "hostname", "domain", "path", "paths", "file", "filename", "dir", "directory", "folder",
    "location", "cache", "name", "names", "id", "ids", "idx", "index", "env", "var", "variable", "field",
    "fields", "column", "col", "param", "parameter", "label", "help", "hint", "description", "desc", "doc",
    "message", "msg", "error", "errors", "title", "hash", "hashed", "digest", "checksum", "sha", "md", "salt",
    "shown", "visible", "hidden", "required", "enabled", "disabled", "present", "missing", "valid", "validator",
    "validation", "check", "checker", "exists", "ok", "expiry", "expires", "expiration", "expire", "expired",
    "ttl", "lifetime", "timeout", "age", "time", "timestamp", "date", "at", "rotation", "reset", "changed",
    "updated", "created", "version", "prefix", "suffix", "manager", "handler", "factory", "class", "cls", "fn",
    "func", "callback", "getter", "loader", "source", "widget", "box", "form", "dialog", "button", "input",
    "placeholder", "example", "sample", "template", "span", "offset", "position", "pos", "logprob", "logprobs",
    "prob", "probs", "score", "scores", "weight", "weights", "embedding", "embeddings", "vocab", "list", "ref",
    "start", "end",
})
# "next_token", "page_token": opaque, usually not a credential; judged like a bare `token`.
_AMBIGUOUS_TOKEN = frozenset({"next", "page", "continuation", "cursor", "sync"})


def _name_parts(name: str) -> list[str]:
    # The last component names the value: self.api_key, config["db"]["password"], X-Api-Key.
    last = re.split(r"[.\[\]'\"/:]+", name.strip("[]'\". "))[-1] if name else ""
    return [p.lower() for p in _NAME_PART.findall(last or name)]


def _name_tier(name: str) -> int:
    """3 names a credential, 2 might (a bare ``token`` or ``auth``), 1 is a ``key`` of some kind, 0 is not."""
    parts = _name_parts(name)
    best = 0
    for i, part in enumerate(parts):
        before = parts[i - 1] if i else ""
        if before in _NOT_BEFORE or any(p in _NEUTRAL_AFTER for p in parts[i + 1:]):
            continue
        if part == "token":
            tier = 0 if before in _TEXT_TOKEN else 2 if not before or before in _AMBIGUOUS_TOKEN else 3
        elif part in _STRONG_WORDS or (len(part) > 6 and part.endswith(_STRONG_ENDINGS)):
            tier = 3
        elif part == "key":
            tier = 3 if before in _KEY_QUALIFIERS else 1
        elif part == "auth":
            tier = 2
        elif part == "pass":
            tier = 3 if before and i == len(parts) - 1 else 0  # db_pass, smtp_pass; not pass_rate
        else:
            tier = 0
        best = max(best, tier)
    return best


def is_credential_name(name: str) -> bool:
    """True for a name that says it holds a credential (``api_key``, ``Authorization``, ``token``, ``dbPassword``).

    Judged on the name's parts, so ``max_tokens``, ``tokenizer``, ``token_count``, ``secret_name``,
    ``password_hint``, ``digest``, ``checksum`` and a plain ``key`` are not credential names.
    """
    return _name_tier(name) >= 2


# -- placeholders --------------------------------------------------------------------------
_PLACEHOLDER_MARK = re.compile(
    r"…|\.\.\.|\*{3}|x{4}|<[^<>]*>|\$\{[^}]*\}|\{\{[^}]*\}\}|\{[A-Za-z_0-9]*\}|%\(\w+\)s|%s|^\$(?-i:[A-Z_][A-Z0-9_]*)$|"
    r"change[-_ ]?(?:me|it|this)|replace[-_ ]?(?:me|this|with)|placeholder|example|dummy|redacted|sandbox|"
    r"^(?:your|my|enter|insert|paste|put)[-_ ]|^<|not[-_ ]?a[-_ ]?(?:real|secret|key)|"
    r"fake[-_ ]?(?:key|token|secret|pass)|"
    r"\b(?:todo|tbd|fixme)\b", re.IGNORECASE)
# Words that, with no digit in sight, make a value a description of a secret ("test-api-key").
_PLACEHOLDER_WORDS = frozenset({
    "your", "my", "the", "a", "an", "api", "key", "keys", "token", "tokens", "secret", "secrets", "password",
    "passwords", "passwd", "pass", "passphrase", "credential", "credentials", "cookie", "bearer", "authorization",
    "here", "goes", "value", "fake", "dummy", "test", "tests", "testing", "mock", "sample", "demo", "local", "dev",
    "default", "none", "null", "empty", "unset", "notset", "not", "set", "real", "for", "me", "change", "replace",
    "insert", "enter", "put", "access", "private", "public", "client", "auth", "hidden", "masked", "string", "str",
    "missing", "required", "invalid", "expired", "wrong", "xxx", "abc", "foo", "bar", "baz", "qux", "openai",
    "anthropic", "aws", "github", "google", "slack", "sk", "proj", "ant", "id", "of", "to", "is", "no", "new",
    "old", "user", "username", "admin", "root", "guest", "temp", "tmp", "todo", "unknown", "some", "any",
    "refresh", "grant", "type", "jwt", "oauth", "session", "xyzzy",
})
_STOPWORDS = frozenset({"the", "a", "an", "to", "for", "of", "is", "are", "used", "from", "your", "with", "and", "in",
                        "on", "this", "that", "be", "it", "use", "or", "by", "at", "as", "will", "you"})
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s@]*")
_PATH = re.compile(r"(?:~|\.{1,2})?/[^\s]*|[A-Za-z]:\\[^\s]*|[\w.\-]+(?:/[\w.\-]+)+\.[A-Za-z]{1,6}|"
                   r"[\w\-]+(?:\.[\w\-]+)*\.(?:json|ya?ml|toml|ini|cfg|conf|env|pem|key|crt|cer|p12|pfx|txt|csv)")
_SNAKE = re.compile(r"[a-z]+(?:_[a-z]+)+")  # refresh_token, test_facebook_secret: identifiers, not secrets
_CODE_REF = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:[.:][A-Za-z_][A-Za-z0-9_]*)+")
_REGEX_SYNTAX = re.compile(r"\\[swdbSWDB]|\(\?[:=!<P]|\[\^")
_RANDOM_RUN = re.compile(r"[A-Za-z0-9+]{24,}")
_WORDS = re.compile(r"[A-Za-z]+")


def _placeholder(value: str) -> bool:
    """True for text standing in for a secret: ``changeme``, ``<your-key>``, ``${TOKEN}``, ``xxxx``, ``API_KEY``."""
    s = value.strip()
    if _PLACEHOLDER_MARK.search(s) or len(set(s)) <= 2 or _ENV_NAME.fullmatch(s):
        return True
    words = _WORDS.findall(s)
    return not any(c.isdigit() for c in s) and bool(words) and all(w.lower() in _PLACEHOLDER_WORDS for w in words)


def _not_a_credential(value: str, *, quoted: bool = True) -> bool:
    """A URL, a path, code or a sentence: what a credential-named setting holds when it is not the credential."""
    s = value.strip()
    if _URL.fullmatch(s) or s.startswith("urn:") or _SNAKE.fullmatch(s):
        return True
    if _CODE_REF.fullmatch(s) and (not quoted or not any(c.isdigit() for c in s)):
        return True  # a dotted name (httpx.Auth, WebTest.COOKIE_SECRET, pkg.mod:Class)
    if _REGEX_SYNTAX.search(s):
        return True  # a pattern (jsonnet_token = r"[^\W\d]\w*")
    if _PATH.fullmatch(s) and not _RANDOM_RUN.search(s):
        return True
    words = s.split()
    return len(words) >= 4 and any(w.lower().strip(".,;:!?") in _STOPWORDS for w in words)


def _slug_like(value: str) -> bool:
    """Three or more lower-case words joined by - _ or . (``oauth2-client-credentials``)."""
    parts = re.split(r"[-_.]", value)
    return len(parts) >= 3 and all(re.fullmatch(r"[a-z]+[0-9]*", p) for p in parts)


def _looks_generated(value: str) -> bool:
    """Random-looking: 16+ characters, no spaces, all three character classes, high entropy."""
    return (len(value) >= 16 and not any(c.isspace() for c in value) and _classes(value) == 3
            and _entropy(value) >= 3.5)


def _literal_is_secret(value: str, tier: int, *, quoted: bool) -> bool:
    """Whether a literal assigned to a name of ``tier`` (see :func:`_name_tier`) is a secret."""
    if len(value) < 8 or tier == 0 or _placeholder(value) or _not_a_credential(value, quoted=quoted):
        return False
    if tier == 1:
        return _looks_generated(value)
    if tier == 2 or not quoted:
        # A bare `token` may be a piece of text ({"token": "hello"}); an unquoted value may be code
        # (`password: SecretStr`): both must look made up (digits or symbols, not words).
        if any(c.isspace() for c in value) or _slug_like(value):
            return False
        if tier == 2:
            return _classes(value) >= 2 and any(c.isdigit() for c in value)
        symbols = any(not c.isalnum() for c in value)
        return _classes(value) + symbols >= 2 and (symbols or any(c.isdigit() for c in value))
    return True


# -- assignments ---------------------------------------------------------------------------
_NAME = r"[A-Za-z_$][A-Za-z0-9_$]*(?:[.\-][A-Za-z0-9_$]+)*"
_QUOTED_VALUE = r"""(?:"(?P<v1>[^"\\\n]*(?:\\.[^"\\\n]*)*)"|'(?P<v2>[^'\\\n]*(?:\\.[^'\\\n]*)*)')"""
# name = "v" | name: str = "v" | self.name = "v" | f(name="v") | "name": "v" | env["NAME"] = "v" |
# name == "v" | name := "v" | 'name' => 'v'. A name may follow an escaped newline (JSON-encoded text).
_ASSIGN_QUOTED = re.compile(
    rf"""(?:(?:(?<=\\[nrt])|(?<![A-Za-z0-9_$.\-\\]))(?P<name>{_NAME})"""
    rf"""|(?P<q>["'])(?P<qname>[A-Za-z_$][A-Za-z0-9_$ .\-]{{0,80}})(?P=q)\]?)"""
    rf"""[ \t]*(?::[ \t]*(?P<ann>[A-Za-z_][\w.\[\], |]{{0,60}}?)[ \t]*=(?!=)|:=|==|=>|=|:)[ \t]*"""
    rf"""(?:[rRbBuU]{{1,2}})?{_QUOTED_VALUE}""")
# setenv("NAME", "v"), os.environ.setdefault('NAME', 'v'): a quoted name and value as a call's arguments.
_ASSIGN_CALL = re.compile(
    rf"""(?<=[A-Za-z0-9_])\([ \t]*(?P<q>["'])(?P<name>[A-Za-z_][A-Za-z0-9_.\-]{{0,80}})(?P=q)[ \t]*,[ \t]*"""
    rf"""(?:[rRbBuU]{{1,2}})?{_QUOTED_VALUE}""")
_UNQUOTED = r"[^\s'\"`#;,()\[\]{}<>]+"
_ASSIGN_LINE: tuple[tuple[re.Pattern[str], str], ...] = (
    # NAME=value / export NAME=value (env files, shells)
    (re.compile(rf"^[ \t]*(?:export[ \t]+|set[ \t]+)?(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)=(?P<value>{_UNQUOTED})"
                r"[ \t]*(?:#.*)?$", re.MULTILINE), "bare"),
    # name: value (YAML)
    (re.compile(rf"^[ \t]*(?:-[ \t]+)?(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)[ \t]*:[ \t]+(?P<value>{_UNQUOTED})"
                r"[ \t]*(?:#.*)?$", re.MULTILINE), "bare"),
    # name = value (INI, ~/.aws/credentials)
    (re.compile(r"^[ \t]*(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)[ \t]+=[ \t]+(?P<value>[A-Za-z0-9/+=_\-.~]{16,})[ \t]*$",
                re.MULTILINE), "ini"),
    # ?token=value&... (URLs) and --password=value (command lines)
    (re.compile(r"(?:(?<=[?&;])|(?<![A-Za-z0-9_\-])--)(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)=(?P<value>[^&\s#\"'<>]+)"),
     "bare"),
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


# -- finding -------------------------------------------------------------------------------
class _Found:
    """Hits collected in priority order; a later candidate overlapping an earlier hit is dropped."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts: list[int] = []  # hits never overlap, so sorted starts sort the ends too
        self.hits: list[tuple[int, int, str]] = []

    def free(self, start: int, end: int) -> bool:
        """True when [start, end) overlaps no hit kept so far."""
        i = bisect_right(self.starts, start)
        if i and self.hits[i - 1][1] > start:
            return False
        return i == len(self.hits) or self.hits[i][0] >= end

    def add(self, start: int, end: int, kind: str) -> None:
        """Keep the hit unless it is empty or overlaps one kept before it (which had priority)."""
        if end > start and self.free(start, end):
            i = bisect_right(self.starts, start)
            self.starts.insert(i, start)
            self.hits.insert(i, (start, end, kind))


def _trim(body: str) -> tuple[int, int]:
    """Offsets of ``body`` without whitespace and escaped newlines (``\\n`` in JSON) at either edge."""
    lo, hi = 0, len(body)
    while lo < hi:
        if body[lo].isspace():
            lo += 1
        elif body.startswith(("\\n", "\\r"), lo):
            lo += 2
        else:
            break
    while hi > lo:
        if body[hi - 1].isspace():
            hi -= 1
        elif hi - 2 >= lo and body[hi - 2] == "\\" and body[hi - 1] in "nr":
            hi -= 2
        else:
            break
    return lo, hi


def _pem(found: _Found) -> None:
    text = found.text
    ends = [m for m in _PEM_END.finditer(text)]
    ends_at = [m.start() for m in ends]
    pos = 0
    for begin in _PEM_BEGIN.finditer(text):
        if begin.start() < pos:
            continue  # inside the block just handled
        i = bisect_right(ends_at, begin.end() - 1)
        if i < len(ends):
            start, end, pos = begin.end(), ends[i].start(), ends[i].end()
        else:  # an unterminated block: the key lines that follow
            start, end = begin.end(), _PEM_BODY.match(text, begin.end()).end()  # type: ignore[union-attr]
            pos = end
        body = text[start:end]
        lo, hi = _trim(body)
        if sum(c.isalnum() for c in body[lo:hi]) >= 32:
            found.add(start + lo, start + hi, "a PEM private key")


def _header_value(value: str) -> bool:
    """A credential after ``Bearer`` or ``Authorization:``: mixed classes with a digit or symbol, not a type name."""
    symbols = any(not c.isalnum() for c in value)
    digits = any(c.isdigit() for c in value)
    return _classes(value) >= 2 and (symbols or digits) and not (_CODE_REF.fullmatch(value) and not digits) \
        and not _placeholder(value)


def _echoes_name(name: str, value: str) -> bool:
    """``sas_token = "sastoken"``, ``CLIENT_SECRET = "myclientsecret"``: a value that only repeats its name."""
    parts = _name_parts(name)
    plain = re.sub(r"[^a-z0-9]", "", value.lower())
    tail = "".join(parts[-2:])
    return not any(c.isdigit() for c in value) and len(tail) >= 6 and tail in plain


def _assignment(found: _Found, name: str, value: str, start: int, *, style: str) -> None:
    """Record ``value`` if ``name`` is credential-like and the literal is a secret.

    ``style`` is how the value was written: "quoted" (a string literal), "call" (the second
    argument of ``setenv("NAME", "v")``), "bare" (env, YAML, URL query: may be code) or "ini"
    (``name = value``, which Python reads the same way: only generated-looking values count).
    """
    tier = _name_tier(name)
    if not tier or not found.free(start, start + len(value)) or _echoes_name(name, value):
        return
    if style == "quoted":
        ok = _literal_is_secret(value, tier, quoted=True)
    elif style == "ini":
        ok = not _IDENTIFIER.fullmatch(value) and _classes(value) == 3 \
            and _literal_is_secret(value, tier, quoted=False)
    else:
        # Unquoted code-like values (a type, a variable) are not literals; nor are a call's words.
        code = _IDENTIFIER.fullmatch(value) and ("." in value or not any(c.isdigit() for c in value))
        ok = not code and value.lower() not in ("none", "null", "true", "false") \
            and _literal_is_secret(value, tier, quoted=False)
    if ok:
        found.add(start, start + len(value), f"a value assigned to {name!r}")


def _scan(text: str, *, keys_only: bool = False) -> list[tuple[int, int, str]]:
    found = _Found(text)
    for shape in _SHAPES:
        if any(t in text for t in shape.triggers):
            for m in shape.regex.finditer(text):
                if shape.ok(m) and not _SHAPE_PLACEHOLDER.search(m.group(0)):
                    found.add(m.start(), m.end(), shape.kind)
    if "PRIVATE KEY" in text:
        _pem(found)
    aws_ids = [(s, e) for s, e, k in found.hits if k == "an AWS access key id"]
    for s, e in aws_ids:
        window_start = max(0, s - _AWS_WINDOW)
        for m in _AWS_SECRET.finditer(text[window_start:e + _AWS_WINDOW]):
            value = m.group(0)
            if _classes(value) == 3 and not _SHAPE_PLACEHOLDER.search(value):
                found.add(window_start + m.start(), window_start + m.end(), "an AWS secret access key")
    lowered = text.lower()
    for trigger, regex, kind in (("bearer", _BEARER, "a bearer token"),
                                 ("authorization", _AUTH_HEADER, "an Authorization header value")):
        if trigger in lowered:
            for m in regex.finditer(text):
                value = m.group("value").rstrip(".")
                if _header_value(value):
                    found.add(m.start("value"), m.start("value") + len(value), kind)
    if "://" in text:
        for m in _DSN.finditer(text):
            value = unquote(m.group("value"))  # a%20secret is "a secret"
            if value != unquote(m.group("user")) and len(set(value)) > 1 and not _placeholder(value.ljust(8, "_")):
                found.add(m.start("value"), m.end("value"), "a password in a connection URL")
    if keys_only:
        return found.hits
    pos = 0
    while (q := _ASSIGN_QUOTED.search(text, pos)) is not None:
        group = "v1" if q.group("v1") is not None else "v2"
        kept = len(found.hits)
        _assignment(found, q.group("name") or q.group("qname"), q.group(group), q.start(group), style="quoted")
        # A match can hide another: `x: password = "v"` read as x annotated `password`, or a stray quote
        # pairing with the next one (`A=" password = "v"`). Unless it was a hit, look again inside it.
        pos = q.start("ann") if q.group("ann") else q.end() if len(found.hits) > kept else q.start(group)
    if "(" in text:
        for m in _ASSIGN_CALL.finditer(text):
            group = "v1" if m.group("v1") is not None else "v2"
            _assignment(found, m.group("name"), m.group(group), m.start(group), style="call")
    for regex, style in _ASSIGN_LINE:
        for m in regex.finditer(text):
            _assignment(found, m.group("name"), m.group("value"), m.start("value"), style=style)
    return found.hits


def _lines(text: str, hits: list[tuple[int, int, str]]) -> Iterator[int]:
    line, pos = 1, 0
    for start, _, _ in hits:  # in order, so the text is counted through once
        line += text.count("\n", pos, start)
        pos = start
        yield line


def find_secrets(text: str) -> list[SecretHit]:
    """Every key-shaped value, and every credential-named assignment of a literal, in ``text``, in order.

    Spans cover the secret value only (not the name, the quotes or ``Bearer``), never overlap,
    and ``masked`` is :func:`mask` of the value.
    """
    if not text:
        return []
    hits = _scan(text)
    return [SecretHit(kind, mask(text[start:end]), line, start, end)
            for (start, end, kind), line in zip(hits, _lines(text, hits), strict=True)]


def redact(text: str) -> str:
    """``text`` with every secret :func:`find_secrets` sees replaced by its masked form (names kept)."""
    hits = find_secrets(text)
    if not hits:
        return text
    parts: list[str] = []
    pos = 0
    for hit in hits:
        parts += [text[pos:hit.start], hit.masked]
        pos = hit.end
    parts.append(text[pos:])
    return "".join(parts)


def looks_like_key(text: str) -> bool:
    """True when ``text`` holds a live credential's shape (provider keys, JWTs, PEM keys, bearer values).

    The cheap check run on every model answer: literal prefixes gate each regex, and
    credential *assignments* (which need the whole assignment grammar) are not looked for.
    """
    return bool(text) and bool(_scan(text, keys_only=True))


def looks_like_secret(value: str) -> bool:
    """True when a bare value (a parameter, an answer) holds a secret :func:`find_secrets` would report."""
    return bool(value) and bool(_scan(value))


def _drop(key: Any, value: Any) -> bool:
    if not isinstance(key, str):
        return False
    tier = _name_tier(key)
    if tier >= 3:
        return True
    # A bare "token" key is as often a piece of text (logprobs) as a credential: judge its value.
    return tier == 2 and isinstance(value, str) and _literal_is_secret(value, 2, quoted=True)


def scrub(value: Any) -> Any:
    """A copy with credential-named keys dropped and secrets in strings redacted, at any depth.

    Mappings become dicts and tuples become lists (the result is JSON-ready); other values
    are returned as they are.
    """
    if isinstance(value, Mapping):
        return {k: scrub(v) for k, v in value.items() if not _drop(k, v)}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value
