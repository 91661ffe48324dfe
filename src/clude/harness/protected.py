"""Which files of a change define, configure or hook into the tests (the rules are in data/protected.toml).

An agent's work is judged by the project's tests, so a change to a test, to what configures a test run or to
what hooks into one is refused or flagged before the work is accepted. Pure functions of paths and contents.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path
from typing import Literal

_DATA = Path(__file__).parent / "data" / "protected.toml"
_MISSING = object()  # a key that is not in a file (JSON's null is a value)
_FORMATS = {"toml": "TOML", "ini": "INI", "json": "JSON"}
# NAME.py, NAME.pyc, NAME.<tag>.so / .pyd, each also as NAME/__init__.*: what `import NAME` finds on a path
_ROOT_MODULE = re.compile(r"([A-Za-z_]\w*)(?:/__init__)?(?:\.pyc?|\.(?:[\w-]+\.)?(?:so|pyd))")


@dataclass(frozen=True)
class Touch:
    """One file a change touched."""

    path: str  # POSIX path relative to the project root
    before: bytes | None  # content on the upstream; None: the change adds the file
    after: bytes | None  # content after the change; None: the change deletes the file


@dataclass(frozen=True)
class ProtectedChange:
    """A touched file that judges the work, and why."""

    path: str
    kind: Literal["test", "config"]  # "test": a test file; "config": configures or hooks into test runs
    why: str  # one short phrase for the user


@dataclass(frozen=True)
class _FileRule:
    kind: Literal["test", "config"]
    why: str
    globs: tuple[str, ...]
    any_case: bool = False  # matched whatever the case (importlib.metadata lowercases what it finds)


@dataclass(frozen=True)
class _SectionRule:
    file: str  # a glob
    format: str  # toml, ini or json
    keys: tuple[str, ...]  # dotted paths, each part an fnmatch pattern (ini: a section name)


@dataclass(frozen=True)
class _Rules:
    files: tuple[_FileRule, ...]  # config rules first, each kind in the file's order
    sections: tuple[_SectionRule, ...]
    shadowed: frozenset[str]  # module names a new root module must not replace


@lru_cache(maxsize=1)
def _rules() -> _Rules:
    data = tomllib.loads(_DATA.read_text(encoding="utf-8"))
    shadowed = frozenset(data.pop("shadowing")["modules"]) | sys.stdlib_module_names
    frameworks = data.values()
    files = [_FileRule(r["kind"], r["why"], tuple(r["globs"]), r.get("any_case", False))
             for fw in frameworks for r in fw.get("files", ())]
    files.sort(key=lambda rule: rule.kind != "config")
    sections = [_SectionRule(r["file"], r["format"], tuple(r["keys"]))
                for fw in frameworks for r in fw.get("sections", ())]
    return _Rules(tuple(files), tuple(sections), shadowed)


def _normalize(path: str) -> str:
    """'./a\\b//c' -> 'a/b/c'."""
    return "/".join(part for part in path.replace("\\", "/").split("/") if part not in ("", "."))


def _segment_regex(segment: str) -> str:
    """One folder or file name of a glob: '*' and '?' never cross a '/', [...] is a character class."""
    out, i = [], 0
    while i < len(segment):
        c = segment[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(segment):
            i += 1
            out.append(re.escape(segment[i]))
        elif c == "[":
            j = i + 1 + (segment[i + 1:i + 2] in ("!", "^"))
            j += segment[j:j + 1] == "]"  # a ']' first is a member, as in fnmatch
            end = segment.find("]", j)
            if end < 0:
                out.append(re.escape(c))
            else:
                negate = segment[i + 1] in "!^"
                members = "".join("-" if m == "-" else re.escape(m) for m in segment[i + 1 + negate:end])
                out.append(f"[^/{members}]" if negate else f"[{members}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


@lru_cache(maxsize=512)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    while pattern.startswith("./"):
        pattern = pattern[2:]
    body = "/".join(part for part in pattern.split("/") if part)
    if not body:
        return re.compile(r"(?!)")
    if "/" not in body and not pattern.startswith("/"):
        body = "**/" + body
    if pattern.endswith("/"):
        body += "/**"
    regex, sep = "", ""
    segments = body.split("/")
    for i, segment in enumerate(segments):
        if segment != "**":
            regex, sep = regex + sep + _segment_regex(segment), "/"
        elif i == len(segments) - 1:
            regex += sep + ".+"  # everything under the folder so far
        else:
            regex, sep = regex + sep + "(?:.*/)?", ""  # zero or more folders
    return re.compile(regex)


def glob_matches(pattern: str, path: str) -> bool:
    """Whether a gitignore-like glob matches a path relative to the project root.

    A pattern without '/' (other than a trailing one) matches a name at any depth; a leading '/' or a '/'
    inside anchors it at the root. '*' and '?' stay within one name, '**' spans folders, [abc] and [!abc]
    are character classes, and a trailing '/' or '/**' means everything under a folder.
    """
    return _glob_regex(pattern).fullmatch(_normalize(path)) is not None


def conflict_markers(text: str) -> list[int]:
    """The 1-based lines of git conflict markers, counted only in complete blocks: a '<<<<<<<' line, then
    a '=======' line, then a '>>>>>>>' line (with a diff3 '|||||||' line between the first two, if any).
    A '=======' alone, such as an RST heading underline, is not a marker."""

    def opens(line: str, marker: str) -> bool:
        return line == marker or line.startswith(marker + " ")

    found: list[int] = []
    block: list[int] = []  # marker lines of the block being read; [] outside one
    separated = False
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if opens(line, "<<<<<<<"):
            block, separated = [number], False
        elif block and not separated and opens(line, "|||||||"):
            block.append(number)
        elif block and not separated and line == "=======":
            block.append(number)
            separated = True
        elif block and separated and opens(line, ">>>>>>>"):
            found += block + [number]
            block = []
    return found


def protected_reason(path: str, extra_globs: Sequence[str] = ()) -> tuple[str, str] | None:
    """(kind, why) when a whole-file rule protects the path, whatever its content; else None.

    extra_globs (clude.toml's [team] protected) are "config" rules, checked after the built-in ones.
    """
    path = _normalize(path)
    for rule in _rules().files:
        seen = path.lower() if rule.any_case else path
        if any(glob_matches(glob, seen) for glob in rule.globs):
            return rule.kind, rule.why
    for glob in extra_globs:
        if glob_matches(glob, path):
            return "config", f"protected by [team] protected in clude.toml ({glob})"
    return None


def has_sections(path: str) -> bool:
    """Whether a file has test sections (pyproject.toml, setup.cfg, ...): its content decides, so it is
    read whole."""
    path = _normalize(path)
    return any(glob_matches(rule.file, path) for rule in _rules().sections)


_TEST_MODULE = re.compile(r"(?:^|/)(?:test_[^/]*|[^/]*_test)\.py$")


def folders_of_tests(paths: Iterable[str]) -> list[str]:
    """The folders (not the root) that hold a Python test module: pytest puts them first on the path, so
    a new module there can shadow one the tests import (protected_changes' path_dirs)."""
    return sorted({p.rpartition("/")[0] for p in map(_normalize, paths) if "/" in p and _TEST_MODULE.search(p)})


def _parse(fmt: str, content: bytes | None) -> dict | None:
    """A TOML or JSON file's parsed content ({} for a missing file), or None when it does not parse (INI
    files are never parsed: pytest reads them its own way, so they are compared whole)."""
    if content is None:
        return {}
    try:
        text = content.decode("utf-8-sig")
        if fmt == "toml":
            return tomllib.loads(text)
        doc = json.loads(text)
        return doc if isinstance(doc, dict) else None
    except (ValueError, RecursionError):
        return None


def _select(doc: dict, key: str) -> dict[tuple[str, ...], object]:
    """{concrete path: value} for every path in doc that the key's dotted patterns match."""
    found: dict[tuple[str, ...], object] = {(): doc}
    for part in key.split("."):
        found = {path + (name,): value for path, node in found.items() if isinstance(node, dict)
                 for name, value in node.items() if fnmatchcase(name, part)}
    return found


def _label(fmt: str, path: tuple[str, ...], old: object, new: object) -> str:
    """How a changed key is named to the user, descending to the one table that changed inside it."""
    while isinstance(old, dict) or isinstance(new, dict):
        a, b = (v if isinstance(v, dict) else {} for v in (old, new))
        changed = [k for k in a.keys() | b.keys() if a.get(k, _MISSING) != b.get(k, _MISSING)]
        if len(changed) != 1 or not (isinstance(a.get(changed[0]), dict) or isinstance(b.get(changed[0]), dict)):
            break
        path, old, new = path + (changed[0],), a.get(changed[0], _MISSING), b.get(changed[0], _MISSING)
    name = ".".join(path)
    value = old if new is _MISSING else new
    state = "the new" if old is _MISSING else "the removed" if new is _MISSING else "the"
    if fmt == "json":
        return f'{state} "{name}" key'
    if isinstance(value, dict):
        return f"{state} [{name}] section"
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return f"{state} [[{name}]] tables"
    return f"{state} {name} setting"


def _may_hold(doc: dict | None, content: bytes | None, key: str) -> bool:
    """Whether a file holds the key; for one that does not parse, whether the key's last name is in it."""
    if doc is not None:
        return bool(_select(doc, key))
    word = re.findall(r"[\w-]+", key)[-1]
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", content.decode("utf-8", "replace")) is not None


def _section_reason(path: str, before: bytes | None, after: bytes | None) -> str | None:
    """Why a change of a file's protected keys counts (a real change of a parsed value), or None."""
    if before == after:
        return None
    keys: dict[str, list[str]] = {}  # format -> the keys protected in this file
    for rule in _rules().sections:
        if glob_matches(rule.file, path):
            keys.setdefault(rule.format, []).extend(rule.keys)
    name, labels = path.rsplit("/", 1)[-1], []
    for fmt, fmt_keys in keys.items():
        if fmt == "ini":  # pytest reads INI files its own way (';' comments, '\r' lines): never trust a
            words = {key.replace("*", "").rstrip(":").split(":")[-1].lower() for key in fmt_keys}  # ours alone
            raw = ((before or b"") + b"\n" + (after or b"")).decode("utf-8", "replace").lower()
            found = sorted(w for w in words if w and w in raw)
            if found:
                return f"{name}, which mentions {', '.join(found)} (an INI file is compared whole)"
            continue
        old, new = _parse(fmt, before), _parse(fmt, after)
        if old is None or new is None:
            held = [key if fmt == "json" else f"[{key}]" for key in fmt_keys
                    if _may_hold(old, before, key) or _may_hold(new, after, key)]
            if held:
                state = "is no longer valid {}" if new is None else "was not valid {} before the change"
                return f"{name} {state.format(_FORMATS[fmt])}, and it has or had {', '.join(held)}"
            continue
        for key in fmt_keys:
            a, b = _select(old, key), _select(new, key)
            labels += [_label(fmt, p, a.get(p, _MISSING), b.get(p, _MISSING))
                       for p in dict.fromkeys([*a, *b]) if a.get(p, _MISSING) != b.get(p, _MISSING)]
    return f"{' and '.join(labels)} of {name}" if labels else None


def _shadow_reason(path: str, before: bytes | None, after: bytes | None, importable: frozenset[str],
                   path_dirs: Sequence[str]) -> str | None:
    """Why a new module on the test run's path (the project root, or a folder pytest puts first on it)
    replaces one the test run imports, or None."""
    parts = path.split("/")
    cut = -2 if len(parts) >= 2 and parts[-1].startswith("__init__.") else -1  # NAME/__init__.py is NAME
    folder, name = "/".join(parts[:cut]), "/".join(parts[cut:])
    match = _ROOT_MODULE.fullmatch(name)
    if before is not None or after is None or not match or (folder and folder not in path_dirs):
        return None
    module = match.group(1)
    if module in sys.stdlib_module_names:
        whose = "the standard library module"
    elif module in _rules().shadowed:
        whose = "the test runner's module"
    elif module in importable:
        whose = "the installed module"
    else:
        return None
    where = "at the project root" if not folder else f"in {folder}/ (pytest puts it first on the path)"
    return f"adds {path} {where}, which shadows {whose} {module}"


def protected_changes(touched: Iterable[Touch], extra_globs: Sequence[str] = (), *,
                      importable: frozenset[str] = frozenset(), path_dirs: Sequence[str] = ()) -> list[ProtectedChange]:
    """The touched files that judge the work, in the order given.

    A file counts when a whole-file rule names it (adding, changing and deleting alike), when a protected
    section of it changed its parsed value (or the file no longer parses while it has one), or when it is a
    new module on the test run's path that shadows the standard library, the test runner or a module
    `importable` in the tests' interpreter: at the project root, or in one of `path_dirs` (folders of test
    files, which pytest puts first on the path).
    """
    found = []
    for touch in touched:
        path = _normalize(touch.path)
        reason = protected_reason(path, extra_globs)
        if reason is None:
            why = _section_reason(path, touch.before, touch.after) or \
                _shadow_reason(path, touch.before, touch.after, importable, path_dirs)
            reason = ("config", why) if why else None
        if reason is not None:
            found.append(ProtectedChange(path, *reason))
    return found
