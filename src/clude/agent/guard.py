"""Step-end markers in a model's reply, and the guard that stops a step repeating itself."""

from __future__ import annotations

import re
from collections import deque
from typing import Literal

Signal = Literal["done", "replan"]

# The marker words. A "strong" spelling is one nobody writes in ordinary prose; a "weak" one is.
_MARKER_RE = re.compile(
    r"(?<![A-Za-z0-9_])(?:(?P<done>step(?P<dsep>[ _-]?)done)|(?P<replan>re(?P<rsep>[_-]?)plan))(?![A-Za-z0-9_])",
    re.IGNORECASE)
_FENCE_RE = re.compile(r"^[ \t]{0,3}(```+|~~~+)")
_OPENERS = {"【": "】", "[": "]", "<": ">", "(": ")", "«": "»", "「": "」", '"': '"', "'": "'"}
_MARKUP = "*`_"
_NEGATION_RE = re.compile(
    r"\b(?:not|never|no|don'?t|won'?t|can'?t|cannot|isn'?t|aren'?t|shouldn'?t|without)\b", re.IGNORECASE)
# A word just before the marker that means the model is talking about the marker, not writing it.
_MENTION_RE = re.compile(
    r"\b(?:write|writing|print|printing|output|emit|send|say|saying|use|using|call|calling|invoke|the|a|an|"
    r"until|before|after|with)"
    r"\s*[\"'`*【\[<(]*\s*$", re.IGNORECASE)
_TERMINATOR = ".:!;,)]】>*`\"'»」—–-"
_REPLAN_TAIL_RE = re.compile(r"\s+(?:is\s+)?(?:needed|required|necessary)\b", re.IGNORECASE)


def _blank_fences(text: str) -> str:
    """The text with every fenced code block (``` or ~~~, unclosed ones to the end) blanked out,
    keeping every other character at its position."""
    out: list[str] = []
    fence: str | None = None
    for line in text.splitlines(keepends=True):
        m = _FENCE_RE.match(line)
        if fence is None and m:
            fence = m.group(1)[0] * len(m.group(1))
            out.append(re.sub(r"[^\n]", " ", line))
        elif fence is not None:
            if m and m.group(1).startswith(fence) and not line.strip()[len(m.group(1)):].strip():
                fence = None
            out.append(re.sub(r"[^\n]", " ", line))
        else:
            out.append(line)
    return "".join(out)


def _clause_before(text: str, start: int) -> str:
    """The last four words before start in its clause (on its line, after the last . ! ? ; or ,)."""
    before = text[text.rfind("\n", 0, start) + 1:start]
    cut = max(before.rfind(p) for p in ".!?;,")
    return " ".join(before[cut + 1:].split()[-4:])


def _enclosure(text: str, start: int, end: int) -> tuple[int, int, bool]:
    """The marker's span widened over the markup and paired brackets around it, plus trailing
    punctuation; and whether it sits inside brackets or backticks."""
    left = start
    opened: list[str] = []
    while left > 0 and (text[left - 1] in _MARKUP or text[left - 1] in _OPENERS):
        left -= 1
        if text[left] in _OPENERS:
            opened.append(_OPENERS[text[left]])
        elif text[left] == "`":
            opened.append("`")
    right = end
    while right < len(text):
        ch = text[right]
        if ch in opened:
            opened.remove(ch)
        elif not (ch in _MARKUP or ch in ".:!" or (ch == " " and right + 1 < len(text) and text[right + 1] in ":")):
            break
        right += 1
    bracketed = any(text[i] in _OPENERS or text[i] == "`" for i in range(left, start))
    return left, right, bracketed


def _own_line(text: str, left: int) -> bool:
    """Whether the marker starting at `left` begins its line (after list bullets, headings or
    emphasis), outside a quotation ("> ...": words quoted from elsewhere)."""
    before = text[text.rfind("\n", 0, left) + 1:left]
    return ">" not in before and not before.strip(" \t#*-+•_`0123456789.)")


def _ends_reply(text: str, left: int, right: int) -> bool:
    """Whether nothing but closing punctuation and space follows the marker's span to the reply's end,
    outside a quotation ("> ...")."""
    before = text[text.rfind("\n", 0, left) + 1:left]
    return ">" not in before and not text[right:].strip(" \t\n" + _TERMINATOR + "?")


def _after_sentence(text: str, left: int) -> bool:
    """Whether the marker starts a sentence on its line: after a full stop, "!" or "?" (not a colon:
    "Remember: STEP_DONE ..." explains the marker)."""
    before = text[text.rfind("\n", 0, left) + 1:left].rstrip(" \t*_`")
    return ">" not in before and before.endswith((".", "!", "?"))


