"""Verification cache: an unchanged tree, command and sample give back the previous Verdict.

Standard library only: `clude test` answers a hit before it imports pydantic (cli/test_cmd.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import tomllib
from functools import lru_cache
from pathlib import Path

from clude import __version__
from clude.gitsafe import SAFE_GIT
from clude.harness.process import MissingProgram, resolve_program
from clude.store import atomic_write_text, exclusive

# Statuses worth remembering: the same tree gives the same answer. A timeout, a crash or an
# interruption may not happen again, and an error (a module missing at collection, a usage error)
# is often mended outside the tree, so they are always run anew.
CACHEABLE = frozenset({"passed", "failed", "no_tests"})
# The environment variables that decide which interpreter and programs a command finds.
KEY_ENV = ("PATH", "VIRTUAL_ENV", "PYTHONPATH", "NODE_OPTIONS", "GOFLAGS", "RUSTFLAGS")
_IGNORE = Path(__file__).parent / "data" / "cache_ignore.toml"


@lru_cache(maxsize=1)
def _data() -> dict:
    return tomllib.loads(_IGNORE.read_text(encoding="utf-8"))


def _ignored() -> tuple[frozenset[str], tuple[str, ...]]:
    data = _data()
    return frozenset(data["dirs"]), tuple(data["suffixes"])


def _team_paths(root: Path) -> tuple[str, ...]:
    """The team bookkeeping paths of a team checkout (none elsewhere)."""
    data = _data()
    if all((root / marker).is_dir() for marker in data["team_markers"]):
        return tuple(data["team_paths"])
    return ()


# The verdict cache of this machine: one for every worker and every `clude test`, keyed by content.
CACHE_DIR_VAR = "CLUDE_CACHE_DIR"
KEEP = 20000  # entries kept (a few KB each); older ones are removed


def machine_cache(env: dict[str, str] | None = None) -> Path:
    """Where this machine's verdicts are kept: $CLUDE_CACHE_DIR, else $XDG_CACHE_HOME/clude, else
    ~/.cache/clude (outside every tree a test can write)."""
    env = os.environ if env is None else env
    if env.get(CACHE_DIR_VAR):
        return Path(env[CACHE_DIR_VAR])
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "clude"


def _git_files(root: Path) -> dict[str, str | None] | None:
    """Tracked and untracked-not-ignored files (git), each with its blob id when git's index vouches that
    the work tree still holds exactly that content, else None; None when root is not a git work tree.

    One `git ls-files` gives both: tag H (cached, not assume-unchanged) with stage 0 and no C (changed)
    entry is a file the index knows unchanged. git checks that by stat data, and compares contents when
    the stat is not conclusive (racily clean entries), the same check `git status` relies on.
    """
    try:
        out = subprocess.run(["git", *SAFE_GIT, "ls-files", "-z", "-t", "-v", "-s", "--cached", "--others",
                              "--modified", "--exclude-standard"],
                             cwd=root, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    files: dict[str, str | None] = {}
    changed: set[str] = set()
    for entry in out.stdout.decode("utf-8", "surrogateescape").split("\0"):
        if not entry:
            continue
        if entry.startswith("? "):
            files[entry[2:]] = None
            continue
        info, _, rel = entry.partition("\t")
        tag, _mode, blob, stage = (info.split(" ") + ["", "", "", ""])[:4]
        if tag == "C":
            changed.add(rel)
        # a second entry for a path is a C (changed) one or another stage of a merge conflict
        files[rel] = None if rel in files else (blob if tag == "H" and stage == "0" else None)
    for rel in changed:
        files[rel] = None
    return files


def _walked_files(root: Path) -> dict[str, str | None]:
    """Every file under root outside the ignored folders (root is not a git work tree)."""
    dirs, _ = _ignored()
    found: dict[str, str | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in dirs]
        rel = os.path.relpath(dirpath, root)
        found.update((name if rel == "." else f"{rel}/{name}", None) for name in filenames)
    return found


def _blob_id(path: str) -> str:
    """git's id of a file's content (a symlink: of its target), computed from the work tree in
    chunks. A FIFO, socket or device is never opened (reading a FIFO would block)."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        data = os.readlink(path).encode("utf-8", "surrogateescape")
        return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
    if not stat.S_ISREG(info.st_mode):
        return f"<special {stat.S_IFMT(info.st_mode):o}>"
    h = hashlib.sha1(usedforsecurity=False)
    with open(path, "rb") as f:
        h.update(b"blob %d\0" % os.fstat(f.fileno()).st_size)
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def tree_files(root: Path) -> dict[str, str | None]:
    """The files of a tree that can change a test result (git's tracked and untracked-not-ignored files,
    or every file when root is not a git work tree, less the ignored folders, suffixes and team
    bookkeeping), each with its blob id when git's index vouches for it."""
    dirs, suffixes = _ignored()
    team = _team_paths(root)
    files = _git_files(root)
    if files is None:
        files = _walked_files(root)
    return {rel: blob for rel, blob in files.items()
            if not (dirs.intersection(rel.split("/")[:-1]) or rel.endswith(suffixes)
                    or any(rel == p or rel.startswith(p + "/") for p in team))}


