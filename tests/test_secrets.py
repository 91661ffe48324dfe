"""Secrets in the environment never reach a report, a Verdict, the cache or a run's files."""

import json
import sys

from clude.config import TestConfig
from clude.harness import concise, run_tests
from clude.secrets import Redactor
from conftest import project_env, write_files

SECRET = "sk-" + "proj-abcdefghijklmnopqrstuvwx0123456789"  # built: no key-shaped literal in the tree


def test_a_failing_test_that_shows_an_api_key_leaks_it_nowhere(tmp_path):
    project = write_files(tmp_path / "p", {"test_env.py": (
        "import os\n\ndef test_key():\n"
        "    print('the key is', os.environ['OPENAI_API_KEY'])\n"
        "    assert os.environ['OPENAI_API_KEY'] == 'expected'\n")})
    env = project_env(OPENAI_API_KEY=SECRET)
    config = TestConfig(command=[sys.executable, "-m", "pytest", "-p", "no:cacheprovider"])
    verdict = run_tests(project, config, env=env)
    assert verdict.status.value == "failed"
    assert "[redacted" in verdict.failures[0].reason and "abcdefgh" not in verdict.failures[0].reason
    assert SECRET not in concise(verdict) and SECRET not in json.dumps(verdict.model_dump())
    from clude.harness.cache import machine_cache
    written = [p for p in [*(project / ".clude").rglob("*"), *machine_cache().rglob("*")] if p.is_file()]
    assert any(p.name == "output.log" for p in written) and any(p.parent.name == "verdicts"
                                                                 for p in written)
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
    cached = run_tests(project, config, env=env)
    assert cached.cached and SECRET not in json.dumps(cached.model_dump())


def test_what_is_redacted():
    r = Redactor({"GITHUB_TOKEN": "ghp_" + "a" * 36, "DB_PASSWORD": "hunter2hunter2", "DEBUG": "1",
                  "AUTH_MODE": "true", "SSH_AUTH_SOCK": "/tmp/ssh-x/agent.1", "HOME": "/root"})
    text = r.text("token ghp_" + "a" * 36 + " pw hunter2hunter2 mode true at /tmp/ssh-x/agent.1")
    assert text == "token [redacted $GITHUB_TOKEN] pw [redacted $DB_PASSWORD] mode true at " \
                   "/tmp/ssh-x/agent.1"
    # key shapes are redacted even when no variable holds them
    assert Redactor({}).text("key=sk-ant-api03-" + "x" * 30) == "key=[redacted]"
