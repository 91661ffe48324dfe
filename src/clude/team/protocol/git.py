"""An agent's clone of the team upstream: clone, fetch, reset, commit, and a push classified ok | race | rejected."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Container
from pathlib import Path

from clude.gitcli import GitError, git_text, run_git
from clude.team.board.layout import BRANCH, agent_identity
from clude.team.protocol import local, objects
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
    def clone(cls, url: str, path: Path, *, agent: str = "clude", timeout: float = NETWORK_TIMEOUT,
              check: bool = False) -> Repo:
        """Clone the upstream's main into path; a path that already is a clone of url is reused
        (fetched, its files left alone), unless `check` finds objects of main missing in it (a walk of
        main's tree: for a clone reused at a worker's start). Raises GitError when path holds something
        else."""
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
            main = f"refs/remotes/{ORIGIN}/{BRANCH}"
            if not check or not is_local_url(url) or repo.rev(main) is None or objects.whole(repo.objects(), main):
                repo._exclude_local_state()
                return repo
            # an earlier clude's in-process fetch left this clone without some of main's objects
            # (transfer.copy_objects trusted a commit a racing `git clone` held without its tree): anew
            objects.remove_tree(path)
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
        """A path inside the clone's .git folder, absolute (the folder asked once)."""
        if self._git_dir is None:
            self._git_dir = Path(objects.open_repo(self.path).path)
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

    def objects(self, workdir: Path | None = None):
        """The clone opened in process (objects.py): for what needs no `git` process."""
        return objects.open_repo(self.path, workdir)

    def rev(self, spec: str) -> str | None:
        """The object `spec` names (`git rev-parse -q --verify`), None when it names none."""
        return objects.resolve(self.objects(), spec)

    def new_commit(self, tree: str, parents: list[str], message: str) -> str:
        """A commit of `tree` on `parents` by the agent; no ref moves."""
        return objects.new_commit(self.objects(), tree, parents, message, self._env)

    def message(self, commit: str) -> str:
        return objects.commit_of(self.objects(), commit).message

    def is_ancestor(self, a: str, b: str) -> bool:
        """Whether commit `a` is `b` or in its history."""
        repo = self.objects()
        return a == b or repo.descendant_of(b, a)

    def blobs(self, ref: str, paths: list[str], *, max_bytes: int | None = None) -> dict[str, bytes | None]:
        """The content of each path at ref (None where it is not a file there). A blob larger than
        max_bytes reads as empty (never read into memory)."""
        repo = self.objects()
        found: dict[str, bytes | None] = dict.fromkeys(paths)
        for path, oid in objects.blob_ids(repo, ref, paths).items():
            if max_bytes is not None and repo.odb.read_header(oid)[1] > max_bytes:
                found[path] = b""  # there, but too large to read: no rule looks inside it
            else:
                found[path] = repo[oid].data
        return found

    def files(self, ref: str, under: str = "") -> list[str]:
        """The paths of the files at ref (under the folder `under`), in tree order."""
        return [path for path, _ in objects.walk(self.objects(), ref, under)]

    def empty_tree(self) -> str:
        """The empty tree's id: what the queue's and the lease's commits hold."""
        if self._empty_tree is None:
            self._empty_tree = objects.empty_tree(self.objects())
        return self._empty_tree

    def fetch(self, *refspecs: str) -> None:
        """Fetch origin (branches pruned), and `refspecs` besides. A local upstream is fetched in this
        process, and not at all when its main (and, when fetched, refs/clude/*) are where this clone has
        them; any other by `git fetch`."""
        url = self._origin_url()
        branches = f"+refs/heads/*:refs/remotes/{ORIGIN}/*"
        if is_local_url(url):
            clude = "refs/clude/" if any("refs/clude/" in r for r in refspecs) else None
            repo = self.objects()
            if not objects.same_refs(repo, url, {f"refs/heads/{BRANCH}": f"refs/remotes/{ORIGIN}/{BRANCH}"}, clude):
                with objects.git_errors(f"cannot fetch from {url} into {self.path}"):
                    done = local.fetch(repo, url, [branches, *refspecs])
                if not done:
                    objects.fetch_local(repo, ORIGIN, [branches, *refspecs])
            return
        extra = (branches, *refspecs) if refspecs else ()
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
            self._url = objects.open_repo(self.path).config[f"remote.{ORIGIN}.url"]
        return self._url

    def reset_to_upstream(self, *, ignored: bool = False, commit: str | None = None) -> str:
        """Make the clone exactly origin/main (or `commit`): main checked out, local changes and untracked
        files dropped (ignored ones such as .clude/ stay, unless `ignored`), any rebase or merge
        abandoned. Returns the commit."""
        if any(self._git_path(m).exists() for m in ("rebase-merge", "rebase-apply")):
            self.git("rebase", "--abort", ok=(0, 1, 128))
        for name in ("CHERRY_PICK_HEAD", "MERGE_HEAD"):  # a cherry-pick or merge left half-way
            self._git_path(name).unlink(missing_ok=True)
        commit = commit or self.rev(f"refs/remotes/{ORIGIN}/{BRANCH}^{{commit}}")
        if not commit:
            raise GitError(f"the upstream has no {BRANCH} branch yet (run `clude team init`)")
        self.check_out(commit, ignored=ignored)
        return commit

    def check_out(self, commit: str, *, ignored: bool = False) -> None:
        """main made `commit` and checked out whole: changes and untracked files dropped (ignored ones
        too when `ignored`)."""
        with objects.git_errors(f"cannot check out {commit} in {self.path}"):
            objects.check_out(self.path, commit, BRANCH, ignored=ignored)

    def head(self) -> str:
        """The commit checked out."""
        return objects.resolve(self.objects(), "HEAD") or ""

    def commit_all(self, message: str, paths: list[str] | None = None) -> bool:
        """Commit every change in the clone (or only `paths`, deletions included) with the agent's
        identity, no hook run; False when there was nothing to commit."""
        repo = self.objects()
        index = repo.index
        with objects.git_errors(f"cannot commit in {self.path}"):
            objects.stage(repo, index, [str(p) for p in paths] if paths is not None else None)
            tree = str(index.write_tree())
        head = objects.resolve(repo, "HEAD")
        if head is not None and tree == objects.resolve(repo, f"{head}^{{tree}}"):
            return False
        index.write()
        commit = objects.new_commit(repo, tree, [head] if head else [], message, self._env)
        repo.references.create(f"refs/heads/{BRANCH}", commit, force=True)
        repo.set_head(f"refs/heads/{BRANCH}")
        return True

    def push(self, *also: str) -> PushResult:
        """`git push origin HEAD:main`, never forced; `also`: more refspecs ("<commit>:<ref>") pushed with
        it atomically (all the refs move or none). A refused push is returned, never raised."""
        return self.push_refs(f"HEAD:refs/heads/{BRANCH}", *also)

    def push_refs(self, *refspecs: str) -> PushResult:
        """Push refspecs to origin, never forced, several atomically; the result classified."""
        url = self._origin_url()
        upstream = local.direct(url) if is_local_url(url) else None
        if upstream is not None:
            pushed = local.push(self.objects(), upstream, list(refspecs), remote=ORIGIN, identity=self._env)
            if pushed is not None:
                return pushed
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
        repo = self.objects()
        diff = repo.diff(objects.commit_of(repo, a).tree, objects.commit_of(repo, b).tree)
        return sorted({p for d in diff.deltas for p in (d.old_file.path, d.new_file.path)})

    def commit_time(self, path: str, ref: str = "HEAD") -> float | None:
        """Unix time of the last commit (up to ref) that touched path; None if none did."""
        found = objects.first_touch(self.objects(), path, ref)
        return float(found) if found is not None else None

    def show(self, ref: str, path: str) -> str | None:
        """A file's text at ref, None when the file is not there (ObjectError for an unknown ref)."""
        data = self.blobs(ref, [path]).get(path)
        return data.decode("utf-8", "replace") if data is not None else None


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
