"""pytest's rewritten test modules, compiled once per machine by clude itself.

pytest rewrites the asserts of every test module and conftest.py it imports, and keeps the result in
`__pycache__/<name>.<tag>-pytest-<version>.pyc`. A sandboxed run may not keep it: it writes no
bytecode, and the tree's is removed before each run (runner.scrub_bytecode), so that what one run of
untrusted code wrote never decides the next. Every run so paid the rewrite again (a module of 200
tests: a third of a one-test run's CPU).

Here clude makes those files itself, outside the sandbox, from the source alone (parsing and
compiling, never running it), and puts them in the scrubbed tree before the run. The rewriting is done
in a child process, PER_MODULE_S at most a module (pytest's rewrite of one long `assert a and b and
...` grows with the square of its terms: a 70-KB module took 19 s): a module that takes longer is
marked and left to pytest, within the test run's own timeout, and all of them together get
BUDGET_S a run (the rest is left to pytest, and done by a later run). They are kept in the
machine's cache (hidden from every sandbox), keyed by the source's own hash, so a module is rewritten
once per machine whatever tree or worker asks. pytest checks each file against the source it sits
beside (a checked-hash pyc, PEP 552), so a file that does not match is rewritten as before.

Made only where it is the same as pytest's own: clude's pytest (the name carries its version and the
interpreter's tag, so another pytest or Python never finds it), a pytest whose files are checked by
hash, a module whose rewrite gives no warning (pytest shows those, or fails on them), and a project
that has not turned on `enable_assertion_pass_hook` (which changes the rewrite) in any configuration
file of the tree, the command or PYTEST_ADDOPTS, and names no configuration file of its own (-c).
Known limit: a conftest.py that turns the hook on at run time is not seen.
"""

from __future__ import annotations

import ast
import configparser
import fnmatch
import hashlib
import importlib.util
import inspect
import marshal
import os
import resource
import signal
import subprocess
import sys
import time
import tomllib
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Callable

from clude.store import replacing

# pytest's default python_files, and conftest.py: the modules it rewrites on its own
PATTERNS = ("test_*.py", "*_test.py", "conftest.py")
MAX_BYTES = 1 << 20  # a larger module is left to pytest
MAX_ENTRY = 4 << 20  # a larger rewrite is not kept (a rewrite can be 100 times its source)
KEEP = 5000  # files kept in the machine's cache (entries and markers); older ones are removed
STORE_BYTES = 256 << 20  # and bytes
PER_MODULE_S = 5  # the child's time to rewrite one module; then it is killed and the module marked
BUDGET_S = 20  # the children's time in all, a run
MEMORY = 1 << 30  # the child's address space
SKIP = ".skip"  # a marker beside the entries: this content is left to pytest
HASH_FLAGS = b"\x03\x00\x00\x00"  # PEP 552: hash-based, always checked
CONFIG_FILES = frozenset({"pytest.toml", ".pytest.toml", "pytest.ini", ".pytest.ini", "pyproject.toml",
                          "tox.ini", "setup.cfg"})
HOOK = "enable_assertion_pass_hook"
OWN_CONFIG = ("-c", "--config-file", "--inifile")  # a configuration file named on the command line


def _tail() -> str | None:
    """pytest's name ending for its rewritten modules (pytest's own formula: the interpreter's tag and
    pytest's version), or None when clude has no pytest. Cheap: the rewriter is imported on a miss."""
    try:
        from _pytest._version import version
    except ImportError:
        return None
    return f".{sys.implementation.cache_tag}-pytest-{version}.pyc"


@lru_cache(maxsize=1)
def _rewriter(tail: str) -> Callable | None:
    """pytest's assert rewriter, or None when its files would not be these: another name, or an older
    pytest's format (checked by modification time, or a moved module's file name not mended)."""
    try:
        from _pytest.assertion import rewrite

        checked = "source_hash" in inspect.signature(rewrite._write_pyc_fp).parameters
        ok = checked and rewrite.PYC_TAIL == tail and hasattr(rewrite, "_fix_code_filename")
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
    return rewrite.rewrite_asserts if ok else None


