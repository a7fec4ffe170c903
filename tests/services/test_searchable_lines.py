"""What of a log search indexes: its head and tail, numbered as the log view numbers them, however it is chunked."""

from __future__ import annotations

import random

from app.services.log_search import EDGE_LINES, HEAD_BYTES, HEAD_LINES, MAX_LINE_CHARS, TAIL_LINES, SearchableLines


def _word(number: int) -> str:
    """A word of letters only, another for every number (lines that differ in more than their digits)."""
    letters = ""
    while number:
        number, letter = divmod(number, 26)
        letters += "abcdefghijklmnopqrstuvwxyz"[letter]
    return letters


def _indexed(log: bytes, *, seed: int, extra: list[tuple[int, str]] | None = None) -> dict[int, str]:
    """The indexed lines by number, the log fed in chunks cut at random places."""
    searchable = SearchableLines()
    chunks = random.Random(seed)
    position = 0
    while position < len(log):
        size = chunks.choice((1, 7, 100, 4096, 1 << 20))
        searchable.feed(log[position:position + size])
        position += size
    lines: dict[int, str] = {}
    for first, text in searchable.blocks(extra or []):
        lines.update({first + offset: line for offset, line in enumerate(text.split("\n"))})
    return lines


def test_a_short_log_is_indexed_whole_as_the_log_view_shows_it() -> None:
    log = (b"\x1b[32mINFO\x1b[0m model=acme/Walrus-13B\n"
           b"Train:  10%|#   | 10/100\rTrain:  20%|##  | 20/100\rTrain:  30%|### | 30/100\r\n"
           b"checkpoint\x00shard written   \n"
           b"\n"
           b"caf\xc3\xa9 \xff broken utf-8\n"
           + b"x" * (MAX_LINE_CHARS + 50) + b"\n"
           b"RuntimeError: the last line has no newline")
    expected = {
        1: "INFO model=acme/Walrus-13B",
        2: "Train:  30%|### | 30/100",
        3: "checkpointshard written",
        4: "",
        5: "café \ufffd broken utf-8",
        6: "x" * MAX_LINE_CHARS,
        7: "RuntimeError: the last line has no newline",
    }
    for seed in range(20):
        assert _indexed(log, seed=seed) == expected, seed


def test_a_long_log_keeps_its_head_and_tail_with_their_line_numbers() -> None:
    total = 50_000
    log = b"".join(f"line {number} {_word(number)}\n".encode() for number in range(1, total + 1))
    for seed in range(3):
        lines = _indexed(log, seed=seed, extra=[(25_000, "RuntimeError: the evidence")])
        wanted = [*range(1, HEAD_LINES + 1), 25_000, *range(total - TAIL_LINES + 1, total + 1)]
        assert sorted(lines) == wanted
        assert all(text == f"line {number} {_word(number)}" for number, text in lines.items() if number != 25_000)
        assert lines[25_000] == "RuntimeError: the evidence"  # not stored there: the evidence joins as given


def test_long_lines_end_the_head_at_its_byte_bound() -> None:
    width = 1000
    log = b"".join(b"%06d " % number + _word(number).encode() + b"y" * width + b"\n" for number in range(1, 5001))
    lines = _indexed(log, seed=1)
    head = [number for number in sorted(lines) if number < 2500]
    assert head == list(range(1, len(head) + 1))
    assert HEAD_BYTES // (width + 7) <= len(head) <= HEAD_BYTES // (width + 7) + 1
    assert max(lines) == 5000 and all(text.startswith(f"{number:06d} ") for number, text in lines.items())


def test_lines_that_repeat_but_for_their_digits_are_indexed_once_between_the_edges() -> None:
    steps = 1000
    log = b"[INFO:swift] args: model=acme/Walrus-13B\n" + b"".join(
        b"{'loss': %.4f, 'grad_norm': %.3f, 'epoch': %.2f}\nTrain: %d/%d [00:%02d<01:00]\n"
        % (2 - step / 1000, step / 7, step / 100, step, steps, step % 60)
        for step in range(1, steps + 1)
    ) + b"Saving model checkpoint to output/checkpoint-500\nRuntimeError: CUDA error: an illegal memory access\n"
    lines = _indexed(log, seed=3)
    last = 2 * steps + 3
    assert set(range(1, EDGE_LINES + 1)) | set(range(last - EDGE_LINES + 1, last + 1)) <= set(lines)
    middle = {number: text for number, text in lines.items() if EDGE_LINES < number <= last - EDGE_LINES}
    assert len(middle) < 60  # one line per template of digits, of 1,600 lines there
    assert lines[last] == "RuntimeError: CUDA error: an illegal memory access"
    assert lines[1] == "[INFO:swift] args: model=acme/Walrus-13B"


def test_a_repeat_is_indexed_at_its_first_line_wherever_that_is() -> None:
    """A template first seen in the head's edge is not indexed again in the middle; one first seen in the middle
    is indexed there once; the tail's edge keeps every line; a log with no lines has no blocks."""
    middle = [f"step {number:04d} loss 0.{number:04d}" for number in range(EDGE_LINES + 1, 400)]
    log = "\n".join([*(f"warmup {number:03d}" for number in range(1, EDGE_LINES + 1)), "warmup 999", *middle,
                     *(f"warmup {number:03d}" for number in range(1, EDGE_LINES + 1))]).encode()
    lines = _indexed(log, seed=5)
    last = 2 * EDGE_LINES + len(middle) + 1
    assert [number for number in lines if EDGE_LINES < number <= last - EDGE_LINES] == [EDGE_LINES + 2]
    assert lines[EDGE_LINES + 2] == f"step {EDGE_LINES + 1:04d} loss 0.{EDGE_LINES + 1:04d}"
    assert set(range(last - EDGE_LINES + 1, last + 1)) <= set(lines)
    assert SearchableLines().blocks() == []
