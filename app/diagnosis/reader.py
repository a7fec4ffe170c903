"""Reading a log: decompression by magic bytes, bounded memory, blocks that end on line boundaries.

A plain log in a file or in memory is cut into blocks that can each be read on their own, at any offset
(SeekableLog), so that worker threads read, count and screen blocks side by side; a compressed log or a
stream is read in order (iter_decompressed, iter_whole_lines).
"""

from __future__ import annotations

import functools
import io
import os
import stat
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import msgspec
import regex
import stringzilla

from app.errors import LogTooLargeError, UnreadableLogError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
READ_SIZE = 1 << 20
BLOCK_TARGET = 4 << 20
MAX_LINE_BYTES = 1 << 20
_BOUNDARY_PROBE = 64 * 1024  # read around a block's nominal start and end to find where its lines begin
ZSTD_SLICE = 2048
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
ANSI_ESCAPE = regex.compile(rb"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
BINARY_SAMPLE = 64 * 1024
_BINARY_CONTROL = bytes(byte for byte in range(0x20) if byte not in b"\t\n\r\x0c\x1b\x08")

LogSource = Path | bytes | bytearray | BinaryIO


class LineBlock(msgspec.Struct, frozen=True):
    """Whole lines of the log: `data` ends with a newline; `first_line` is 1-based."""

    data: bytes
    first_line: int
    line_count: int


@functools.cache
def keep_freed_blocks() -> None:
    """Have glibc keep freed blocks' memory for the next blocks, for a log of several: by default it hands each
    4 MB block back to the system when it is freed and faults the next one in page by page, ~30,000 page
    faults more per 300 MB (0.05-0.1 s of system time). Set once per process; under another C library, nothing.
    The memory kept is at most what the blocks in flight held at once."""
    try:
        os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError, AttributeError):  # not glibc: its allocator has its own ways
        return
    import ctypes  # here: ~2 ms, for logs of several blocks only

    mallopt = ctypes.CDLL(None).mallopt
    mallopt(_M_MMAP_THRESHOLD, 4 * BLOCK_TARGET)  # blocks come from the heap, not each from its own mapping
    mallopt(_M_TRIM_THRESHOLD, 16 * BLOCK_TARGET)  # and the heap is not given back under this much free


def count_lines(data: bytes) -> int:
    """Newlines in data (SIMD: bytes.count runs at a tenth of the speed, holding the GIL)."""
    count: int = stringzilla.count(data, b"\n")
    return count


