"""A CLI of another version than a backend's command was written for refuses a flag: each real CLI's
own refusal is named as that (an environment failure that stops the worker once, saying which flag and
where to look), never charged to a task. The real CLIs are installed once and cached (npm_cli.py); each
case skips with the reason when its CLI cannot be installed here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clude.config.settings import BackendConfig
from clude.team.backends import get_backend
from npm_cli import on_path

FLAG = "--clude-no-such-flag"


def _codex(tmp_path: Path) -> dict[str, str]:
    from codex_cli import codex_env, install_codex
    return on_path(install_codex(), "codex", tmp_path / "bin", codex_env(tmp_path / "home", "http://127.0.0.1:9/v1"))


def _claude(tmp_path: Path) -> dict[str, str]:
    from claude_code import claude_env, install_claude
    (tmp_path / "home").mkdir()
    return on_path(install_claude(), "claude", tmp_path / "bin", claude_env(tmp_path / "home", "http://127.0.0.1:9"))


def _gemini(tmp_path: Path) -> dict[str, str]:
    from gemini_cli import gemini_env, install_gemini
    return on_path(install_gemini(), "gemini", tmp_path / "bin", gemini_env(tmp_path / "home", "http://127.0.0.1:9"))


def _aider(tmp_path: Path) -> dict[str, str]:
    from aider_cli import aider_env, install_aider
    env = aider_env(tmp_path / "home", "http://127.0.0.1:9/v1", "http://127.0.0.1:9")
    return on_path(install_aider(), "aider", tmp_path / "bin", env)


@pytest.mark.parametrize("name, env_of", [("codex", _codex), ("claude", _claude), ("gemini", _gemini),
                                          ("aider", _aider)])
def test_a_flag_the_real_cli_does_not_take_is_named_as_its_version_not_the_tasks(tmp_path, name, env_of):
    env = env_of(tmp_path)
    command = [*get_backend(name).spec.command, FLAG]
    backend = get_backend(name, {name: BackendConfig(command=command)})
    work = tmp_path / "work"
    work.mkdir()
    prompt = tmp_path / "prompt.md"
    prompt.write_text("Say hello.\n")
    run = backend.run(prompt_file=prompt, workdir=work, task_id="T", agent_id="a1", env={**env, "PWD": str(work)},
                      log_path=tmp_path / "run.log", timeout_s=120)
    log = run.log_path.read_text(errors="replace")
    assert run.exit_code not in (0, None) and run.infra is not None, log[-2000:]
    assert (run.infra.kind, run.infra.category) == ("cli_flags", "environment"), (run.infra, log[-2000:])
    assert FLAG.lstrip("-") in run.infra.message and f"[backends.{name}]" in run.infra.message
    assert os.listdir(work) == []


def test_the_versions_the_commands_were_tried_with_are_the_ones_the_tests_run():
    from aider_cli import AIDER_VERSION
    from claude_code import CLAUDE_CODE_VERSION
    from codex_cli import CODEX_VERSION
    from gemini_cli import GEMINI_CLI_VERSION

    tried = {name: get_backend(name).spec.tested for name in ("claude", "codex", "gemini", "aider")}
    assert tried == {"claude": CLAUDE_CODE_VERSION, "codex": CODEX_VERSION, "gemini": GEMINI_CLI_VERSION,
                     "aider": AIDER_VERSION}