def _markers(text: str) -> list[tuple[Signal, int, int]]:
    """Every marker that counts: (signal, start, end of the span to remove), in text order."""
    visible = _blank_fences(text)
    found: list[tuple[Signal, int, int]] = []
    for m in _MARKER_RE.finditer(visible):
        word = m.group(0)
        signal: Signal = "done" if m.group("done") else "replan"
        sep = m.group("dsep") if signal == "done" else m.group("rsep")
        left, right, bracketed = _enclosure(visible, m.start(), m.end())
        clause = _clause_before(visible, left)
        if _NEGATION_RE.search(clause) or _MENTION_RE.search(visible[:m.start()][-40:].split("\n")[-1]):
            continue
        upper = word.isupper()
        strong = (sep != " " or upper) if signal == "done" else (upper or sep == "_")
        after = visible[m.end():]
        terminated = not after or after[0] in "\n" or after[0] in _TERMINATOR or after.startswith((" \n", "  \n"))
        tail = _REPLAN_TAIL_RE.match(after) if signal == "replan" else None
        if tail:
            right = max(right, m.end() + tail.end())
            while right < len(visible) and visible[right] in ".:!":
                right += 1
        # written as a marker: on its own line or ending the reply, or a summary after it ("STEP_DONE: x");
        # and, for a prose spelling, set apart by brackets or ended by punctuation
        placed = (_own_line(visible, left) or _ends_reply(visible, left, right)
                  or (strong and (after.startswith(":") or _after_sentence(visible, left))))
        if placed and (strong or bracketed or terminated or tail is not None):
            found.append((signal, left, right))
    return found


def signal_in(text: str) -> Signal | None:
    """The step-end signal a model wrote in a reply: "done", "replan" or None.

    Rules (case-insensitive; a marker inside a fenced code block never counts):
    - A marker counts only where it is written as one: starting its line (after a bullet or emphasis)
      or ending the reply, never in a "> " quotation; an unambiguous spelling also starting a sentence
      ("Tests pass. STEP_DONE fixed mean") or followed by a colon and its summary. Mid-sentence, or
      after a colon ("Remember: STEP_DONE ends the step"), it is a mention.
    - Unambiguous spellings count so placed as a whole word: STEP_DONE, STEP-DONE, stepdone, STEP DONE
      (in capitals), REPLAN (in capitals), RE_PLAN.
    - Prose spellings ("Step done", "replan") count so placed when set apart as a marker: inside
      brackets or backticks (【STEP_DONE】, [replan], `step done:`), or followed by punctuation or the
      line end ("Step done.", "step done: added X", "Replan needed", "Replan:").
    - Never a marker: part of a longer word (is_step_done, replanning), negated in its clause ("I will
      not replan", "no need to REPLAN"), or talked about ("print STEP_DONE when finished", "the REPLAN
      marker", "then I will call step_done": the word before it is write/print/say/use/call/the/...,
      "Remember: STEP_DONE ends the step"), or ordinary prose ("the next step: done with it", "we may
      need to replan later", "so we must replan: nothing to patch").
    If both signals appear, the one written last wins.
    """
    found = _markers(text)
    return found[-1][0] if found else None


def marker_summary(text: str) -> str:
    """The reply with its markers removed, stripped: the model's own summary of what it did
    ("Added the parser. STEP_DONE" and "STEP_DONE: added the parser" both keep their prose)."""
    out = text
    for _, left, right in reversed(_markers(text)):
        head, tail = out[:left], out[right:]
        if not tail.split("\n", 1)[0].strip():  # the marker ended its line: drop a dangling "," before it
            head = head.rstrip(" \t,;")
        elif head.endswith((" ", "\t")):  # mid-line: keep one space where the marker was
            tail = tail.lstrip(" \t")
        out = head + tail
    lines = [line.rstrip() for line in out.splitlines()]
    out = "\n".join(line for line in lines if line.strip(" -*•>#") or not line)
    return re.sub(r"\n{3,}", "\n\n", out).strip()


# ---------------------------------------------------------------- repetition

_TIMESTAMP_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b")
_TEMP_RE = re.compile(
    r"(?:/private)?/var/folders/[^/\s]+/[^/\s]+/T/[^/\s'\"():,]*"
    r"|/(?:tmp|var/tmp|dev/shm)/[^/\s'\"():,]*"
    r"|[A-Za-z]:\\Users\\[^\\\s]+\\AppData\\Local\\Temp\\[^\\\s'\"():,]*", re.IGNORECASE)
_HEX_RE = re.compile(r"\b0x[0-9a-fA-F]+\b"
                     r"|\b(?=[0-9a-fA-F-]*\d)(?=[0-9a-fA-F-]*[a-fA-F])[0-9a-fA-F]{7,}(?:-[0-9a-fA-F]{4,})*\b")
_DURATION_RE = re.compile(r"\b\d+(?:\.\d+)?\s*(?:ms|s|sec|secs|seconds)\b")
_DIGITS_RE = re.compile(r"\d+")


