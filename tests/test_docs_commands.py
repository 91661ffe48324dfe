"""The docs' shell commands, run as a newcomer runs them: every line of every ```sh, ```bash and ```console
block of README.md and docs/*.md (`$ ` lines in a console block; what follows a `#` is an explanation) is
run with the real clude of this virtualenv, through bash, in a fresh copy of the bundled example
(examples/calc, a git repository of its own; for team commands a team, made by the block's own
`clude team init` or first), and must exit with the code the docs imply. The commands of one block share
their copy, in order, as a reader would type them; a command picked alone (-k) runs the ones before it
first. Models are the example's scripted one (its replies in examples/calc/demo/script.json), or a stub
server where `clude init` looks for one: no network, no key.

What differs from "run it as written, expect 0" is in the tables below, each entry with its reason:
SKIPPED (not run), VARIANTS (run in another form), EXIT (another code the docs give), STDIN, UNTIL_DRAWN
(live commands: Ctrl-C once drawn), BEFORE (the state a command names) and KNOWN_BUGS (clude or a doc is
wrong: an expected failure until fixed). test_every_command_is_run_or_skipped counts the shell blocks'
lines again another way, so that no command can be dropped without a word. The docs' links are checked
too: every relative link names a file of this repository (users have nothing beside it)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from clude.llm.stubs import OpenAIStub

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_FENCES = {"sh", "bash", "console", "shell"}
BIN = Path(sys.executable).parent  # this virtualenv's clude, pytest and python
CALC = REPO / "examples" / "calc"
TIMEOUT_S = 90  # one command, at most (a team run of the example settles in seconds)

# -- what cannot run here, and why --------------------------------------------------------------------------

# Commands not run at all: {command as written (without its comment): why}.
SKIPPED = {
    "make test": "the whole test suite, of which this file is a part",
}

# Commands run in another form: {command as written: (what runs, why)}. In what runs, {upstream} is the
# team's upstream of the block's copy, {repo} this repository and {venv} this virtualenv.
_CLAUDE = "the claude backend needs Claude Code and an Anthropic key: clude's own agent (the first of the "
_CODEX = "URL/git://host/... stands for the upstream as another machine reaches it (here: its path); codex needs "
VARIANTS: dict[str, tuple[str, str]] = {
    "make demo": ("make -C {repo} VENV={venv} -o {venv}/.installed demo",
                  "the virtualenv exists already (this one): make must not reinstall it, which needs PyPI"),
    "clude team run --agents 4 --backend claude": (
        "clude team run --agents 4 --backend clude",
        _CLAUDE + "alternatives the comment names) runs the example's scripted model"),
    "clude team run --agents 4 --backend claude --roles implementer=3,docs=1": (
        "clude team run --agents 4 --backend clude --roles implementer=3,docs=1",
        _CLAUDE + "backends) runs the example's scripted model"),
    "clude team worker --upstream URL --agent-id m2 --backend codex": (
        "clude team worker --upstream {upstream} --agent-id m2 --backend clude",
        _CODEX + "the Codex CLI and an OpenAI key: clude's own agent instead"),
    "clude team serve": ("clude team serve --port 0", "its port, 8765, may be taken on a shared machine"),
    "clude team serve --port 8765": ("clude team serve --port 0", "8765 may be taken on a shared machine"),
    "clude team worker --upstream git://host/repo.git --agent-id m2-a1 --backend codex": (
        "clude team worker --upstream {upstream} --agent-id m2-a1 --backend clude",
        _CODEX + "the Codex CLI and an OpenAI key: clude's own agent instead"),
}

# -- what the docs imply beyond "exits 0" ------------------------------------------------------------------

# Exit codes other than 0: {command as written: the codes it may exit with}. examples/calc has one bug on
# purpose: its suite fails (1: `failed`).
EXIT = {
    "clude test": {1},
    "clude test --json": {1},
    "clude test --no-cache": {1},
    "clude test --save base.json": {1},
    "clude test -- pytest -x tests/": {1},
    "clude test --fast 0.1": {0, 1},  # a sample passes or fails by the tests it draws (seeded by host name)
    # The scripted model plans the example's two steps as tasks; "Find why test_mean fails" changes nothing
    # and fails after its attempts when the fix has landed before it starts (1: a task failed), else is done
    # with the others (0): which, the workers' race decides.
    "clude team run --from-tests": {0, 1},
    "clude team run --from-tests --agents 4": {0, 1},
    "clude team serve": {0, 130},  # Ctrl-C
    "clude team serve --port 8765": {0, 130},
    "clude team run --forever --goal \"Every module documented\"": {130},  # Ctrl-C: interrupted
    # Claude Code is not installed here: init writes clude.toml and doctor's ERROR says how to install it (4).
    "clude init --backend claude": {4},
}

# Commands that do not do what the docs say because of a bug in clude (not in the docs): {command: the bug}.
# They still run; the test is an expected failure until the bug is fixed (then it fails: remove the entry).
KNOWN_BUGS: dict[str, str] = {}

# What a command reads on its standard input: the --confirm question answered "approve".
STDIN = {
    "clude run --task-file TASK.md --confirm": "a\n",
    'clude team plan "Add CSV export"': "a\n",
    'clude team plan "Add CSV export to the report command"': "a\n",
}

# Live commands that run until Ctrl-C: run on a terminal until they have drawn this text, then Ctrl-C.
UNTIL_DRAWN = {
    "clude team status --watch": "Ctrl-C to stop",
    "clude team serve": "http://127.0.0.1:",
    "clude team serve --port 8765": "http://127.0.0.1:",
    'clude team run --forever --goal "Every module documented"': "--forever: the planner added",
}


def _the_bug_back(ws: "Workspace") -> None:
    """Every documented `clude run` starts from the example as it ships (the bug in mean())."""
    ws.git("checkout", "-q", "--", "calc.py")


def _a_run_the_model_failed(ws: "Workspace") -> None:
    """Something to resume: a run whose model was out (a script that answers 503), which stops with 4."""
    _the_bug_back(ws)
    script = ws.root / "demo" / "script.json"
    kept = script.read_text(encoding="utf-8")
    script.write_text('[{"status": 503, "message": "the model is down"}]', encoding="utf-8")
    try:
        done = subprocess.run([str(BIN / "clude"), "run", "--task-file", "TASK.md"], cwd=ws.root, env=ws.env,
                              capture_output=True, text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
    finally:
        script.write_text(kept, encoding="utf-8")
    assert done.returncode == 4, done.stdout + done.stderr


def _a_project_clude_has_not_seen(ws: "Workspace") -> None:
    """Each `clude init` of a block on a project without clude.toml (the one before wrote it)."""
    (ws.root / "clude.toml").unlink(missing_ok=True)


def _a_goal_file(ws: "Workspace") -> None:
    (ws.root / "GOAL.md").write_text("Add CSV export to the report command.\n", encoding="utf-8")


def _failed_and_open_tasks(ws: "Workspace") -> None:
    """The board the steering commands name: TASK-002 failed (its acceptance test is one nobody wrote, and
    it has one attempt), TASK-003 open."""
    for line in ['clude team task add "Fix mean()" --tests tests/test_calc.py::test_mean',
                 'clude team task add "Make mean() of nothing 0" --tests tests/test_calc.py::test_mean_of_nothing'
                 " --max-attempts 1",
                 "clude team run --agents 2 --backend clude",
                 'clude team task add "Document mean()"']:
        done = subprocess.run(["bash", "-c", line], cwd=ws.root, env=ws.env, capture_output=True, text=True,
                              timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
        assert done.returncode in (0, 1), f"{line}: {done.stdout}{done.stderr}"
    status = subprocess.run([str(BIN / "clude"), "team", "status", "--json"], cwd=ws.root, env=ws.env,
                            capture_output=True, text=True, timeout=TIMEOUT_S, check=True).stdout
    states = {task["id"]: task["state"] for task in json.loads(status)["tasks"]}
    assert states == {"TASK-001": "done", "TASK-002": "failed", "TASK-003": "open"}, states


def _a_team_running(ws: "Workspace") -> None:
    """A `team run` to stop: one worker, paused (so it waits with open tasks instead of settling), started
    in the background; ready once its monitor has started the worker (after the run wrote its pidfile)."""
    subprocess.run([str(BIN / "clude"), "team", "pause", "a1"], cwd=ws.root, env=ws.env, check=True,
                   capture_output=True, timeout=TIMEOUT_S)
    run = subprocess.Popen([str(BIN / "clude"), "team", "run", "--agents", "1", "--backend", "clude"],
                           cwd=ws.root, env=ws.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           stdin=subprocess.DEVNULL, start_new_session=True)
    ws.background.append(run)
    seen = []
    for line in run.stdout:
        seen.append(line)
        if line.startswith("worker a1 started"):
            return
    pytest.fail("the team run ended before its worker started:\n" + "".join(seen))


# What must be so before a command runs: {command as written: setup(workspace)}.
BEFORE: dict[str, Callable[["Workspace"], None]] = {
    'clude run "make mean() ignore None values"': _the_bug_back,
    "clude run --task-file TASK.md --confirm": _the_bug_back,
    "clude run --parallel 3 --task-file TASK.md": _the_bug_back,
    "clude run --headless --json --task-file TASK.md": _the_bug_back,
    "clude resume [SESSION]": _a_run_the_model_failed,
    ".venv/bin/clude init -C ~/my-project": _a_project_clude_has_not_seen,
    ".venv/bin/clude init -C ~/my-project --yes": _a_project_clude_has_not_seen,
    ".venv/bin/clude init -C ~/my-project --force --model-url http://127.0.0.1:8080/v1 --model qwen2.5-coder-7b":
        _a_project_clude_has_not_seen,
    "clude init": _a_project_clude_has_not_seen,
    "clude init --yes": _a_project_clude_has_not_seen,
    "clude init --model-url http://127.0.0.1:11434/v1 --model qwen2.5-coder:7b": _a_project_clude_has_not_seen,
    "clude init --model-url https://llm.example.com/v1 --model big-1 --api-key-env MY_LLM_KEY":
        _a_project_clude_has_not_seen,
    "clude init --backend claude": _a_project_clude_has_not_seen,
    "clude team plan --goal-file GOAL.md --yes --json": _a_goal_file,
    "clude team task retry TASK-002 --attempts 2": _failed_and_open_tasks,
    "clude team stop": _a_team_running,
}

# -- the commands of the docs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    doc: str    # "README.md", "docs/team.md"
    line: int   # 1-based
    block: int  # the line of its block's opening fence
    text: str   # as written, without its comment

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def without_comment(line: str) -> str:
    """`line` without a trailing `# ...` (a `#` that starts a word outside quotes, as in a shell)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def fences(text: str):
    """(info string, line number of the opening fence, [(line number, line)]) of each fenced block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = re.match(r"\s*(`{3,})\s*([^`\s]*)", lines[i])
        if opening is None:
            i += 1
            continue
        ticks, info, start, body = opening.group(1), opening.group(2), i + 1, []
        i += 1
        while i < len(lines) and lines[i].strip() != ticks:
            body.append((i + 1, lines[i]))
            i += 1
        yield info, start, body
        i += 1


def commands_of(path: Path) -> list[Command]:
    doc = path.relative_to(REPO).as_posix()
    found = []
    for info, start, body in fences(path.read_text(encoding="utf-8")):
        if info not in SHELL_FENCES:
            continue
        for number, line in body:
            line = line.strip()
            if info == "console":
                if not line.startswith("$ "):
                    continue  # the output it shows
                line = line[2:]
            text = without_comment(line)
            if text:
                found.append(Command(doc, number, start, text))
    return found


def all_commands() -> list[Command]:
    return [command for path in DOCS for command in commands_of(path)]


def as_run(command: Command) -> str:
    """What runs for a command: its variant, or the text with the docs' notation for optional parts
    resolved ([--json]: given; [SESSION]: left out)."""
    if command.text in VARIANTS:
        return VARIANTS[command.text][0]
    text = re.sub(r"\[(--[^\]]+)\]", r"\1", command.text)
    return re.sub(r"\s*\[[A-Z_]+\]", "", text)


COMMANDS = all_commands()

# -- where they run ----------------------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """The user's environment without clude's, pytest's or any model's variables (no key can be used, no
    agent id leaks in); this virtualenv first on PATH, as after `source .venv/bin/activate`."""
    drop = ("CLUDE_", "PYTEST_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_", "CODEX_", "OPENROUTER_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) and not k.endswith(("_API_KEY", "_TOKEN"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = sys.prefix
    env.update(extra)
    return env


class Workspace:
    """One block's copy of examples/calc: a git repository of its own, in a folder of its own (the team's
    upstream goes beside it), with its own verdict cache and temp folder. A block that starts clude as
    `.venv/bin/clude` or `make` runs from a clone of clude (here: a folder with this virtualenv as its
    .venv) with the copy as ~/my-project; a block of `clude init` has a copy without clude's configuration
    (a project clude has not seen) and a model server on this machine to find (a stub)."""

    def __init__(self, folder: Path, block: list[Command]):
        from_checkout = any(c.text.startswith((".venv/bin/", "make ")) for c in block)
        self.init = any(re.search(r"\bclude init\b", c.text) for c in block)
        home = folder / "home"
        self.root = home / "my-project" if from_checkout else folder / "calc"
        shutil.copytree(CALC, self.root, ignore=shutil.ignore_patterns(
            "__pycache__", ".clude", ".pytest_cache", ".benchmarks"))
        pyproject = self.root / "pyproject.toml"
        if self.init:  # the example's pytest settings, without its [tool.clude] tables
            pyproject.write_text(pyproject.read_text(encoding="utf-8").split("\n# The demo's model")[0] + "\n")
        else:  # the demo project's timings (src/clude/team/demo_project/clude.toml): a team settles in seconds
            with open(pyproject, "a", encoding="utf-8") as f:
                f.write("\n[tool.clude.team]\npoll_s = 0.3\nheartbeat_s = 1\nrestart_s = 0.5\n")
        (folder / "tmp").mkdir()
        self.env = clean_env(XDG_CACHE_HOME=str(folder / "cache"), TMPDIR=str(folder / "tmp"))
        self.cwd = self.root
        if from_checkout:
            self.cwd = folder / "clude"
            self.cwd.mkdir()
            (self.cwd / ".venv").symlink_to(sys.prefix, target_is_directory=True)
            self.env["HOME"] = str(home)
        self.model = None
        if self.init:
            self.model = OpenAIStub(lambda messages, tools: "OK", model="qwen2.5-coder-7b").start()
            self.env["CLUDE_INIT_PROBE"] = f"127.0.0.1:{self.model.port}"  # instead of 8080, 11434, ...
            self.env["MY_LLM_KEY"] = "sk-stub-key-for-the-docs"  # the key a reader has exported
        self.git("init", "-q", "-b", "main")
        self.git("add", "-A")
        self.git("-c", "user.name=docs", "-c", "user.email=docs@localhost", "commit", "-q", "-m", "calc")
        self.done = 0  # how many of the block's commands have run here
        self.background: list[subprocess.Popen] = []  # what BEFORE started, to end after the command
        team = [c for c in block if c.text.startswith("clude team ")]
        if team and not team[0].text.startswith("clude team init"):  # a team's commands: a team first
            subprocess.run([str(BIN / "clude"), "team", "init"], cwd=self.root, env=self.env, check=True,
                           capture_output=True, timeout=TIMEOUT_S)

    def close(self) -> None:
        if self.model is not None:
            self.model.stop()
        for proc in self.background:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()

    def ended(self) -> list[str]:
        """The exit of what BEFORE started in the background (a team run the command stopped): waited
        for, and its output when it did not end with 0 or 130."""
        problems = []
        while self.background:
            proc = self.background.pop()
            try:
                out = proc.communicate(timeout=TIMEOUT_S)[0]
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                out = "still running: " + proc.communicate()[0]
            if proc.returncode not in (0, 130):
                problems.append(f"{proc.args} ended with {proc.returncode}:\n{out[-2000:]}")
        return problems

    @property
    def upstream(self) -> Path:
        return self.root.parent / "calc.upstream.git"

    def git(self, *args: str) -> None:
        subprocess.run(["git", *args], cwd=self.root, env=self.env, check=True, capture_output=True)

    def command_line(self, command: Command) -> str:
        line = as_run(command).format(upstream=self.upstream, repo=REPO, venv=sys.prefix)
        if self.model is not None:  # a model server's address stands for the one the reader has: the stub
            line = re.sub(r"https?://[\w.-]+(:\d+)?/v1", self.model.base_url, line)
        return line

    def run(self, command: Command) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) of the command, after what BEFORE says must be so."""
        if command.text in BEFORE:
            BEFORE[command.text](self)
        line = self.command_line(command)
        if command.text in UNTIL_DRAWN:
            return until_drawn(line, UNTIL_DRAWN[command.text], self.cwd, self.env)
        proc = subprocess.Popen(["bash", "-c", line], cwd=self.cwd, env=self.env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = proc.communicate(STDIN.get(command.text, ""), timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # and what it started (a team's workers)
            out, err = proc.communicate()
            pytest.fail(f"{command.id}: `{line}` still ran after {TIMEOUT_S} s\n{out[-3000:]}\n{err[-3000:]}")
        return proc.returncode, out, err


def until_drawn(line: str, marker: str, cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """Run a live command on a terminal (a pty) until it has drawn `marker`, then send it Ctrl-C (SIGINT):
    (exit code, what it drew, "")."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(["bash", "-c", "exec " + line], cwd=cwd, env={**env, "TERM": "xterm", "COLUMNS": "120"},
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    drawn = b""
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while marker.encode() not in drawn and time.monotonic() < deadline:
            if not select.select([master], [], [], max(0.0, deadline - time.monotonic()))[0]:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: it has exited and closed the terminal
                break
            if not chunk:
                break
            drawn += chunk
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
    text = drawn.decode(errors="replace")
    return (code if marker in text else -1), text, ""


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory):
    """The blocks' copies, made when a block's first command runs: {(doc, block): Workspace}."""
    made: dict[tuple[str, int], Workspace] = {}

    def of(command: Command) -> Workspace:
        key = (command.doc, command.block)
        if key not in made:
            folder = tmp_path_factory.mktemp(re.sub(r"\W", "-", f"{command.doc}-{command.block}"))
            made[key] = Workspace(folder, block_of(command))
        return made[key]

    yield of
    for workspace in made.values():
        workspace.close()


def block_of(command: Command) -> list[Command]:
    return [c for c in COMMANDS if (c.doc, c.block) == (command.doc, command.block)]


@pytest.mark.parametrize("command", COMMANDS, ids=[c.id for c in COMMANDS])
def test_command_runs_as_documented(command, workspaces):
    if command.text in SKIPPED:
        pytest.skip(f"not run: {SKIPPED[command.text]}")
    ws = workspaces(command)
    block = block_of(command)
    index = block.index(command)
    for earlier in block[ws.done:index]:  # picked alone: what the reader typed before it
        if earlier.text not in SKIPPED:
            ws.run(earlier)
    code, out, err = ws.run(command)
    ws.done = index + 1
    left = ws.ended()
    assert not left, f"{command.id}: what `{command.text}` was to act on did not end as it should: {left}"
    expected = EXIT.get(command.text, {0})
    line = ws.command_line(command)
    strays = sorted(p.name for p in ws.cwd.iterdir() if p.name != ".venv") if ws.cwd != ws.root else []
    for stray in strays:  # gone again, for the block's next command
        shutil.rmtree(ws.cwd / stray) if (ws.cwd / stray).is_dir() else (ws.cwd / stray).unlink()
    if command.text in KNOWN_BUGS and (code not in expected or strays):
        pytest.xfail(f"a known bug: {KNOWN_BUGS[command.text]} (exited {code})")
    assert not strays, f"{command.id}: `{command.text}`, run from clude's checkout, wrote {strays} into it"
    assert code in expected, (f"{command.id}: `{line}` exited {code}; the docs imply {sorted(expected)}\n"
                              f"--- stdout\n{out[-3000:]}\n--- stderr\n{err[-3000:]}")
    if "--json" in line.split() and ">" not in line and command.text not in UNTIL_DRAWN:
        json.loads(out)  # "one JSON result on stdout"


# -- nothing dropped without a word ----------------------------------------------------------------------


def test_every_command_is_run_or_skipped():
    """The shell blocks' lines counted again, another way (a plain scan of the files), against the commands
    the test runs; and every entry of the tables above still names a command of the docs."""
    counted = 0
    for path in DOCS:
        inside = None
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if inside is None:
                if stripped.startswith("```"):
                    inside = stripped.strip("`").strip()
                continue
            if stripped.startswith("```"):
                inside = None
            elif inside in SHELL_FENCES and stripped and not stripped.startswith("#"):
                counted += inside != "console" or stripped.startswith("$ ")
    assert len(COMMANDS) == counted, "the docs' shell blocks hold commands this test does not find"
    assert len(COMMANDS) >= 30, "fewer commands than the docs have had: is a block no longer tagged sh?"
    texts = {c.text for c in COMMANDS}
    for name, table in [("SKIPPED", SKIPPED), ("VARIANTS", VARIANTS), ("EXIT", EXIT), ("STDIN", STDIN),
                        ("UNTIL_DRAWN", UNTIL_DRAWN), ("BEFORE", BEFORE), ("KNOWN_BUGS", KNOWN_BUGS)]:
        stale = sorted(set(table) - texts)
        assert not stale, f"{name} names commands the docs no longer show: {stale}"
    ran = [c for c in COMMANDS if c.text not in SKIPPED]
    assert len(ran) + sum(c.text in SKIPPED for c in COMMANDS) == len(COMMANDS)
    assert len(SKIPPED) <= 3, "keep the commands that are not run few: each is a doc nobody checks"


def test_shell_commands_are_in_shell_blocks():
    """A command in an untagged block would never be run: tag it ```sh (or ```console with `$ `)."""
    untagged = []
    for path in DOCS:
        for info, start, body in fences(path.read_text(encoding="utf-8")):
            if info:
                continue
            for number, line in body:
                if re.match(r"\s*(\$ |clude |make |\.venv/bin/)", line):
                    untagged.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not untagged, "commands in blocks not tagged sh/console:\n" + "\n".join(untagged)


# -- the docs stand alone ----------------------------------------------------------------------------------


def test_docs_link_only_to_files_of_this_repository():
    """Users have this repository only: every relative link of README.md and docs/*.md names a file in it,
    and nothing names the development notes beside it (../shared, DESIGN.md)."""
    broken, outside = [], []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), 1):
            where = f"{path.relative_to(REPO)}:{number}"
            if "../shared" in line or "DESIGN.md" in line:
                outside.append(f"{where}: {line.strip()}")
            for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", line):
                if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                    continue  # a URL, or an anchor of this page
                file = (path.parent / target.split("#")[0]).resolve()
                if not file.exists() or REPO not in file.parents:
                    broken.append(f"{where}: {target}")
    assert not outside, "the docs name files users do not have:\n" + "\n".join(outside)
    assert not broken, "links to files that do not exist here:\n" + "\n".join(broken)
