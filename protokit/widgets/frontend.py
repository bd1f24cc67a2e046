"""Insert a code cell below the widget's cell from a button callback.

A kernel can only add a cell with ``set_next_input``, and only in the reply to a
cell execution; a widget callback has no execution to reply to. JupyterLab 4
(and Notebook 7, built on it) does run ``application/javascript`` outputs made in
the session (they are trusted), including those shown in an ``Output`` widget,
but gives the script only its DOM element, not the application. So the script
does what a person would: it makes the widget's cell the selected one, presses
``B`` (insert cell below), ``Enter`` (edit it), types the line, presses
``Escape``. Those are Lab's default shortcuts, dispatched to its keyboard
handler; where they are remapped or the page is not Lab (VS Code, Colab), the
script does nothing and the widget's copy box still shows the line.

The script carries its creation time and does nothing if it is older than a few
minutes, so a notebook saved with widget state does not insert cells on reopening.
"""

from __future__ import annotations

import json
import time
from typing import Any

__all__ = ["MAX_AGE_S", "insert_cell_below", "insert_cell_script"]

MAX_AGE_S = 300

_SCRIPT = r"""
(function (element) {
  const text = __TEXT__;
  if (Date.now() - __CREATED__ > __MAX_AGE_MS__) { return; }
  const codes = {b: 66, Enter: 13, Escape: 27};
  const mark = (result) => element.setAttribute('data-protokit-insert', result);
  const press = (target, key) => {
    const ev = new KeyboardEvent('keydown', {key: key, bubbles: true, cancelable: true});
    // Lumino reads the legacy keyCode, which KeyboardEvent's constructor does not set.
    Object.defineProperty(ev, 'keyCode', {get: () => codes[key]});
    Object.defineProperty(ev, 'which', {get: () => codes[key]});
    target.dispatchEvent(ev);
  };
  const until = (test, then, tries) => {
    if (test()) { then(); return; }
    if (tries <= 0) { mark('failed'); return; }
    setTimeout(() => until(test, then, tries - 1), 25);
  };
  // The output is rendered before it is attached: wait until it is in the page.
  until(() => element.isConnected, () => {
    const cell = element.closest('.jp-Cell');
    const notebook = element.closest('.jp-Notebook');
    if (!cell || !notebook) { mark('unsupported'); return; }
    if (notebook.classList.contains('jp-mod-editMode')) { press(cell, 'Escape'); }
    // The click on the widget's button made its cell the active one; anything else is not ours to touch.
    if (!cell.classList.contains('jp-mod-active') || notebook.classList.contains('jp-mod-readWrite')) {
      mark('failed'); return;
    }
    const after = cell.nextElementSibling;
    cell.focus();
    press(cell, 'b');
    until(() => cell.nextElementSibling !== after && cell.nextElementSibling
                && cell.nextElementSibling.classList.contains('jp-mod-active'), () => {
      const fresh = cell.nextElementSibling;
      fresh.focus();
      press(fresh, 'Enter');
      until(() => fresh.contains(document.activeElement) && document.activeElement.isContentEditable, () => {
        const typed = document.execCommand('insertText', false, text);
        press(document.activeElement, 'Escape');
        mark(typed ? 'ok' : 'failed');
      }, 80);
    }, 80);
  }, 200);
})(element);
"""


def insert_cell_script(text: str, *, now: float | None = None) -> str:
    """JavaScript that inserts a code cell holding ``text`` below the cell it is shown in."""
    created_ms = int((time.time() if now is None else now) * 1000)
    return (_SCRIPT.replace("__TEXT__", json.dumps(text))
            .replace("__CREATED__", str(created_ms))
            .replace("__MAX_AGE_MS__", str(MAX_AGE_S * 1000)))


def insert_cell_below(output: Any, text: str) -> bool:
    """Show the insertion script in ``output`` (a hidden ipywidgets Output); False without a kernel."""
    try:
        from IPython import get_ipython
        from IPython.display import Javascript, display
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return False  # plain Python or a terminal: no front end to insert into
    output.clear_output()
    with output:
        display(Javascript(insert_cell_script(text)))
    return True
