"""Cutting a log into stored chunks: whole lines, PEM blocks kept together, the digest of the content."""

from __future__ import annotations

import hashlib

from app.services.log_chunks import LONGEST_UNCUT_LINE, line_aligned_chunks, log_digest, redacted_chunks

PEM = b"-----BEGIN RSA PRIVATE KEY-----\n" + b"MIIEowIBAAKCAQEA7bq\n" * 20 + b"-----END RSA PRIVATE KEY-----\n"


def test_chunks_end_on_line_boundaries_and_rejoin_to_the_log() -> None:
    log = b"".join(b"line %d of the log\n" % number for number in range(2000))
    blocks = [log[start : start + 777] for start in range(0, len(log), 777)]

    chunks = list(line_aligned_chunks(blocks, size=1000))

    assert b"".join(chunks) == log
    assert len(chunks) > 10
    assert all(chunk.endswith(b"\n") for chunk in chunks)


def test_a_private_key_is_never_split_between_chunks() -> None:
    log = b"x" * 950 + b"\n" + PEM + b"after\n"

    chunks = list(line_aligned_chunks([log], size=1000))

    assert any(PEM in chunk for chunk in chunks)
    assert b"".join(chunks) == log


def test_a_key_split_across_blocks_is_still_redacted_whole() -> None:
    log = b"y" * 990 + b"\n" + PEM + b"z\n"
    blocks = [log[:1000], log[1000:]]

    redacted = b"".join(redacted_chunks(blocks))

    assert b"MIIEow" not in redacted
    assert redacted.count(b"\n") == log.count(b"\n")


def test_a_line_without_end_is_cut_only_past_the_longest_line() -> None:
    line = b"a" * (LONGEST_UNCUT_LINE + 10)

    chunks = list(line_aligned_chunks([line[:100], line[100:]], size=1000))

    assert b"".join(chunks) == line
    assert len(chunks[0]) >= LONGEST_UNCUT_LINE


def test_the_digest_is_of_the_content_whatever_the_blocks() -> None:
    log = b"some log\n" * 1000

    split = log_digest([log[:5], log[5:3000], log[3000:]])

    assert split.sha256 == hashlib.sha256(log).hexdigest()
    assert split.size == len(log)


def test_a_secret_where_an_endless_line_is_cut_is_not_split_between_chunks() -> None:
    token = b"hf_" + b"A1b2C3d4" * 5
    line = b"x " * ((LONGEST_UNCUT_LINE - 20) // 2) + b"HF_TOKEN=" + token + b" and more " * 1000
    blocks = [line[start : start + (1 << 20)] for start in range(0, len(line), 1 << 20)]  # a cut at 16 MiB
    stored = b"".join(redacted_chunks(blocks))
    assert token not in stored and token[:20] not in stored and token[-20:] not in stored
    assert b"[REDACTED:" in stored
