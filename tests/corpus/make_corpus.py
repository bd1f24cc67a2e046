"""Write the corpus of bad notebooks that `protokit promote` must refuse, plus expected.json.

Run it from anywhere: ``python tests/corpus/make_corpus.py [OUT_DIR]`` (default: this
directory). Each entry says what the refusal message must contain (the cell it
names, or the file problem) and what it must never contain (a secret in full).
The fake keys below are built from pieces so that no complete key shape sits in
this source file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}
OPENAI_KEY = "sk-" + "proj-" + "Xq7T9vLm2Rb8Kd4Wn6Yp1Zc3"
ANTHROPIC_KEY = "sk-" + "ant-" + "api03-Hj5Kq8Vn2Mx7Lr4Tz9Bw6Pc1"
AWS_KEY = "AKIA" + "Q7ZRT4XK2MPL9WJB"
PASSWORD = "Zq8vR2mX" + "9pL4tK7w"
HEX_TOKEN = "a94a8fe5ccb19ba6" + "1c4c0873d391e987" + "982fbbd3"  # 40 hex characters, as many tokens are
HUMAN_PASSWORD = "hunter2" + "hunter2"  # low entropy, still a password
GITHUB_TOKEN = "ghp" + "_" + "Rk7Lm2Qx9Wv4Tz1Np6Hs3Jd8Fb5Gc0Ya2Ue"


def cell(source: str, *, tags: list[str] | None = None, outputs: list[Any] | None = None,
         count: int | None = -1) -> dict[str, Any]:
    """A code cell; count=-1 means "numbered in order" (filled in by notebook())."""
    meta: dict[str, Any] = {"tags": tags} if tags else {}
    return {"cell_type": "code", "execution_count": count, "metadata": meta, "outputs": outputs or [],
            "source": source}


def markdown(source: str) -> dict[str, Any]:
    """A markdown cell."""
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def stdout(text: str) -> dict[str, Any]:
    """A stored stdout stream output."""
    return {"output_type": "stream", "name": "stdout", "text": text}


def notebook(*cells: dict[str, Any], metadata: dict[str, Any] | None = None) -> str:
    """An nbformat 4.5 notebook as JSON, execution counts numbered in order where not given."""
    n = 0
    out = []
    for i, c in enumerate(cells):
        c = dict(c, id=f"cell-{i}")
        if c["cell_type"] == "code" and c["execution_count"] == -1:
            n += 1
            c["execution_count"] = n
        out.append(c)
    nb = {"cells": out, "metadata": {"kernelspec": KERNEL, **(metadata or {})}, "nbformat": 4,
          "nbformat_minor": 5}
    return json.dumps(nb, indent=1, sort_keys=True) + "\n"


def params(source: str) -> dict[str, Any]:
    """A cell tagged parameters."""
    return cell(source, tags=["parameters"])


# name -> (file text, substrings the message must contain, substrings it must not contain)
CORPUS: dict[str, tuple[str, list[str], list[str]]] = {
    "not_a_notebook": ("this is a plain text file, not a notebook\n", ["not a notebook"], []),
    "invalid_json": ('{"cells": [\n', ["invalid JSON"], []),
    "empty_file": ("", ["invalid JSON"], []),
    "json_not_notebook": ('{"hello": "world"}\n', ["not a notebook"], []),
    "nbformat3": (json.dumps({"metadata": {}, "nbformat": 3, "nbformat_minor": 0,
                              "worksheets": [{"cells": [{"cell_type": "code", "input": "1 + 1",
                                                         "language": "python", "outputs": []}]}]}),
                  ["nbformat 3"], []),
    "params_not_literal": (notebook(params("n = len('abc')"), cell("print(n)", outputs=[stdout("3\n")])),
                           ["cell 0", "not a literal"], []),
    "params_two_cells": (notebook(params("n = 1"), params("m = 2"), cell("print(n + m)", outputs=[stdout("3\n")])),
                         ["cell 1", "second `parameters` cell"], []),
    "params_type_mismatch": (notebook(params("n: int = 'three'"), cell("print(n)", outputs=[stdout("three\n")])),
                             ["cell 0", "expects int"], []),
    "params_duplicate": (notebook(params("n = 1\nn = 2"), cell("print(n)", outputs=[stdout("2\n")])),
                         ["cell 0", "assigned twice"], []),
    "params_unsupported_type": (notebook(params("x: numpy.ndarray = None"), cell("print(x)")),
                                ["cell 0", "unsupported parameter type"], []),
    "params_call_default": (notebook(params("import os\nhome = os.getenv('HOME')"), cell("print(home)")),
                            ["cell 0", "not a literal"], []),
    "stored_error": (notebook(cell("x = 1"), cell("y = x / 0", outputs=[{
        "output_type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": []}])),
        ["cell 1", "ZeroDivisionError"], []),
    "raises_on_rerun": (notebook(cell("import os\nvalue = int(os.environ.get('PROTOKIT_CORPUS_UNSET', 'x'))\n"
                                      "print(value)", outputs=[stdout("7\n")])),
                        ["cell 0", "ValueError"], []),
    "stale_output": (notebook(cell("print(1 + 1)", outputs=[stdout("3\n")])), ["cell 0", "differs"], []),
    "sys_exit": (notebook(cell("import sys\nprint('bye')\nsys.exit(0)", outputs=[stdout("bye\n")])),
                 ["cell 0", "sys.exit"], []),
    "shell_pip": (notebook(cell("!pip install requests\nimport json")), ["cell 0", "shell command"], []),
    "shell_capture": (notebook(cell("files = !ls\nprint(files)")), ["cell 0", "shell command"], []),
    "magic_run": (notebook(cell("%run helper.py\nprint('ok')")), ["cell 0", "%run"], []),
    "magic_cd": (notebook(cell("x = 1"), cell("%cd /tmp\nprint(x)")), ["cell 1", "%cd"], []),
    "magic_timeit": (notebook(cell("%timeit sum(range(10))")), ["cell 0", "%timeit"], []),
    "cell_magic_bash": (notebook(cell("x = 1"), cell("%%bash\necho hi")), ["cell 1", "%%bash"], []),
    "magic_pip": (notebook(cell("%pip install pandas")), ["cell 0", "%pip"], []),
    "secret_openai_source": (notebook(cell(f"client_key = '{OPENAI_KEY}'\nprint(len(client_key))",
                                           outputs=[stdout("27\n")])),
                             ["cell 0", "OpenAI project key", OPENAI_KEY[:4] + "…"], [OPENAI_KEY[:12]]),
    "secret_anthropic_output": (notebook(cell("import os\nprint(os.environ.get('ANTHROPIC_API_KEY'))",
                                              outputs=[stdout(ANTHROPIC_KEY + "\n")])),
                                ["cell 0", "Anthropic API key", "output"], [ANTHROPIC_KEY[:12]]),
    "secret_aws": (notebook(markdown("# AWS"), cell(f"AWS_ID = '{AWS_KEY}'")),
                   ["cell 1", "AWS access key"], [AWS_KEY[:10]]),
    "secret_password": (notebook(cell(f"db_password = '{PASSWORD}'")),
                        ["cell 0", "db_password"], [PASSWORD[:8]]),
    "secret_token_hex": (notebook(cell(f'token = "{HEX_TOKEN}"\nprint(len(token))', outputs=[stdout("40\n")])),
                         ["cell 0", "'token'"], [HEX_TOKEN[:8]]),
    "secret_human_password": (notebook(markdown("# Login"), cell(f'user = "admin"\npassword = "{HUMAN_PASSWORD}"')),
                              ["cell 1", "'password'"], [HUMAN_PASSWORD[:8]]),
    "secret_github_token": (notebook(cell(f"headers = {{'Authorization': 'token {GITHUB_TOKEN}'}}")),
                            ["cell 0", "GitHub token"], [GITHUB_TOKEN[:10]]),
    "secret_in_markdown": (notebook(markdown(f"Use the key {OPENAI_KEY} to run this."), cell("x = 1")),
                           ["cell 0", "OpenAI project key"], [OPENAI_KEY[:12]]),
    "secret_injected_parameters": (notebook(
        params("api_key = ''"), cell(f"api_key = '{OPENAI_KEY}'\n", tags=["injected-parameters"]),
        cell("print(len(api_key))", outputs=[stdout("27\n")]),
        metadata={"papermill": {"parameters": {"api_key": OPENAI_KEY}}}),
        ["cell 1", "injected parameters"], [OPENAI_KEY[:12]]),
    "undefined_name": (notebook(cell("total = 1"), cell("print(totl)")), ["cell 1", "`totl`"], []),
    "explore_only_name": (notebook(cell("helper = 3", tags=["explore"]), cell("print(helper * 2)")),
                          ["cell 1", "explore cell 0"], []),
    "ipython_history": (notebook(cell("1 + 1"), cell("print(Out[1])")), ["cell 1", "`Out`"], []),
    "get_ipython": (notebook(cell("ip = get_ipython()\nprint(ip)")), ["cell 0", "get_ipython"], []),
    "out_of_order": (notebook(cell("x = 1", count=2), cell("print(x)", count=1, outputs=[stdout("1\n")])),
                     ["cell 1", "out of order"], []),
    "unrun_cell": (notebook(cell("x = 1", count=None), cell("print(2)", count=2, outputs=[stdout("2\n")])),
                   ["cell 0", "was not run"], []),
    "never_executed": (notebook(cell("x = 1", count=None), cell("print(x)", count=None)),
                       ["never run"], []),
    "huge_output": (notebook(cell("print('x' * 2_200_000)", outputs=[stdout("x" * 2_200_000 + "\n")])),
                    ["cell 0", "MB of output"], []),
    "openai_client": (notebook(cell("import openai\nclient = openai.OpenAI()")),
                      ["cell 0", "openai.OpenAI"], []),
    "anthropic_messages": (notebook(cell("import anthropic\nclient = None"),
                                    cell("reply = client.messages.create(model='m', max_tokens=5, messages=[])")),
                           ["cell 1", "client.messages.create"], []),
    "syntax_error": (notebook(cell("def f(:\n    pass")), ["cell 0", "does not parse"], []),
    "top_level_await": (notebook(cell("import asyncio\nx = await asyncio.sleep(0)")), ["cell 0", "await"], []),
}


def main(out_dir: Path) -> None:
    """Write every corpus file and expected.json into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, (text, must, must_not) in CORPUS.items():
        (out_dir / f"{name}.ipynb").write_text(text, encoding="utf-8")
        expected[f"{name}.ipynb"] = {"contains": must, "excludes": must_not}
    (out_dir / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True, ensure_ascii=False)
                                           + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
