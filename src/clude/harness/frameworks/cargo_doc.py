"""Where a failing Rust doc test failed, in its source file.

A doc test is compiled from its snippet with lines rustdoc adds in front (`#![allow(unused)]`, an
`extern crate`, `fn main() {` unless the snippet has its own: how many depends on the snippet and the
toolchain), and a panic in it names a line of that generated program with the source file's name:
`src/lib.rs:8` for an assert on line 58. The test's name says where the snippet starts ("src/lib.rs -
add (line 45)", the line of its opening fence). The panic's line is mapped back into the snippet by the
statement the panic message names (an assert_eq!, an unwrap, ...), looked for first at the offset of
rustdoc's usual preamble, then at the nearest others; when no line of the snippet holds it, the failure
is located at the fence: the doc test, never a line outside it. Pure."""

from __future__ import annotations

import re

DOC_TEST = re.compile(r"^(?P<file>.+?\.rs) - .*\(line (?P<line>\d+)\)(?: - compile(?: fail)?)?$")
MAX_PREAMBLE = 8   # lines rustdoc may add before a snippet
_FENCE = re.compile(r"^\s*(?:///|//!|\*|#\[doc\s*=\s*\"|)\s*(?:```|~~~)")

# What the panic message says -> what the line that panicked holds.
_CONSTRUCTS = [
    (re.compile(r"^assertion `left == right` failed"), ("assert_eq!", "debug_assert_eq!")),
    (re.compile(r"^assertion `left != right` failed"), ("assert_ne!", "debug_assert_ne!")),
    (re.compile(r"^assertion failed: "), ("assert!", "debug_assert!")),
    (re.compile(r"^called `(?:Option|Result)::unwrap(?:_err)?\(\)`"), (".unwrap",)),
    (re.compile(r"^not yet implemented"), ("todo!", "unimplemented!")),
    (re.compile(r"^not implemented"), ("unimplemented!",)),
    (re.compile(r"^internal error: entered unreachable code"), ("unreachable!",)),
]
_ANY = ("assert", "panic!", ".unwrap", ".expect(", "unreachable!", "todo!", "unimplemented!")


def doc_test_start(test_id: str) -> tuple[str, int] | None:
    """(file, line of the opening fence) of a doc test's id; None for any other test."""
    m = DOC_TEST.match(test_id)
    return (m["file"], int(m["line"])) if m else None


def snippet_end(source: list[str], fence: int) -> int:
    """The line of the fence that closes the snippet opened on line `fence` (1-based; the last line of
    the file when it is never closed)."""
    for number in range(fence + 1, len(source) + 1):
        if _FENCE.match(source[number - 1]):
            return number
    return len(source)


def preamble(snippet: list[str]) -> int:
    """The lines rustdoc adds in front of a snippet, as it usually does: `#![allow(unused)]`, then
    `#[allow(unused_extern_crates)]` and `extern crate <name>;` unless the snippet has its own extern
    crate, then `fn main() {` unless it has its own main."""
    text = "\n".join(snippet)
    return 1 + (0 if re.search(r"\bextern\s+crate\b", text) else 2) + (0 if re.search(r"\bfn\s+main\s*\(", text) else 1)


def doc_test_line(source: list[str], fence: int, reported: int | None, reason: str) -> int:
    """The line of `source` (the file's lines) where the doc test opened at `fence` failed, from the
    line its panic reported and its message: the line, at the usual preamble's offset or the nearest to
    it, that holds what the message names; `fence` when no line of the snippet does; `reported` when
    it cannot be a line of the snippet (a panic in the code the doc test called, in the same file).
    `reported` None (the panic named a generated file: edition 2024 bundles doc tests into one): the
    one line of the snippet that holds what the message names, else `fence`."""
    end = snippet_end(source, fence)
    if reported is None:
        candidates = list(range(fence + 1, end))
    else:
        usual = preamble(source[fence:end - 1])
        offsets = sorted(range(MAX_PREAMBLE + 1), key=lambda k: (abs(k - usual), k))
        candidates = [line for line in (fence + reported - k for k in offsets) if fence < line < end]
        if not candidates:  # too far down to be a line of the snippet: code the doc test called, where it is
            return reported
    hits = _holding(source, candidates, reason)
    return hits[0] if hits and (reported is not None or len(hits) == 1) else fence


def _holding(source: list[str], candidates: list[int], reason: str) -> list[int]:
    """The candidate lines that hold what the panic message names, in the candidates' order. A message
    that names no statement (a panic! with formatted words) is taken only on the first candidate, and
    only when that line can panic at all."""
    wanted = next((marks for pattern, marks in _CONSTRUCTS if pattern.match(reason)), None)
    if wanted is not None:
        return [line for line in candidates if any(mark in source[line - 1] for mark in wanted)]
    words = reason.strip().split(":")[0].strip()
    hits = [line for line in candidates if words and words in source[line - 1]]
    if hits:
        return hits
    first = candidates[:1]
    return [line for line in first if any(mark in source[line - 1] for mark in _ANY)]
