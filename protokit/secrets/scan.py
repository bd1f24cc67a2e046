"""Finding: key shapes, PEM blocks, header values and credential assignments, collected without overlaps.

:func:`scan` runs the key shapes first, then PEM blocks, AWS secret keys next to a key id,
``Bearer`` / ``Authorization`` values and connection-URL passwords, then (unless only keys
are asked for) assignments of literals to credential names. An earlier hit has priority:
a later candidate that overlaps it is dropped.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from urllib.parse import unquote

from protokit.secrets.names import name_parts, name_tier
from protokit.secrets.placeholders import CODE_REF, is_placeholder, literal_is_secret
from protokit.secrets.shapes import (
    AUTH_HEADER,
    AWS_SECRET,
    AWS_WINDOW,
    BEARER,
    DSN,
    SHAPE_PLACEHOLDER,
    SHAPES,
    classes,
)

__all__ = ["scan"]

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

# PEM blocks are found by their markers (a lazy regex across lines would rescan on every BEGIN).
_PEM_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_PEM_BODY = re.compile(r"[A-Za-z0-9+/=:,.\s\\\-]*")  # base64, headers (Proc-Type: 4,ENCRYPTED), escaped \n


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
    return classes(value) >= 2 and (symbols or digits) and not (CODE_REF.fullmatch(value) and not digits) \
        and not is_placeholder(value)


def _echoes_name(name: str, value: str) -> bool:
    """``sas_token = "sastoken"``, ``CLIENT_SECRET = "myclientsecret"``: a value that only repeats its name."""
    parts = name_parts(name)
    plain = re.sub(r"[^a-z0-9]", "", value.lower())
    tail = "".join(parts[-2:])
    return not any(c.isdigit() for c in value) and len(tail) >= 6 and tail in plain


def _assignment(found: _Found, name: str, value: str, start: int, *, style: str) -> None:
    """Record ``value`` if ``name`` is credential-like and the literal is a secret.

    ``style`` is how the value was written: "quoted" (a string literal), "call" (the second
    argument of ``setenv("NAME", "v")``), "bare" (env, YAML, URL query: may be code) or "ini"
    (``name = value``, which Python reads the same way: only generated-looking values count).
    """
    tier = name_tier(name)
    if not tier or not found.free(start, start + len(value)) or _echoes_name(name, value):
        return
    if style == "quoted":
        ok = literal_is_secret(value, tier, quoted=True)
    elif style == "ini":
        ok = not _IDENTIFIER.fullmatch(value) and classes(value) == 3 \
            and literal_is_secret(value, tier, quoted=False)
    else:
        # Unquoted code-like values (a type, a variable) are not literals; nor are a call's words.
        code = _IDENTIFIER.fullmatch(value) and ("." in value or not any(c.isdigit() for c in value))
        ok = not code and value.lower() not in ("none", "null", "true", "false") \
            and literal_is_secret(value, tier, quoted=False)
    if ok:
        found.add(start, start + len(value), f"a value assigned to {name!r}")


def scan(text: str, *, keys_only: bool = False) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every secret in ``text``, in order; with ``keys_only``, key shapes only."""
    found = _Found(text)
    for shape in SHAPES:
        if any(t in text for t in shape.triggers):
            for m in shape.regex.finditer(text):
                if shape.ok(m) and not SHAPE_PLACEHOLDER.search(m.group(0)):
                    found.add(m.start(), m.end(), shape.kind)
    if "PRIVATE KEY" in text:
        _pem(found)
    aws_ids = [(s, e) for s, e, k in found.hits if k == "an AWS access key id"]
    for s, e in aws_ids:
        window_start = max(0, s - AWS_WINDOW)
        for m in AWS_SECRET.finditer(text[window_start:e + AWS_WINDOW]):
            value = m.group(0)
            if classes(value) == 3 and not SHAPE_PLACEHOLDER.search(value):
                found.add(window_start + m.start(), window_start + m.end(), "an AWS secret access key")
    lowered = text.lower()
    for trigger, regex, kind in (("bearer", BEARER, "a bearer token"),
                                 ("authorization", AUTH_HEADER, "an Authorization header value")):
        if trigger in lowered:
            for m in regex.finditer(text):
                value = m.group("value").rstrip(".")
                if _header_value(value):
                    found.add(m.start("value"), m.start("value") + len(value), kind)
    if "://" in text:
        for m in DSN.finditer(text):
            value = unquote(m.group("value"))  # a%20secret is "a secret"
            if value != unquote(m.group("user")) and len(set(value)) > 1 and not is_placeholder(value.ljust(8, "_")):
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
