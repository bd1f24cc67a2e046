"""Temporary environment variables, for kernels and subprocesses started inside the block."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping


@contextlib.contextmanager
def environ(changes: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) environment variables, then restore them on exit."""
    saved = {k: os.environ.get(k) for k in changes}
    try:
        _apply(changes)
        yield
    finally:
        _apply(saved)


def _apply(values: Mapping[str, str | None]) -> None:
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
