"""Pre-flight checks (`clude doctor`, and `clude run` / `clude team run` before they start): git, the
team's upstream, the backends, the model, the tests and disk space — each OK with what was found, or
ERROR with how to fix it. Never a secret's value: variables are named, never shown."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

from clude.config.settings import ModelConfig, Settings
from clude.gitcli import GitError, git_text, run_git
from clude.doctor.check import Check
from clude.doctor.model import NOT_CONFIGURED, ModelAnswer, ask_model, model_configured, probe_model
from clude.doctor.suite import tests_check

Scope = Literal["run", "team", "all"]
# A model check: (the [model] settings, the project, the environment) -> what answered (str-able);
# raises clude.llm.base.ModelError saying what is wrong.
ModelCheck = Callable[[ModelConfig, Path, Mapping[str, str]], Any]

GIT_TIMEOUT_S = 60.0  # ls-remote and push --dry-run give up after this
MIN_FREE_BYTES = 1 << 30  # 1 GiB: clones, logs and reports of the workers
PROBE_BRANCH = "refs/heads/clude-doctor-probe"  # named in a dry-run push, never created
GIB = float(1 << 30)


def run_checks(root: Path, settings: Settings, *, env: Mapping[str, str], scope: Scope = "all",
               backends: list[str] | None = None, command: str | None = None, upstream: str | None = None,
               model_check: ModelCheck | None = None) -> list[Check]:
    """Every check that applies to `scope`: "run" (one agent), "team" (workers on the upstream) or
    "all" (run, and team when the project is a team; the backends too when named). `backends`: the
    backends to check (default: [team] backend, or "command" with `command`); `command`: the --command
    template; `upstream`: the team's upstream (default: [team] upstream or the 'upstream' remote);
    `model_check`: how the model is asked (default: a one-token request, `ask_model`)."""
    root = Path(root).resolve()
    env = dict(env)
    url, no_team = _team_url(root, settings, upstream) if scope != "run" else (None, None)
    run = scope in ("run", "all")
    team = scope == "team" or (scope == "all" and url is not None)
    names = list(backends or [("command" if command else settings.team.backend)])
    agents = team or (scope == "all" and (bool(backends) or command is not None))  # backends to check
    checks = [git_check(root, settings, needed=team)]
    if scope == "all" and not team:
        checks.append(Check("team", True, f"not a team project: upstream checks skipped ({no_team})"))
    if team:
        checks += upstream_checks(root, url, no_team)
    if agents:
        checks += backend_checks(settings, names, command, env)
    if scope == "all" and "clude" not in names and not model_configured(settings.model):
        # the team's agents are CLIs of their own: only `clude run` would need a model
        checks.append(Check("model", True, f"none configured; the {' and '.join(names)} backend needs none "
                                           "(`clude run` and the clude backend do: `clude init`)"))
    elif run or (agents and "clude" in names):
        clude = _clude_backend(settings, command) if agents and "clude" in names else None
        checks.append(model_check_of(root, settings, env, model_check, backend=clude))
    if run and not team and settings.agent.verify == "never":
        checks.append(Check("tests", True, "not checked: the setting [agent] verify is \"never\" "
                                           "(the work will not be verified)"))
    else:
        checks.append(tests_check(root, settings.test, env, strict=team))
    if run or agents:
        from clude.doctor.trust import sandbox_check
        checks.append(sandbox_check(settings))
    checks.append(disk_check(root))
    from clude.secrets import Redactor

    redactor = Redactor(env)  # a safety net: what a tool printed never carries a secret out
    return [Check(c.name, c.ok, redactor.text(c.detail), c.warn) for c in checks]


def refusal(errors: list[Check]) -> str:
    """One line for a run refused on these errors (the model's first, worded as a run would say it)."""
    said = {"model": "the model cannot be used"}
    return "; ".join(f"{said.get(c.name, c.name)}: {c.detail}" for c in errors)


# git -------------------------------------------------------------------------------------------
def git_check(root: Path, settings: Settings, *, needed: bool) -> Check:
    """git runs; the project is a repository with a commit (needed by a team and by [agent] parallel > 1)."""
    try:
        version = git_text(root, "--version", timeout=GIT_TIMEOUT_S).removeprefix("git version ").strip()
    except GitError as error:
        return Check("git", False, f"git cannot be run ({error}): install git and put it on PATH")
    needed = needed or settings.agent.parallel > 1
    why = "a team" if needed and settings.agent.parallel == 1 else "[agent] parallel > 1"
    try:
        top = git_text(root, "rev-parse", "--show-toplevel", timeout=GIT_TIMEOUT_S)
    except GitError:
        if not needed:
            return Check("git", True, f"git {version}; {root} is not a git repository (fine for one agent)")
        return Check("git", False, f"{root} is not a git repository, which {why} needs: run `git init`, "
                                   "then commit the project (git add -A && git commit -m initial)")
    head = git_text(root, "rev-parse", "-q", "--verify", "HEAD^{commit}", ok=(0, 1), timeout=GIT_TIMEOUT_S)
    if not head:
        if not needed:
            return Check("git", True, f"git {version}; the repository {top} has no commit yet")
        return Check("git", False, f"the git repository {top} has no commit yet, which {why} needs: commit "
                                   "the project (git add -A && git commit -m initial)")
    return Check("git", True, f"git {version}; repository {top} at {head[:12]}")


# upstream --------------------------------------------------------------------------------------
def _team_url(root: Path, settings: Settings, given: str | None) -> tuple[str | None, str | None]:
    """(the team's upstream, None) or (None, why there is none)."""
    from clude.team.protocol.admin import NoTeam, upstream_of

    try:
        return upstream_of(root, settings, given), None
    except NoTeam as error:
        return None, str(error)


def upstream_checks(root: Path, url: str | None, no_team: str | None = None) -> list[Check]:
    """The upstream answers `git ls-remote` and has main; then that we may push to it."""
    from clude.team.protocol.git import is_local_url
    from clude.team.board.layout import BRANCH

    if url is None:
        return [Check("upstream", False, no_team or "no team upstream: run `clude team init`")]
    if is_local_url(url) and not _local(root, url).exists():
        return [Check("upstream", False, f"the upstream {url} does not exist: run `clude team init` to make it, "
                                         "or point [team] upstream (or --upstream) at the team's repository")]
    try:
        heads = git_text(root if root.is_dir() else Path.cwd(), "ls-remote", "--heads", url,
                         timeout=GIT_TIMEOUT_S)
    except GitError as error:
        return [Check("upstream", False, f"cannot reach the upstream {url}: {_first_line(error.stderr or str(error))}; "
                                         "check the URL, the network, and that you may read it")]
    main = next((line.split()[0] for line in heads.splitlines() if line.endswith(f"refs/heads/{BRANCH}")), None)
    if main is None:
        return [Check("upstream", False, f"the upstream {url} has no {BRANCH} branch: run `clude team init`")]
    from clude.doctor.trust import protection_check

    writable = writable_check(root, url)
    return [Check("upstream", True, f"{url} reachable, {BRANCH} at {main[:12]}"), *([writable] if writable else []),
            protection_check(root, url)]


def writable_check(root: Path, url: str) -> Check | None:
    """A local upstream: its refs and objects folders are writable by us. Any other URL: the server's
    receive-pack accepts us (`git push --dry-run`, which changes nothing; None without a commit to
    push). A pre-receive hook that refuses every push cannot be seen this way."""
    from clude.team.protocol.git import is_local_url

    if is_local_url(url):
        path = _local(root, url).resolve()
        gitdir = path / ".git" if (path / ".git").is_dir() else path
        folders = [gitdir / "refs", gitdir / "refs" / "heads", gitdir / "objects"]
        denied = [f for f in folders if f.exists() and not os.access(f, os.W_OK | os.X_OK)]
        if denied:
            return Check("upstream push", False, f"the upstream {path} is not writable by this user "
                         f"({', '.join(str(f) for f in denied)}): fix its owner or permissions "
                         f"(chown -R / chmod -R u+w), or use an upstream you may push to")
        return Check("upstream push", True, f"{path}: refs and objects writable")
    if not git_text(root, "rev-parse", "-q", "--verify", "HEAD^{commit}", ok=(0, 1, 128), timeout=GIT_TIMEOUT_S):
        return None  # no commit to probe a push with: the git check says why
    try:
        run_git(root, "push", "--dry-run", "--quiet", "--no-verify", url, f"HEAD:{PROBE_BRANCH}",
                timeout=GIT_TIMEOUT_S)
    except GitError as error:
        return Check("upstream push", False, f"the upstream {url} refuses a push from here: "
                     f"{_first_line(error.stderr or str(error))}; check your credentials and write access")
    return Check("upstream push", True, f"{url} accepts pushes (dry run)")


def _local(root: Path, url: str) -> Path:
    """A local upstream's folder (a relative path is relative to the project, as git reads it)."""
    path = Path(url).expanduser()
    return path if path.is_absolute() else root / path


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    meaningful = [line for line in lines if line.lower().startswith(("fatal", "error", "remote: error"))]
    return (meaningful or lines or ["no output"])[0][:300]


# backends --------------------------------------------------------------------------------------
def backend_checks(settings: Settings, names: list[str], command: str | None,
                   env: Mapping[str, str]) -> list[Check]:
    """Each backend: its required variables set (names only), its program on PATH answering --version."""
    from clude.team.backends import get_backend

    checks = []
    for name in names:
        label = f"backend {name}"
        try:
            backend = get_backend(name, settings.backends, command=command)
        except ValueError as error:
            checks.append(Check(label, False, str(error)))
            continue
        problems = backend.check(env)
        checks += [Check(label, False, p.message) for p in problems]
        if any(p.kind != "missing_env" for p in problems):
            continue  # its program is missing: --version cannot be asked
        version = backend.version(env)
        if not isinstance(version, str):
            checks.append(Check(label, False, version.message))
        elif not problems:
            tested = backend.spec.tested
            other = "" if not tested or tested in version else (
                f" (clude's command for it was tried with {tested}: should a run stop on a flag it refuses, "
                f"install {tested} or change [backends.{name}] command)")
            checks.append(Check(label, True, f"{_program_of(backend, env)}: {version}{other}"))
    return checks


def _program_of(backend, env: Mapping[str, str]) -> str:
    """The program a backend starts, as found on PATH (its command's first word when unknown)."""
    first = backend.spec.command[0].replace("{python}", sys.executable)
    if "{" in first or os.sep in first:
        return first
    return shutil.which(first, path=env.get("PATH", os.defpath)) or first


def _clude_backend(settings: Settings, command: str | None):
    from clude.team.backends import get_backend

    try:
        return get_backend("clude", settings.backends, command=command)
    except ValueError:
        return None  # reported by backend_checks


# model -----------------------------------------------------------------------------------------
def model_check_of(root: Path, settings: Settings, env: Mapping[str, str], model_check: ModelCheck | None,
                   *, backend=None) -> Check:
    """The [model] answers (`model_check`, by default a one-token request); a scripted model's
    script is read instead. With the clude `backend`, its agents must also receive the key."""
    from clude.llm.base import ModelError

    config = settings.model
    if config.provider == "scripted":
        return scripted_check(config, root)
    if not model_configured(config):
        return Check("model", False, NOT_CONFIGURED)
    if backend is not None:
        from clude.llm.providers import KEY_ENV

        key_env = config.api_key_env or KEY_ENV.get(config.provider)
        if key_env and key_env not in backend.forwarded_env():
            return Check("model", False, f"the clude backend does not pass {key_env} (the [model] key) to its "
                                         f"agents: add env = [\"{key_env}\"] to [backends.clude] in clude.toml")
    try:
        return Check("model", True, str((model_check or ask_model)(config, root, env)))
    except ModelError as error:
        return Check("model", False, str(error))


def scripted_check(config: ModelConfig, root: Path) -> Check:
    """A scripted model: its script file can be read and holds a list of replies (or rules)."""
    from clude.llm.base import ModelError
    from clude.llm.providers import scripted_from_file

    try:
        model = scripted_from_file(config, root)
    except ModelError as error:
        return Check("model", False, f"{error}: write the script, or fix script in [model]")
    return Check("model", True, f"scripted model {model.name} (replies from {config.script})")


# disk ------------------------------------------------------------------------------------------
def disk_check(root: Path, minimum: int = MIN_FREE_BYTES) -> Check:
    """Free space on the project's filesystem: clones, logs and reports need room."""
    try:
        free = shutil.disk_usage(root).free
    except OSError as error:
        return Check("disk", False, f"cannot read the free space of {root}: {error.strerror or error}")
    if free < minimum:
        return Check("disk", False, f"only {free / GIB:.2f} GiB free on the filesystem of {root} (at least "
                                    f"{minimum / GIB:.0f} GiB needed): free some space")
    return Check("disk", True, f"{free / GIB:.1f} GiB free")


__all__ = ["Check", "ModelAnswer", "ask_model", "probe_model", "refusal", "run_checks"]
