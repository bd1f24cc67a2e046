"""One source for each fact: every error in errors.py, provider variables only in protokit/models/.

The scans read the source as text (ast), so they hold for modules that are not imported here.
"""

from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path

import pytest

import protokit as pk
from protokit import errors
from protokit.models.env import BASE_URL_VARS, KEY_VARS, PROVIDER_ENV, PROVIDER_VARS, pointed_at

ROOT = Path(pk.__file__).resolve().parent
# Raised inside the sandbox server only, where it becomes a 400 body: it never reaches a caller.
NOT_IN_THE_TREE = {("sandbox/replies.py", "BadRequest")}


def _sources() -> list[tuple[str, ast.Module]]:
    return [(p.relative_to(ROOT).as_posix(), ast.parse(p.read_text(encoding="utf-8")))
            for p in sorted(ROOT.rglob("*.py"))]


def test_every_exception_class_is_defined_in_errors_py() -> None:
    exception_names = {n for n, v in vars(builtins).items()
                       if isinstance(v, type) and issubclass(v, BaseException) and not issubclass(v, Warning)}
    exception_names |= set(errors.__all__)
    outside = []
    for where, tree in _sources():
        if where == "errors.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                if bases & exception_names and (where, node.name) not in NOT_IN_THE_TREE:
                    outside.append(f"{where}: class {node.name}")
    assert outside == []


def test_every_error_is_in_the_tree_drawing_and_in_the_public_face() -> None:
    doc = errors.__doc__ or ""
    classes = [n for n in errors.__all__ if isinstance(getattr(errors, n), type)]
    for name in classes:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.ProtokitError), name
        assert getattr(pk, name) is cls, f"pk.{name}"
        if name != "TimeoutError_":  # the deprecated alias is named beside its class
            assert re.search(rf"[─ ]{name}\b", doc), f"{name} is missing from the tree in errors.py"


def test_moved_errors_keep_their_parents_and_old_imports() -> None:
    from protokit.notebook.nbfile import CellError
    from protokit.notebook.params import ParameterTypeError
    from protokit.promote import GateError
    from protokit.scorers import ScorerTypeError

    assert CellError is errors.CellError and issubclass(CellError, errors.NotebookError)
    assert ParameterTypeError is errors.ParameterTypeError and issubclass(ParameterTypeError, TypeError)
    assert ScorerTypeError is errors.ScorerTypeError and issubclass(ScorerTypeError, TypeError)
    assert GateError is errors.GateError and issubclass(GateError, errors.PromoteError)
    err = CellError("boom", cell_index=3, label="cell 3 (`x = f()`)")
    assert (str(err), err.detail, err.cell_index) == ("cell 3 (`x = f()`): boom", "boom", 3)


def test_the_timeout_error_has_a_clear_name_and_the_old_one_still_works() -> None:
    assert pk.TimeoutError_ is pk.ProviderTimeoutError is errors.ProviderTimeoutError
    exc = pk.ProviderTimeoutError("m: no answer within 1s", model="m")
    assert isinstance(exc, pk.TimeoutError_) and exc.kind == "timeout" and exc.retryable
    assert "TimeoutError_" in pk.__all__ and "ProviderTimeoutError" in pk.__all__


def test_provider_variables_are_named_only_in_protokit_models() -> None:
    pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, PROVIDER_VARS)) + r")\b")
    named = [f"{p.relative_to(ROOT.parent)}:{i}"
             for p in [*ROOT.rglob("*.py"), *(ROOT.parent / "templates").glob("*.j2")]
             if not p.relative_to(ROOT.parent).as_posix().startswith("protokit/models/")
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert named == []


def test_the_adapters_take_their_variables_from_the_table() -> None:
    from protokit.models.anthropic_adapter import AnthropicModel
    from protokit.models.openai_adapter import OpenAIModel

    for cls in (OpenAIModel, AnthropicModel):
        assert (cls.key_env_var, cls.base_url_env_var) == (PROVIDER_ENV[cls.provider].key,
                                                           PROVIDER_ENV[cls.provider].base_url)
    assert KEY_VARS == ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")
    assert BASE_URL_VARS == ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL")
    assert PROVIDER_VARS == KEY_VARS + BASE_URL_VARS
    assert pointed_at({"anthropic": "http://h"}, key="k") == {"ANTHROPIC_BASE_URL": "http://h",
                                                               "ANTHROPIC_API_KEY": "k"}
    with pytest.raises(KeyError):
        pointed_at({"nope": "http://h"})


def test_module_names_say_what_they_do() -> None:
    import protokit.notebook
    import protokit.notebook.gate

    assert not (ROOT / "magics.py").exists() and not (ROOT / "notebook" / "magics.py").exists()
    assert (ROOT / "cell_magic.py").is_file() and (ROOT / "notebook" / "rewrite_magics.py").is_file()
    # No submodule shadows the function, whichever way it is imported.
    assert not (ROOT / "notebook" / "validate.py").exists()
    from protokit.notebook import validate

    assert validate is protokit.notebook.validate is protokit.notebook.gate.validate
