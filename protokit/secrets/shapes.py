"""Key shapes: provider prefixes, JWTs, and credentials known by what precedes them.

Each pattern starts and ends on a "word boundary" that also counts ``-`` and ``_`` as word
characters, so nothing fires in the middle of a URL slug or an identifier, and each checks
that its body looks generated (mixed character classes) rather than like hyphenated words.
Every regex is linear: it begins with a look-behind that rejects the body's own characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["AUTH_HEADER", "AWS_SECRET", "AWS_WINDOW", "BEARER", "DSN", "SHAPES", "SHAPE_PLACEHOLDER", "Shape",
           "classes"]


def classes(value: str) -> int:
    """How many of upper case, lower case and digits (ASCII) ``value`` holds."""
    return (any("A" <= c <= "Z" for c in value) + any("a" <= c <= "z" for c in value)
            + any("0" <= c <= "9" for c in value))


_SEPARATORS = re.compile(r"[-_]+")


def _longest_run(body: str) -> int:
    return max((len(part) for part in _SEPARATORS.split(body)), default=0)


# A key's body is random; text made to look like one is not. Any of these inside a key-shaped
# string says "documentation example": AWS's AKIAIOSFODNN7EXAMPLE, sk-xxxxxxxx..., sk-your-key-here.
SHAPE_PLACEHOLDER = re.compile(r"example|(.)\1{7,}|your[-_]?(?:api[-_]?)?(?:key|token)|placeholder|redacted",
                               re.IGNORECASE)


def _generated(body: str) -> bool:
    """A body after a distinctive prefix (``sk-proj-``, ``ghp_``): two character classes, or a long run."""
    return classes(body) >= 2 or _longest_run(body) >= 20


def _bare_sk_body(body: str) -> bool:
    """The body after a bare ``sk-``: stricter, since ``sk-`` also starts slugs (``/sk-guide-2024``)."""
    if "-" not in body and "_" not in body:
        # Legacy keys are 48 base62 characters; a 24+ letter run is no English word either.
        return len(body) >= 24 or classes(body) >= 2
    # Hyphenated: words in a slug are lower case; a real key's body mixes all three classes.
    seps = len(body) - sum(c.isalnum() for c in body)
    return classes(body) == 3 and (_longest_run(body) >= 16 or seps * 10 <= len(body))


@dataclass(frozen=True)
class Shape:
    """One kind of key: its regex, the literals that gate it, and the check a match must pass."""

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
    return len(last) >= 8 and classes(last) >= 2


SHAPES: tuple[Shape, ...] = (
    Shape("an Anthropic API key",
          re.compile(rf"{_NB}sk-ant-(?:[a-z]{{3,8}}\d{{2}}-)?(?P<body>[{_K}]{{20,}})"), ("sk-ant-",),
          lambda m: _generated(_body(m))),
    Shape("an OpenAI project key", re.compile(rf"{_NB}sk-proj-(?P<body>[{_K}]{{20,}})"), ("sk-proj-",),
          lambda m: _generated(_body(m))),
    Shape("an OpenAI API key",
          re.compile(rf"{_NB}sk-(?!ant-|proj-)(?P<sub>(?:svcacct|admin|None)-)?(?P<body>[{_K}]{{20,}})"),
          ("sk-",), _openai),
    Shape("an AWS access key id", re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
          ("AKIA", "ASIA", "ABIA", "ACCA"), lambda m: True),
    Shape("a GitHub token",
          re.compile(rf"{_NB}(?:gh[pousr]_(?P<body>[A-Za-z0-9]{{30,}})|github_pat_(?P<pat>[A-Za-z0-9_]{{40,}})){_NA}"),
          ("gh", "github_pat_"), lambda m: classes(m.group("body") or m.group("pat")) >= 2),
    Shape("a Slack token", re.compile(rf"{_NB}xox[abeprs](?:\.xox[a-z])?-[0-9]+-[A-Za-z0-9\-]{{8,}}{_NA}"),
          ("xox",), _slack),
    Shape("a Slack webhook URL",
          re.compile(r"https://hooks\.slack\.com/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]{16,}"),
          ("hooks.slack.com",), lambda m: True),
    Shape("a Google API key", re.compile(rf"{_NB}AIza[A-Za-z0-9_\-]{{35}}{_NA}"), ("AIza",), lambda m: True),
    Shape("a Stripe secret key", re.compile(rf"{_NB}[sr]k_(?:live|test)_(?P<body>[A-Za-z0-9]{{20,}}){_NA}"),
          ("k_live_", "k_test_"), lambda m: classes(_body(m)) >= 2),
    Shape("a Hugging Face token", re.compile(rf"{_NB}hf_(?P<body>[A-Za-z0-9]{{30,}}){_NA}"), ("hf_",),
          lambda m: any(c.isupper() for c in _body(m)) and any(c.islower() for c in _body(m))),
    Shape("a GitLab token", re.compile(rf"{_NB}glpat-(?P<body>[{_K}]{{20,}}){_NA}"), ("glpat-",),
          lambda m: _generated(_body(m))),
    Shape("a Groq API key", re.compile(rf"{_NB}gsk_(?P<body>[A-Za-z0-9]{{40,}}){_NA}"), ("gsk_",),
          lambda m: classes(_body(m)) >= 2),
    # header.payload.signature, each base64url; the header is JSON, so it starts `{"` = "eyJ".
    # The signature may be empty (alg "none").
    Shape("a JWT", re.compile(rf"{_NB}eyJ[{_K}]{{10,}}\.[{_K}]{{10,}}\.(?:[{_K}]{{10,}})?(?![{_K}]|\.[{_K}])"),
          ("eyJ",), lambda m: True),
)

# Credentials known by what precedes them; each regex's `value` group is the credential. Only the
# value is redacted: "Bearer", "Authorization:" and a URL's user name stay readable.
BEARER = re.compile(r"(?<![A-Za-z0-9_\-])(?i:bearer)[ \t]+(?P<value>[A-Za-z0-9._~+/=\-]{16,})")
AUTH_HEADER = re.compile(
    r"(?<![A-Za-z0-9_\-])(?i:(?:proxy-)?authorization)[\"']?[ \t]*[:=][ \t]*[\"']?"
    r"(?:(?i:basic|token|digest|apikey)[ \t]+)?(?P<value>[A-Za-z0-9._~+/=:\-]{8,})")
# scheme://user:password@host — the password only.
DSN = re.compile(r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{1,20}://(?P<user>[^\s:/@?#'\"<>]{1,64}):"
                 r"(?P<value>[^\s:/@?#'\"<>]{3,128})@")
# An AWS secret access key is 40 base64 characters; alone it is any blob, next to a key id it is the key.
AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
AWS_WINDOW = 400