def tree_digest(root: Path, files: dict[str, str | None] | None = None) -> str:
    """A hash of the path and contents of every file that can change a test result.

    A file's content enters as its git blob id: taken from git's index for files git knows unchanged
    (no read), computed from the file otherwise. Both give the same id for the same content, so the
    digest depends on the files alone, not on how fresh git's stat data is. `files`: tree_files(root),
    when the caller has it.
    """
    files = tree_files(root) if files is None else files
    h = hashlib.blake2b(digest_size=20)
    base = str(root)
    for rel in sorted(files):
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        blob = files[rel]
        if blob is None:
            try:
                blob = _blob_id(os.path.join(base, rel))
            except OSError:
                blob = "<missing>"
        h.update(blob.encode() + b"\0")
    return h.hexdigest()


def config_identity(test_table: dict) -> dict:
    """What of a [test] configuration can change a verdict worth caching, the same whether it comes
    as written in the file or as validated settings (`TestConfig.model_dump()`). The timeout is left
    out: a run that hits it is never cached."""
    return {key: test_table[key] for key in ("command", "framework", "junit", "env")
            if test_table.get(key)}


def _installed_state(root: Path, env: dict[str, str]) -> dict[str, float]:
    """When the packages the tests import last changed: the modification times of the project's
    site-packages and node_modules folders (installing or removing a package changes them),
    which git ignores and the tree hash never sees."""
    places = [root / ".venv", root / "venv", root / "node_modules"]
    if env.get("VIRTUAL_ENV"):
        places.append(Path(env["VIRTUAL_ENV"]))
    found = {}
    for place in places:
        folders = [place] if place.name == "node_modules" else place.glob("lib/python*/site-packages")
        for folder in folders:
            try:
                found[str(folder)] = folder.stat().st_mtime
            except OSError:
                continue
    return found


def request_key(root: Path, *, command: list[str] | None, rate: float | None, seed: str,
                config: dict, env: dict[str, str], files: dict[str, str | None] | None = None) -> str:
    """The cache key of a `clude test` request: the tree, the request, and what picks its programs.

    Made from the request itself, not from the detected command, so a hit needs no detection.
    """
    parts = {"tree": tree_digest(root, files), "installed": _installed_state(root, env),
             "command": command, "rate": rate,
             "seed": seed if rate is not None else None, "config": config_identity(config),
             "env": {name: env.get(name) for name in KEY_ENV}, "clude": __version__}
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.blake2b(blob.encode(), digest_size=20).hexdigest()


def computing(key: str):
    """While a request's verdict is computed: RUN_LOCKS, an exclusive flock shared by the keys of the same
    first two hex digits (256 files at most; unrelated keys rarely wait on each other). Workers asking
    for the same verdict at once so run the tests once: the others wait, then read what was stored."""
    return exclusive(machine_cache() / "running" / f"{key[:2]}.lock")


def lookup(root: Path, *, command: list[str] | None, rate: float | None, seed: str, config: dict,
           env: dict[str, str], files: dict[str, str | None] | None = None) -> tuple[str, dict | None]:
    """(key, entry) for a request, from this machine's cache; the entry is None on a miss, and when the
    program its command starts is gone (a deleted virtualenv is reported by running, never answered
    from the cache)."""
    key = request_key(root, command=command, rate=rate, seed=seed, config=config, env=env, files=files)
    return key, stored(key, root, env)


def stored(key: str, root: Path, env: dict[str, str]) -> dict | None:
    """The entry of `key` ("cached" set), unless absent or its command's program is gone."""
    entry = VerdictCache(machine_cache() / "verdicts").get(key)
    if entry is not None:
        try:
            resolve_program(entry["verdict"].get("command") or [], root, env)
        except MissingProgram:
            return None
        entry["verdict"]["cached"] = True
    return entry


class VerdictCache:
    """Entries {"verdict": the Verdict as JSON data, "report": its concise report} by key."""

    def __init__(self, directory: Path):
        self.directory = directory

    def get(self, key: str) -> dict | None:
        """The entry, or None when absent or unreadable (a corrupt entry is not fatal)."""
        try:
            entry = json.loads((self.directory / f"{key}.json").read_bytes())
        except (OSError, ValueError):
            return None
        ok = isinstance(entry, dict) and isinstance(entry.get("verdict"), dict) \
            and isinstance(entry.get("report"), str)
        return entry if ok else None

    def put(self, key: str, verdict: dict, report: str) -> bool:
        """Store a Verdict worth remembering (atomically: readers and other writers of the machine never
        see half an entry); True when stored. Now and then the oldest entries past KEEP go."""
        if verdict.get("status") not in CACHEABLE:
            return False
        try:
            atomic_write_text(self.directory / f"{key}.json",
                              json.dumps({"verdict": verdict, "report": report}, ensure_ascii=False),
                              sync=False)  # a torn entry after a crash reads as absent: computed again
        except OSError:  # a read-only or full cache folder: the verdict stands, it is just not kept
            return False
        if key.startswith("00"):  # one put in 256: keep the folder from growing without end
            self.prune()
        return True

    def prune(self, keep: int = KEEP) -> None:
        entries = []
        for entry in os.scandir(self.directory):
            try:
                entries.append((entry.stat().st_mtime, entry.path))
            except OSError:
                continue
        for _, path in sorted(entries)[:-keep] if len(entries) > keep else []:
            try:
                os.unlink(path)
            except OSError:
                pass


def report_shown(report_path: str | None, root: Path) -> str | None:
    """How a cached verdict's report is named to `root`'s checkout: the path it was kept under (absolute:
    the run that made it may have been another checkout of the same tree), relative to root when inside
    it; None once the report is gone. Standard library only: `clude test`'s fast answer uses it."""
    if not report_path:
        return None
    path = Path(root) / report_path  # an absolute path replaces root
    if not path.exists():
        return None
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
