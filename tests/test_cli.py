"""The command line as a whole: every command has help, errors are one line with a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from protokit.cli.main import COMMANDS, cli

PROTOKIT = str(Path(sys.executable).with_name("protokit"))


def test_help_lists_every_command():
    out = CliRunner().invoke(cli, ["--help"]).output
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_useful_help(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and len(result.output.splitlines()) >= 4


def test_unknown_command_fails():
    done = subprocess.run([PROTOKIT, "frobnicate"], capture_output=True, text=True)
    assert done.returncode != 0 and "No such command" in done.stderr


def test_lab_refuses_a_missing_folder(tmp_path):
    done = subprocess.run([PROTOKIT, "lab", str(tmp_path / "nope")], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope'} is not a folder; give the folder "
                                                "that holds your notebooks"]


def test_demo_live_without_keys_says_what_to_set(tmp_path, monkeypatch):
    done = subprocess.run([PROTOKIT, "demo", "--live", "--out", str(tmp_path / "d")], capture_output=True,
                          text=True, env={k: v for k, v in __import__("os").environ.items()
                                          if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")})
    assert done.returncode == 1
    assert "OPENAI_API_KEY or ANTHROPIC_API_KEY" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "d").exists()  # refused before anything was written
