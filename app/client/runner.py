"""Running a training command: its output passes through live and lands, byte for byte, in a log file."""

from __future__ import annotations

import os
import selectors
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from types import FrameType

from app.client.jobcontrol import TerminalHandoff
from app.client.output import LogFile, OutputChannel

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
POLL_SECONDS = 0.1
DRAIN_SECONDS = 1.0  # once the command has exited, how long to wait for output from processes it left behind
STDOUT_FD = 1
STDERR_FD = 2
NOT_EXECUTABLE_STATUS = 126
NOT_FOUND_STATUS = 127


def shell_exit_status(returncode: int) -> int:
    """A Popen return code as a shell reports it: death by signal N becomes 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def command_header(argv: Sequence[str]) -> bytes:
    """The log's first line: the command as run, so the diagnosis can read its flags and correct them."""
    return b"$ " + shlex.join(argv).encode("utf-8", errors="surrogateescape") + b"\n"


def run_logged(argv: Sequence[str], log: LogFile) -> int:
    """Run the command with its stdout and stderr passed through to ours and merged into the log.

    The command runs in its own process group; the signals we receive (SIGINT, SIGTERM, SIGHUP,
    SIGQUIT, SIGUSR1, SIGUSR2) are forwarded to that group. Returns its exit status, shell-style.
    """
    log.write(command_header(argv))
    stdout, stderr = OutputChannel(STDOUT_FD), OutputChannel(STDERR_FD)
    handoff = TerminalHandoff()
    try:
        try:
            process = subprocess.Popen(
                list(argv),
                stdout=stdout.child_fd,
                stderr=stderr.child_fd,
                env={"PYTHONUNBUFFERED": "1"} | dict(os.environ),  # Python output reaches the log as printed
                process_group=0,
                preexec_fn=handoff.child_setup(),
            )
        except OSError as error:
            return _report_unrunnable(argv[0], error, log)
        finally:
            stdout.close_child_end()
            stderr.close_child_end()
        with _forwarding_signals(process.pid):
            return _pump_until_exit(process, [stdout, stderr], log, handoff)
    finally:
        handoff.reclaim()
        handoff.close()
        stdout.close()
        stderr.close()


def _report_unrunnable(program: str, error: OSError, log: LogFile) -> int:
    message = f"trainwreck: cannot run {program}: {error.strerror or error}\n".encode()
    log.write(message)
    with suppress(OSError):
        os.write(STDERR_FD, message)
    return NOT_FOUND_STATUS if isinstance(error, FileNotFoundError) else NOT_EXECUTABLE_STATUS


@contextmanager
def _forwarding_signals(process_group: int) -> Iterator[None]:
    def forward(signum: int, _frame: FrameType | None) -> None:
        with suppress(ProcessLookupError):
            os.killpg(process_group, signum)

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED_SIGNALS}
    # we write to the terminal from the background while the command holds the foreground
    previous[signal.SIGTTOU] = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _pump_until_exit(
    process: subprocess.Popen[bytes], channels: list[OutputChannel], log: LogFile, handoff: TerminalHandoff
) -> int:
    exit_status: int | None = None
    last_output = time.monotonic()
    with selectors.DefaultSelector() as selector:
        for channel in channels:
            selector.register(channel.reader_fd, selectors.EVENT_READ, channel)
        while selector.get_map():
            events = selector.select(POLL_SECONDS)
            for key, _ in events:
                if not key.data.pump(log):
                    selector.unregister(key.fd)
            if events:
                last_output = time.monotonic()
            if exit_status is None:
                exit_status = _reap(process, handoff, block=False)
            elif time.monotonic() - last_output > DRAIN_SECONDS:
                break
    while exit_status is None:
        exit_status = _reap(process, handoff, block=True)
    return exit_status


def _reap(process: subprocess.Popen[bytes], handoff: TerminalHandoff, *, block: bool) -> int | None:
    """The command's exit status once it has ended; follows it through Ctrl-Z and `fg` on the way."""
    flags = (0 if block else os.WNOHANG) | (os.WUNTRACED if handoff.active else 0)
    while True:
        pid, wait_status = os.waitpid(process.pid, flags)
        if pid == 0:
            return None
        if os.WIFSTOPPED(wait_status):
            handoff.suspend_with(process.pid)
            if block:
                continue
            return None
        process.returncode = os.waitstatus_to_exitcode(wait_status)
        return shell_exit_status(process.returncode)
