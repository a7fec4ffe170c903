from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from app.slack.client import SlackFile
from app.slack.files import content_problem, file_problem

LOG = b"Traceback (most recent call last):\nRuntimeError: CUDA error: device-side assert triggered\n"


def slack_file(*, size: int = 100, mimetype: str = "text/plain", filetype: str = "text") -> SlackFile:
    return SlackFile(id="F1", name="run.log", size=size, mimetype=mimetype, filetype=filetype, url_private="http://x/f")


def problem_of(tmp_path: Path, content: bytes) -> str | None:
    path = tmp_path / "run.log"
    path.write_bytes(content)
    return content_problem(path, name="run.log", max_decompressed_bytes=10**6)


def test_a_text_file_within_the_limit_may_be_a_log() -> None:
    assert file_problem(slack_file(), max_bytes=1000) is None
    assert file_problem(slack_file(mimetype="application/gzip", filetype="gzip"), max_bytes=1000) is None


def test_a_file_over_the_limit_is_refused_with_another_way_to_send_it() -> None:
    problem = file_problem(slack_file(size=300 * 1024**2), max_bytes=200 * 1024**2)

    assert problem is not None
    assert "200 MB" in problem
    assert "trainwreck submit run.log" in problem


@pytest.mark.parametrize(
    ("mimetype", "filetype", "kind"),
    [
        ("image/png", "png", "an image"),
        ("application/pdf", "pdf", "a pdf file"),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx", "a docx file"),
    ],
)
def test_media_and_documents_are_not_logs(mimetype: str, filetype: str, kind: str) -> None:
    problem = file_problem(slack_file(mimetype=mimetype, filetype=filetype), max_bytes=1000)

    assert problem is not None
    assert f"is {kind}, not a training log" in problem


def test_text_plain_gzip_and_latin1_content_read_as_logs(tmp_path: Path) -> None:
    assert problem_of(tmp_path, LOG) is None
    assert problem_of(tmp_path, gzip.compress(LOG)) is None
    assert problem_of(tmp_path, LOG + "données perdues\n".encode("latin-1")) is None


def test_binary_content_is_not_a_log(tmp_path: Path) -> None:
    problem = problem_of(tmp_path, os.urandom(4096))

    assert problem is not None
    assert "is not text" in problem
    assert "is not text" in (problem_of(tmp_path, gzip.compress(b"\x00\x01" * 100)) or "")


def test_empty_content_is_said_to_be_empty(tmp_path: Path) -> None:
    assert "is empty" in (problem_of(tmp_path, b"") or "")
    assert "is empty" in (problem_of(tmp_path, b"\n\n") or "")


def test_corrupt_compression_is_explained(tmp_path: Path) -> None:
    problem = problem_of(tmp_path, gzip.compress(LOG)[:20])

    assert problem is not None
    assert problem.startswith("I could not read `run.log` as a training log:")
