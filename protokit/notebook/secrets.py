"""Secrets in notebook sources, outputs and recorded parameters; reported masked, never whole.

The detection itself is :mod:`protokit.secrets` (one detector for the whole package); this
module only knows where a notebook keeps text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from protokit.secrets import SecretHit, find_secrets

__all__ = ["secrets_in_cell", "secrets_in_metadata"]


def _output_texts(cell: Any) -> Iterator[str]:
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            yield str(out.get("text", ""))
        elif kind == "error":
            yield f"{out.get('ename', '')}: {out.get('evalue', '')}\n" + "\n".join(out.get("traceback", []))
        else:
            for mime, data in out.get("data", {}).items():
                if mime.startswith("image/"):
                    continue  # base64 pixels look random and hold no text
                yield data if isinstance(data, str) else json.dumps(data)


def secrets_in_cell(cell: Any) -> list[tuple[str, SecretHit]]:
    """(where, hit) for secrets in a cell's source and outputs; ``where`` is "source" or "output"."""
    found = [("source", h) for h in find_secrets(str(cell.get("source", "")))]
    for text in _output_texts(cell):
        found += [("output", h) for h in find_secrets(text)]
    return found


def secrets_in_metadata(metadata: Any) -> list[SecretHit]:
    """Secrets in notebook metadata (papermill's and protokit's recorded parameters)."""
    parts = [metadata.get("papermill", {}).get("parameters"), metadata.get("protokit", {}).get("parameters")]
    text = json.dumps([p for p in parts if p], default=str, indent=0)
    return find_secrets(text)