class SeekableLog:
    """A plain log that can be read at any offset (a regular file, or bytes in memory), in blocks of whole lines.

    Block k holds the lines that begin in [k * target, (k + 1) * target): each block finds its own bounds by
    reading around them, so blocks can be read in any order and at once, by different threads. Lines longer
    than max_line are cut to max_line bytes, as iter_whole_lines cuts them, so line numbers match the file.
    """

    def __init__(self, read: Callable[[int, int], bytes], size: int, *, target: int = BLOCK_TARGET,
                 max_line: int = MAX_LINE_BYTES) -> None:
        self._read = read  # (offset, length) -> bytes; safe to call from several threads at once
        self.size = size
        self._target = target
        self._max_line = max_line

    @property
    def block_count(self) -> int:
        return max(1, -(-self.size // self._target))

    def block(self, index: int) -> bytes:
        """The whole lines that begin in block `index`'s range (ends with a newline; empty when none begins)."""
        nominal = index * self._target
        start = self._line_start_from(nominal, limit=nominal + self._target)
        if start >= min(self.size, nominal + self._target):
            return b""
        # past this, the line across the block's end is longer than max_line anyway, and is cut
        end = self._line_start_from(nominal + self._target, limit=nominal + self._target + self._max_line)
        data = self._read(start, end - start)
        if index == 0:
            refuse_binary(data[:BINARY_SAMPLE])
        if self._may_hold_long_line(data):
            pieces = (data[offset : offset + READ_SIZE] for offset in range(0, len(data), READ_SIZE))
            return b"".join(iter_whole_lines(pieces, target=len(data) + 1, max_line=self._max_line,
                                             check_binary=False))
        return data if data.endswith(b"\n") else data + b"\n"

    def _line_start_from(self, offset: int, *, limit: int) -> int:
        """The first offset at or after `offset` where a line begins, looked for before `limit` (else `limit`)."""
        if offset <= 0:
            return 0
        position = offset - 1  # a line begins at `offset` when the byte before it is a newline
        stop = min(limit, self.size)
        while position < stop:
            probe = self._read(position, min(_BOUNDARY_PROBE, stop - position))
            newline = probe.find(b"\n")
            if newline >= 0:
                return position + newline + 1
            if not probe:
                break
            position += len(probe)
        return stop

    def _may_hold_long_line(self, data: bytes) -> bool:
        """Whether a line of data may be longer than max_line: such a line holds a whole aligned stretch of half
        that length with no newline (a few finds per block, where cutting lines would read each one)."""
        half = max(1, self._max_line // 2)
        return any(data.find(b"\n", stretch, stretch + half) < 0 for stretch in range(0, len(data) - half + 1, half))


@contextmanager
def open_seekable(source: LogSource, *, max_bytes: int) -> Iterator[SeekableLog | None]:
    """A SeekableLog over a plain log in a regular file or in memory; None for a compressed log or a stream,
    which iter_decompressed reads in order."""
    if isinstance(source, bytes | bytearray):
        if source.startswith((GZIP_MAGIC, ZSTD_MAGIC)):
            yield None
            return
        _check_size(len(source), max_bytes)
        with memoryview(source) as view:
            yield SeekableLog(lambda offset, length: bytes(view[offset : offset + length]), len(source))
        return
    if not isinstance(source, Path) or not source.is_file():  # a pipe is read once, in order (not opened here)
        yield None
        return
    try:
        descriptor = os.open(source, os.O_RDONLY)
    except OSError as error:
        raise UnreadableLogError(f"cannot open {source}: {error.strerror or error}") from None
    try:
        status = os.fstat(descriptor)
        size = status.st_size
        if not stat.S_ISREG(status.st_mode) or os.pread(descriptor, 4, 0).startswith((GZIP_MAGIC, ZSTD_MAGIC)):
            yield None
            return
        _check_size(size, max_bytes)
        yield SeekableLog(lambda offset, length: os.pread(descriptor, length, offset), size)
    finally:
        os.close(descriptor)


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise LogTooLargeError(f"the log is larger than {max_bytes:,} bytes once decompressed (compression bomb?)")


def _open(source: LogSource) -> tuple[BinaryIO, bool]:
    if isinstance(source, Path):
        try:
            return source.open("rb"), True
        except OSError as error:
            raise UnreadableLogError(f"cannot open {source}: {error.strerror or error}") from None
    if isinstance(source, bytes | bytearray):
        return io.BytesIO(source), True
    return source, False


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = b""
    while len(data) < size:
        part = stream.read(size - len(data))
        if not part:
            break
        data += part
    return data


def iter_decompressed(source: LogSource, *, max_bytes: int) -> Iterator[bytes]:
    """Yield the decompressed log in blocks; plain, gzip or zstd by magic bytes, bounded to max_bytes."""
    stream, owned = _open(source)
    try:
        head = _read_exactly(stream, 4)
        if head.startswith(GZIP_MAGIC):
            blocks = _gunzip(head, stream)
        elif head.startswith(ZSTD_MAGIC):
            blocks = _unzstd(head, stream)
        else:
            blocks = _plain(head, stream)
        total = 0
        for block in blocks:
            total += len(block)
            _check_size(total, max_bytes)
            yield block
    finally:
        if owned:
            stream.close()


def _plain(head: bytes, stream: BinaryIO) -> Iterator[bytes]:
    if head:
        yield head
    while block := stream.read(READ_SIZE):
        yield block


def _gunzip(head: bytes, stream: BinaryIO) -> Iterator[bytes]:
    pending = head
    while True:
        decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        while not decompressor.eof:
            data = pending or stream.read(READ_SIZE)
            pending = b""
            if not data:
                raise UnreadableLogError("truncated gzip: the stream ends before its last member is complete")
            try:
                while data:
                    out = decompressor.decompress(data, READ_SIZE)
                    if out:
                        yield out
                    data = decompressor.unconsumed_tail
            except zlib.error as error:
                raise UnreadableLogError(f"corrupt gzip data: {error}") from None
        rest = decompressor.unused_data.lstrip(b"\x00")
        if not rest:
            rest = stream.read(READ_SIZE).lstrip(b"\x00")
        if not rest:
            return
        if not rest.startswith(GZIP_MAGIC[:1]):
            raise UnreadableLogError("corrupt gzip data after the first member")
        pending = rest


def _unzstd(head: bytes, stream: BinaryIO) -> Iterator[bytes]:
    """Frame by frame; input is fed in small slices so one slice cannot expand into a huge block."""
    import zstandard  # here, not at the top: ~2 ms of every start, and most logs are plain text

    pending = head
    while True:
        decompressor = zstandard.ZstdDecompressor().decompressobj()
        while not decompressor.eof:
            data = pending or stream.read(READ_SIZE)
            pending = b""
            if not data:
                raise UnreadableLogError("truncated zstd: the stream ends before its last frame is complete")
            try:
                for offset in range(0, len(data), ZSTD_SLICE):
                    out = decompressor.decompress(data[offset : offset + ZSTD_SLICE])
                    if out:
                        yield out
                    if decompressor.eof:
                        pending = decompressor.unused_data + data[offset + ZSTD_SLICE :]
                        break
            except zstandard.ZstdError as error:
                raise UnreadableLogError(f"corrupt zstd data: {error}") from None
        if not pending:
            pending = stream.read(READ_SIZE)
        if not pending:
            return
        if not pending.startswith(ZSTD_MAGIC[:1]):
            raise UnreadableLogError("corrupt zstd data after the first frame")


def looks_binary(sample: bytes) -> bool:
    """True when a sample is mostly not text: control bytes and invalid UTF-8 (a few are tolerated)."""
    if not sample:
        return False
    control_bytes = len(sample) - len(sample.translate(None, _BINARY_CONTROL))
    text = sample.decode("utf-8", errors="replace")
    return control_bytes + text.count("\ufffd") > len(text) * 0.2


def iter_line_blocks(
    blocks: Iterable[bytes], *, target: int = BLOCK_TARGET, max_line: int = MAX_LINE_BYTES
) -> Iterator[LineBlock]:
    """Regroup raw blocks into ~target-sized blocks of whole lines, with their first line number."""
    line = 1
    for data in iter_whole_lines(blocks, target=target, max_line=max_line):
        count = data.count(b"\n")
        yield LineBlock(data, line, count)
        line += count


def iter_whole_lines(
    blocks: Iterable[bytes], *, target: int = BLOCK_TARGET, max_line: int = MAX_LINE_BYTES, check_binary: bool = True
) -> Iterator[bytes]:
    """Regroup raw blocks into ~target-sized blocks of whole lines (each ends with a newline), unnumbered:
    whoever reads them may count their lines where it is cheaper (the engine does, in its worker threads).

    A line longer than max_line is cut to max_line bytes (the rest is skipped, not held in memory),
    so line numbers still match the submitted file. Each byte is copied once.
    """
    parts: list[bytes] = []
    size = 0
    unfinished = 0  # bytes of the last line, not ended yet
    skipping = False
    checked_binary = not check_binary
    for raw in blocks:
        block = raw
        if skipping:
            newline = block.find(b"\n")
            if newline < 0:
                continue
            skipping = False
            block = block[newline + 1 :]
        parts.append(block)
        size += len(block)
        newline = block.rfind(b"\n")
        unfinished = unfinished + len(block) if newline < 0 else len(block) - newline - 1  # the last line so far
        if not checked_binary and size >= BINARY_SAMPLE:
            checked_binary = _refuse_binary(parts)
        if size < target and unfinished <= max_line:
            continue
        index, cut = _last_newline(parts)
        if cut >= 0:
            yield b"".join([*parts[:index], parts[index][: cut + 1]])
            rest = [parts[index][cut + 1 :], *parts[index + 1 :]]
            parts = [part for part in rest if part]
            size = sum(len(part) for part in parts)
        if size > max_line:
            yield b"".join(parts)[:max_line] + b"\n"
            parts, size, unfinished = [], 0, 0
            skipping = True
    if parts:
        if not checked_binary:
            _refuse_binary(parts)
        data = b"".join(parts)
        yield data if data.endswith(b"\n") else data + b"\n"


def _refuse_binary(parts: list[bytes]) -> bool:
    """Raise when the start of the log is not text; True once checked."""
    refuse_binary(b"".join(parts)[:BINARY_SAMPLE] if len(parts[0]) < BINARY_SAMPLE else parts[0][:BINARY_SAMPLE])
    return True


def refuse_binary(sample: bytes) -> None:
    """Raise when the start of the log is not text."""
    if looks_binary(sample):
        raise UnreadableLogError("this looks like binary data, not a text log")


def _last_newline(parts: list[bytes]) -> tuple[int, int]:
    """(index of the part, offset in it) of the last newline, or (0, -1) when there is none."""
    for index in range(len(parts) - 1, -1, -1):
        cut = parts[index].rfind(b"\n")
        if cut >= 0:
            return index, cut
    return 0, -1


def strip_ansi(data: bytes) -> bytes:
    """Remove terminal colour and cursor codes (no newlines are touched)."""
    if b"\x1b" not in data:
        return data
    cleaned: bytes = ANSI_ESCAPE.sub(b"", data)
    return cleaned


def decode_line(data: bytes) -> str:
    """One line for people: the last redraw of a \\r-rewritten line, decoded leniently, ANSI removed."""
    text = strip_ansi(data).rstrip(b"\r\n")
    if b"\r" in text:
        parts = [part for part in text.split(b"\r") if part.strip()]
        text = parts[-1] if parts else b""
    return text.decode("utf-8", errors="replace").replace("\x00", "")
