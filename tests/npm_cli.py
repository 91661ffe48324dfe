"""Agent CLIs for tests, from npm or PyPI: each installed once, pinned, into tests/.cache/<name> (a file
lock keeps parallel test sessions to one install), and skipped with the reason when node, npm or the
registry is missing. claude_code.py, codex_cli.py, gemini_cli.py and aider_cli.py use it.

What the suite downloads is said up front (DOWNLOADS, in pytest's header: conftest.py), and an install
says what it is doing while it runs (its npm or pip output summarised on the terminal, through `say`)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

CACHE_ROOT = Path(__file__).parent / ".cache"
INSTALL_TIMEOUT_S = 600

# Everything the suite downloads the first time its tests run, and keeps in tests/.cache for later runs.
# The backends' tests run the real agent CLIs against clude's stub model servers (offline, no key), so that
# clude's adapters are tested against the CLIs as they ship; the JS runners' tests run the real runners.


def downloads() -> list[tuple[str, str, int, str, str]]:
    """(what, from where, about how many MB once installed, its folder under tests/.cache, a file that is
    there once it is installed) of each download; the pins are those of the modules that install them."""
    from aider_cli import AIDER_VERSION
    from claude_code import CLAUDE_CODE_VERSION
    from codex_cli import CODEX_VERSION
    from gemini_cli import GEMINI_CLI_VERSION

    return [
        (f"Claude Code {CLAUDE_CODE_VERSION}", "npm", 370, "claude-code", "node_modules/@anthropic-ai"),
        (f"Codex CLI {CODEX_VERSION}", "npm", 430, "codex", "node_modules/@openai/codex"),
        (f"Gemini CLI {GEMINI_CLI_VERSION}", "npm", 100, "gemini-cli", "node_modules/@google/gemini-cli"),
        (f"Aider {AIDER_VERSION} (aider-chat; litellm, numpy, scipy, tree-sitter)", "PyPI", 700, "aider",
         "venv/bin/aider"),
        ("jest and vitest (test_js_runners.py)", "npm", 60, "js-runners-jest29.7.0-vitest2.1.9",
         "node_modules/.bin/vitest"),
        ("tape and mocha (test_tap_runners.py)", "npm", 30, "js-runners", "node_modules/.bin/mocha"),
    ]


def downloads_header() -> list[str]:
    """What the suite downloads, for pytest's header: nothing when all is cached; else what is not, from
    where, about how big and into which folder, installed when its tests first run."""
    missing = [(what, source, mb, folder) for what, source, mb, folder, marker in downloads()
               if not (CACHE_ROOT / folder / marker).exists()]
    where = CACHE_ROOT.relative_to(Path.cwd()) if CACHE_ROOT.is_relative_to(Path.cwd()) else CACHE_ROOT
    if not missing:
        return [f"downloads: none (the agent CLIs and JS runners the tests run are cached in {where})"]
    total = sum(mb for _, _, mb, _ in missing)
    size = f"{total / 1000:.1f} GB" if total >= 1000 else f"{total} MB"
    lines = [f"downloads: about {size} into {where}, once, when their tests first run (then cached; without",
             "  node/npm or the registry those tests are skipped with the reason); the backends' tests run the real",
             "  agent CLIs against clude's offline stub models:"]
    lines += [f"  {what}: {source}, about {mb} MB -> {where}/{folder}" for what, source, mb, folder in missing]
    return lines


show_on: Callable[[str], None] | None = None  # set by conftest.py: pytest's terminal, past its capture


def say(line: str) -> None:
    """Show a line on the terminal at once, even while pytest captures the test's output."""
    if show_on is not None:
        show_on(line)
    else:
        print(line, flush=True)


# Lines of npm's and pip's output worth showing as they come; the others are counted.
_TELLING = ("Collecting ", "Downloading ", "Installing collected", "Successfully installed", "added ", "changed ",
            "npm warn", "npm error", "npm ERR", "ERROR", "WARNING")


def run_with_progress(argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run an install step, its output summarised through `say` as it comes (the telling lines, and a
    count of the others every 50); the whole output returned (stderr merged into stdout)."""
    import selectors
    import time

    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    lines: list[str] = []
    quiet = 0
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while True:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                os.killpg(proc.pid, 9)
                proc.wait()
                raise subprocess.TimeoutExpired(argv, timeout, "".join(lines))
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.lstrip().startswith(_TELLING):
                say(f"    {line.strip()[:150]}")
            else:
                quiet += 1
                if quiet % 50 == 0:
                    say(f"    ... {len(lines)} lines of output so far")
    proc.wait()
    return subprocess.CompletedProcess(argv, proc.returncode, "".join(lines), "")


def tail_of(text: str, size: int = 2000) -> str:
    return text[-size:] if text else ""


def version_words(program: Path, home: Path, timeout: float = 60) -> list[str] | None:
    """The words `program --version` prints (run with PATH and `home` only), or None when it fails."""
    try:
        done = subprocess.run([str(program), "--version"], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env={"PATH": os.environ.get("PATH", ""), "HOME": str(home)})
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.split() if done.returncode == 0 else None


def on_path(program: Path, name: str, folder: Path, env: dict[str, str]) -> dict[str, str]:
    """`env` with `program` first on its PATH as `name` (a link in `folder`)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).symlink_to(program)
    return {**env, "PATH": f"{folder}{os.pathsep}{env.get('PATH', '')}"}


def offline_env(home: Path) -> dict[str, str]:
    """A clean environment for a CLI run in a test: PATH, the locale and TMPDIR inherited, nothing else;
    HOME and the XDG folders in `home`; loopback never through a proxy."""
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL", "TMPDIR") if key in os.environ}
    env.update({
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    })
    return env


def install_once(cache: Path, find: Callable[[], Path | None], steps: dict[str, list[str]], announce: str) -> Path:
    """The program `find()` finds in `cache`, after running `steps` ({what: argv}) once when it finds
    none (a file lock: one install even with parallel test sessions; `announce` said first, since an
    install downloads, then each step's output summarised). pytest.skip, naming the step, when a step fails
    or times out (no registry), or when `find()` still finds nothing."""
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "home").mkdir(exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = find()
        if found is not None:
            return found
        say(f"\n{announce}")
        for what, argv in steps.items():
            say(f"  {what}")
            try:
                done = run_with_progress(argv, cache, INSTALL_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pytest.skip(f"{what} took over {INSTALL_TIMEOUT_S} s (no registry?)")
            if done.returncode != 0:
                pytest.skip(f"{what} failed (no registry?): {tail_of(done.stdout, 800)}")
        found = find()
        if found is None:
            pytest.skip(f"{' then '.join(steps)} installed no program that runs on this platform")
        say(f"  done: {cache}")
        return found


def install_npm(package: str, version: str, cache: Path, find: Callable[[], Path | None]) -> Path:
    """`package@version` installed into `cache` unless `find()` already finds its program there: the
    program `find()` returns after the install (pytest.skip without node, npm or the registry, or when
    the install leaves no program that runs here)."""
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        pytest.skip(f"node and npm are needed to install {package}")
    manifest = cache / "package.json"
    if not manifest.exists():
        cache.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps({"name": f"clude-test-{cache.name}", "private": True}) + "\n")
    what = f"npm install {package}@{version}"
    return install_once(cache, find, {what: [npm, "install", "--no-audit", "--no-fund", "--no-save", "--loglevel=http",
                                             "--prefix", str(cache), f"{package}@{version}"]},
                        f"installing {package}@{version} from npm into {cache} (once; kept for later runs)")
