"""``protokit lab``: JupyterLab on the notebooks folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import click

from protokit._extras import LAB_INSTALL
from protokit.errors import ConfigError
from protokit.models.env import BASE_URL_VARS, KEY_VARS, pointed_at


@click.command("lab")
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--port", type=int, default=None, help="Port for JupyterLab (default: Jupyter's own choice).")
@click.option("--sandbox/--no-sandbox", default=False,
              help=f"Also start the offline sandbox and point {'/'.join(BASE_URL_VARS)} at it.")
def command(folder: Path | None, port: int | None, sandbox: bool) -> None:
    """Start JupyterLab on FOLDER (default: ./notebooks if it exists, else the current folder)."""
    root = folder or (Path("notebooks") if Path("notebooks").is_dir() else Path("."))
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder; give the folder that holds your notebooks")
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or shutil.which("jupyter")
    if jupyter is None:
        raise ConfigError(f"jupyter is not installed in this environment; {LAB_INSTALL}")
    cmd = [jupyter, "lab", f"--ServerApp.root_dir={root.resolve()}"]
    if port is not None:
        cmd.append(f"--port={port}")
    if os.geteuid() == 0:
        cmd.append("--allow-root")  # Jupyter refuses to run as root without it
    env = dict(os.environ)
    if sandbox:
        from protokit.demo import examples_dir
        from protokit.sandbox import Sandbox

        # The example notebooks' simulated models, so they run as they do in `protokit demo`.
        script = examples_dir() / "data" / "simulated_models.yaml"
        sb = Sandbox(port=0, script=script if script.is_file() else None).start()
        env.update(pointed_at({"openai": sb.openai_base_url, "anthropic": sb.anthropic_base_url}))
        for name in KEY_VARS:
            env.setdefault(name, "sandbox")  # the sandbox takes any key; a real one set already is kept
        env.setdefault("PROTOKIT_PRICES", str(examples_dir() / "data" / "simulated_prices.json"))
        click.echo(f"sandbox on {sb.url} (models are simulated)")
    raise SystemExit(subprocess.call(cmd, env=env))
