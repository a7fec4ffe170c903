"""One error hierarchy; the API maps it to one JSON shape, the CLI to one line on stderr."""

from __future__ import annotations


class TrainwreckError(Exception):
    """Base of every error trainwreck reports to a user."""

    code = "error"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SettingsError(TrainwreckError):
    """A setting (an environment variable or a line of .env) has a value of the wrong kind."""


class UnreadableLogError(TrainwreckError):
    """The log could not be read: bad compression, too large once decompressed, ..."""

    code = "unreadable_log"
    status = 422


class UploadStalledError(TrainwreckError):
    """The client stopped sending its upload: the connection is not held for it any longer."""

    code = "upload_stalled"
    status = 408


class ClientDisconnectedError(TrainwreckError):
    """The client went away in the middle of its upload: nothing to answer, nothing stored, nothing broken."""

    code = "client_disconnected"
    status = 400


class EmptyLogError(UnreadableLogError):
    """The log holds nothing but blank lines: there is nothing to diagnose, and nothing is stored."""

    code = "empty_log"
    status = 422


class LogTooLargeError(TrainwreckError):
    code = "too_large"
    status = 413


class SignatureError(TrainwreckError):
    """A signature file is invalid; the message names the file and the field."""

    code = "invalid_signature"
    status = 500


class NotFoundError(TrainwreckError):
    code = "not_found"
    status = 404


class AuthenticationError(TrainwreckError):
    code = "unauthorized"
    status = 401


class ForbiddenError(TrainwreckError):
    code = "forbidden"
    status = 403


class UnsupportedMediaError(TrainwreckError):
    code = "unsupported_media_type"
    status = 415


class StoreUnavailableError(TrainwreckError):
    code = "store_unavailable"
    status = 503


class DiagnosisTimeoutError(TrainwreckError):
    """A diagnosis ran past Settings.diagnose_timeout_seconds and was stopped; nothing was stored."""

    code = "diagnosis_timeout"
    status = 503


class InvalidRequestError(TrainwreckError):
    """The request is malformed: bad parameters, a broken body, an unsupported Content-Encoding, ..."""

    code = "invalid_request"
    status = 400


class SlackNotConfiguredError(TrainwreckError):
    """The Slack routes were called but no signing secret is configured."""

    code = "slack_not_configured"
    status = 503


class ServerUnreachableError(TrainwreckError):
    """The trainwreck server could not take a log now (no connection, timeout, 5xx): try again later."""

    code = "server_unreachable"
    status = 503


class SubmissionPendingError(TrainwreckError):
    """The server took the log but has not diagnosed it yet (a background job): it is not to be sent again."""

    code = "submission_pending"
    status = 202


class SubmissionRejectedError(TrainwreckError):
    """The trainwreck server refused a log (bad token, too large, ...): retrying at once will not help."""

    code = "submission_rejected"
    status = 400


def one_line(error: object) -> str:
    """An error's text on one line (YAML's errors point at the place over several)."""
    return " ".join(str(error).split())
