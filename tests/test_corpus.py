"""Bad notebooks: `protokit promote` refuses each with a message naming the cell, exit 1, and no files."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
from pathlib import Path

import pytest

from protokit.cli.main import main

CORPUS = Path(__file__).resolve().parent / "corpus"
EXPECTED: dict[str, dict[str, list[str]]] = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))


def test_corpus_is_large_and_current(tmp_path: Path) -> None:
    assert len(EXPECTED) >= 25
    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
    assert spec is not None and spec.loader is not None
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    maker.main(tmp_path / "corpus")
    for path in sorted((tmp_path / "corpus").iterdir()):
        assert path.read_bytes() == (CORPUS / path.name).read_bytes(), f"regenerate the corpus: {path.name}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_promote_refuses(name: str, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    stream = io.StringIO()
    with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream), \
            pytest.raises(SystemExit) as exit_info:
        main(["promote", str(CORPUS / name), "--name", "corpus_module", "--out", str(out_dir)])
    text = stream.getvalue()
    assert exit_info.value.code not in (0, None), text
    for needle in EXPECTED[name]["contains"]:
        assert needle in text, f"{needle!r} not in:\n{text}"
    for secret in EXPECTED[name]["excludes"]:
        assert secret not in text, "a secret was printed"
    assert text.rstrip().splitlines()[-1].startswith("error: ")
    assert not out_dir.exists() or not any(out_dir.rglob("*")), "promote wrote files for a bad notebook"
    assert not (CORPUS / ".protokit").exists()
