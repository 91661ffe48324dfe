"""`clude team init`: connect a repository to its team upstream (a bare repository made here, or any git
URL) and push the layout."""

from __future__ import annotations

from pathlib import Path

from clude.gitcli import GitError, git_text, run_git
from clude.team.protocol.failures import classify_push
from clude.team.protocol.git import NETWORK_TIMEOUT, is_local_url
from clude.team.board.layout import BRANCH, FAILURES_DIR, KEEP_FILES, LOCKS_DIR, PROGRESS, REMOTE, TASKS_DIR

# The first lines of PROGRESS.md: what the file is for.
PROGRESS_HEADER = f"""# Progress

The team's running log, written by clude's agents (`clude team`): tasks done, failed and blocked,
notes, and approaches that did not work, so the next agent does not repeat them. Tasks live in
`{TASKS_DIR}/`, failure records in `{FAILURES_DIR}/`, the locks of claimed tasks in `{LOCKS_DIR}/`.

"""
INIT_MESSAGE = "clude team init"
# What the bare upstream `team init` makes refuses: a push that is not a fast-forward (a force-push
# that rewrites or wipes main) and deleting a branch. Workers never need either.
PROTECTED_UPSTREAM = {"receive.denyNonFastForwards": "true", "receive.denyDeletes": "true"}
# clude's local state in the user's repository: never committed (agent clones live under it).
LOCAL_EXCLUDE = ".clude/"


class TeamInitError(Exception):
    """The repository or the upstream cannot be made a team: the message says why and what to do."""


def team_upstream(root: Path) -> str | None:
    """The team upstream's URL (the REMOTE remote in root's git config), None when there is none."""
    try:
        url = git_text(Path(root), "config", "--get", f"remote.{REMOTE}.url", ok=(0, 1))
    except GitError:
        return None
    return url or None


def default_upstream(top: Path) -> Path:
    """Where init makes the bare upstream by default: a sibling folder <name>.upstream.git."""
    return top.parent / f"{top.name}.upstream.git"


def init_team(root: Path, upstream: str | None = None) -> str:
    """Make root's repository a team: the upstream (a bare repository created when it is a local
    path that does not exist — by default the sibling <name>.upstream.git, or the REMOTE already
    configured — or any reachable git URL), the REMOTE remote pointing at it, and the layout
    (tasks/, tasks/failures/, current_tasks/, PROGRESS.md) committed on root's current branch and
    pushed to the upstream's main. Running it again is harmless. Returns the upstream URL or path.
    Every failure is a TeamInitError saying what to do."""
    top = _top(Path(root))
    try:
        return _init(top, upstream)
    except GitError as e:
        raise TeamInitError(f"git failed while making {top} a team: {e}") from None


def _init(top: Path, upstream: str | None) -> str:
    if upstream is None:
        upstream = team_upstream(top) or str(default_upstream(top))
    url = _prepare_upstream(upstream)
    _check_reachable(top, url)
    remote_main = _fetch_main(top, url)
    if remote_main and not _related(top, remote_main):
        raise _other_history(url, remote_main)
    _set_remote(top, url)  # only now: a refused init leaves the repository as it was
    _exclude_local_state(top)
    if remote_main:
        run_git(top, "update-ref", f"refs/remotes/{REMOTE}/{BRANCH}", remote_main)
        if _has_layout(top, remote_main):
            return url  # already a team: nothing to add, nothing to push
    if remote_main and not _is_ancestor(top, remote_main, "HEAD"):
        raise TeamInitError(
            f"the upstream {url} has commits on {BRANCH} that your branch lacks ({remote_main[:12]}): "
            f"bring them in first (git pull {REMOTE} {BRANCH}), then run `clude team init` again")
    _commit_layout(top)
    _push(top, url)
    return url


def not_a_team_yet(root: Path) -> str:
    """What to do first where there is no team upstream: git init and a first commit (when root is no
    git repository, or one without commits yet), then `clude team init`."""
    try:
        _top(Path(root))
    except TeamInitError as error:
        return str(error)
    return (f"{root} has no team upstream: run `clude team init` first (or pass --upstream, or set "
            "[team] upstream)")


def _top(root: Path) -> Path:
    if not root.is_dir():
        raise TeamInitError(f"{root} is not a folder: run `clude team init` in your project's git repository")
    try:
        top = Path(git_text(root, "rev-parse", "--show-toplevel"))
    except GitError as e:
        if e.returncode is None:
            raise TeamInitError(str(e)) from None
        raise TeamInitError(f"{root} is not a git repository: run `git init`, commit your project "
                            f"(git add -A && git commit -m 'initial'), then `clude team init`") from None
    if not git_text(top, "rev-parse", "-q", "--verify", "HEAD^{commit}", ok=(0, 1)):
        raise TeamInitError(f"the git repository {top} has no commits yet: commit your project first "
                            f"(git add -A && git commit -m 'initial'), then run `clude team init`")
    return top


