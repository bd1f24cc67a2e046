"""Cassettes: recorded entries as deterministic JSON, meant to be committed, so refused when they hold a secret."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from protokit._files import atomic_write_text
from protokit.cache.records import check_record, dumps, prompt_of
from protokit.errors import CacheError
from protokit.secrets import SecretHit, find_secrets

CASSETTE_VERSION = 1


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def _secret_in(record: Mapping[str, Any]) -> tuple[str, SecretHit] | None:
    """(where, hit) for the first secret the detector finds in what a cassette would hold of a record."""
    request, entry = record["request"], record["entry"]
    rest = {k: v for k, v in request.items() if k != "messages"}
    # Each string alone (key shapes), and the JSON of the dicts ("token": "..." assignments).
    parts = [("the prompt", [*_strings(request.get("messages"))]),
             ("the request options", [dumps(rest), *_strings(rest)]),
             ("the answer", [dumps(entry), *_strings(entry)])]
    for where, texts in parts:
        for text in texts:
            hits = find_secrets(text)
            if hits:
                return where, hits[0]
    return None


def _check_cassette(entries: Iterable[Mapping[str, Any]], shown: object) -> None:
    """Refuse (CacheError naming the case) a cassette that would hold a secret; it is meant to be committed."""
    for rec in entries:
        found = _secret_in(rec)
        if found is None:
            continue
        where, hit = found
        req = rec["request"]
        model, name = f"{req.get('provider')}:{req.get('model')}", f" {shown}" if shown else ""
        raise CacheError(
            f"cassette{name} not written: {where} of {model} (sample {req.get('sample', 0)}), prompt "
            f"'{prompt_of(req)}', holds {hit.kind} ({hit.masked}); a cassette is meant to be committed: "
            f"record that call again without it, or clear it (protokit cache clear --model {model})")


def write_cassette(path_or_file: str | os.PathLike[str] | IO[str], entries: list[dict[str, Any]]) -> None:
    """Write entries (the export format) as a cassette, after the secret check; a file is created 0600."""
    _check_cassette(entries, os.fspath(path_or_file) if isinstance(path_or_file, (str, os.PathLike))
                    else getattr(path_or_file, "name", None))
    text = dumps({"protokit_cassette": CASSETTE_VERSION, "entries": entries}, indent=1, separators=None) + "\n"
    if not isinstance(path_or_file, (str, os.PathLike)):
        path_or_file.write(text)
        return
    out = Path(path_or_file)
    if not out.parent.is_dir():
        what = "is a file, not a folder" if out.parent.exists() else "does not exist"
        raise CacheError(f"cannot write {os.fspath(path_or_file)}: folder {out.parent} {what}; "
                         "create it or pick another path")
    try:
        atomic_write_text(out, text, mode=0o600)  # readers never see half a cassette
    except OSError as exc:
        raise CacheError(f"cannot write {os.fspath(path_or_file)}: {(exc.strerror or str(exc)).lower()}; "
                         "pick a writable path") from exc


def read_cassette(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read an exported cassette file and return its records; CacheError if its shape is wrong."""
    shown = os.fspath(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CacheError(f"cannot read cassette {shown}: {exc}") from exc
    if not isinstance(data, dict) or data.get("protokit_cassette") != CASSETTE_VERSION \
            or not isinstance(data.get("entries"), list):
        raise CacheError(f"{shown} is not a protokit cassette (expected {{\"protokit_cassette\": 1, "
                         "\"entries\": [...]}); export one with 'protokit cache export'")
    return [check_record(rec, shown) for rec in data["entries"]]
