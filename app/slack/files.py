"""Whether a file shared in Slack can be diagnosed, and the polite answer when it cannot."""

from __future__ import annotations

from pathlib import Path

from app.diagnosis.reader import iter_decompressed
from app.errors import TrainwreckError
from app.slack.client import SlackFile

SNIFF_BYTES = 64 * 1024
MOST_INVALID_UTF8 = 0.05  # share of undecodable characters past which a sample is not text
NOT_LOG_MIME_PREFIXES = ("image/", "video/", "audio/", "font/", "application/vnd.")
NOT_LOG_MIMETYPES = frozenset(
    {
        "application/pdf",
        "application/zip",
        "application/x-zip-compressed",
        "application/x-tar",
        "application/x-7z-compressed",
        "application/x-rar-compressed",
        "application/msword",
        "application/x-executable",
        "application/x-sharedlib",
    }
)
HOW_TO_SEND = "Attach the run's stdout/stderr as a text, gzip or zstd file, or paste the traceback in a code block."


def file_problem(file: SlackFile, *, max_bytes: int) -> str | None:
    """Why the file, by what Slack says about it, cannot be diagnosed; None if it may be a log."""
    if file.size > max_bytes:
        return too_large_notice(file.name, max_bytes=max_bytes)
    mimetype = file.mimetype.lower()
    if mimetype.startswith(NOT_LOG_MIME_PREFIXES) or mimetype in NOT_LOG_MIMETYPES:
        return f"`{file.name}` is {_kind(file)}, not a training log: nothing for me to diagnose. {HOW_TO_SEND}"
    return None


def content_problem(path: Path, *, name: str, max_decompressed_bytes: int) -> str | None:
    """Why the downloaded content cannot be diagnosed (empty, not text, corrupt); None if it is text."""
    sample = bytearray()
    try:
        for block in iter_decompressed(path, max_bytes=max_decompressed_bytes):
            sample += block
            if len(sample) >= SNIFF_BYTES:
                break
    except TrainwreckError as error:
        return unreadable_notice(name, error)
    if not sample.strip():
        return f"`{name}` is empty, so there is nothing for me to diagnose."
    if not looks_like_text(bytes(sample[:SNIFF_BYTES])):
        return f"`{name}` is not text (nor gzip or zstd compressed text), so it is no log I can read. {HOW_TO_SEND}"
    return None


def looks_like_text(sample: bytes) -> bool:
    """Text logs hold no NUL bytes and decode as UTF-8 almost everywhere (latin-1 stray bytes allowed)."""
    if b"\x00" in sample:
        return False
    decoded = sample.decode("utf-8", errors="replace")
    return decoded.count("\ufffd") <= len(decoded) * MOST_INVALID_UTF8


def too_large_notice(name: str, *, max_bytes: int) -> str:
    """The answer for a file over the Slack download limit."""
    return (
        f"`{name}` is larger than the {_megabytes(max_bytes)} I download from Slack. "
        f"Send it with `trainwreck submit {name}` instead, or attach only the end of the log."
    )


def reading_notice(name: str, size: int) -> str:
    """The first answer for a big log, so the thread knows it is being read."""
    return f"Reading `{name}` ({_megabytes(size)}); I will answer here once it is diagnosed."


def unreadable_notice(name: str, error: TrainwreckError) -> str:
    """The answer for a file the reader refused (corrupt compression, too large once decompressed, ...)."""
    return f"I could not read `{name}` as a training log: {error.message.rstrip('.')}. {HOW_TO_SEND}"


def _kind(file: SlackFile) -> str:
    kind = file.mimetype.split("/")[0] if file.mimetype else ""
    if kind in ("image", "video", "audio"):
        return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"
    return f"a {file.filetype or file.mimetype} file"


def _megabytes(size: int) -> str:
    return f"{size / 1024**2:,.0f} MB" if size >= 1024**2 else f"{size:,} bytes"
