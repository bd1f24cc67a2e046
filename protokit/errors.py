"""protokit's one exception tree.

Every error protokit raises on purpose derives from :class:`ProtokitError`, and
its message is one line that says what is wrong and how to fix it::

    ProtokitError
    ├── ConfigError             bad argument, unknown provider/option, missing key (also a ValueError)
    │   ├── MissingKeyError     no API key; names the environment variable to set
    │   ├── MissingExtraError   the notebook side is not installed: pip install 'protokit[lab]'; also an ImportError
    │   ├── ParameterTypeError  a notebook parameter's value does not fit its type (also a TypeError)
    │   └── ScorerTypeError     a scorer returned no bool, number or {"score", "reason"} (also a TypeError)
    ├── ProviderError           a model call failed (carries status, retryable)
    │   ├── AuthError           401/403
    │   ├── RateLimitError      429 (carries retry_after seconds)
    │   ├── ProviderTimeoutError  the call took longer than its timeout (TimeoutError_ is its old name)
    │   ├── BadRequestError     400/404/422: the request itself is wrong
    │   ├── ContentFilterError  the provider refused the content
    │   ├── ServerError         5xx or a malformed response body
    │   ├── ProviderConnectionError  could not reach the server / connection reset
    │   └── SchemaError         the answer does not match the schema= it was asked for (carries response)
    ├── CacheError              the cache file is corrupt, foreign or unusable
    │   └── CacheMiss           replay mode and no recorded response for a request
    ├── Cancelled               a run was cancelled before this call was made
    ├── BudgetExceeded          a run's budget was spent before this call was made
    ├── ExpectationFailed       a pk.expect gate does not hold (in a notebook; a promoted run() only logs it)
    ├── NotebookError           a notebook is invalid (carries cell_index)
    │   └── CellError           one cell is: its label leads the message (carries detail)
    ├── PromoteError            code generation or its checks failed
    │   └── GateError           the notebook did not pass validation (carries report)
    └── SandboxError            the sandbox server could not start

Where they are raised: ParameterTypeError by :mod:`protokit.notebook.params` (and the
promoted module's command line), ScorerTypeError by :func:`protokit.scorers.to_score`,
CellError by the notebook gate and ``protokit run``, GateError by :func:`protokit.promote.promote`,
MissingExtraError by :func:`protokit._extras.require_lab`;
the modules that raise them re-export them, so older imports keep working.

Every message is passed through :func:`safe_text` when the error is built, so no
error protokit raises (nor any it wraps: a provider's error body, a socket error,
the exception of a Python-callable model) can carry a credential into results,
exports, the run store, logs or the terminal.
"""

from __future__ import annotations

import contextlib
import re
import sys
from typing import Any

from protokit.secrets import REDACTED, redact

__all__ = [
    "AuthError",
    "BadRequestError",
    "BudgetExceeded",
    "CacheError",
    "CacheMiss",
    "Cancelled",
    "CellError",
    "ConfigError",
    "ContentFilterError",
    "GateError",
    "MissingExtraError",
    "MissingKeyError",
    "NotebookError",
    "ParameterTypeError",
    "PromoteError",
    "ProtokitError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
    "SandboxError",
    "SchemaError",
    "ScorerTypeError",
    "ServerError",
    "TimeoutError_",
    "safe_text",
]

# The user-info of a URL (``scheme://user:password@host``): a credential whatever its shape.
_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#\s@]+@")


def safe_text(text: str) -> str:
    """``text`` fit to show or store: key-shaped values masked, URL user-info replaced.

    Redact *before* shortening a text: a key cut in half no longer looks like one.
    """
    return redact(_USERINFO.sub(rf"\1{REDACTED}@", text))


class ProtokitError(Exception):
    """Base of every error protokit raises on purpose."""

    def __init__(self, *args: object) -> None:
        # The one choke point for error texts. Every error raised on purpose is built here,
        # and so is every wrapper of a foreign exception (SDK bodies, socket errors, a
        # callable model's exception, the runner's "unexpected" branch), since they all
        # interpolate it into a ProtokitError's message. Redacting here rather than at each
        # display or storage site means a new place that shows or stores an error cannot
        # forget to. Texts that never become a ProtokitError (scorer exceptions, the CLI's
        # other exceptions) call safe_text where they are built.
        super().__init__(*(safe_text(a) if isinstance(a, str) else a for a in args))
        _redact_handled()


def _redact_handled() -> None:
    """Redact, in place, the texts of the exception being handled and of its causes.

    A ProtokitError built in an ``except`` block is raised from that exception (``from exc``
    or implicitly), and a traceback (a notebook's, the terminal's) prints the whole chain:
    an SDK error quoting its body, a callable model's own exception. Only their ``args``
    strings change; the objects (and an SDK error's ``body``) are otherwise left as they are.
    """
    exc = sys.exc_info()[1]
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if not isinstance(exc, ProtokitError) and any(isinstance(a, str) for a in exc.args):
            with contextlib.suppress(Exception):  # an exotic exception type: its text stays as it was
                exc.args = tuple(safe_text(a) if isinstance(a, str) else a for a in exc.args)
        exc = exc.__cause__ or exc.__context__


