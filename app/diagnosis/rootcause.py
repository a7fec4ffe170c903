"""The first causal error versus the cascade that follows it, and the fingerprint of the failure kind."""

from __future__ import annotations

import hashlib
import re

import msgspec

from app.diagnosis.matcher import Hit

MAX_SYMPTOMS = 20
SURVIVED_MARGIN_LINES = 50  # other ranks may log a few steps after one rank's fatal error
MIN_FATAL_PRIORITY = 50  # generic catch-alls and timeouts do not displace a specific earlier error
_EXCEPTION_LINE = re.compile(
    rb"^[^\n]{0,120}?(?<![\w.])((?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Interrupt|Failure|Fault)\b(?::[^\n]*)?)$",
    re.M,
)
_EXCEPTION_WORDS = (b"Error", b"Exception", b"Interrupt", b"Failure", b"Fault")
_LONGEST_WORD = max(len(word) for word in _EXCEPTION_WORDS)
_WORD_WINDOW = 8192
_TEMPLATE_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^\s*(?:\[[^\]]{0,40}\]:?\s*)+"), ""),  # rank / logger prefixes
    (re.compile(r"\b\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d[.,\d]*"), "<time>"),
    (re.compile(r"(?:/[\w.@+-]+){2,}/?"), "<path>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b[0-9a-f]{12,}\b"), "<hash>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
]


class RootCause(msgspec.Struct, frozen=True):
    root: Hit | None
    symptoms: list[Hit]


def choose_root_cause(hits: list[Hit], *, last_progress_line: int | None = None) -> RootCause:
    """Root: the most specific cause (highest priority, then earliest); symptoms only when no cause matched.

    An error that training went on after (progress lines long after it: a retried OOM, a skipped bad
    batch) did not kill the run: a precise error after the last progress line wins over it.
    """
    ordered = sorted(hits, key=lambda hit: hit.line)
    causes = [hit for hit in ordered if hit.signature.spec.role == "cause"]
    candidates = causes or ordered
    if not candidates:
        return RootCause(root=None, symptoms=[])
    root = max(candidates, key=_specificity)
    if _survived(root, last_progress_line):
        assert last_progress_line is not None
        fatal = [
            hit
            for hit in causes
            if hit.line > last_progress_line
            and hit.signature.spec.priority >= MIN_FATAL_PRIORITY
            and hit.signature.category != root.signature.category
        ]
        root = max(fatal, key=_specificity) if fatal else root
    symptoms: list[Hit] = []
    seen = {root.signature.id}
    for hit in ordered:
        if hit.signature.id in seen:
            continue
        if hit.line >= root.line or hit.signature.spec.role == "symptom":
            seen.add(hit.signature.id)
            symptoms.append(hit)
    return RootCause(root=root, symptoms=symptoms[:MAX_SYMPTOMS])


def _specificity(hit: Hit) -> tuple[int, int]:
    return hit.signature.spec.priority, -hit.line


def _survived(root: Hit, last_progress_line: int | None) -> bool:
    """Training went on long after this error (divergence is never survived: it is where trouble began)."""
    return (
        last_progress_line is not None
        and root.signature.category != "nan_loss"
        and root.line + SURVIVED_MARGIN_LINES < last_progress_line
    )


def last_exception_line(data: bytes, *, before: int | None = None) -> tuple[int, str] | None:
    """The last line of a block that reads like an exception (`SomeError: message`): where it starts in the
    block, and its text.

    Searched from the end (or from the line of `before`, where the screen saw the last exception word), line
    by line where an exception word occurs, rather than over the whole block.
    """
    end = len(data)
    if before is not None and (line_end := data.find(b"\n", before)) >= 0:
        end = line_end
    while end > 0:
        found = _last_exception_word(data, end)
        if found < 0:
            return None
        line_start = data.rfind(b"\n", 0, found) + 1
        line_end = data.find(b"\n", found)
        line_end = len(data) if line_end < 0 else line_end
        if match := _EXCEPTION_LINE.search(data, line_start, line_end):
            return line_start, match.group(1).decode("utf-8", errors="replace").strip()[:2000]
        end = line_start
    return None


def _last_exception_word(data: bytes, end: int) -> int:
    """Where the last exception word before `end` starts, looked for in windows back from there (a word that
    is absent costs a window, not the block)."""
    while end > 0:
        low = max(0, end - _WORD_WINDOW)
        found = max(data.rfind(word, low, end) for word in _EXCEPTION_WORDS)
        if found >= 0 or low == 0:
            return found
        end = low + _LONGEST_WORD - 1  # a word across the window's edge is found in the next window
    return -1


def message_template(text: str) -> str:
    """The line with numbers, paths, hex addresses and timestamps masked, for grouping repeats."""
    for pattern, replacement in _TEMPLATE_RULES:
        text = pattern.sub(replacement, text)
    return text.strip()


def fingerprint(category: str, signature_id: str | None, text: str, *, framework: str | None = None) -> str:
    """A stable id of the failure kind: the same signature, in the same framework, with the same root line once
    numbers, paths and ids are masked. A Megatron NCCL timeout and a torchrun one are two kinds, as are two
    OOMs whose messages differ in more than their numbers."""
    key = f"{category}\0{signature_id or ''}\0{framework or ''}\0{message_template(text)}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
