"""Sharing our controlling terminal with a wrapped command the way a shell does (job control)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable


class TerminalHandoff:
    """Gives the terminal's foreground to the command's process group while it runs, and takes it back.

    In the foreground, the command gets Ctrl-C and Ctrl-\\ straight from the terminal and can read
    input (pdb, prompts). Without a controlling terminal of which we hold the foreground (batch jobs,
    `&`), there is nothing to hand over and every method does nothing.
    """

    def __init__(self) -> None:
        self._tty_fd = _foreground_terminal()

    @property
    def active(self) -> bool:
        """True when the command was given the terminal."""
        return self._tty_fd is not None

    def child_setup(self) -> Callable[[], None] | None:
        """What the command's process runs before exec: take the foreground for its new process group."""
        tty_fd = self._tty_fd
        if tty_fd is None:
            return None

        def take_foreground() -> None:
            _set_foreground(tty_fd, os.getpgrp())
            signal.signal(signal.SIGTTOU, signal.SIG_DFL)

        return take_foreground

    def reclaim(self) -> None:
        """Take the foreground back for our own process group."""
        if self._tty_fd is not None:
            _set_foreground(self._tty_fd, os.getpgrp())

    def suspend_with(self, child_group: int) -> None:
        """The command was stopped (Ctrl-Z): stop too, and once continued, continue it in the foreground."""
        if self._tty_fd is None:
            return
        self.reclaim()
        os.kill(os.getpid(), signal.SIGSTOP)
        if os.tcgetpgrp(self._tty_fd) == os.getpgrp():  # `fg` rather than `bg`
            _set_foreground(self._tty_fd, child_group)
        os.killpg(child_group, signal.SIGCONT)

    def close(self) -> None:
        """Release the terminal descriptor."""
        if self._tty_fd is not None:
            os.close(self._tty_fd)
            self._tty_fd = None


def _foreground_terminal() -> int | None:
    try:
        tty_fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:  # no controlling terminal
        return None
    try:
        if os.tcgetpgrp(tty_fd) == os.getpgrp():
            return tty_fd
    except OSError:
        pass
    os.close(tty_fd)
    return None


def _set_foreground(tty_fd: int, group: int) -> None:
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a background group may not otherwise
    try:
        os.tcsetpgrp(tty_fd, group)
    finally:
        signal.signal(signal.SIGTTOU, previous)
