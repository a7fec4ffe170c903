"""Reading logs: compression by magic bytes, bounds, odd bytes, and line numbers as submitted."""

from __future__ import annotations

import gzip
import io
import os
import threading
from pathlib import Path

import pytest
import zstandard

from app.diagnosis.reader import (
    SeekableLog,
    count_lines,
    decode_line,
    iter_decompressed,
    iter_line_blocks,
    open_seekable,
    strip_ansi,
)
from app.errors import LogTooLargeError, UnreadableLogError

LOG = b"step 1 loss 2.0\nstep 2 loss 1.9\nRuntimeError: boom\n"


def _read(source: bytes, *, max_bytes: int = 1 << 30) -> bytes:
    return b"".join(iter_decompressed(source, max_bytes=max_bytes))


def test_plain_gzip_and_zstd_read_the_same() -> None:
    assert _read(LOG) == LOG
    assert _read(gzip.compress(LOG)) == LOG
    assert _read(zstandard.ZstdCompressor().compress(LOG)) == LOG


def test_concatenated_gzip_members_are_all_read() -> None:
    assert _read(gzip.compress(b"a\n") + gzip.compress(b"b\n")) == b"a\nb\n"


def test_stream_source_is_read_without_a_path() -> None:
    assert b"".join(iter_decompressed(io.BytesIO(gzip.compress(LOG)), max_bytes=1 << 20)) == LOG


def test_truncated_gzip_is_an_unreadable_log() -> None:
    with pytest.raises(UnreadableLogError, match="truncated gzip"):
        _read(gzip.compress(LOG * 100)[:-30])