class ConfigError(ProtokitError, ValueError):
    """A bad argument, unknown provider or option, or missing configuration."""


class MissingKeyError(ConfigError):
    """No API key was found for a provider."""


class MissingExtraError(ConfigError, ImportError):
    """A feature of the notebook side was used where only the runtime is installed; ``name`` is the missing module.

    Raised by :func:`protokit._extras.require_lab`; an ImportError too, so ``except ImportError`` around an
    optional import still catches it.
    """

    def __init__(self, message: str, *, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


class ParameterTypeError(ConfigError, TypeError):
    """A value does not fit its notebook parameter's type; the message names the parameter, never a secret."""


class ScorerTypeError(ConfigError, TypeError):
    """A scorer returned something that is not a bool, a number or a ``{"score", "reason"}`` dict."""


class ProviderError(ProtokitError):
    """A model call failed; ``kind`` names the class for tables and reports."""

    kind = "provider"
    retryable = False

    def __init__(self, message: str, *, status: int | None = None, model: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.model = model


class AuthError(ProviderError):
    """The provider rejected the credentials (401/403)."""

    kind = "auth"


class RateLimitError(ProviderError):
    """The provider asked us to slow down (429)."""

    kind = "rate_limit"
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 429,
        model: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, model=model)
        self.retry_after = retry_after


class ProviderTimeoutError(ProviderError):
    """The call did not finish within its timeout."""

    kind = "timeout"
    retryable = True


# Deprecated: the old name of ProviderTimeoutError, kept so that users' ``except pk.TimeoutError_``
# still catches timeouts. The same class, not a subclass, so isinstance checks agree both ways.
TimeoutError_ = ProviderTimeoutError


class BadRequestError(ProviderError):
    """The request is wrong (unknown model, bad option); retrying will not help."""

    kind = "bad_request"


class ContentFilterError(ProviderError):
    """The provider refused the prompt or the answer on content grounds."""

    kind = "content_filter"


class ServerError(ProviderError):
    """The provider failed (5xx) or sent a body that could not be read."""

    kind = "server"
    retryable = True


class ProviderConnectionError(ProviderError):
    """The provider could not be reached, or the connection was reset."""

    kind = "connection"
    retryable = True


class SchemaError(ProviderError):
    """The answer does not match the ``schema=`` it was asked for: not JSON, or not valid against it.

    Raised after the answer was recorded, so a replay gives the same error; ``response`` is the
    answer (its text, tokens and cost), kept for the results row.
    """

    kind = "schema"

    def __init__(self, message: str, *, status: int | None = None, model: str | None = None,
                 response: Any = None) -> None:
        super().__init__(message, status=status, model=model)
        self.response = response


class CacheError(ProtokitError):
    """The cache file cannot be used (corrupt, foreign, wrong permissions)."""


class CacheMiss(CacheError):
    """Replay mode found no recorded response for a request."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class Cancelled(ProtokitError):
    """The run was cancelled before this call was made."""

    kind = "cancelled"


class BudgetExceeded(ProtokitError):
    """The run's budget was spent before this call was made."""

    kind = "not_run_budget"


class ExpectationFailed(ProtokitError):
    """A ``pk.expect`` gate does not hold for the notebook's declared output."""


class NotebookError(ProtokitError):
    """A notebook is unreadable or breaks a promotion rule."""

    def __init__(self, message: str, *, cell_index: int | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.cell_index = cell_index
        self.path = path


class CellError(NotebookError):
    """A NotebookError about one cell; ``detail`` is the message without the cell's label.

    ``label`` names the cell as every message does (``cell 3 (`x = f()`)``, from
    :func:`protokit.notebook.nbfile.cell_label`); it defaults to ``cell N``, or ``notebook``.
    """

    def __init__(self, detail: str, *, cell_index: int | None, label: str | None = None,
                 path: str | None = None) -> None:
        if label is None:
            label = "notebook" if cell_index is None else f"cell {cell_index}"
        detail = safe_text(detail)  # error values can quote a key; messages never show one whole
        super().__init__(f"{label}: {detail}", cell_index=cell_index, path=path)
        self.detail = detail


class PromoteError(ProtokitError):
    """Promotion could not produce a module that matches the notebook."""


class GateError(PromoteError):
    """The notebook did not pass validation; ``report`` (the gate's Report) holds every finding."""

    def __init__(self, report: Any) -> None:
        first = report.errors[0]
        where = "the notebook" if first.cell_index is None else f"cell {first.cell_index}"
        n = len(report.errors)
        super().__init__(f"{report.path} did not pass the promotion gate: {n} error{'s' * (n != 1)}, the first "
                         f"in {where}: {first.message}")
        self.report = report


class SandboxError(ProtokitError):
    """The sandbox server could not start (port in use, bad script or fault spec)."""
