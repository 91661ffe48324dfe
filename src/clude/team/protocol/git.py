"""An agent's clone of the team upstream: clone, fetch, reset, commit, and a push classified ok | race | rejected."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Container
from pathlib import Path

from clude.gitcli import GitError, git_text, run_git
from clude.team.board.layout import BRANCH, agent_identity
from clude.team.protocol.failures import PushResult, classify_push, reaching, unreachable

# The remote every agent clone pushes to and pulls from.
ORIGIN = "origin"
# Network operations (clone, fetch, push, ls-remote) give up after this many seconds.
NETWORK_TIMEOUT = 300.0
# What an agent clone never commits nor cleans away: clude's local state (logs, reports, sessions).
# Never committed from a worker's clone, whatever the project's .gitignore says: clude's local state,
# and what running the tests leaves behind (bytecode, pytest's cache).
LOCAL_EXCLUDES = (".clude/", "__pycache__/", "*.py[co]", ".pytest_cache/")

def is_local_url(url: str) -> bool:
    """Whether a remote URL is a plain path (not scheme://..., file:// included; not scp-like host:path)."""
    if "://" in url:
        return False
    head = url.split("/", 1)[0]
    return ":" not in head


def same_url(a: str, b: str) -> bool:
    """Whether two remote URLs name the same repository (local paths compared resolved)."""
    def norm(url: str) -> str:
        url = url.strip()
        if url.startswith("file://"):
            url = url[len("file://"):]
        if is_local_url(url):
            return str(Path(url).expanduser().resolve())
        return url.rstrip("/").removesuffix(".git")
    return norm(a) == norm(b)


class Repo:
    """A working clone of the team upstream (remote "origin", branch main); commits as the agent."""

    def __init__(self, path: Path, *, agent: str = "clude", timeout: float = NETWORK_TIMEOUT) -> None:
        self.path = Path(path).absolute()
        self.agent = agent
        self.timeout = timeout
        # Unattended: git never waits for an editor (rebase --continue, merge without -m).
        self._env = {**agent_identity(agent), "GIT_EDITOR": "true", "GIT_MERGE_AUTOEDIT": "no"}
        self._url: str | None = None        # origin's URL, read once (refresh)
        self._seen_head: str | None = None  # the upstream's main at the last refresh
        self._git_dir: Path | None = None   # the clone's .git folder, once asked
        self._empty_tree: str | None = None

    def __repr__(self) -> str:
        return f"Repo({str(self.path)!r}, agent={self.agent!r})"

    @classmethod
    def clone(cls, url: str, path: Path, *, agent: str = "clude",
              timeout: float = NETWORK_TIMEOUT) -> Repo:
        """Clone the upstream's main into path; a path that already is a clone of url is reused
        (fetched, its files left alone). Raises GitError when path holds something else."""
        path = Path(path).absolute()
        if is_local_url(url):  # made absolute: `git -C` below would move a relative path
            url = str(Path(url).expanduser().absolute())
        repo = cls(path, agent=agent, timeout=timeout)
        if (path / ".git").exists():
            current = git_text(path, "config", "--get", f"remote.{ORIGIN}.url", ok=(0, 1))
            if not current or not same_url(current, url):
                raise GitError(f"{path} is already a git repository, cloned from {current or 'nowhere'}"
                               f" rather than {url}: remove it or choose another folder")
            repo.fetch()
        else:
            if path.exists() and (not path.is_dir() or any(path.iterdir())):
                raise GitError(f"cannot clone into {path}: it exists and is not an empty folder")
            path.parent.mkdir(parents=True, exist_ok=True)
            has_main = reaching(lambda: git_text(path.parent, "ls-remote", "--heads", url,
                                                 f"refs/heads/{BRANCH}", timeout=timeout))
            branch = ("--branch", BRANCH) if has_main else ()

            def clone() -> None:
                shutil.rmtree(path, ignore_errors=True)  # what a clone cut off by the network left
                run_git(path.parent, "clone", "--quiet", "--origin", ORIGIN, *branch, url, str(path),
                        timeout=timeout)

            reaching(clone)
            if not has_main:  # an upstream without commits yet: our first commit starts main
                repo.git("symbolic-ref", "HEAD", f"refs/heads/{BRANCH}")
        repo._exclude_local_state()
        return repo

    def _git_path(self, name: str) -> Path:
        """A path inside the clone's .git folder, absolute (the folder asked of git once)."""
        if self._git_dir is None:
            self._git_dir = Path(self.git("rev-parse", "--absolute-git-dir"))
        return self._git_dir / name

    def _exclude_local_state(self) -> None:
        exclude = self._git_path("info/exclude")
        lines = exclude.read_text(encoding="utf-8").splitlines() if exclude.exists() else []
        missing = [p for p in LOCAL_EXCLUDES if p not in lines]
        if missing:
            exclude.parent.mkdir(parents=True, exist_ok=True)
            exclude.write_text("\n".join([*lines, *missing]) + "\n", encoding="utf-8")

    def git(self, *args: str, input: str | bytes | None = None, ok: Container[int] = (0,),
            timeout: float | None = None, env: dict[str, str] | None = None) -> str:
        """Run git in the clone with the agent's identity (and `env`: e.g. another index file); its
        output without the final newline."""
        data = input.encode("utf-8") if isinstance(input, str) else input
        return git_text(self.path, *args, input=data, env={**self._env, **(env or {})}, ok=ok,
                        timeout=timeout)

    @property
    def git_dir(self) -> Path:
        return self._git_path(".")

    def blobs(self, ref: str, paths: list[str], *, max_bytes: int | None = None) -> dict[str, bytes | None]:
        """The content of each path at ref (None where it is not a file there), read by a few git
        processes whatever the number of paths (names with newlines or any bytes included). A blob
        larger than max_bytes reads as empty."""
        if not paths:
            return {}
        wanted = set(paths)
        listed = run_git(self.path, "ls-tree", "-r", "-z", "--full-tree", ref).stdout
        ids: dict[str, bytes] = {}
        for entry in listed.split(b"\0"):
            meta, _, name = entry.partition(b"\t")
            path = os.fsdecode(name)
            parts = meta.split()
            if path in wanted and len(parts) == 3 and parts[1] == b"blob":
                ids[path] = parts[2]
        found: dict[str, bytes | None] = {path: None for path in paths}
        order = [path for path in paths if path in ids]
        if max_bytes is not None and order:  # sizes first: a huge blob is never read into memory
            sizes = run_git(self.path, "cat-file", "--batch-check=%(objectsize)",
                            input=b"".join(ids[p] + b"\n" for p in order)).stdout.split()
            for path, size in zip(list(order), sizes):
                if int(size) > max_bytes:
                    found[path] = b""  # there, but too large to read: no rule looks inside it
                    order.remove(path)
        if not order:
            return found
        found.update(zip(order, self.cat_blobs([ids[p] for p in order])))
        return found

    def cat_blobs(self, ids: list[bytes]) -> list[bytes]:
        """The contents of these object ids, in order, read by one `git cat-file --batch`."""
        if not ids:
            return []
        out = run_git(self.path, "cat-file", "--batch", input=b"".join(i + b"\n" for i in ids)).stdout
        contents, at = [], 0
        for _ in ids:
            end = out.index(b"\n", at)
            size = int(out[at:end].split()[2])
            contents.append(out[end + 1:end + 1 + size])
            at = end + 1 + size + 1
        return contents

    def empty_tree(self) -> str:
        """The empty tree's id (written once per clone): what the queue's and the lease's commits hold."""
        if self._empty_tree is None:
            self._empty_tree = self.git("hash-object", "-w", "-t", "tree", "--stdin", input=b"")
        return self._empty_tree

    def fetch(self, *refspecs: str) -> None:
        """Fetch origin (branches pruned), and `refspecs` besides in the same process."""
        extra = (f"+refs/heads/*:refs/remotes/{ORIGIN}/*", *refspecs) if refspecs else ()
        reaching(lambda: self.git("fetch", "--quiet", "--prune", ORIGIN, *extra, timeout=self.timeout))

    def refresh(self) -> bool:
        """Make the clone the upstream's main again, only when main moved since the last refresh: a
        look at the upstream's ref (no process at all for a local upstream, one `ls-remote` for any
        other) instead of a fetch. True when it fetched."""
        head = upstream_head(self._origin_url(), self.timeout)
        if head is not None and head == self._seen_head:
            return False
        self.fetch()
        self.reset_to_upstream()
        self._seen_head = head
        return True

    def _origin_url(self) -> str:
        if self._url is None:
            self._url = self.git("config", "--get", f"remote.{ORIGIN}.url")
        return self._url

    def reset_to_upstream(self, *, ignored: bool = False) -> str:
        """Make the clone exactly origin/main: main checked out, local changes and untracked files
        dropped (ignored ones such as .clude/ stay, unless `ignored`), any rebase or merge abandoned.
        Returns the commit."""
        if any(self._git_path(m).exists() for m in ("rebase-merge", "rebase-apply")):
            self.git("rebase", "--abort", ok=(0, 1, 128))
        for name in ("CHERRY_PICK_HEAD", "MERGE_HEAD"):  # a cherry-pick or merge left half-way
            self._git_path(name).unlink(missing_ok=True)
        commit = self.git("rev-parse", "-q", "--verify", f"refs/remotes/{ORIGIN}/{BRANCH}^{{commit}}", ok=(0, 1))
        if not commit:
            raise GitError(f"the upstream has no {BRANCH} branch yet (run `clude team init`)")
        self.git("checkout", "--quiet", "--force", "-B", BRANCH, commit)  # the index and files as main has them
        self.git("clean", "-ffdxq" if ignored else "-fdq")
        return commit

    def head(self) -> str:
        """The commit checked out."""
        return self.git("rev-parse", "HEAD")

    def commit_all(self, message: str, paths: list[str] | None = None) -> bool:
        """Commit every change in the clone (or only `paths`, deletions included) with the agent's
        identity, hooks skipped; False when there was nothing to commit."""
        if paths is None:
            self.git("add", "-A")
        else:
            names = [str(p) for p in paths]
            tracked = set(self.git("ls-files", "-z", "--", *(f":(literal){n}" for n in names))
                          .split("\0")) if names else set()
            present = [n for n in names if n in tracked or os.path.lexists(self.path / n)
                       or any(t.startswith(n.rstrip("/") + "/") for t in tracked)]
            if not present:
                return False
            self.git("add", "-A", "--", *(f":(literal){n}" for n in present))
        if not self.git("diff", "--cached", "--name-only", "-z"):
            return False
        self.git("-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify", "-F", "-",
                 input=message)
        return True

    def push(self, *also: str) -> PushResult:
        """`git push origin HEAD:main`, never forced; `also`: more refspecs ("<commit>:<ref>") pushed with
        it atomically (all the refs move or none). A refused push is returned, never raised."""
        return self.push_refs(f"HEAD:refs/heads/{BRANCH}", *also)

    def push_refs(self, *refspecs: str) -> PushResult:
        """Push refspecs to origin, never forced, several atomically; the result classified."""
        atomic = ("--atomic",) if len(refspecs) > 1 else ()
        try:
            out = reaching(lambda: run_git(self.path, "push", "--quiet", *atomic, ORIGIN, *refspecs,
                                           env=self._env, timeout=self.timeout))
        except GitError as e:
            if unreachable(e):  # still out of reach after the wait: a failure of git, not a refusal
                raise
            message = e.stderr or str(e)
            return PushResult(classify_push(message), message)
        return PushResult("ok", out.stderr.decode("utf-8", "replace").strip())

    def changed_files(self, a: str, b: str) -> list[str]:
        """Paths that differ between two commits, sorted."""
        out = run_git(self.path, "diff-tree", "-r", "-z", "--no-renames", "--name-only", a, b).stdout
        return sorted(os.fsdecode(p) for p in out.split(b"\0") if p)

    def commit_time(self, path: str, ref: str = "HEAD") -> float | None:
        """Unix time of the last commit (up to ref) that touched path; None if none did."""
        out = self.git("log", "-1", "--format=%ct", ref, "--", f":(literal){path}")
        return float(out) if out else None

    def show(self, ref: str, path: str) -> str | None:
        """A file's text at ref, None when the file is not there (GitError for an unknown ref)."""
        entry = self.git("ls-tree", "-z", ref, "--", path).rstrip("\0")
        meta, _, name = entry.partition("\t")
        parts = meta.split()
        if name != path or len(parts) != 3 or parts[1] != "blob":
            return None
        return run_git(self.path, "cat-file", "blob", parts[2]).stdout.decode("utf-8", "replace")


def upstream_head(url: str, timeout: float = NETWORK_TIMEOUT) -> str | None:
    """The commit of the upstream's main: read from the files of a local upstream (no process), asked
    with one `git ls-remote` of any other; None when it cannot be told (then callers fetch)."""
    return upstream_refs(url, (f"refs/heads/{BRANCH}",), timeout).get(f"refs/heads/{BRANCH}")


def wait_for_move(url: str, seen: str | None, timeout: float, *, look_s: float = 0.05,
                  clock: Callable[[], float] = time.monotonic, pause: Callable[[float], None] = time.sleep
                  ) -> str | None:
    """Wait up to `timeout` seconds for the upstream's main to leave `seen`; main as last seen. A local
    upstream's ref file is looked at every `look_s` (no process); any other upstream is not asked here
    (that would be an ls-remote each look): the wait is the whole timeout."""
    if not is_local_url(url):
        pause(timeout)
        return seen
    end, head = clock() + timeout, seen
    while (left := end - clock()) > 0:
        pause(min(look_s, left))
        head = upstream_head(url)
        if head != seen:
            break
    return head


def upstream_refs(url: str, refs: tuple[str, ...], timeout: float = NETWORK_TIMEOUT) -> dict[str, str | None]:
    """Where the upstream's `refs` point (None: absent or unknown). A local upstream's are read from its
    files (loose refs, then packed-refs: no process at all); any other's with one `git ls-remote`."""
    found: dict[str, str | None] = dict.fromkeys(refs)
    if is_local_url(url):
        git_dir = Path(url).expanduser()
        git_dir = git_dir / ".git" if (git_dir / ".git").is_dir() else git_dir
        missing = []
        for ref in refs:
            try:
                found[ref] = (git_dir / ref).read_text(encoding="ascii").strip() or None
            except OSError:
                missing.append(ref)
        if missing:
            try:
                packed = (git_dir / "packed-refs").read_text(encoding="ascii").splitlines()
            except OSError:
                packed = []
            for line in packed:
                sha, _, name = line.partition(" ")
                if name in missing:
                    found[name] = sha
        return found
    try:
        out = git_text(Path.cwd(), "ls-remote", url, *refs, timeout=timeout)
    except GitError:
        return found
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        if name in found:
            found[name] = sha
    return found
