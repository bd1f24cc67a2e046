"""The notebook side is an extra: ``pip install protokit`` is the runtime of promoted modules.

A production install (models, the cache, compare, the sandbox, the command line's ``cache``,
``runs`` and ``sandbox``) has no Jupyter in it. Whatever needs the notebook side (``protokit run``,
``validate``, ``promote``, ``demo``, ``new``, ``lab``, the Compare widget, ``Comparison.plot()``)
asks :func:`require_lab` first, which fails with one line naming the extra to install.
"""

from __future__ import annotations

import importlib.util

from protokit.errors import MissingExtraError

__all__ = ["LAB_INSTALL", "LAB_MODULES", "NOTEBOOK", "lab_missing", "missing_extra", "require_lab"]

LAB_INSTALL = "pip install 'protokit[lab]'"
# What executing, validating and promoting a notebook imports (papermill runs it, nbclient drives
# the kernel ipykernel provides, nbformat reads and writes the file).
NOTEBOOK = ("nbformat", "nbclient", "papermill", "ipykernel")
# Top-level import names that come with the extra (and what they bring), for errors raised past require_lab.
LAB_MODULES = frozenset({
    *NOTEBOOK, "jupyterlab", "jupyter_server", "jupyter_client", "ipywidgets", "IPython", "traitlets", "nbval",
    "jinja2", "matplotlib", "zmq", "pytest",
})


def lab_missing(*modules: str) -> str | None:
    """The first of ``modules`` (top-level import names) that cannot be imported here, or None."""
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # an import hook refused it, or a broken half-import
            found = False
        if not found:
            return name
    return None


def require_lab(what: str, *modules: str) -> None:
    """Raise :class:`~protokit.errors.MissingExtraError` when one of ``modules`` is not installed.

    ``what`` names the feature as the user called it (``protokit run``, ``pk.Compare``).
    """
    missing = lab_missing(*modules)
    if missing is not None:
        raise MissingExtraError(f"{what} needs the notebook extra ({missing} is not installed): {LAB_INSTALL}",
                                name=missing)


def missing_extra(what: str, exc: ImportError) -> MissingExtraError | None:
    """``exc`` told as a MissingExtraError when the module it could not import is one of the extra's."""
    if isinstance(exc, MissingExtraError):
        return exc
    name = (exc.name or "").split(".")[0]
    if name not in LAB_MODULES:
        return None
    return MissingExtraError(f"{what} needs the notebook extra ({name} is not installed): {LAB_INSTALL}", name=name)
