"""What a promoted module imports from protokit: argument checks, output collection, JSON output, its span."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from protokit import cache
from protokit.errors import ParameterTypeError
from protokit.notebook.outputs import collect_outputs, encode_value
from protokit.notebook.params import check_value, parse_text
from protokit.runner import telemetry

__all__ = ["ParameterTypeError", "check", "cli_type", "collect_outputs", "production_cache", "span", "to_json"]


def production_cache() -> None:
    """In production a promoted module records and replays nothing unless asked to.

    The notebook recorded every call to replay it; a service must not write ``./protokit.db``
    wherever it runs, nor answer a repeated input from that file. So, unless ``PROTOKIT_CACHE``
    or ``PROTOKIT_CACHE_MODE`` is set or the caller configured a cache (the generated tests
    do, to replay the cassette), calls go straight to the provider.
    """
    if os.environ.get("PROTOKIT_CACHE") or os.environ.get("PROTOKIT_CACHE_MODE") or cache.is_configured():
        return
    cache.configure(mode="off")


def check(name: str, value: Any, type_text: str) -> Any:
    """The argument coerced to the parameter's type; a one-line ParameterTypeError naming it otherwise."""
    return check_value(name, value, type_text)


def cli_type(name: str, type_text: str) -> Callable[[str], Any]:
    """An argparse ``type=`` that parses a command-line string into the parameter's type."""

    def parse(text: str) -> Any:
        try:
            return parse_text(name, text, type_text)
        except ParameterTypeError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = type_text  # argparse names the type in its messages
    return parse


def to_json(result: Any) -> str:
    """run()'s outputs as indented JSON (frames in split form)."""
    return json.dumps(encode_value(result, "outputs"), indent=2, ensure_ascii=False)


@contextlib.contextmanager
def span(name: str, parameters: Mapping[str, Any]) -> Iterator[None]:
    """run() as an OpenTelemetry span ``name``: the parent of its model calls' spans.

    Its non-secret parameters become ``protokit.parameter.NAME`` attributes (credential-named or
    secret-shaped ones are left out). A no-op without OpenTelemetry or a configured tracer provider.
    """
    with telemetry.module_span(name, parameters):
        yield