def _compiled(source: bytes, path: Path, rewrite_asserts: Callable) -> bytes | None:
    """The checked-hash pyc pytest would write for this source (its asserts rewritten as pytest does
    with no assertion pass hook), or None when the module does not compile or its rewrite warns."""
    try:
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            tree = ast.parse(source, filename=str(path))
            rewrite_asserts(tree, source, str(path), None)
            code = compile(tree, str(path), "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if warned:
        return None
    data = importlib.util.MAGIC_NUMBER + HASH_FLAGS + importlib.util.source_hash(source)[:8] + marshal.dumps(code)
    return data if len(data) <= MAX_ENTRY else None


def hooked(root: Path, files: list[str], words: list[str]) -> bool:
    """Might pytest rewrite otherwise here: the assertion pass hook set in a configuration file of the
    tree (any folder: pytest picks one by the arguments), or in `words` (the command, PYTEST_ADDOPTS), or a
    configuration file named by them? A file that is not plain, is too large or does not parse counts."""
    if any(HOOK in word or word.startswith(OWN_CONFIG) for word in words):
        return True
    for rel in files:
        if rel.rsplit("/", 1)[-1] in CONFIG_FILES and _sets_hook(root / rel):
            return True
    return False


def _sets_hook(path: Path) -> bool:
    try:
        if not os.path.lexists(path):
            return False
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_BYTES:
            return True
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".toml":
            return _has_key(tomllib.loads(text))
        parser = configparser.RawConfigParser(strict=False, interpolation=None)
        parser.read_string(text)
        return any(HOOK in parser[section] for section in parser.sections())
    except (OSError, ValueError, configparser.Error):  # tomllib's errors are ValueErrors
        return True


def _has_key(table) -> bool:
    if isinstance(table, dict):
        return HOOK in table or any(_has_key(value) for value in table.values())
    if isinstance(table, list):
        return any(_has_key(value) for value in table)
    return False


def _inside(path: Path, root: Path) -> bool:
    try:
        return Path(os.path.realpath(path)).is_relative_to(root)
    except OSError:
        return False


def prime(root: Path, files: list[str], cache: Path, *, words: list[str] = (),
          per_module_s: float = PER_MODULE_S, budget_s: float = BUDGET_S) -> int:
    """Put the rewritten pyc of each test module among `files` (paths relative to `root`) in its
    `__pycache__`, from `cache` or made (in child processes, `budget_s` in all) and kept there; returns
    how many were put. `words`: the test command and PYTEST_ADDOPTS. A module that is not a plain file
    inside the tree (a symlink out of it, say) is skipped."""
    tail = _tail()
    if tail is None or hooked(root, files, list(words)):
        return 0
    root = Path(os.path.realpath(root))
    store = cache / tail.strip(".").removesuffix(".pyc")
    modules = {}  # rel -> its content's hash
    for rel in files:
        source = root / rel
        if not any(fnmatch.fnmatchcase(source.name, p) for p in PATTERNS):
            continue
        try:
            if source.is_file() and not source.is_symlink() and _inside(source, root) \
                    and source.stat().st_size <= MAX_BYTES:
                modules[rel] = hashlib.sha256(source.read_bytes()).hexdigest()
        except OSError:
            continue
    missing = {rel: digest for rel, digest in modules.items() if not _settled(store, digest)}
    if missing:
        _rewrite_apart(root, missing, store, per_module_s, budget_s)
    put = 0
    for rel, digest in modules.items():
        try:
            data = (store / (digest + ".pyc")).read_bytes()
        except OSError:
            continue
        folder = (root / rel).parent / "__pycache__"
        try:
            folder.mkdir(exist_ok=True)
            if folder.is_symlink() or not _inside(folder, root):
                continue
            with replacing(folder / ((root / rel).name[:-3] + tail), sync=False) as f:
                f.write(data)
        except OSError:
            continue
        put += 1
    return put


def _rewrite_apart(root: Path, modules: dict[str, str], store: Path, per_module_s: float,
                   budget_s: float) -> None:
    """Rewrite these modules (relative path: content hash) into `store` in child processes (clude's
    interpreter, isolated from the environment and from the tree's own modules). A child stopped by its
    timer on a module has left a marker naming it and itself: that module becomes SKIP, and the next
    child goes on with the rest, until `budget_s` is spent."""
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    deadline = time.monotonic() + budget_s
    todo = dict(modules)
    while todo and (left := deadline - time.monotonic()) > 0:
        try:
            child = subprocess.Popen([sys.executable, "-I", "-m", __name__, str(store), str(per_module_s), *todo],
                                     cwd=root, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        except OSError:
            return
        try:
            child.wait(timeout=left)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        stopped = False
        for digest in todo.values():
            busy = store / f"{digest}.{child.pid}.busy"
            try:
                if child.returncode == -signal.SIGALRM:  # its own timer: this module is too slow
                    busy.rename(store / (digest + SKIP))
                    stopped = True
                else:  # the budget ran out on it, or the child failed: a later run tries again
                    busy.unlink()
            except OSError:
                pass
        todo = {rel: digest for rel, digest in todo.items() if not _settled(store, digest)}
        if not stopped:
            break
    _prune(store)


def _settled(store: Path, digest: str) -> bool:
    """Whether the store has this content's rewrite, or a mark that it is left to pytest."""
    return any((store / (digest + end)).exists() for end in (".pyc", SKIP))


def _prune(store: Path) -> None:
    """Past KEEP files (entries and markers) or STORE_BYTES, the oldest go, down to nine tenths."""
    try:
        found = sorted(((p.stat(), p) for p in store.iterdir()), key=lambda sp: sp[0].st_mtime)
    except OSError:
        return
    count, size = len(found), sum(st.st_size for st, _ in found)
    if count <= KEEP and size <= STORE_BYTES:
        return
    for st, path in found:
        if count <= KEEP * 9 // 10 and size <= STORE_BYTES * 9 // 10:
            break
        path.unlink(missing_ok=True)
        count, size = count - 1, size - st.st_size


def main(argv: list[str]) -> None:
    """The child: rewrite each module (relative to the working folder) into the store named first, its
    entry named by its content's hash, in the seconds named next at most (a marker names the module it
    is on); SKIP when it does not compile or its rewrite warns."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
    store, seconds = Path(argv[0]), float(argv[1])
    tail = _tail()
    rewriter = None if tail is None else _rewriter(tail)
    if rewriter is None:
        return
    for rel in argv[2:]:
        source = Path(os.path.abspath(rel))
        try:
            text = source.read_bytes()
        except OSError:
            continue
        digest = hashlib.sha256(text).hexdigest()
        busy = store / f"{digest}.{os.getpid()}.busy"
        busy.touch()
        signal.setitimer(signal.ITIMER_REAL, seconds)  # SIGALRM's default action ends the process
        data = _compiled(text, source, rewriter)
        signal.setitimer(signal.ITIMER_REAL, 0)
        with replacing(store / (digest + (".pyc" if data is not None else SKIP)), sync=False) as f:
            f.write(data or b"")
        busy.unlink(missing_ok=True)


if __name__ == "__main__":
    main(sys.argv[1:])
