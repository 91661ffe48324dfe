"""The real Aider CLI (PyPI aider-chat) through clude's aider backend, against the OpenAIStub.

What aider 0.86.2 did, as seen on the wire (every non-loopback request sent to a refusing proxy,
tests/aider_cli.py's OutsideRecorder) and in its output:
- One `POST /v1/chat/completions` per model turn (OPENAI_API_BASE + /chat/completions, with the /v1 the
  base holds), through the openai SDK inside litellm: `authorization: Bearer $OPENAI_API_KEY`, user-agent
  `OpenAI/Python 2.x`, body {"model", "messages", "temperature": 0} only: `--no-stream` sends no
  "stream", and no tools (aider edits files from the text of the reply). No /v1/models request.
- The model: AIDER_MODEL, else one picked from the keys set (OPENAI_API_KEY alone: gpt-4o). A name
  litellm knows (gpt-4o) is routed to the OpenAI API as it is; another needs the `openai/` prefix.
- The messages: a system prompt for the edit format; a user turn with the repository map ("Here are
  summaries of some files present in my git repository", from tree-sitter tags, which it caches in
  .aider.tags.cache.v4/); the files "added to the chat" with their whole text; the prompt file's text as
  the last user turn; the format's rules again as a final system message. The files the prompt names
  (calc.py, PROGRESS.md) are added by themselves. With none added, it asks the model which files need
  changes, and a reply naming one is answered "I added these files to the chat: calc.py" and asked
  again: one turn more.
- The edit format follows the model: gpt-4o gets `diff`, and a reply holding SEARCH/REPLACE blocks is
  what makes it write the file (SEARCH_REPLACE below): the path alone on a line, a fence, `<<<<<<<
  SEARCH`, lines as the file has them, `=======`, their new text, `>>>>>>> REPLACE`, the closing fence.
  A model aider has no settings for (openai/stub-model) gets `whole`: the path alone on a line, then a
  fence holding the file's entire new text. The wrong format is not refused: a SEARCH/REPLACE block in
  `whole` became calc.py's whole text, then its lint (on by default) found the syntax error and sent
  it back, three times at most. A file not added to the chat is edited too: --yes-always says yes.
- After the reply it prints the reply, "Tokens: 2.7k sent, 42 received. Cost: $0.0072 message, $0.0072
  session." (costs from litellm's price list; no Cost part for a model without prices, whose usage it
  counts itself) and "Applied edit to calc.py"; it exits 0 once the reply is applied.
- Outside requests: aider fetches litellm's model price list from raw.githubusercontent.com itself
  (twice, main and weak model; a refused or timed-out fetch prints the error and goes on), and litellm
  fetches the same at import unless LITELLM_LOCAL_MODEL_COST_MAP is set ([aider] env_defaults). The
  tiktoken encodings and tree-sitter grammars ship in the packages: nothing else is fetched.
- What --yes-always said yes to, each now turned off in the [aider] command: on a first run (no
  ~/.aider/installs.json) it opened the release notes in a browser (webbrowser: www-browser from PATH
  when TERM is set); for a model without metadata it opened its warnings page; a URL in the prompt made
  it pip-install aider-chat[playwright], then `playwright install --with-deps chromium`, then fetch the
  page. It writes ~/.aider/analytics.json, installs.json and caches/ (sandbox_home keeps .aider when it
  exists; in the sandbox without it, "Error checking version: [Errno 30] Read-only file system" and it
  goes on), and in the tree .aider.chat.history.md and .aider.tags.cache.v4/ (never_land).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from agent_helpers import CALC, CALC_FIXED
from aider_cli import OutsideRecorder, aider_env, install_aider
from clude.config.loader import load_settings
from clude.llm.stubs import OpenAIStub
from clude.team.backends import get_backend
from clude.team.backends.results import read_result
from clude.team.logs.events import read_events
from clude.team.work.worker import EXIT_SETTLED, Worker, WorkerConfig
from team_helpers import team_project, upstream_file, upstream_log
from test_team_flow import add

BROWSER_MARK = "FAKE-BROWSER-OPENED"
SEARCH_REPLACE = """The divisor is off by one: mean() must divide by len(values).

