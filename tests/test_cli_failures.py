"""Hostile invocations of the command line: every failure is one ``error:`` line on stderr, a
non-zero exit, no traceback, and nothing half-written in the folder it was pointed at.

Tests run as root here, and root ignores permission bits, so a read-only file or folder is
made with ``chattr +i`` (which binds root too: conftest's ``freeze``); one drill runs as ``nobody`` through
``setpriv`` against an ordinary 0444 file in a 0755 folder. Both skip where unavailable.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

from protokit import cache as cache_mod
from protokit.cache import Cache
from protokit.cli.main import main
from protokit.comparisons import list_runs, load_run
from protokit.comparisons.store import RunStore, owner, writer_gone
from protokit.errors import CacheError, PromoteError

PROTOKIT = str(Path(sys.executable).with_name("protokit"))


# -- fixtures ------------------------------------------------------------------------------
def _request(i: int) -> dict[str, Any]:
    return {"provider": "openai", "model": "echo", "messages": [{"role": "user", "content": f"hello {i}"}],
            "options": {}, "sample": 0}


def make_cache(path: Path, n: int = 3) -> Path:
    """A real protokit cache: ``n`` entries and one finished run."""
    with Cache(path, "auto") as cache:
        cache.put_many([(cache_mod.request_key(_request(i)), _request(i), {"text": f"hello {i}", "cost_usd": 0.0})
                        for i in range(n)])
        store = RunStore.start({"prompt": "{text}", "models": ["openai:echo"], "options": {}, "scorers": [],
                                "score_names": [], "columns": ["case", "model"], "cases": [{"case": "a"}],
                                "total": 1}, cache=cache)
        assert store is not None
        store.add(0, {"case": "a", "model": "openai:echo"})
        store.finish("finished", 0.0)
    return path


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Path]:
    """A folder of hostile inputs: good, foreign, garbage and truncated caches, a notebook, a file, a folder."""
    d = tmp_path / "site"
    d.mkdir()
    good = make_cache(d / "good.db")
    conn = sqlite3.connect(d / "foreign.db")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    (d / "garbage.db").write_bytes(b"not a database at all\n" * 50)
    data = good.read_bytes()
    (d / "trunc.db").write_bytes(data[: len(data) // 2])
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("n = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Tiny"), params, nbformat.v4.new_code_cell("print(n)")]
    nbformat.write(nb, d / "tiny.ipynb")
    (d / "notes.txt").write_text("hello\n")
    (d / "adir").mkdir()
    (d / "ro").mkdir()
    return {"d": d, "good": good, "foreign": d / "foreign.db", "garbage": d / "garbage.db",
            "trunc": d / "trunc.db", "nb": d / "tiny.ipynb", "afile": d / "notes.txt", "adir": d / "adir",
            "ro": d / "ro"}


def _listing(root: Path) -> set[str]:
    # SQLite's -wal/-shm come and go with connections; everything else must stay as it was.
    return {str(p.relative_to(root)) for p in root.rglob("*") if not p.name.endswith(("-wal", "-shm"))}


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the console script's entry point in-process; (exit code, stdout, stderr)."""
    try:
        main(args)
        code: Any = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return int(code or 0), out, err


