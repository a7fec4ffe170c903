"""Getting logs to the server without losing any: send now, or keep them in the spool and send later."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from app.client.spool import Spool
from app.client.submit import LogSubmitter, Submission, SubmissionMetadata
from app.errors import ServerUnreachableError, SubmissionPendingError, SubmissionRejectedError, UnreadableLogError

LATER = "`trainwreck submit --flush` or the next `trainwreck run` sends it"


class Courier:
    """Sends logs with one submitter and spools those the server cannot take now.

    `report` gets each diagnosis's title and URL; `warnings` gets one line per problem.
    """

    def __init__(self, submitter: LogSubmitter, spool: Spool, *, report: TextIO, warnings: TextIO) -> None:
        self._submitter = submitter
        self._spool = spool
        self._report = report
        self._warnings = warnings

    def deliver(self, log_path: Path, metadata: SubmissionMetadata) -> bool:
        """Send one log; when the server cannot take it now, spool it. True once the server has it."""
        try:
            submission = self._submitter.submit(log_path, metadata)
        except ServerUnreachableError as error:
            entry = self._spool.add(log_path, metadata)
            self._warn(f"{error.message}; kept as {entry.log_path}, {LATER}")
            return False
        except SubmissionPendingError as error:
            self._report.write(f"{error.message}\n")
            return True
        self._announce(submission)
        return True

    def flush(self) -> bool:
        """Send the spooled logs, oldest first, until the server cannot take one; True when none is left."""
        entries = self._spool.entries()
        waiting = len(entries)
        for position, entry in enumerate(entries):
            try:
                submission = self._submitter.submit(entry.log_path, entry.metadata)
            except ServerUnreachableError as error:
                self._warn(f"{error.message}; {len(entries) - position} spooled log(s) wait for the next try")
                return False
            except SubmissionRejectedError as error:
                self._warn(f"{error.message}; {entry.log_path} (from {entry.source}) stays in the spool")
                continue
            except UnreadableLogError:  # another process sent and removed it meanwhile
                waiting -= 1
                continue
            except SubmissionPendingError as error:  # the server has it: a background job diagnoses it
                self._spool.remove(entry)
                waiting -= 1
                self._report.write(f"sent spooled log {entry.source}; {error.message}\n")
                continue
            self._spool.remove(entry)
            waiting -= 1
            self._report.write(f"sent spooled log {entry.source}\n")
            self._announce(submission)
        return waiting == 0

    def _announce(self, submission: Submission) -> None:
        self._report.write(f"{submission.diagnosis.title}\n{submission.url}\n")
        self._report.flush()

    def _warn(self, message: str) -> None:
        self._warnings.write(f"trainwreck: {message}\n")
        self._warnings.flush()
