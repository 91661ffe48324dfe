"""`clude run`, `clude resume` and `clude sessions` as a user runs them: real subprocesses against the
OpenAI stub server over HTTP (kill -9 included), and the --confirm dialogue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from click.testing import CliRunner

from agent_helpers import CALC_FIXED, AgentScript, call, done, plan, sample_project
from clude.cli.main import main
from clude.llm.stubs import OpenAIStub

FIX = call("edit_file", path="calc.py", search="(len(values) + 1)", replace="len(values)")


def with_model(root: Path, base_url: str, **extra) -> None:
    lines = ['[model]', 'provider = "openai"', 'name = "stub-model"', f'base_url = "{base_url}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    with open(root / "clude.toml", "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def clude(*args: str, root: Path, **popen) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLUDE_", "OPENAI_", "PYTEST_"))}
    return subprocess.Popen([sys.executable, "-m", "clude", *args, "-C", str(root)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **popen)


def finish(proc: subprocess.Popen) -> tuple[int, dict, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, json.loads(out), err


def test_headless_json_over_http_prints_the_result_and_exits_0(tmp_path):
    root = sample_project(tmp_path / "p")
    (tmp_path / "TASK.md").write_text("Fix mean in calc.py\n")
    script = AgentScript([plan("Fix", ("fix", "Fix mean"))], {"fix": [FIX, done("fixed mean")]})
    with OpenAIStub(script) as stub:
        with_model(root, stub.base_url)
        code, result, err = finish(clude("run", "--headless", "--json", "--task-file",
                                         str(tmp_path / "TASK.md"), root=root))
    assert code == 0, err
    assert err == ""  # headless: nothing but the JSON
    assert result["status"] == "done" and result["goal"] == "Fix mean in calc.py"
    assert result["steps"] == [{"id": "fix", "title": "Fix mean", "status": "done", "attempts": 1,
                                "summary": "fixed mean", "reason": ""}]
    assert result["verdict"]["status"] == "passed"
    assert result["usage"]["requests"] == 3 and result["session_id"]
    assert (root / "calc.py").read_text() == CALC_FIXED


def test_an_unreachable_model_is_an_infrastructure_error_exit_4(tmp_path):
    root = sample_project(tmp_path / "p")
    with_model(root, "http://127.0.0.1:9/v1", max_retries=0)
    code, result, err = finish(clude("run", "--headless", "--json", "fix mean", root=root))
    assert code == 4
    assert result["status"] == "error" and "127.0.0.1:9" in result["reason"]


def test_kill_9_mid_run_then_resume_finishes_without_redoing_done_steps(tmp_path):
    root = sample_project(tmp_path / "p")
    write_b = call("write_file", path="B.md", content="step b\n")
    script = AgentScript([plan("Two", ("a", "Fix mean"), ("b", "Write B.md", ["a"]))],
                         {"a": [FIX, done("fixed")], "b": [write_b, write_b, done("wrote B")]})
    reached, killed = threading.Event(), threading.Event()
    script.hooks[("b", 1)] = lambda: (reached.set(), killed.wait(60))
    with OpenAIStub(script) as stub:
        with_model(root, stub.base_url)
        proc = clude("run", "--headless", "--json", "fix mean, then write B.md", root=root)
        try:
            assert reached.wait(60), proc.stderr.read() if proc.poll() is not None else "no request"
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        finally:
            killed.set()
        assert proc.returncode == -signal.SIGKILL
        sessions = json.loads(subprocess.run(
            [sys.executable, "-m", "clude", "sessions", "--json", "-C", str(root)],
            capture_output=True, text=True, check=True).stdout)
        assert [(s["status"], s["done"], s["steps"]) for s in sessions] == [("running", 1, 2)]
        code, result, err = finish(clude("resume", "--headless", "--json", root=root))
    assert code == 0, err
    assert result["session_id"] == sessions[0]["id"]
    assert [(s["id"], s["status"], s["attempts"]) for s in result["steps"]] == [
        ("a", "done", 1), ("b", "done", 1)]
    assert script.calls["plan"] == 1 and script.calls["a"] == 2  # neither planned nor done again
    assert (root / "B.md").read_text() == "step b\n" and (root / "calc.py").read_text() == CALC_FIXED


def scripted_project(tmp_path: Path, replies: list) -> Path:
    root = sample_project(tmp_path / "p")
    (root / "script.json").write_text(json.dumps(replies))
    with open(root / "clude.toml", "a") as f:
        f.write('[model]\nprovider = "scripted"\nscript = "script.json"\n')
    return root


def test_confirm_reject_blocks_before_anything_runs(tmp_path):
    root = scripted_project(tmp_path, [plan("p", ("fix", "Fix mean"))])
    result = CliRunner().invoke(main, ["run", "--confirm", "fix mean", "-C", str(root)], input="r\n")
    assert result.exit_code == 3, result.output
    assert "Run this plan?" in result.output and "the plan was rejected" in result.output


def test_confirm_edit_is_validated_again_and_the_edited_plan_runs(tmp_path):
    root = scripted_project(tmp_path, [plan("p", ("x", "Something else")), FIX, done("fixed")])
    editor = tmp_path / "editor.py"
    count = tmp_path / "count"
    editor.write_text(
        "import json, sys, pathlib\n"
        f"count = pathlib.Path({str(count)!r})\n"
        "n = int(count.read_text()) if count.exists() else 0\n"
        "count.write_text(str(n + 1))\n"
        "steps = [{'id': 'fix', 'title': 'Fix mean', 'dependencies': ['fix'] if n == 0 else []}]\n"
        "pathlib.Path(sys.argv[1]).write_text(json.dumps({'title': 'edited', 'steps': steps}))\n")
    result = CliRunner(env={"EDITOR": f"{sys.executable} {editor}", "VISUAL": ""}).invoke(
        main, ["run", "--confirm", "fix mean", "-C", str(root)], input="e\ne\na\n")
    assert result.exit_code == 0, result.output
    assert "the edited plan is invalid" in result.output and "depends on itself" in result.output
    assert "DONE" in result.output
    assert (root / "calc.py").read_text() == CALC_FIXED


def test_usage_errors_exit_2_and_name_the_problem(tmp_path):
    root = sample_project(tmp_path / "p")
    runner = CliRunner()
    assert runner.invoke(main, ["run", "-C", str(root)]).exit_code == 2
    both = runner.invoke(main, ["run", "--confirm", "--headless", "x", "-C", str(root)])
    assert both.exit_code == 2 and "--headless never does" in both.output
    (root / "clude.toml").write_text("[agent]\nmax_iteratons = 3\n")
    bad = runner.invoke(main, ["run", "x", "-C", str(root)])
    assert bad.exit_code == 2 and "agent.max_iteratons" in bad.output and "clude.toml" in bad.output
    (root / "clude.toml").write_text("")
    nothing = runner.invoke(main, ["resume", "-C", str(root)])
    assert nothing.exit_code == 2 and "no unfinished session" in nothing.output
    assert "no sessions yet" in runner.invoke(main, ["sessions", "-C", str(root)]).output
