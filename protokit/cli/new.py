"""``protokit new``: a prototype notebook from one of the starter templates in templates/notebooks/."""

from __future__ import annotations

import contextlib
import keyword
import re
from pathlib import Path

import click

from protokit._files import atomic_write_text
from protokit.errors import ConfigError

# name -> what the starter compares; the notebooks come from templates/notebooks/make_templates.py.
TEMPLATES: dict[str, str] = {
    "compare": "free-form answers, scored by similarity to a reference and by a judge model",
    "classify": "labels, scored by exact match",
    "extract": "JSON extraction, scored by json_valid, json_schema and exact match per field",
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_name(name: str) -> str:
    """NAME without a trailing ``.ipynb``; ConfigError unless it can also name the promoted module."""
    stem = name.removesuffix(".ipynb")
    # The same NAME is later given to `protokit promote --name`, so it must be a module name too.
    if _NAME.fullmatch(stem) and not keyword.iskeyword(stem):
        return stem
    hint = _suggest(stem)
    try_it = f"; try {hint!r}" if hint else ""
    if keyword.iskeyword(stem):
        raise ConfigError(f"{name!r} is a Python keyword, so it cannot name the promoted module{try_it}")
    raise ConfigError(f"{name!r} is not a valid name: use letters, digits and underscores, not starting with "
                      f"a digit (it becomes NAME.ipynb and, once promoted, the module NAME.py){try_it}")


def _suggest(stem: str) -> str:
    fixed = re.sub(r"\W+", "_", stem, flags=re.ASCII).strip("_").lower()
    if fixed[:1].isdigit():
        fixed = f"nb_{fixed}"
    if keyword.iskeyword(fixed):
        fixed = f"{fixed}_nb"
    return fixed if fixed and fixed != stem else ""


def title_for(name: str) -> str:
    """A human title from a file name: ``ticket_triage`` -> ``Ticket triage``."""
    words = name.replace("_", " ").split()
    text = " ".join(words) or name
    return text[:1].upper() + text[1:]


def template_path(template: str) -> Path:
    """The starter notebook for ``template``, from the installed package or the source checkout."""
    from protokit.promote.codegen import templates_dir

    path = templates_dir() / "notebooks" / f"{template}.ipynb"
    if not path.is_file():
        raise ConfigError(f"template {path} is missing; reinstall protokit (pip install --force-reinstall protokit)")
    return path


def render(template: str, name: str) -> str:
    """The template notebook's JSON text with ``{{title}}`` and ``{{name}}`` filled in."""
    import nbformat

    nb = nbformat.read(template_path(template), as_version=4)
    title = title_for(name)
    for cell in nb.cells:
        cell.source = cell.source.replace("{{title}}", title).replace("{{name}}", name)
    text: str = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def new_notebook(name: str, template: str = "compare", out_dir: Path = Path("."), *, force: bool = False) -> Path:
    """Write ``out_dir/NAME.ipynb`` from ``template``; refuses to overwrite unless ``force``."""
    stem = check_name(name)
    if template not in TEMPLATES:
        raise ConfigError(f"no template {template!r}; choose one of: {', '.join(TEMPLATES)}")
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir} is a file; give a folder")
    path = out_dir / f"{stem}.ipynb"
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists; pass --force to overwrite it")
    text = render(template, stem)
    made = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)  # a starter notebook: the umask's mode, as any file
    except OSError as exc:
        if made:
            with contextlib.suppress(OSError):
                out_dir.rmdir()  # only if still empty
        raise ConfigError(f"cannot write {path}: {(exc.strerror or str(exc)).lower()}; pick a writable folder "
                          "with --out") from None
    return path


# "\b" keeps click from rewrapping the list into one paragraph.
@click.command("new", epilog="\b\nTemplates:\n" + "\n".join(f"  {k:<9} {v}" for k, v in TEMPLATES.items()))
@click.argument("name")
@click.option("--template", "-t", type=click.Choice(list(TEMPLATES)), default="compare", show_default=True,
              help="The starter notebook to copy.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder to write NAME.ipynb into (created if missing).")
@click.option("--force", is_flag=True, default=False, help="Overwrite NAME.ipynb if it exists.")
def command(name: str, template: str, out_dir: Path, force: bool) -> None:
    """Write NAME.ipynb, a prototype notebook that compares models on a few example cases."""
    path = new_notebook(name, template, out_dir, force=force)
    stem = path.stem
    click.echo(f"wrote {path} (template: {template})")
    click.echo("next steps:")
    click.echo(f"  protokit lab {path.parent}    # open {path.name}, put in your own cases, run all, save")
    click.echo(f"  protokit validate {path}")
    click.echo(f"  protokit promote {path} --name {stem}")
