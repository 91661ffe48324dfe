"""The agent's tools on real files and real processes: confinement, argument errors, budgets, edits,
search, the shell's timeout, output file and secrets."""

from __future__ import annotations

import json
import os
import select
from pathlib import Path

import pytest

from clude.agent.tools import OutsideWorkspace, Toolbox, ToolResult, Workspace
from clude.secrets import SECRET_NAME

SECRET = "sk-" + "test-0123456789abcdefghijklmnopqrstuv"  # built: no key-shaped literal in the tree


def plain_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not SECRET_NAME.search(k)}
    env.update(extra)
    return env


@pytest.fixture
def root(tmp_path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


@pytest.fixture
def box(root) -> Toolbox:
    return Toolbox(root, env=plain_env())


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def ok(result: ToolResult) -> str:
    assert not result.is_error, result.text
    return result.text


def err(result: ToolResult) -> str:
    assert result.is_error, result.text
    return result.text


# specs ---------------------------------------------------------------------------------------------

def test_specs_are_openai_function_tools(root):
    specs = Toolbox(root, test_runner=lambda: "ok").specs()
    names = [s["function"]["name"] for s in specs]
    assert names == ["read_file", "write_file", "edit_file", "list_files", "grep", "run_shell",
                     "run_tests"]
    for spec in specs:
        json.dumps(spec)
        assert spec["type"] == "function"
        fn = spec["function"]
        assert fn["description"] and "{" not in fn["description"].replace("{ts,tsx}", "")
        params = fn["parameters"]
        assert params["type"] == "object"
        assert isinstance(params["required"], list)
        assert set(params["required"]) <= set(params["properties"])
        for prop in params["properties"].values():
            assert prop["type"] in ("string", "integer", "number", "boolean")
            assert prop["description"]
            assert "anyOf" not in prop and "title" not in prop
    read = specs[0]["function"]["parameters"]
    assert read["required"] == ["path"]
    assert read["properties"]["start_line"]["type"] == "integer"
    assert "120 s" in specs[5]["function"]["description"]


def test_run_tests_only_offered_with_a_runner(root):
    box = Toolbox(root)
    assert "run_tests" not in [s["function"]["name"] for s in box.specs()]
    assert "run_shell" in err(box.call("run_tests", "{}"))
    with_runner = Toolbox(root, test_runner=lambda: "3 passed, 0 failed")
    assert ok(with_runner.call("run_tests", "")) == "3 passed, 0 failed"
    assert ok(with_runner.call("run_tests", {})) == "3 passed, 0 failed"


def test_a_failing_runner_is_an_error_result(root):
    def broken() -> str:
        raise RuntimeError("pytest is not installed")

    assert "pytest is not installed" in err(Toolbox(root, test_runner=broken).call("run_tests", {}))


# argument errors -------------------------------------------------------------------------------------

def test_bad_json_is_explained(box):
    text = err(box.call("read_file", '{"path": "a.py"'))
    assert "not valid JSON" in text and "read_file" in text


def test_arguments_not_an_object(box):
    text = err(box.call("read_file", '["a.py"]'))
    assert "JSON object" in text and "read_file(path: string" in text


def test_unknown_tool_names_the_available_ones(box):
    text = err(box.call("read_fiel", "{}"))
    assert "read_fiel" in text and "Did you mean read_file" in text
    for name in ("read_file", "write_file", "edit_file", "list_files", "grep", "run_shell"):
        assert name in text


def test_missing_extra_and_wrong_typed_arguments(box, root):
    assert "'path' is missing" in err(box.call("read_file", {}))
    text = err(box.call("read_file", {"file_path": "a.py"}))
    assert "no argument 'file_path'" in text and "did you mean 'path'" in text
    text = err(box.call("read_file", {"path": "a.py", "start_line": "ten"}))
    assert "'start_line'" in text and "integer" in text
    assert "'content'" in err(box.call("write_file", {"path": "a.py", "content": 42}))
    assert "'start_line'" in err(box.call("read_file", {"path": "a.py", "start_line": 0}))
    assert "'timeout_s'" in err(box.call("run_shell", {"command": "true", "timeout_s": -1}))
    assert not (root / "a.py").exists()


def test_null_means_the_default(box, root):
    write(root, "a.txt", "one\n")
    assert "one" in ok(box.call("read_file", {"path": "a.txt", "start_line": None}))
    assert "a.txt" in ok(box.call("list_files", {"path": None}))


def test_action_key_is_canonical():
    a = Toolbox.action_key("read_file", '{"path": "a.py", "start_line": 3}')
    b = Toolbox.action_key("read_file", {"start_line": 3, "path": "a.py"})
    assert a == b == 'read_file {"path":"a.py","start_line":3}'
    assert Toolbox.action_key("read_file", "{broken") == "read_file {broken"
    assert Toolbox.action_key("grep", "") == "grep {}"


# workspace confinement -------------------------------------------------------------------------------

def test_dotdot_escape_refused(box, root):
    (root.parent / "outside.txt").write_text("secret\n")
    text = err(box.call("read_file", {"path": "../outside.txt"}))
    assert "../outside.txt" in text and str(root) in text and "outside the workspace" in text
    assert "secret" not in text
    err(box.call("write_file", {"path": "sub/../../evil.txt", "content": "x"}))
    assert not (root.parent / "evil.txt").exists()


def test_absolute_paths(box, root):
    write(root, "in.txt", "inside\n")
    assert "inside" in ok(box.call("read_file", {"path": str(root / "in.txt")}))
    text = err(box.call("read_file", {"path": "/etc/passwd"}))
    assert "/etc/passwd" in text and str(root) in text


def test_symlinks_leading_outside_are_refused(box, root, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "data.txt").write_text("private\n")
    (root / "file_link").symlink_to(outside / "data.txt")
    (root / "dir_link").symlink_to(outside)
    (root / "dangling").symlink_to(outside / "not_yet.txt")
    text = err(box.call("read_file", {"path": "file_link"}))
    assert "file_link" in text and str(outside / "data.txt") in text and str(root) in text
    assert "symbolic link" in text
    assert "dir_link" in err(box.call("read_file", {"path": "dir_link/data.txt"}))
    err(box.call("write_file", {"path": "dir_link/new.txt", "content": "x"}))
    err(box.call("write_file", {"path": "dangling", "content": "x"}))
    err(box.call("edit_file", {"path": "file_link", "search": "private", "replace": "public"}))
    err(box.call("list_files", {"path": "dir_link"}))
    assert not (outside / "new.txt").exists() and not (outside / "not_yet.txt").exists()
    assert (outside / "data.txt").read_text() == "private\n"
    # neither listed nor searched through
    assert "file_link" not in ok(box.call("list_files", {}))
    assert "no matches" in ok(box.call("grep", {"pattern": "private"}))


def test_symlink_inside_is_fine(box, root):
    write(root, "real.txt", "hello\n")
    (root / "alias.txt").symlink_to("real.txt")
    assert "hello" in ok(box.call("read_file", {"path": "alias.txt"}))


def test_git_and_clude_are_not_written(box, root):
    write(root, ".git/config", "[core]\n")
    for path in (".git/config", ".git/hooks/pre-commit", ".clude/state.json", "sub/.git/x"):
        text = err(box.call("write_file", {"path": path, "content": "x"}))
        assert "do not write" in text
    assert (root / ".git/config").read_text() == "[core]\n"
    err(box.call("edit_file", {"path": ".git/config", "search": "core", "replace": "x"}))
    assert "[core]" in ok(box.call("read_file", {"path": ".git/config"}))


def test_workspace_resolve_directly(root, tmp_path):
    ws = Workspace(root)
    assert ws.resolve("a/b.txt") == root.resolve() / "a/b.txt"
    assert ws.resolve(".") == root.resolve()
    with pytest.raises(OutsideWorkspace, match="outside the workspace"):
        ws.resolve("..")
    with pytest.raises(OutsideWorkspace):
        ws.resolve(".clude/x", for_write=True)
    from clude.agent.tools.result import ToolError
    with pytest.raises(ToolError, match="empty"):
        ws.resolve("  ")


def test_empty_path(box):
    assert "empty" in err(box.call("read_file", {"path": ""}))


# read_file ----------------------------------------------------------------------------------------

def test_read_whole_file_numbered(box, root):
    write(root, "src/a.py", "x = 1\ny = 2\n")
    assert ok(box.call("read_file", '{"path": "src/a.py"}')) == \
        "src/a.py (2 lines)\n   1 | x = 1\n   2 | y = 2"


def test_read_a_range(box, root):
    write(root, "n.txt", "".join(f"line {i}\n" for i in range(1, 21)))
    text = ok(box.call("read_file", {"path": "n.txt", "start_line": 5, "end_line": 7}))
    assert text == "n.txt (lines 5-7 of 20)\n   5 | line 5\n   6 | line 6\n   7 | line 7"
    assert "line 20" in ok(box.call("read_file", {"path": "n.txt", "start_line": 19, "end_line": 99}))
    assert "past the end" in err(box.call("read_file", {"path": "n.txt", "start_line": 21}))
    assert "before start_line" in err(box.call("read_file", {"path": "n.txt", "start_line": 5,
                                                             "end_line": 2}))


def test_read_budget_says_where_to_read_on(root):
    box = Toolbox(root, env=plain_env(), output_budget=1000)
    write(root, "big.txt", "".join(f"this is line number {i}\n" for i in range(1, 301)))
    text = ok(box.call("read_file", {"path": "big.txt"}))
    assert len(text.encode()) <= 1000
    last = int(text.split("\n")[-2].split("|")[0])
    assert f"start_line={last + 1}" in text and "of 300" in text
    more = ok(box.call("read_file", {"path": "big.txt", "start_line": last + 1}))
    assert more.split("\n")[1].strip().startswith(f"{last + 1} | this is line number {last + 1}")


def test_read_one_huge_line(root):
    box = Toolbox(root, env=plain_env(), output_budget=1000)
    write(root, "min.js", "x" * 50000 + "\nsecond\n")
    text = ok(box.call("read_file", {"path": "min.js"}))
    assert "line cut" in text and "start_line=2" in text and len(text.encode()) <= 1000


def test_read_binary_empty_missing_and_folder(box, root):
    (root / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0" + bytes(range(256)))
    text = err(box.call("read_file", {"path": "img.png"}))
    assert "binary" in text and "267 bytes" in text
    write(root, "empty.txt", "")
    assert "empty" in ok(box.call("read_file", {"path": "empty.txt"}))
    write(root, "src/calc.py", "")
    text = err(box.call("read_file", {"path": "src/calc.pyy"}))
    assert "does not exist" in text and "calc.py" in text
    assert "src/calc.py" in err(box.call("read_file", {"path": "calc.py"}))
    assert "list_files" in err(box.call("read_file", {"path": "src"}))


# write_file ---------------------------------------------------------------------------------------

def test_write_creates_and_overwrites(box, root):
    text = ok(box.call("write_file", {"path": "pkg/new/mod.py", "content": "a\nb\n"}))
    assert text == "wrote 2 lines (4 bytes) to pkg/new/mod.py (created)"
    assert (root / "pkg/new/mod.py").read_text() == "a\nb\n"
    text = ok(box.call("write_file", {"path": "pkg/new/mod.py", "content": "only"}))
    assert text == "wrote 1 lines (4 bytes) to pkg/new/mod.py (overwritten; it had 2 lines)"
    assert "folder" in err(box.call("write_file", {"path": "pkg", "content": "x"}))
    assert "is a file" in err(box.call("write_file", {"path": "pkg/new/mod.py/x", "content": "x"}))
    assert "UTF-8" in err(box.call("write_file", '{"path": "s.txt", "content": "\\ud800"}'))


# edit_file ----------------------------------------------------------------------------------------

CODE = """def add(a, b):
    return a + b


def sub(a, b):
    return a - b


def mul(a, b):
    return a * b
"""


def test_edit_one_occurrence(box, root):
    write(root, "m.py", CODE)
    text = ok(box.call("edit_file", {"path": "m.py", "search": "    return a - b\n",
                                     "replace": "    result = a - b\n    return result\n"}))
    assert "replaced line 6 (now lines 6-7)" in text and "   7 |     return result" in text
    text = ok(box.call("edit_file", {"path": "m.py", "search": "a + b", "replace": "b + a"}))
    assert "changed line 2" in text and "   2 |     return b + a" in text
    assert (root / "m.py").read_text() == CODE.replace(
        "    return a - b\n", "    result = a - b\n    return result\n").replace("a + b", "b + a")


def test_edit_delete_and_crlf(box, root):
    write(root, "m.py", CODE)
    text = ok(box.call("edit_file", {"path": "m.py", "search": "def mul(a, b):\n    return a * b\n",
                                     "replace": ""}))
    assert "removed lines 9-10" in text
    (root / "w.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    ok(box.call("edit_file", {"path": "w.txt", "search": "one\ntwo\n", "replace": "1\n2\n"}))
    assert (root / "w.txt").read_bytes() == b"1\r\n2\r\nthree\r\n"


def test_edit_no_match_shows_closest_lines(box, root):
    write(root, "m.py", CODE)
    text = err(box.call("edit_file", {"path": "m.py", "search": "def sub(a, b):\n    return a -- b\n",
                                      "replace": "x"}))
    assert "not found" in text and "lines 5-6" in text
    assert "   5 | def sub(a, b):" in text and "   6 |     return a - b" in text
    assert "First difference at line 6" in text
    assert "only in whitespace" not in text and "lines 1-2" not in text  # the others are far off
    assert (root / "m.py").read_text() == CODE


def test_edit_whitespace_only_difference(box, root):
    write(root, "m.py", CODE)
    text = err(box.call("edit_file", {"path": "m.py", "search": "def add(a, b):\n  return a + b\n",
                                      "replace": "x"}))
    assert "lines 1-2, which differ from your search only in whitespace" in text
    assert "'    return a + b'" in text and "'  return a + b'" in text
    assert "similar" not in text  # no other candidate distracts from the one that is there
    text = err(box.call("edit_file", {"path": "m.py", "search": "def mul(a,b):\n    return a*b",
                                      "replace": "x"}))
    assert "lines 9-10, which differ from your search only in whitespace" in text


def test_edit_with_line_numbers_gets_a_hint(box, root):
    write(root, "m.py", CODE)
    text = err(box.call("edit_file", {"path": "m.py", "search": "   2 |     return a + b",
                                      "replace": "x"}))
    assert "line numbers" in text


def test_edit_multiple_matches_names_lines(box, root):
    write(root, "m.py", CODE)
    text = err(box.call("edit_file", {"path": "m.py", "search": "(a, b):", "replace": "(x, y):"}))
    assert "3 times" in text and "lines 1, 5, 9" in text and "more surrounding lines" in text
    assert (root / "m.py").read_text() == CODE


def test_edit_errors(box, root):
    write(root, "m.py", CODE)
    assert "search is empty" in err(box.call("edit_file", {"path": "m.py", "search": "",
                                                           "replace": "x"}))
    assert "same" in err(box.call("edit_file", {"path": "m.py", "search": "def add",
                                                "replace": "def add"}))
    assert "write_file" in err(box.call("edit_file", {"path": "nope.py", "search": "a",
                                                      "replace": "b"}))
    text = err(box.call("edit_file", {"path": "m.py", "search": "zzzz qqqq", "replace": "b"}))
    assert "Nothing in the file resembles it" in text


def test_edit_candidates_in_a_big_file(box, root):
    lines = [f"value_{i} = compute({i}, factor={i % 7})" for i in range(5000)]
    write(root, "big.py", "\n".join(lines) + "\n")
    text = err(box.call("edit_file", {"path": "big.py",
                                      "search": "value_4321 = compute(4321, factor=9)\n",
                                      "replace": "x"}))
    assert "4322 | value_4321 = compute(4321, factor=2)" in text


# list_files and grep --------------------------------------------------------------------------------

def make_tree(root: Path) -> None:
    for name in ("README.md", "src/app.py", "src/util/helpers.py", "src/web/page.ts",
                 "src/web/view.tsx", "tests/test_app.py", "docs/guide.md",
                 ".git/HEAD", ".clude/log.txt", "src/__pycache__/app.cpython-311.pyc",
                 "node_modules/x/index.js", ".venv/lib/site.py", "venv/lib/site.py"):
        write(root, name, f"content of {name}\n")


def test_list_files_skips_and_sorts(box, root):
    make_tree(root)
    text = ok(box.call("list_files", {}))
    assert text.split("\n") == ["README.md", "docs/guide.md", "src/app.py", "src/util/helpers.py",
                                "src/web/page.ts", "src/web/view.tsx", "tests/test_app.py",
                                "(7 files)"]


def test_list_files_patterns(box, root):
    make_tree(root)
    assert ok(box.call("list_files", {"pattern": "*.py"})).split("\n")[:-1] == \
        ["src/app.py", "src/util/helpers.py", "tests/test_app.py"]
    assert ok(box.call("list_files", {"path": "src", "pattern": "**/*.py"})).split("\n")[:-1] == \
        ["src/app.py", "src/util/helpers.py"]
    assert ok(box.call("list_files", {"pattern": "src/*/*.{ts,tsx}"})).split("\n")[:-1] == \
        ["src/web/page.ts", "src/web/view.tsx"]
    assert ok(box.call("list_files", {"path": "src/web"})).split("\n")[:-1] == \
        ["src/web/page.ts", "src/web/view.tsx"]
    assert "no files" in ok(box.call("list_files", {"pattern": "*.rs"}))
    assert "does not exist" in err(box.call("list_files", {"path": "nowhere"}))


def test_list_files_cap(box, root):
    for i in range(520):
        (root / f"f{i:03d}.txt").touch()
    text = ok(box.call("list_files", {}))
    assert "... and" in text and "520 files in all" in text
    assert len(text.encode()) <= 8000


def test_grep_finds_lines(box, root):
    make_tree(root)
    write(root, "src/app.py", "import os\n\ndef main():\n    print('Hello')\n")
    assert ok(box.call("grep", {"pattern": r"def \w+\("})) == "src/app.py:3: def main():"
    assert ok(box.call("grep", {"pattern": "hello", "ignore_case": True, "glob": "*.py"})) == \
        "src/app.py:4:     print('Hello')"
    assert "no matches" in ok(box.call("grep", {"pattern": "hello"}))
    text = ok(box.call("grep", {"pattern": "content of", "path": "src"}))
    assert "node_modules" not in text and "__pycache__" not in text and "src/web/page.ts:1:" in text
    assert ".clude" not in ok(box.call("grep", {"pattern": "content"}))


def test_grep_bad_regex_binary_and_long_lines(box, root):
    text = err(box.call("grep", {"pattern": "print("}))
    assert "bad regular expression" in text and "escape" in text
    (root / "blob.bin").write_bytes(b"needle\0\x01\x02")
    write(root, "long.txt", "a" * 1000 + " needle " + "b" * 1000 + "\n")
    text = ok(box.call("grep", {"pattern": "needle"}))
    assert "blob.bin" not in text
    assert text.startswith("long.txt:1: ...") and "needle" in text and len(text) < 260


def test_grep_caps(root):
    box = Toolbox(root, env=plain_env(), output_budget=2000)
    write(root, "many.txt", "match here\n" * 1000)
    text = ok(box.call("grep", {"pattern": "match"}))
    assert len(text.encode()) <= 2000
    assert "more matches (1000 in 1 files" in text
    big = Toolbox(root, env=plain_env(), output_budget=100000)
    text = ok(big.call("grep", {"pattern": "match"}))
    assert text.count("many.txt:") == 200 and "... 800 more matches" in text


# run_shell ----------------------------------------------------------------------------------------

def test_shell_exit_code_and_output(box, root):
    text = ok(box.call("run_shell", {"command": "echo hi; pwd; echo oops >&2; exit 3"}))
    assert text.startswith("exit code 3\n")
    assert "hi" in text and str(root.resolve()) in text and "oops" in text
    assert ok(box.call("run_shell", {"command": "true"})) == "exit code 0\n(no output)"
    assert "exit code 0" in ok(box.call("run_shell", {"command": "cat"}))  # stdin is empty
    assert "empty" in err(box.call("run_shell", {"command": "  "}))


def test_shell_signal(box):
    assert "killed by signal 9 (SIGKILL)" in ok(box.call("run_shell", {"command": "kill -9 $$"}))


def gone(pid: int) -> bool:
    """True when the process has ended (a zombie counts), waiting for it at most 10 s."""
    if not hasattr(os, "pidfd_open"):  # not Linux: no waiting, only whether it exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], 10)[0])
    finally:
        os.close(fd)


def test_shell_timeout_kills_the_group(box, root):
    text = ok(box.call("run_shell", {"command": "sleep 30 & echo $! > bg.pid; sleep 30",
                                     "timeout_s": 1}))
    assert text.startswith("killed after 1 s (timeout)")
    assert gone(int((root / "bg.pid").read_text()))


def test_shell_timeout_is_capped(root):
    box = Toolbox(root, env=plain_env(), shell_timeout_s=0.25)
    text = ok(box.call("run_shell", {"command": "sleep 30", "timeout_s": 100}))
    assert "killed after 1 s (timeout)" in text and "capped at 1 s" in text


def test_shell_big_output_is_cut_and_saved(box, root):
    text = ok(box.call("run_shell", {"command": "seq 1 100000"}))
    assert len(text.encode()) <= 8000
    assert text.startswith("exit code 0\n1\n2\n3\n") and text.endswith("99999\n100000\n")
    marker = next(line for line in text.split("\n") if "bytes cut" in line)
    saved = marker.split("whole output in ")[1].split("]")[0]
    assert saved.startswith(".clude/tool-output/")
    whole = (root / saved).read_text()
    assert whole.split("\n")[49999] == "50000" and len(whole.split()) == 100000
    # the model can read the saved file
    assert "50000" in ok(box.call("read_file", {"path": saved, "start_line": 50000,
                                                "end_line": 50000}))


def test_shell_output_files_are_unique(tmp_path, root):
    box = Toolbox(root, env=plain_env(), output_dir=tmp_path / "out", output_budget=200)
    for _ in range(3):
        box.call("run_shell", {"command": "seq 1 1000"})
    assert len(list((tmp_path / "out").iterdir())) == 3


def test_shell_hides_secrets(root):
    box = Toolbox(root, env=plain_env(OPENAI_API_KEY=SECRET, MY_SERVICE_TOKEN="tok-value-123456"),
                  output_dir=root.parent / "out")
    text = ok(box.call("run_shell", {"command": "echo ${OPENAI_API_KEY:-unset} "
                                                "${MY_SERVICE_TOKEN:-unset}; echo $HOME"}))
    assert "unset unset" in text
    write(root, "leak.txt", f"key={SECRET}\n")
    text = ok(box.call("run_shell", {"command": "cat leak.txt"}))
    assert SECRET not in text and "[redacted" in text
    for saved in (root.parent / "out").iterdir():
        assert SECRET not in saved.read_text()
    # file tools redact too
    text = ok(box.call("read_file", {"path": "leak.txt"}))
    assert SECRET not in text and "[redacted" in text