def assert_one_error_line(code: int, out: str, err: str, expected: str, exit_code: int = 1) -> None:
    lines = err.strip("\n").splitlines()
    assert code == exit_code, (code, out, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert "Traceback" not in out + err


# -- the table -----------------------------------------------------------------------------
# (id, argv with {name} placeholders for the site's paths, expected text, exit code, needs a read-only folder)
HOSTILE: list[tuple[str, list[str], str, int, bool]] = [
    ("export-missing-folder", ["cache", "export", "{d}/nope/out.json", "--path", "{good}"],
     "folder {d}/nope does not exist; create it or pick another path", 1, False),
    ("export-under-a-file", ["cache", "export", "{afile}/out.json", "--path", "{good}"],
     "is a file, not a folder", 1, False),
    ("export-read-only-folder", ["cache", "export", "{ro}/out.json", "--path", "{good}"],
     "cannot write {ro}/out.json", 1, True),
    ("export-to-a-folder", ["cache", "export", "{adir}", "--path", "{good}"], "is a directory", 2, False),
    ("export-unknown-run", ["cache", "export", "{d}/o.json", "--path", "{good}", "--run", "nope"],
     "used no cached entries", 1, False),
    ("stats-missing-folder", ["cache", "stats", "--path", "{d}/nope/x.db"], "does not exist", 1, False),
    ("stats-no-cache", ["cache", "stats", "--path", "{d}/absent.db"], "no cache at", 1, False),
    ("stats-a-folder", ["cache", "stats", "--path", "{adir}"], "is a directory", 2, False),
    ("stats-foreign-sqlite", ["cache", "stats", "--path", "{foreign}"], "not a protokit cache", 1, False),
    ("stats-not-sqlite", ["cache", "stats", "--path", "{garbage}"], "not a protokit cache", 1, False),
    ("stats-truncated", ["cache", "stats", "--path", "{trunc}"], "corrupt", 1, False),
    ("stats-notebook-as-cache", ["cache", "stats", "--path", "{nb}"], "not a protokit cache", 1, False),
    ("clear-foreign", ["cache", "clear", "--yes", "--path", "{foreign}"], "not a protokit cache", 1, False),
    ("runs-foreign", ["runs", "--path", "{foreign}"], "not a protokit cache", 1, False),
    ("runs-missing-folder", ["runs", "--path", "{d}/nope/x.db"], "does not exist", 1, False),
    ("runs-bad-limit", ["runs", "--limit", "abc"], "'abc' is not a valid integer; see 'protokit runs --help'",
     2, False),
    ("runs-show-unknown", ["runs", "show", "nope", "--path", "{good}"], "no stored run 'nope'", 1, False),
    ("runs-show-no-id", ["runs", "show"], "Missing argument 'RUN_ID'", 2, False),
    ("unknown-command", ["frobnicate"], "No such command 'frobnicate'; see 'protokit --help'", 2, False),
    ("unknown-option", ["cache", "stats", "--frob"], "No such option '--frob'", 2, False),
    ("promote-missing-notebook", ["promote", "{d}/missing.ipynb", "--name", "x", "--out", "{d}/out"],
     "no such file", 1, False),
    ("promote-not-a-notebook", ["promote", "{afile}", "--name", "x", "--out", "{d}/out"], "is not a notebook",
     1, False),
    ("promote-bad-name", ["promote", "{nb}", "--name", "1x", "--out", "{d}/out"], "must be a Python identifier",
     1, False),
    ("promote-out-is-a-file", ["promote", "{nb}", "--name", "x", "--out", "{afile}"], "is a file", 2, False),
    ("promote-out-under-a-file", ["promote", "{nb}", "--name", "x", "--out", "{afile}/sub"],
     "is a file, not a folder; pick another --out", 1, False),
    ("promote-out-read-only", ["promote", "{nb}", "--name", "x", "--out", "{ro}"],
     "cannot write to {ro}", 1, True),
    ("promote-out-under-read-only", ["promote", "{nb}", "--name", "x", "--out", "{ro}/sub"],
     "cannot write to {ro}", 1, True),
    ("promote-check-nothing-generated", ["promote", "{nb}", "--name", "x", "--check", "--out", "{d}/out"],
     "no generated module", 1, False),
    ("new-read-only-folder", ["new", "ok", "--out", "{ro}"], "cannot write {ro}/ok.ipynb", 1, True),
    ("new-out-under-a-file", ["new", "ok", "--out", "{afile}/sub"], "pick a writable folder with --out", 1, False),
    ("new-bad-name", ["new", "1bad", "--out", "{d}/n"], "is not a valid name", 1, False),
    ("new-bad-template", ["new", "ok", "--template", "nope", "--out", "{d}/n"], "Invalid value for '--template'",
     2, False),
    ("demo-read-only-folder", ["demo", "--out", "{ro}"], "cannot write the demo into {ro}", 1, True),
    ("demo-bad-name-writes-nothing", ["demo", "--name", "1bad", "--out", "{d}/demo"],
     "must be a Python identifier", 1, False),
    ("run-missing-notebook", ["run", "{d}/missing.ipynb"], "no such file", 1, False),
    ("run-not-a-notebook", ["run", "{afile}"], "is not a notebook", 1, False),
    ("run-unknown-parameter", ["run", "{nb}", "-p", "nope", "1"], "unknown parameter 'nope'", 1, False),
    ("run-bad-parameter-value", ["run", "{nb}", "-p", "n", "abc"], "expects int, got 'abc' which is not one; "
     "pass one like `-p n 1`", 2, False),
    ("run-missing-parameters-file", ["run", "{nb}", "-f", "{d}/missing.yaml"], "cannot read parameters file",
     1, False),
    ("run-bad-cache-mode", ["run", "{nb}", "--cache-mode", "sometimes"], "Invalid value for '--cache-mode'",
     2, False),
    ("sandbox-bad-latency", ["sandbox", "--latency", "abc"], "bad latency 'abc'", 1, False),
    ("sandbox-bad-fault", ["sandbox", "--faults", "zzz=1"], "bad fault", 1, False),
    ("sandbox-bad-port", ["sandbox", "--port", "99999"], "bad port 99999", 1, False),
    ("sandbox-missing-script", ["sandbox", "--script", "{d}/missing.yaml"], "file not found", 1, False),
    ("lab-missing-folder", ["lab", "{d}/nope"], "is not a folder", 1, False),
    ("lab-a-file", ["lab", "{afile}"], "is a file", 2, False),
]


@pytest.mark.parametrize(("args", "expected", "exit_code", "read_only"),
                         [case[1:] for case in HOSTILE], ids=[case[0] for case in HOSTILE])
def test_hostile_invocation_is_one_error_line(args: list[str], expected: str, exit_code: int, read_only: bool,
                                              site: dict[str, Path], freeze: Callable[[Path], Path],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    if read_only:
        freeze(site["ro"])
    names = {k: str(v) for k, v in site.items()}
    before = _listing(site["d"])
    code, out, err = run_main([a.format(**names) for a in args], capsys)
    assert_one_error_line(code, out, err, expected.format(**names), exit_code)
    assert _listing(site["d"]) == before  # nothing half-written: no temp file, no new folder


def test_console_script_failure_is_one_line(site: dict[str, Path]) -> None:
    """The installed ``protokit`` script, end to end: the known traceback of 'export into a missing folder'."""
    done = subprocess.run([PROTOKIT, "cache", "export", str(site["d"] / "nope" / "out.json"),
                           "--path", str(site["good"])], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"error: cannot write {site['d'] / 'nope' / 'out.json'}: folder "
                                        f"{site['d'] / 'nope'} does not exist; create it or pick another path"]
    assert not (site["d"] / "nope").exists()


# -- the top-level handler -------------------------------------------------------------------
@pytest.mark.parametrize(("error", "expected", "exit_code"), [
    (RuntimeError("boom"), "unexpected RuntimeError: boom; this is a protokit bug, please report it", 1),
    (PermissionError(13, "Permission denied", "/some/file"),
     "/some/file: permission denied; check its permissions or pick a path you can write to", 1),
    (sqlite3.OperationalError("disk I/O error"), "SQLite failed: disk I/O error", 1),
    (KeyboardInterrupt(), "interrupted", 130),
    (ValueError("two\nlines"), "unexpected ValueError: two lines;", 1),
], ids=["unexpected", "oserror", "sqlite", "ctrl-c", "multi-line"])
def test_anything_escaping_a_command_is_one_line(error: BaseException, expected: str, exit_code: int,
                                                 site: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    def explode(self: Cache) -> dict[str, Any]:
        raise error

    monkeypatch.setattr(Cache, "stats", explode)
    monkeypatch.delenv("PROTOKIT_DEBUG", raising=False)
    code, out, err = run_main(["cache", "stats", "--path", str(site["good"])], capsys)
    assert_one_error_line(code, out, err, expected, exit_code)
    if exit_code == 1 and isinstance(error, RuntimeError):
        assert "PROTOKIT_DEBUG=1" in err


def test_protokit_debug_shows_the_traceback(site: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    def explode(self: Cache) -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(Cache, "stats", explode)
    monkeypatch.setenv("PROTOKIT_DEBUG", "1")
    code, _, err = run_main(["cache", "stats", "--path", str(site["good"])], capsys)
    assert code == 1
    assert "Traceback" in err and "RuntimeError: boom" in err
    assert err.strip().splitlines()[-1].startswith("error: unexpected RuntimeError: boom")


def test_an_unanswered_confirmation_is_one_line(site: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no answer: end of input
    code, _, err = run_main(["cache", "clear", "--path", str(site["good"])], capsys)
    assert code == 130 and err.strip().splitlines() == ["error: aborted"]
    assert Cache(site["good"], "replay", create=False).stats()["entries"] == 3


# -- promote writes everything or nothing ------------------------------------------------------
def test_promote_write_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from protokit.promote import files as promote_files

    out = tmp_path / "out"
    files = {out / "m.py": "x = 1\n", out / "tests" / "test_m.py": "def test(): pass\n",
             out / "tests" / "cassettes" / "m.json": "{}\n"}
    real = promote_files.stage_text

    def full_disk(path: Path, text: str, **kwargs: Any) -> Path:
        if path.parent.name == "cassettes":
            raise OSError(28, "No space left on device", str(path))
        return real(path, text, **kwargs)

    monkeypatch.setattr(promote_files, "stage_text", full_disk)
    with pytest.raises(PromoteError, match=r"cannot write .*m\.json: no space left on device; pick a writable"):
        promote_files.write_all(files, out / ".m.promote.json")
    assert not out.exists()  # the folders made for the files are gone too, and no temp file is left


_KILLER = """
import os, sys
from pathlib import Path
from protokit.promote import files as promote_files

out, step = Path(sys.argv[1]), sys.argv[2]
names = ["m.py", "tests/test_m.py", "tests/cassettes/m.json", "tests/cassettes/m.golden.json"]
files = {out / n: f"new {n}\\n" for n in names}
real_replace, real_stage, calls = os.replace, promote_files.stage_text, []

def replace(src, dst):  # killed (SIGKILL: no finally, no cleanup) after the journal and one file
    real_replace(src, dst)
    calls.append(dst)
    if len(calls) == 2:
        os._exit(9)

def stage(path, text, **kw):  # killed while staging the third file
    calls.append(path)
    if len(calls) == 3:
        os._exit(9)
    return real_stage(path, text, **kw)

if step == "renaming":
    promote_files.os.replace = replace
else:
    promote_files.stage_text = stage
promote_files.write_all(files, out / ".m.promote.json")
"""


@pytest.mark.parametrize("step", ["staging", "renaming"])
def test_promote_killed_halfway_leaves_one_whole_set(tmp_path: Path, step: str) -> None:
    from protokit.promote import files as promote_files

    out = tmp_path / "out"
    names = ["m.py", "tests/test_m.py", "tests/cassettes/m.json", "tests/cassettes/m.golden.json"]
    for n in names:
        (out / n).parent.mkdir(parents=True, exist_ok=True)
        (out / n).write_text(f"old {n}\n")
    done = subprocess.run([sys.executable, "-c", _KILLER, str(out), step], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 9, done.stderr
    texts = {n: (out / n).read_text() for n in names}
    if step == "renaming":  # past the commit point: one file is new, the journal says how to finish
        assert sorted(t.split()[0] for t in texts.values()) == ["new", "old", "old", "old"]
        assert (out / ".m.promote.json").exists()
    finished = promote_files.recover(out / "m.py", [out / n for n in names])
    expected = "new" if step == "renaming" else "old"
    assert {n: (out / n).read_text() for n in names} == {n: f"{expected} {n}\n" for n in names}
    assert len(finished) == (3 if step == "renaming" else 0)
    leftovers = [p for p in out.rglob(".*") if p.is_file()]
    assert leftovers == []  # no temp file, no journal


# -- read-only caches ----------------------------------------------------------------------------
def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("what", ["file", "folder"])
def test_read_only_cache_replays_and_refuses_to_record(what: str, tmp_path: Path, freeze: Callable[[Path], Path],
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    path = make_cache(folder / "c.db")
    digest = _digest(path)
    freeze(path if what == "file" else folder)
    monkeypatch.setenv("PROTOKIT_RUN_ID", "run-1")  # replay must not even record which run used what

    with pytest.raises(CacheError) as info:
        Cache(path, "auto")
    assert "is read-only" in str(info.value) and "corrupt" not in str(info.value)
    assert "--cache-mode replay / PROTOKIT_CACHE_MODE=replay or point PROTOKIT_CACHE at a writable path" \
        in str(info.value)

    with Cache(path, "replay") as cache:
        assert cache.readonly
        assert cache.get(cache_mod.request_key(_request(0)))["text"] == "hello 0"
        with pytest.raises(CacheError, match="read-only"):
            cache.mode = "record"
        with pytest.raises(CacheError, match=r"cannot write to cache .* it is read-only"):
            cache.put(cache_mod.request_key(_request(9)), _request(9), {"text": "x"})
        assert RunStore.start({}, cache=cache) is None  # a comparison replays without storing a run
    assert [r["status"] for r in list_runs(path)] == ["finished"]
    assert load_run(list_runs(path)[0]["id"], path=path).status == "finished"

    for args, ok in ((["cache", "stats", "--path", str(path)], True), (["runs", "--path", str(path)], True),
                     (["cache", "export", str(tmp_path / "out.json"), "--path", str(path)], True),
                     (["cache", "clear", "--yes", "--path", str(path)], False)):
        code, out, err = run_main(args, capsys)
        if ok:
            assert code == 0 and err == "", err
        else:
            assert_one_error_line(code, out, err, "it is read-only")
    assert _digest(path) == digest
    left = {p.name for p in folder.iterdir()}
    # SQLite may put its -shm/-wal beside a read-only file in a writable folder; never in a read-only one.
    assert left == {"c.db"} if what == "folder" else left <= {"c.db", "c.db-shm", "c.db-wal"}


def test_promote_refuses_a_read_only_cache_up_front(site: dict[str, Path], freeze: Callable[[Path], Path],
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Promote learns the notebook's calls from what its kernel writes to the cache: say so before the gate runs."""
    monkeypatch.setenv("PROTOKIT_CACHE", str(freeze(site["good"])))
    before = _listing(site["d"])
    code, out, err = run_main(["promote", str(site["nb"]), "--name", "x", "--out", str(site["d"] / "out")], capsys)
    assert_one_error_line(code, out, err, f"cache {site['good']} is read-only")
    assert _listing(site["d"]) == before


def test_new_cache_in_read_only_folder_is_one_line(tmp_path: Path, freeze: Callable[[Path], Path]) -> None:
    folder = freeze(tmp_path)
    with pytest.raises(CacheError, match=r"cannot create cache .*; point PROTOKIT_CACHE at a writable path"):
        Cache(folder / "new.db", "auto")


_NOBODY_CHILD = """
import json, sys
import protokit as pk
from protokit.errors import CacheError
mode, base_url = sys.argv[1], sys.argv[2]
m = pk.model("openai:echo", base_url=base_url, api_key="k", timeout=30)
try:
    r = pk.compare([m], "{text}", [{"case": "a", "text": "hi a"}, {"case": "b", "text": "hi b"}]).results
except CacheError as exc:
    print(json.dumps({"error": str(exc)}))
else:
    print(json.dumps({"rows": len(r), "cached": int(r["cached"].sum()), "errors": int(r["error"].notna().sum()),
                      "readonly": pk.cache.get_cache().readonly}))
"""


def _nobody() -> list[str]:
    setpriv = shutil.which("setpriv")
    if os.name != "posix" or os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to run a child as nobody")
    cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run([*cmd, sys.executable, "-c", "import os, protokit; print(os.geteuid())"],
                           capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != "65534":
        pytest.skip(f"cannot run protokit as nobody here: {probe.stderr.strip()[-200:]}")
    return cmd


def test_read_only_cache_as_another_user_replays(sandbox: Any, tmp_path: Path) -> None:
    """A real non-root process and an ordinary 0444 file in a 0755 folder it cannot write."""
    import protokit as pk

    nobody = _nobody()
    shared = Path(tempfile.mkdtemp(prefix="protokit-ro-"))  # tmp_path's parents are 0700: nobody cannot enter
    try:
        os.chmod(shared, 0o755)
        path = shared / "team.db"
        pk.cache.configure(path=path, mode="auto")
        m = pk.model("openai:echo", base_url=sandbox.openai_base_url, api_key="k", timeout=30)
        pk.compare([m], "{text}", [{"case": "a", "text": "hi a"}, {"case": "b", "text": "hi b"}])
        pk.cache.reset()
        os.chmod(path, 0o444)
        digest, asked = _digest(path), sandbox.stats()["by_status"].get("200", 0)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
        env.update(PROTOKIT_CACHE=str(path), HOME=str(shared), PROTOKIT_RUN_ID="r1")

        def child(mode: str) -> dict[str, Any]:
            done = subprocess.run([*nobody, sys.executable, "-c", _NOBODY_CHILD, mode, sandbox.openai_base_url],
                                  env={**env, "PROTOKIT_CACHE_MODE": mode}, capture_output=True, text=True,
                                  timeout=120, cwd=shared)
            assert done.returncode == 0, done.stderr
            result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
            return result

        assert child("replay") == {"rows": 2, "cached": 2, "errors": 0, "readonly": True}
        refused = child("auto")["error"]
        assert refused == (f"cache {path} is read-only (the file is not writable); use --cache-mode replay / "
                           "PROTOKIT_CACHE_MODE=replay or point PROTOKIT_CACHE at a writable path")
        cli = [*nobody, sys.executable, "-c", "import sys; from protokit.cli.main import main; sys.exit(main())"]
        for args in (["cache", "stats", "--path", str(path)], ["runs", "--path", str(path)]):
            done = subprocess.run([*cli, *args], env=env, capture_output=True, text=True, timeout=120, cwd=shared)
            assert done.returncode == 0 and done.stderr == "", done.stderr
        assert "finished" in done.stdout
        done = subprocess.run([*cli, "cache", "clear", "--yes", "--path", str(path)], env=env, capture_output=True,
                              text=True, timeout=120, cwd=shared)
        assert done.returncode == 1 and len(done.stderr.splitlines()) == 1 and "read-only" in done.stderr
        assert _digest(path) == digest and sorted(os.listdir(shared)) == ["team.db"]
        assert sandbox.stats()["by_status"].get("200", 0) == asked  # replayed: no call reached the server
    finally:
        shutil.rmtree(shared, ignore_errors=True)


# -- runs whose writer died ------------------------------------------------------------------
def test_writer_gone_tells_dead_and_reused_pids_from_live_ones() -> None:
    me = json.loads(owner())
    assert not writer_gone(owner())
    assert not writer_gone(None) and not writer_gone("not json") and not writer_gone("{}")
    assert not writer_gone(json.dumps({**me, "host": "elsewhere"}))  # another machine: cannot tell
    if me.get("start") is not None:  # Linux: a pid now used by another process is a dead writer
        assert writer_gone(json.dumps({**me, "start": "1"}))
    done = subprocess.run([sys.executable, "-c", "from protokit.comparisons.store import owner; print(owner())"],
                          capture_output=True, text=True, check=True)
    assert writer_gone(done.stdout.strip())  # that process has ended
