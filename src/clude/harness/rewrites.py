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
marked and left to pytest, within the test run's own timeout. They are kept in the
machine's cache (hidden from every sandbox), keyed by the source's own hash, so a module is rewritten
once per machine whatever tree or worker asks. pytest checks each file against the source it sits
beside (a checked-hash pyc, PEP 552), so a file that does not match is rewritten as before.

Made only where it is the same as pytest's own: clude's pytest (the name carries its version and the
interpreter's tag, so another pytest or Python never finds it), a pytest whose files are checked by
hash, and a project that has not turned on `enable_assertion_pass_hook` (which changes the rewrite).
"""

from __future__ import annotations

import ast
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
from functools import lru_cache
from pathlib import Path
from typing import Callable

from clude.store import replacing

# pytest's default python_files, and conftest.py: the modules it rewrites on its own
PATTERNS = ("test_*.py", "*_test.py", "conftest.py")
MAX_BYTES = 1 << 20  # a larger module is left to pytest
KEEP = 5000  # entries kept in the machine's cache (a few KB each); older ones are removed
PER_MODULE_S = 5  # the child's time to rewrite one module; then it is killed and the module marked
MEMORY = 1 << 30  # the child's address space
SKIP, BUSY = ".skip", ".busy"  # markers beside the entries: left to pytest; being rewritten
HASH_FLAGS = b"\x03\x00\x00\x00"  # PEP 552: hash-based, always checked
CONFIG_FILES = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")


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
    with no assertion pass hook), or None when the module does not compile."""
    try:
        tree = ast.parse(source, filename=str(path))
        rewrite_asserts(tree, source, str(path), None)
        code = compile(tree, str(path), "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return importlib.util.MAGIC_NUMBER + HASH_FLAGS + importlib.util.source_hash(source)[:8] + marshal.dumps(code)


def _hooked(root: Path) -> bool:
    """Does the project configure pytest's assertion pass hook (a different rewrite)?"""
    for name in CONFIG_FILES:
        try:
            if "enable_assertion_pass_hook" in (root / name).read_text(encoding="utf-8", errors="replace"):
                return True
        except OSError:
            continue
    return False


def _inside(path: Path, root: Path) -> bool:
    try:
        return Path(os.path.realpath(path)).is_relative_to(root)
    except OSError:
        return False


def prime(root: Path, files: list[str], cache: Path, *, per_module_s: float = PER_MODULE_S) -> int:
    """Put the rewritten pyc of each test module among `files` (paths relative to `root`) in its
    `__pycache__`, from `cache` or made (in a child process) and kept there; returns how many were put.
    A module that is not a plain file inside the tree (a symlink out of it, say) is skipped."""
    tail = _tail()
    if tail is None or _hooked(root):
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
    missing = [rel for rel, digest in modules.items()
               if not (store / (digest + ".pyc")).exists() and not (store / (digest + SKIP)).exists()]
    if missing:
        _rewrite_apart(root, {rel: modules[rel] for rel in missing}, store, per_module_s)
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


def _rewrite_apart(root: Path, modules: dict[str, str], store: Path, per_module_s: float) -> None:
    """Rewrite these modules (relative path: content hash) into `store` in child processes (clude's
    interpreter, isolated from the environment and from the tree's own modules): a child killed on a
    module has left it BUSY, which becomes SKIP, and the next child goes on with the rest."""
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    todo = dict(modules)
    while todo:
        try:
            subprocess.run([sys.executable, "-I", "-m", __name__, str(store), str(per_module_s), *todo], cwd=root,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=per_module_s * len(todo) + 10)
        except (OSError, subprocess.SubprocessError):
            pass
        stopped = False
        for digest in todo.values():
            try:
                (store / (digest + BUSY)).rename(store / (digest + SKIP))
                stopped = True
            except OSError:
                pass
        todo = {rel: digest for rel, digest in todo.items()
                if not any((store / (digest + end)).exists() for end in (".pyc", SKIP))}
        if not stopped:
            break
    _prune(store)


def _prune(store: Path) -> None:
    """Past KEEP entries, the oldest tenth goes."""
    try:
        entries = list(store.glob("*.pyc"))
        if len(entries) > KEEP:
            entries.sort(key=lambda p: p.stat().st_mtime)
            for old in entries[:len(entries) - KEEP * 9 // 10]:
                old.unlink(missing_ok=True)
    except OSError:
        pass


def main(argv: list[str]) -> None:
    """The child: rewrite each module (relative to the working folder) into the store named first, its
    entry named by its content's hash, in the seconds named next at most; BUSY while at it, SKIP when
    it does not compile."""
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
        busy = store / (digest + BUSY)
        busy.touch()
        signal.setitimer(signal.ITIMER_REAL, seconds)  # SIGALRM's default action ends the process
        data = _compiled(text, source, rewriter)
        signal.setitimer(signal.ITIMER_REAL, 0)
        with replacing(store / (digest + (".pyc" if data is not None else SKIP)), sync=False) as f:
            f.write(data or b"")
        busy.unlink()


if __name__ == "__main__":
    main(sys.argv[1:])
