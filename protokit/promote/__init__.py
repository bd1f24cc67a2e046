"""``protokit promote``: a validated notebook becomes a parameterized, tested module.

>>> from protokit.promote import promote
>>> result = promote("triage.ipynb", "triage", "src/")
>>> result.files   # src/triage.py, src/tests/test_triage.py, src/tests/cassettes/triage.json

The steps live in named modules: :mod:`~protokit.promote.pipeline` (their order),
:mod:`~protokit.promote.golden` (the test cases), :mod:`~protokit.promote.build` (the
files' texts, from :mod:`~protokit.promote.codegen` and :mod:`~protokit.promote.cassette`,
proven by :mod:`~protokit.promote.differential`) and :mod:`~protokit.promote.files`
(writing them all or none).
"""

from __future__ import annotations

from protokit.errors import GateError
from protokit.promote.pipeline import PromoteResult, check_module_name, promote

__all__ = ["GateError", "PromoteResult", "check_module_name", "promote"]
