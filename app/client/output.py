"""One output stream of a wrapped command: read as raw bytes, written to the log, mirrored to our terminal."""

from __future__ import annotations

import errno
import os
import select
import termios
from datetime import datetime
from pathlib import Path

import regex

READ_SIZE = 64 * 1024
UNSAFE_NAME_CHARACTERS = regex.compile(r"[^A-Za-z0-9._-]+")


class LogFile:
    """The log a run is written to (owner-only: it holds secrets the command printed, unredacted).

    A failing write (disk full) stops the logging, never the command.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd
        self.error: OSError | None = None

    @classmethod
    def create(cls, directory: Path, job_name: str, *, now: datetime) -> LogFile:
        """A new file `<timestamp>-<job name>.log` in directory, never overwriting an existing one."""
        directory.mkdir(parents=True, exist_ok=True)
        stem = f"{now:%Y%m%d-%H%M%S}-{UNSAFE_NAME_CHARACTERS.sub('_', job_name)[:80] or 'run'}"
        for suffix in ("", *(f"-{number}" for number in range(2, 1000))):
            path = directory / f"{stem}{suffix}.log"
            try:
                return cls(path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                continue
        raise FileExistsError(f"too many logs named {stem} in {directory}")

    def write(self, data: bytes) -> None:
        """Append bytes as they came; after a failed write, drop them and keep the error."""
        if self._fd is None:
            return
        try:
            write_all(self._fd, data)
        except OSError as error:
            self.error = error
            self.close()

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class OutputChannel:
    """The command writes to `child_fd`; `pump` copies what arrives to the log and to `terminal_fd`.

    When our own stream is a terminal the command gets a pseudo-terminal, so it sees what it would
    see without trainwreck (line-buffered output, live progress bars); otherwise it gets a pipe.
    The pseudo-terminal passes bytes through untouched: no `\\n` → `\\r\\n` translation.
    """

    def __init__(self, terminal_fd: int) -> None:
        self.terminal_fd = terminal_fd
        if os.isatty(terminal_fd):
            self.reader_fd, self.child_fd = os.openpty()
            _pass_bytes_through(self.child_fd, size_from=terminal_fd)
        else:
            self.reader_fd, self.child_fd = os.pipe()
        self._mirroring = True

    def close_child_end(self) -> None:
        """Close our copy of the command's end, so that reading ends when the command's copies close."""
        os.close(self.child_fd)

    def close(self) -> None:
        """Close the reading end."""
        os.close(self.reader_fd)

    def pump(self, log: LogFile) -> bool:
        """Copy one read's worth of output to the log and the terminal; False once the stream has ended."""
        try:
            data = os.read(self.reader_fd, READ_SIZE)
        except OSError as error:
            if error.errno != errno.EIO:  # EIO: a pseudo-terminal whose writers have all gone
                raise
            data = b""
        if not data:
            return False
        log.write(data)
        if self._mirroring:
            try:
                write_all(self.terminal_fd, data)
            except OSError:  # our terminal went away (closed pipe, hung-up ssh): keep logging regardless
                self._mirroring = False
        return True


def write_all(fd: int, data: bytes) -> None:
    """Write every byte, however many calls it takes (waiting when fd is a full non-blocking one)."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [])


def _pass_bytes_through(pty_fd: int, *, size_from: int) -> None:
    attributes = termios.tcgetattr(pty_fd)
    attributes[1] &= ~termios.OPOST
    termios.tcsetattr(pty_fd, termios.TCSANOW, attributes)
    termios.tcsetwinsize(pty_fd, termios.tcgetwinsize(size_from))
