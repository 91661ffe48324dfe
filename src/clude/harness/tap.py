"""Parses TAP 13 (as `node --test` writes it): nested subtests by indentation, YAML diagnostics, directives."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


INDENT = 4  # spaces per subtest level (TAP 14 and node)
YAML_MAX_CHARS = 256 * 1024  # larger diagnostic blocks are read key by key, not by a YAML parser

_RESULT = re.compile(r"^(?P<ok>not ok|ok)\b(?:\s+(?P<num>\d+))?(?:\s*-)?\s?(?P<rest>.*)$")
_PLAN = re.compile(r"^1\.\.(?P<count>\d+)(?:\s*#\s*(?P<why>.*))?$")
_DIRECTIVE = re.compile(r"^(?P<kind>skip\S*|todo)\b\s*(?P<why>.*)$", re.I)
_UNESCAPE = {"\\": "\\", "#": "#", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v"}


@dataclass
class TapResult:
    """One `ok` / `not ok` line, with its subtests and its YAML diagnostic block."""

    ok: bool
    name: str
    depth: int  # subtest level: 0 for the top
    number: int | None = None
    path: list[str] = field(default_factory=list)  # names of the enclosing subtests, outermost first
    directive: str | None = None  # "skip" or "todo"
    directive_reason: str = ""
    diag: dict = field(default_factory=dict)
    children: list["TapResult"] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)  # comment lines since the previous result here


@dataclass
class TapDocument:
    version: int | None = None
    results: list[TapResult] = field(default_factory=list)  # top-level results, subtests nested
    in_order: list[TapResult] = field(default_factory=list)  # every result, as the stream gave them
    plan: int | None = None  # the top-level plan's count, when the stream got that far
    bailed_out: str | None = None
    comments: list[str] = field(default_factory=list)  # every comment, in order
    running: list[str] | None = None  # path of the last `# Subtest:` that has no result yet
    unterminated_yaml: bool = False

    @property
    def complete(self) -> bool:
        """True when the stream ended normally: its top-level plan was written (or it bailed out)."""
        return self.plan is not None or self.bailed_out is not None


def unescape(text: str) -> str:
    """A name as written before TAP escaping (backslash escapes, `\\#`)."""
    return re.sub(r"\\(.)", lambda m: _UNESCAPE.get(m.group(1), "\\" + m.group(1)), text)


def _split_directive(rest: str) -> tuple[str, str | None, str]:
    """(name, directive, reason) from what follows `ok N -`; a directive follows the first bare `#`."""
    m = re.search(r"(?<!\\)(?:\\\\)*#", rest)
    if m is None:
        return unescape(rest.strip()), None, ""
    name, tail = rest[: m.end() - 1], rest[m.end():].strip()
    d = _DIRECTIVE.match(tail)
    if d is None:
        return unescape(rest.strip()), None, ""
    kind = "skip" if d.group("kind").lower().startswith("skip") else "todo"
    return unescape(name.strip()), kind, d.group("why").strip()


def _load_yaml(lines: list[str]) -> dict:
    import yaml  # here, not at the top: only a failing node test pays its import time

    text = "\n".join(lines)
    if len(text) <= YAML_MAX_CHARS:
        try:
            data = yaml.safe_load(text)
            if isinstance(data, dict):
                return data
        except yaml.YAMLError:
            pass
    return _scalar_keys(lines)


def _scalar_keys(lines: list[str]) -> dict:
    """The top-level `key: value` and `key: |-` entries of a block too big or broken for YAML."""
    out: dict = {}
    key = None
    for line in lines:
        m = re.match(r"^(\w+):\s*(.*)$", line)
        if m:
            key, value = m.group(1), m.group(2).strip()
            if value in ("|-", "|", ">", ">-"):
                out[key] = ""
            else:
                out[key] = value.strip("'\"")
                key = None
        elif key is not None and line.startswith("  ") and len(out[key]) < YAML_MAX_CHARS:
            out[key] += ("\n" if out[key] else "") + line[2:]
    return out


class _Parser:
    def __init__(self) -> None:
        self.doc = TapDocument()
        self.pending: dict[int, list[TapResult]] = {}  # results waiting for their parent's line
        self.comments: dict[int, list[str]] = {}
        self.open: list[str] = []  # names of the `# Subtest:` lines enclosing the current line
        self.yaml_for: TapResult | None = None
        self.yaml_indent = 0
        self.yaml_lines: list[str] = []

    def feed(self, raw: str) -> None:
        line = raw.rstrip("\r\n")
        if self.yaml_for is not None:
            self._feed_yaml(line)
            return
        stripped = line.lstrip(" ")
        depth = (len(line) - len(stripped)) // INDENT
        if not stripped:
            return
        if stripped.startswith("TAP version"):
            m = re.search(r"\d+", stripped)
            self.doc.version = int(m.group()) if m else None
        elif stripped.startswith("#"):
            self._comment(stripped[1:].strip(), depth)
        elif stripped.startswith("Bail out!"):
            self.doc.bailed_out = stripped[len("Bail out!"):].strip() or "bailed out"
        elif stripped == "---" and self.doc.in_order:
            self.yaml_for = self.doc.in_order[-1]
            self.yaml_indent = len(line) - len(stripped)
            self.yaml_lines = []
        elif (m := _PLAN.match(stripped)) is not None:
            if depth == 0:
                self.doc.plan = int(m.group("count"))
        elif (m := _RESULT.match(stripped)) is not None:
            self._result(m, depth)

    def _comment(self, text: str, depth: int) -> None:
        self.doc.comments.append(text)
        if text.startswith("Subtest:"):
            del self.open[depth:]
            self.open += [""] * (depth - len(self.open))
            self.open.append(unescape(text[len("Subtest:"):].strip()))
        else:
            self.comments.setdefault(depth, []).append(text)

    def _result(self, m: re.Match, depth: int) -> None:
        name, directive, why = _split_directive(m.group("rest"))
        result = TapResult(ok=m.group("ok") == "ok", name=name, depth=depth,
                           number=int(m.group("num")) if m.group("num") else None,
                           path=[p for p in self.open[:depth]], directive=directive,
                           directive_reason=why, comments=self.comments.pop(depth, []))
        for deeper in sorted(d for d in self.pending if d > depth):
            if deeper == depth + 1:
                result.children = self.pending.pop(deeper)
            else:  # a level was skipped; keep the results rather than lose them
                result.children += self.pending.pop(deeper)
        self.pending.setdefault(depth, []).append(result)
        self.doc.in_order.append(result)
        del self.open[depth:]

    def _feed_yaml(self, line: str) -> None:
        stripped = line.strip()
        if stripped == "..." and len(line) - len(line.lstrip(" ")) <= self.yaml_indent:
            self.yaml_for.diag = _load_yaml(self.yaml_lines)
            self.yaml_for = None
            return
        self.yaml_lines.append(line[self.yaml_indent:] if line[: self.yaml_indent].strip() == ""
                               else line.lstrip(" "))

    def finish(self) -> TapDocument:
        if self.yaml_for is not None:  # the stream stopped inside a diagnostic block
            self.doc.unterminated_yaml = True
            self.yaml_for.diag = _scalar_keys(self.yaml_lines)
        top = self.pending.pop(0, [])
        for depth in sorted(self.pending):  # subtests whose parent never reported (a cut stream)
            top += self.pending[depth]
        self.doc.results = top
        if self.open:
            self.doc.running = [p for p in self.open if p]
        return self.doc


def parse_tap(data: bytes | str) -> TapDocument:
    """Parse a TAP stream, whatever its state: cut short, bailed out, not UTF-8, or interleaved junk."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    parser = _Parser()
    for line in text.splitlines():
        parser.feed(line)
    return parser.finish()


def leaves(results: list[TapResult]) -> list[TapResult]:
    """The results that have no subtests, depth first, in stream order."""
    out: list[TapResult] = []
    for result in results:
        if result.children:
            out += leaves(result.children)
        else:
            out.append(result)
    return out