calc.py
```python
<<<<<<< SEARCH
    return sum(values) / (len(values) + 1)
=======
    return sum(values) / len(values)
>>>>>>> REPLACE
```
"""
WHOLE_FILE = f"The divisor is off by one.\n\ncalc.py\n```python\n{CALC_FIXED}```\n"


@pytest.fixture(scope="session")
def aider_bin() -> Path:
    """The real aider (skips when this Python cannot run it, or without the registry)."""
    return install_aider()


def aider_user_env(aider: Path, tmp_path: Path, base_url: str, proxy: str, model: str) -> dict[str, str]:
    """A worker's environment where `aider` on PATH is the installed CLI, against the stub, with a
    console browser on PATH that says so when it is opened."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "aider").symlink_to(aider)
    browser = bin_dir / "www-browser"
    browser.write_text(f'#!/bin/sh\necho "{BROWSER_MARK} $*"\n')
    browser.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = aider_env(home, base_url, proxy)
    del env["LITELLM_LOCAL_MODEL_COST_MAP"]  # the backend's env_defaults must bring it
    env.update({"PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", "TERM": "xterm", "AIDER_MODEL": model})
    return env


def test_the_aider_backend_completes_a_task_end_to_end(aider_bin, tmp_path):
    """The real aider, run by a worker in its sandbox: claim, aider applies the scripted SEARCH/REPLACE
    block to calc.py, the harness verifies, the work lands without aider's files, and its cost is read."""
    root, upstream = team_project(tmp_path)
    task = add(root, upstream, title="Fix mean", tests="test_calc.py::test_mean",
               body="mean() in calc.py divides by one too many (reported at https://example.com/issues/7).")
    turns: list[list[dict]] = []

    def script(messages, tools):
        turns.append(messages)
        return SEARCH_REPLACE if len(turns) == 1 else "Nothing more to change."

    with OutsideRecorder() as outside, OpenAIStub(script, model="gpt-4o") as stub:
        env = aider_user_env(aider_bin, tmp_path, stub.base_url, outside.url, "gpt-4o")
        settings, _ = load_settings(root)
        w = Worker(WorkerConfig(agent_id="a1", upstream=upstream, workdir=tmp_path / "agents" / "a1",
                                state_dir=tmp_path / "state", backend=get_backend("aider"),
                                settings=settings, env=env, sleep=lambda s: None))
        assert w.run() == EXIT_SETTLED
        requests, failures, asked = list(stub.requests), list(stub.failures), outside.hosts()
    logs = "\n".join(p.read_text(errors="replace") for p in sorted((tmp_path / "agents").rglob("*.log")))

    assert not failures, failures
    assert upstream_file(upstream, "calc.py") == CALC_FIXED
    assert f"done {task}: Fix mean (agent a1)" in upstream_log(upstream)
    assert "Applied edit to calc.py" in logs, logs[-3000:]
    work = tmp_path / "agents" / "a1" / "work"  # aider left its files in the worker's clone ...
    assert (work / ".aider.chat.history.md").is_file() and list(work.glob(".aider.tags.cache*"))
    tree = subprocess.run(["git", "--git-dir", upstream, "ls-tree", "-r", "--name-only", "main"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert not [name for name in tree if name.startswith(".aider")], tree  # ... and none landed

    # one turn: the task's words, calc.py as it was, and the diff format's rules
    assert len(turns) == 1, [m["content"][:200] for m in turns[-1]]
    texts = [str(m["content"]) for m in turns[0]]
    assert "SEARCH/REPLACE" in texts[0] and turns[0][0]["role"] == "system"
    assert any("Fix mean" in text and "test_calc.py::test_mean" in text for text in texts)
    assert any(CALC.strip() in text for text in texts)
    chats = [r for r in requests if r["method"] == "POST" and r["path"] == "/v1/chat/completions"]
    assert len(chats) == 1 and len(requests) == 1, [(r["method"], r["path"]) for r in requests]
    assert chats[0]["body"]["model"] == "gpt-4o" and "tools" not in chats[0]["body"]
    assert chats[0]["headers"]["authorization"] == f"Bearer {env['OPENAI_API_KEY']}"

    # offline: nothing but aider's own price-list fetch, for its main and its weak model, tried to leave
    # (litellm's is a third without [aider] env_defaults); no URL scraped, no browser opened
    assert asked == ["raw.githubusercontent.com:443"] * 2, asked
    assert "Scraping" not in logs and BROWSER_MARK not in logs

    finished = [e for e in read_events(tmp_path / "state") if e["kind"] == "agent_finished"]
    cost = read_result("aider", "", logs, 0).cost_usd
    assert cost is not None and cost > 0
    assert [e["cost_usd"] for e in finished] == [cost]


def test_a_model_without_aider_settings_gets_whole_files_and_opens_no_browser(aider_bin, tmp_path):
    """openai/stub-model: aider knows nothing of it (no prices, the `whole` edit format), which made it
    open its warnings page in a browser before --no-show-model-warnings."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "calc.py").write_text(CALC)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "start"]):
        subprocess.run(["git", *args], cwd=work, check=True, capture_output=True)
    prompt = tmp_path / "prompt.md"
    prompt.write_text("Fix mean(): it divides by one too many.\n")
    turns: list[list[dict]] = []

    def script(messages, tools):
        turns.append(messages)
        return WHOLE_FILE

    with OutsideRecorder() as outside, OpenAIStub(script, model="stub-model") as stub:
        env = aider_user_env(aider_bin, tmp_path, stub.base_url, outside.url, "openai/stub-model")
        backend = get_backend("aider")
        assert backend.check(env) == []
        run = backend.run(prompt_file=prompt, workdir=work, task_id="TASK-001", agent_id="a1", env=env,
                          log_path=tmp_path / "run.log", timeout_s=180)
        failures, asked = list(stub.failures), outside.hosts()
    log = run.log_path.read_text(errors="replace")

    assert not failures, failures
    assert run.exit_code == 0 and run.infra is None, log[-3000:]
    assert (work / "calc.py").read_text() == CALC_FIXED
    # the prompt names no file: none is in the chat, so the reply naming calc.py is answered by adding
    # it and asking again; the second reply is applied
    assert len(turns) == 2
    assert turns[1][-1]["role"] == "user"
    assert turns[1][-1]["content"].startswith("I added these files to the chat: calc.py")
    assert not any(CALC.strip() in str(m["content"]) for m in turns[0])
    assert any(CALC.strip() in str(m["content"]) for m in turns[1])
    assert "openai/stub-model with whole edit format" in log
    assert "file listing" in json.dumps(turns[0])  # the whole format's rules
    assert run.cost_usd is None and "Tokens:" in log and "Cost:" not in log
    assert BROWSER_MARK not in log
    assert asked == ["raw.githubusercontent.com:443"], asked  # no weak model for this one
    assert (work / ".aider.chat.history.md").exists()  # what never_land keeps off the upstream


# What aider 0.86.2 printed in the worker's run above (its run log, from the version line on; the reply
# it echoes is SEARCH_REPLACE)
PRICED_RUN = f"""\
Aider v0.86.2
Main model: gpt-4o with diff edit format
Weak model: gpt-4o-mini
Git repo: .git with 8 files
Repo-map: using 4096 tokens, auto refresh


PROGRESS.md

calc.py
{SEARCH_REPLACE}
Tokens: 3.7k sent, 51 received. Cost: $0.0097 message, $0.0097 session.
Applied edit to calc.py
"""
# ... and with a model it has no prices for, after its lint sent a broken edit back (two usage reports)
UNPRICED_RUN = """\
Model: openai/stub-model with whole edit format
Tokens: 832 sent, 42 received.
Applied edit to calc.py
# Fix any errors below, if possible.
Tokens: 1.1k sent, 42 received.
Only 3 reflections allowed, stopping.
"""


@pytest.mark.parametrize("output, cost", [
    (PRICED_RUN, 0.0097),
    # the last report holds the session's total; the console wraps it at 80 columns
    ("Tokens: 2.7k sent, 42 received. Cost: $0.0072 message, $0.0072 session.\nApplied edit to calc.py\n"
     "Tokens: 12k sent, 3.1k cache write, 9.8k cache hit, 1.2k received.\nCost: $1.25 message, $1.26\n"
     "session.\n", 1.26),
    (UNPRICED_RUN, None),
    ("", None),
])
def test_aider_result_reads_the_session_cost(output, cost):
    outcome = read_result("aider", "", output, 0)
    assert outcome.cost_usd == cost
    assert outcome.infra is None and outcome.gave_up is None
    assert outcome.summary.endswith(output.strip().splitlines()[-1] if output else "")
