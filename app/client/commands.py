"""`trainwreck run` and `trainwreck submit` from start to finish; the CLI parses, these do."""

from __future__ import annotations

import os
import pwd
import shlex
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from app.client.delivery import Courier
from app.client.output import LogFile
from app.client.run_logs import redact_in_place, rotate
from app.client.runner import run_logged
from app.client.spool import Spool
from app.client.submit import LogSubmitter, SubmissionMetadata
from app.config import Settings
from app.diagnoser import build_diagnoser
from app.errors import TrainwreckError
from app.report import render_report, terminal_width, wants_color


def submit_logs(
    settings: Settings, server_url: str, log_path: Path | None, metadata: SubmissionMetadata, *, flush: bool
) -> int:
    """Send a log, the spool, or both: exit status 0 when all of it reached the server, 1 otherwise."""
    with LogSubmitter.from_settings(settings, server_url) as submitter:
        courier = Courier(submitter, _spool(settings), report=sys.stdout, warnings=sys.stderr)
        delivered = log_path is None or courier.deliver(log_path, _with_user(metadata))
        flushed = not flush or (delivered and courier.flush())  # an unreachable server stays so for now
    return 0 if delivered and flushed else 1


def run_and_report(
    settings: Settings, command: Sequence[str], metadata: SubmissionMetadata, *, check: bool = True,
    strict: bool = False, keep_log: bool = False,
) -> int:
    """Check the command, run it with its log kept; when it fails, diagnose it, print the report, submit it.

    Returns the command's own exit status whatever happens afterwards: trainwreck's troubles are
    reported on stderr, never passed off as the job's. With `strict`, a check finding of severity
    `error` keeps the command from starting (exit status 1). The log of a failed run (of any run, with
    `keep_log`) is kept redacted in the per-user client folder, the oldest dropped past the settings' bounds.
    """
    if check and not _checked(settings, command) and strict:
        _warn("not launched: the check found errors (--strict); fix them, or run without --strict")
        return 1
    runs = settings.client_folder / "runs"
    try:
        log = LogFile.create(runs, metadata.job_id or _job_name(command), now=datetime.now())
    except OSError as error:  # before the command starts: better no run than a run with no log
        raise TrainwreckError(f"cannot keep the log in {runs}: {error.strerror or error}") from None
    try:
        exit_status = run_logged(command, log)
    finally:
        log.close()
    if log.error is not None:
        _warn(f"the log is incomplete, writing it failed: {log.error.strerror or log.error}")
    if exit_status == 0 and not keep_log:
        log.path.unlink(missing_ok=True)
        if settings.url:  # a good moment to send what an earlier run left in the spool
            _send(settings, settings.url, None, metadata)
        return exit_status
    try:
        redact_in_place(log.path)
    except OSError as error:  # an unredacted log is not left behind
        log.path.unlink(missing_ok=True)
        _warn(f"could not redact the log, so it is not kept: {error.strerror or error}")
        return exit_status
    if exit_status != 0:
        _print_diagnosis(settings, log.path, exit_status)
    if settings.url:
        _send(settings, settings.url, log.path, replace(_with_user(metadata), exit_code=exit_status))
    elif exit_status != 0:
        _warn("not submitted: TRAINWRECK_URL is not set")
    rotate(runs, keep=max(settings.run_logs_keep, 1), max_bytes=settings.run_logs_max_bytes)
    _warn(f"log kept at {log.path}" if log.path.exists() else "the log was larger than TRAINWRECK_RUN_LOGS_MAX_BYTES "
          "and is not kept")
    return exit_status


def _checked(settings: Settings, command: Sequence[str]) -> bool:
    """Print what the check finds in the command (nothing when it finds nothing); False on an error finding."""
    from app.check.local import check_here
    from app.report import render_check_report

    try:
        report = check_here(settings, shlex.join(command))
    except Exception as error:  # the check advises; it never stands between a user and their run
        _warn(f"could not check the command: {error}")
        return True
    if report.findings:
        sys.stderr.write(render_check_report(report, color=wants_color(sys.stderr, no_color=settings.no_color),
                                             width=terminal_width(sys.stderr)) + "\n")
        sys.stderr.flush()
    return not report.has_error


def _print_diagnosis(settings: Settings, log_path: Path, exit_status: int) -> None:
    try:
        diagnosis = build_diagnoser(settings).diagnose(log_path, exit_code=exit_status)
    except Exception as error:  # the job's exit status matters more than our report
        _warn(f"could not diagnose the log: {error}")
        return
    sys.stderr.write("\n" + render_report(diagnosis, color=wants_color(sys.stderr, no_color=settings.no_color),
                                 width=terminal_width(sys.stderr)))
    sys.stderr.flush()


def _send(settings: Settings, server_url: str, log_path: Path | None, metadata: SubmissionMetadata) -> None:
    """Deliver a failed run's log (a successful one's is not sent), then whatever waits in the spool."""
    try:
        with LogSubmitter.from_settings(settings, server_url) as submitter:
            courier = Courier(submitter, _spool(settings), report=sys.stderr, warnings=sys.stderr)
            if log_path is None or metadata.exit_code == 0 or courier.deliver(log_path, metadata):
                courier.flush()
    except TrainwreckError as error:  # as above: a refused log must not change the exit status
        _warn(error.message)
    except OSError as error:
        _warn(f"could not spool the log: {error}")


def _spool(settings: Settings) -> Spool:
    return Spool(settings.client_folder / "spool")


def _with_user(metadata: SubmissionMetadata) -> SubmissionMetadata:
    """The metadata, naming the account that runs trainwreck when no user was given."""
    return metadata if metadata.user else replace(metadata, user=pwd.getpwuid(os.getuid()).pw_name)


def _job_name(command: Sequence[str]) -> str:
    """`python train.py` → python-train; `torchrun --nproc_per_node 8 ...` → torchrun."""
    words = [Path(command[0]).name]
    if len(command) > 1 and not command[1].startswith("-"):
        words.append(Path(command[1]).stem)
    return "-".join(words)


def _warn(message: str) -> None:
    sys.stderr.write(f"trainwreck: {message}\n")
    sys.stderr.flush()