def normalize_error(text: str) -> str:
    """An error text with what changes between runs replaced (timestamps, temp paths, hex ids,
    then every number) and whitespace collapsed, so the same error compares equal."""
    text = _TIMESTAMP_RE.sub("<time>", text)
    text = _TEMP_RE.sub("<tmp>", text)
    text = _HEX_RE.sub("<hex>", text)
    text = _DIGITS_RE.sub("<n>", text)
    return " ".join(text.split())


def _normalize_result(text: str) -> str:
    """A result with only run-to-run noise replaced (timestamps, durations, temp paths, hex ids):
    numbers that carry meaning, such as "3 passed", stay."""
    text = _TIMESTAMP_RE.sub("<time>", text)
    text = _DURATION_RE.sub("<duration>", text)
    text = _TEMP_RE.sub("<tmp>", text)
    text = _HEX_RE.sub("<hex>", text)
    return " ".join(text.split())


def _cut(text: str, width: int = 120) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _error_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "(empty)"
    if lines[0].startswith("Traceback") and len(lines) > 1:
        return _cut(lines[-1])  # a Python traceback says what went wrong on its last line
    return _cut(lines[0])


class RepetitionGuard:
    """Stops a step that repeats itself.

    - The same action with the same result (run-to-run noise such as durations ignored)
      `same_action_limit` times in a row.
    - The same error (compared by normalize_error) `same_error_limit` times in a row, whatever
      the action; a successful action resets this streak.
    - Two different actions alternating with unchanged results (A, B, A, B, ...) for
      2 * same_action_limit actions in a row. A, B, A, B with a shorter run goes on.
    - `idle_limit` replies in a row without a tool call or a marker; any action resets this.
    - `idle_limit` replies in a row cut off at the max_tokens limit (record_cut), named as such.
    Idle and cut replies do not break an action or error streak. A limit of 0 turns its check off.
    """

    def __init__(self, same_action_limit: int = 3, same_error_limit: int = 3, idle_limit: int = 3):
        for name, value in (("same_action_limit", same_action_limit), ("same_error_limit", same_error_limit),
                            ("idle_limit", idle_limit)):
            if value < 0:
                raise ValueError(f"{name} must be 0 (off) or more, got {value}")
        self.same_action_limit = same_action_limit
        self.same_error_limit = same_error_limit
        self.idle_limit = idle_limit
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new step starts)."""
        self._history: deque[tuple[str, str]] = deque(maxlen=max(2 * self.same_action_limit, 2))
        self._action_streak = 0
        self._last_error: str | None = None
        self._error_streak = 0
        self._first_error = ""
        self._idle_streak = 0
        self._cut_streak = 0

    def record_cut(self, problem: str) -> str | None:
        """Note a reply cut off at the max_tokens limit (`problem` says where); a reason to stop the
        step after `idle_limit` of them in a row, or None to go on."""
        self._cut_streak += 1
        self._idle_streak = 0
        if self.idle_limit and self._cut_streak >= self.idle_limit:
            return (f"{self._cut_streak} replies in a row were cut off before they ended ({problem}): raise "
                    "[model] max_tokens, or the model writes on without end")
        return None

    def record(self, action_key: str, result: str, is_error: bool) -> str | None:
        """Note one action and its result; a reason to stop the step, or None to go on."""
        self._idle_streak = self._cut_streak = 0
        entry = (action_key, _normalize_result(result))
        self._action_streak = self._action_streak + 1 if self._history and self._history[-1] == entry else 1
        self._history.append(entry)
        if is_error:
            norm = normalize_error(result)
            if norm == self._last_error:
                self._error_streak += 1
            else:
                self._last_error, self._error_streak, self._first_error = norm, 1, _error_line(result)
        else:
            self._last_error, self._error_streak = None, 0

        n = self.same_action_limit
        if n and self._action_streak >= n:
            return f"repeated the same action {n} times in a row with the same result: {_cut(action_key)}"
        if self.same_error_limit and self._error_streak >= self.same_error_limit:
            return f"the same error {self.same_error_limit} times in a row: {self._first_error}"
        if n and len(self._history) == 2 * n:
            h = list(self._history)
            a, b = h[-2], h[-1]
            if a[0] != b[0] and all(h[i] == h[i - 2] for i in range(2, len(h))):
                return (f"alternated between 2 actions {2 * n} times in a row with the same results: "
                        f"{_cut(a[0], 60)} / {_cut(b[0], 60)}")
        return None

    def record_idle(self) -> str | None:
        """Note a reply with neither a tool call nor a marker; a reason to stop, or None to go on."""
        self._idle_streak += 1  # a cut streak goes on: only an action breaks it
        if self.idle_limit and self._idle_streak >= self.idle_limit:
            return f"replied {self.idle_limit} times without calling a tool or signalling done"
        return None