def test_truncated_zstd_is_an_unreadable_log() -> None:
    data = zstandard.ZstdCompressor().compress(LOG * 1000)
    with pytest.raises(UnreadableLogError, match="zstd"):
        _read(data[: len(data) // 2])


def test_gzip_bomb_stops_at_the_decompressed_limit() -> None:
    bomb = gzip.compress(b"\0" * (50 << 20))
    assert len(bomb) < 100_000
    with pytest.raises(LogTooLargeError, match="larger than"):
        _read(bomb, max_bytes=10 << 20)


def test_binary_junk_is_rejected() -> None:
    junk = bytes(range(256)) * 200
    with pytest.raises(UnreadableLogError, match="binary"):
        list(iter_line_blocks([junk]))


def test_blocks_end_on_line_boundaries_and_count_lines() -> None:
    data = b"".join(b"line %d\n" % number for number in range(1, 10_001))
    blocks = list(iter_line_blocks([data[i : i + 777] for i in range(0, len(data), 777)], target=4096))
    assert len(blocks) > 10
    assert all(block.data.endswith(b"\n") for block in blocks)
    for block in blocks:
        first = block.data.split(b"\n", 1)[0]
        assert first == b"line %d" % block.first_line


def test_overlong_line_is_cut_and_line_numbers_still_match() -> None:
    data = b"first\n" + b"x" * 3_000_000 + b"\nafter the long line\n"
    blocks = list(iter_line_blocks([data[i : i + 65536] for i in range(0, len(data), 65536)], max_line=100_000))
    joined = b"".join(block.data for block in blocks)
    lines = joined.split(b"\n")
    assert lines[0] == b"first"
    assert len(lines[1]) == 100_000
    assert lines[2] == b"after the long line"
    assert max(len(block.data) for block in blocks) < 5_000_000


def test_missing_final_newline_is_added() -> None:
    assert b"".join(block.data for block in iter_line_blocks([b"a\nb"])) == b"a\nb\n"


def test_decode_line_keeps_the_last_redraw_and_drops_colour() -> None:
    line = b"  5%|5 | 5/100 [00:01]\r 10%|# | 10/100 [00:02]\r\x1b[31mRuntimeError: x\xff\x1b[0m\r\n"
    assert decode_line(line) == "RuntimeError: x\ufffd"


def test_strip_ansi_keeps_newlines() -> None:
    assert strip_ansi(b"\x1b[1;31mred\x1b[0m\nplain\n") == b"red\nplain\n"


def test_short_log_with_nul_bytes_and_invalid_utf8_is_still_text() -> None:
    data = b"abc\xff\xfe\x00\x00 RuntimeError: bad \xc3\x28 utf8\r\n"
    assert b"".join(block.data for block in iter_line_blocks(iter_decompressed(data, max_bytes=1 << 20))) == data


def _seekable(data: bytes, *, target: int, max_line: int) -> SeekableLog:
    return SeekableLog(lambda offset, length: data[offset : offset + length], len(data), target=target,
                       max_line=max_line)


def _sequential(data: bytes, *, target: int, max_line: int) -> bytes:
    pieces = [data[offset : offset + 1000] for offset in range(0, len(data), 1000)]
    return b"".join(block.data for block in iter_line_blocks(pieces, target=target, max_line=max_line))


@pytest.mark.parametrize("target", [1, 7, 64, 1000, 4096])
def test_seekable_blocks_read_in_any_order_give_the_lines_read_in_order(target: int) -> None:
    lines = [b"x" * (number * 37 % 300) + b" line %d" % number for number in range(400)]
    lines[50] = b"y" * 5000  # over max_line: cut, the rest skipped
    lines[51] = b""
    lines[200] = b"z" * 2500 + b"\r" + b"w" * 10  # over max_line, across several small blocks
    data = b"\n".join(lines)  # no final newline
    log = _seekable(data, target=target, max_line=2000)
    blocks = {index: log.block(index) for index in reversed(range(log.block_count))}
    joined = b"".join(blocks[index] for index in sorted(blocks))
    assert joined == _sequential(data, target=target, max_line=2000)
    assert count_lines(joined) == len(lines)
    assert all(block.endswith(b"\n") for block in blocks.values() if block)


def test_seekable_block_in_which_no_line_begins_is_empty() -> None:
    data = b"short\n" + b"x" * 10_000 + b"\nlast\n"
    log = _seekable(data, target=1000, max_line=100_000)
    blocks = [log.block(index) for index in range(log.block_count)]
    assert blocks[0] == b"short\n" + b"x" * 10_000 + b"\n"
    assert blocks[1:10] == [b""] * 9
    assert b"".join(blocks) == data


def test_open_seekable_reads_plain_files_and_bytes_but_not_compressed_logs(tmp_path: Path) -> None:
    plain = tmp_path / "plain.log"
    plain.write_bytes(LOG)
    packed = tmp_path / "packed.log.gz"
    packed.write_bytes(gzip.compress(LOG))
    for source in (plain, LOG):
        with open_seekable(source, max_bytes=1 << 20) as log:
            assert log is not None and log.block(0) == LOG
    for source in (packed, gzip.compress(LOG), io.BytesIO(LOG)):
        with open_seekable(source, max_bytes=1 << 20) as log:
            assert log is None


def test_open_seekable_refuses_a_plain_log_over_the_limit_before_reading_it() -> None:
    with pytest.raises(LogTooLargeError, match="larger than"), open_seekable(LOG * 10, max_bytes=100):
        pass


def test_seekable_binary_junk_is_rejected() -> None:
    with open_seekable(bytes(range(256)) * 200, max_bytes=1 << 20) as log:
        assert log is not None
        with pytest.raises(UnreadableLogError, match="binary"):
            log.block(0)


def test_a_named_pipe_is_not_opened_to_be_sized_but_read_once_in_order(tmp_path: Path) -> None:
    """Opening a pipe to see whether it is a plain file would take the writer's data (or wait for a writer)."""
    pipe = tmp_path / "train.log"
    os.mkfifo(pipe)
    with open_seekable(pipe, max_bytes=1 << 20) as log:  # would block here, with no writer, if it opened it
        assert log is None
    writer = threading.Thread(target=pipe.write_bytes, args=(LOG,))
    writer.start()
    assert b"".join(iter_decompressed(pipe, max_bytes=1 << 20)) == LOG
    writer.join(5)
