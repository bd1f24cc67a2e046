"""Placeholders and other non-credentials: what a credential-named setting holds when it is no secret.

``""``, ``"changeme"``, ``"<your-api-key>"``, ``"${TOKEN}"``, env var names, paths, URLs,
code and prose are not secrets; :func:`literal_is_secret` weighs a literal against how surely
its name (:func:`protokit.secrets.names.name_tier`) says it holds a credential.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from protokit.secrets.shapes import classes

__all__ = ["CODE_REF", "is_placeholder", "literal_is_secret"]

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
CODE_REF = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:[.:][A-Za-z_][A-Za-z0-9_]*)+")
_REGEX_SYNTAX = re.compile(r"\\[swdbSWDB]|\(\?[:=!<P]|\[\^")
_RANDOM_RUN = re.compile(r"[A-Za-z0-9+]{24,}")
_WORDS = re.compile(r"[A-Za-z]+")


def is_placeholder(value: str) -> bool:
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
    if CODE_REF.fullmatch(s) and (not quoted or not any(c.isdigit() for c in s)):
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


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _looks_generated(value: str) -> bool:
    """Random-looking: 16+ characters, no spaces, all three character classes, high entropy."""
    return (len(value) >= 16 and not any(c.isspace() for c in value) and classes(value) == 3
            and _entropy(value) >= 3.5)


def literal_is_secret(value: str, tier: int, *, quoted: bool) -> bool:
    """Whether a literal assigned to a name of ``tier`` (see :func:`protokit.secrets.names.name_tier`) is a secret."""
    if len(value) < 8 or tier == 0 or is_placeholder(value) or _not_a_credential(value, quoted=quoted):
        return False
    if tier == 1:
        return _looks_generated(value)
    if tier == 2 or not quoted:
        # A bare `token` may be a piece of text ({"token": "hello"}); an unquoted value may be code
        # (`password: SecretStr`): both must look made up (digits or symbols, not words).
        if any(c.isspace() for c in value) or _slug_like(value):
            return False
        if tier == 2:
            return classes(value) >= 2 and any(c.isdigit() for c in value)
        symbols = any(not c.isalnum() for c in value)
        return classes(value) + symbols >= 2 and (symbols or any(c.isdigit() for c in value))
    return True