def _prepare_upstream(upstream: str) -> str:
    """The URL to use: a local path made absolute, created as a bare repository when it does not
    exist yet (or is an empty folder); any other URL as given."""
    if not is_local_url(upstream):
        return upstream
    path = Path(upstream).expanduser().absolute()
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            run_git(path.parent, "init", "--quiet", "--bare", f"--initial-branch={BRANCH}", str(path))
            for key, value in PROTECTED_UPSTREAM.items():
                run_git(path, "config", key, value)
        except (OSError, GitError) as e:
            raise TeamInitError(f"cannot create the bare upstream {path}: {e}") from None
    return str(path)


def _check_reachable(top: Path, url: str) -> None:
    try:
        run_git(top, "ls-remote", "--heads", url, timeout=min(NETWORK_TIMEOUT, 60.0))
    except GitError as e:
        raise TeamInitError(f"cannot reach the upstream {url}: {e.stderr or e}\nCheck the URL, that the "
                            f"repository exists and that you may read and push to it.") from None


def _set_remote(top: Path, url: str) -> None:
    current = team_upstream(top)
    if current is None:
        run_git(top, "remote", "add", REMOTE, url)
    elif current != url:
        run_git(top, "remote", "set-url", REMOTE, url)


def _exclude_local_state(top: Path) -> None:
    """.clude/ (logs, agent clones) listed in .git/info/exclude: local, never committed."""
    exclude = Path(git_text(top, "rev-parse", "--git-path", "info/exclude"))
    exclude = exclude if exclude.is_absolute() else top / exclude
    lines = exclude.read_text(encoding="utf-8").splitlines() if exclude.exists() else []
    if LOCAL_EXCLUDE not in lines:
        exclude.parent.mkdir(parents=True, exist_ok=True)
        exclude.write_text("\n".join([*lines, LOCAL_EXCLUDE]) + "\n", encoding="utf-8")


def _fetch_main(top: Path, url: str) -> str | None:
    """The upstream's main commit, fetched (into FETCH_HEAD only); None when it has no main."""
    try:
        run_git(top, "fetch", "--quiet", "--no-tags", url, f"refs/heads/{BRANCH}", timeout=NETWORK_TIMEOUT)
    except GitError as e:
        if "couldn't find remote ref" in e.stderr.lower():
            return None
        raise TeamInitError(f"cannot fetch {BRANCH} from the upstream {url}: {e.stderr or e}") from None
    return git_text(top, "rev-parse", "FETCH_HEAD^{commit}")


def _has_layout(top: Path, commit: str) -> bool:
    names = git_text(top, "ls-tree", "--name-only", commit).splitlines()
    return PROGRESS in names and TASKS_DIR in names


def _related(top: Path, commit: str) -> bool:
    return bool(git_text(top, "merge-base", "HEAD", commit, ok=(0, 1)))


def _is_ancestor(top: Path, a: str, b: str) -> bool:
    return run_git(top, "merge-base", "--is-ancestor", a, b, ok=(0, 1)).returncode == 0


def _other_history(url: str, commit: str) -> TeamInitError:
    return TeamInitError(
        f"the upstream {url} already has a {BRANCH} branch ({commit[:12]}) with history unrelated to "
        f"this repository: use an empty upstream (or a new path) for the team, or clone that upstream "
        f"and run `clude team init` in the clone")


def _commit_layout(top: Path) -> None:
    """Write the layout files that are missing and commit them (only them) on the current branch."""
    files = {name: "" for name in KEEP_FILES}
    files[PROGRESS] = PROGRESS_HEADER
    wanted = []
    for name, text in files.items():
        path = top / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        if not git_text(top, "ls-tree", "--name-only", "HEAD", "--", name):
            wanted.append(name)
    if not wanted:
        return
    literal = [f":(literal){name}" for name in wanted]
    run_git(top, "add", "--force", "--", *literal)
    run_git(top, "-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify", "-m", INIT_MESSAGE,
            "--", *literal)


def _push(top: Path, url: str) -> None:
    try:
        run_git(top, "push", "--quiet", REMOTE, f"HEAD:refs/heads/{BRANCH}", timeout=NETWORK_TIMEOUT)
    except GitError as e:
        words = e.stderr or str(e)
        why = ("someone else pushed to it meanwhile: run `clude team init` again"
               if classify_push(words) == "race" else
               "check the upstream's hooks, write permissions and free disk space")
        raise TeamInitError(f"the upstream {url} refused the push of {BRANCH}: {words}\n{why}") from None
