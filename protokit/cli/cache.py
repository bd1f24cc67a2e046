"""``protokit cache stats/clear/export``: inspect and manage the record/replay cache."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from protokit.cache import Cache, default_path
from protokit.errors import CacheError

F = TypeVar("F", bound=Callable[..., Any])


def _path_option(fn: F) -> F:
    option = click.option("--path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                          help="Cache file [default: $PROTOKIT_CACHE or protokit.db].")
    return option(fn)


def _open(path: Path | None) -> Cache:
    # create=False: inspecting a cache must never leave an empty one behind. Replay mode, so a
    # read-only cache opens too; clear refuses one itself.
    return Cache(path if path is not None else default_path(), mode="replay", create=False)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KB" if n < 1024**2 else f"{n / 1024**2:.1f} MB"


@click.group("cache")
def command() -> None:
    """Inspect and manage the record/replay cache."""


@command.command("stats")
@_path_option
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def stats(path: Path | None, as_json: bool) -> None:
    """Show size, entries per model, recorded cost and dates."""
    with _open(path) as cache:
        s = cache.stats()
    if as_json:
        click.echo(json.dumps(s, indent=2, sort_keys=True))
        return
    rows = [("cache", s["path"]), ("size", _size(s["size_bytes"])), ("entries", str(s["entries"])),
            ("recorded cost", f"${s['total_cost_usd']:.4f}"), ("schema", f"version {s['schema_version']}"),
            ("oldest", s["oldest"] or "-"), ("newest", s["newest"] or "-")]
    for name, value in rows:
        click.echo(f"{name:<14} {value}")
    if s["by_model"]:
        width = max(len("model"), *(len(m) for m in s["by_model"]))
        click.echo(f"\n{'model':<{width}}  entries")
        for model, n in s["by_model"].items():
            click.echo(f"{model:<{width}}  {n:>7}")


@command.command("clear")
@_path_option
@click.option("--model", default=None, help="Only this model's entries (provider:name or name).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def clear(path: Path | None, model: str | None, yes: bool) -> None:
    """Remove recorded entries (all, or one model's)."""
    with _open(path) as cache:
        if cache.readonly:
            raise CacheError(f"cannot clear cache {cache.path}: it is read-only; fix its permissions or "
                             "clear a writable copy")
        what = f"the entries of {model}" if model else "all entries"
        if not yes:
            click.confirm(f"remove {what} from {cache.path}?", abort=True)
        n = cache.clear(model)
    click.echo(f"removed {n} entr{'y' if n == 1 else 'ies'} from {cache.path}")


@command.command("export")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@_path_option
@click.option("--run", "run_id", default=None, help="Only the entries this run used (PROTOKIT_RUN_ID).")
def export(out: Path, path: Path | None, run_id: str | None) -> None:
    """Write entries to OUT as a cassette (deterministic JSON)."""
    with _open(path) as cache:
        keys = None
        if run_id is not None:
            keys = cache.keys_for_run(run_id)
            if not keys:
                raise CacheError(f"run {run_id!r} used no cached entries in {cache.path}; "
                                 "check the run id (the PROTOKIT_RUN_ID the run was given)")
        n = cache.export(out, keys)
    click.echo(f"wrote {n} entr{'y' if n == 1 else 'ies'} to {out}")
