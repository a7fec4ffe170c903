"""The logs `trainwreck run` keeps: failed runs only (unless asked), redacted, the oldest dropped past a count
or a total size."""

from __future__ import annotations

import os
from pathlib import Path

from app.diagnosis.redact import redact_secrets

BLOCK_BYTES = 4 << 20


def redact_in_place(path: Path) -> None:
    """Rewrite the log with its secrets redacted (block by block, whole lines at a time), replacing it
    atomically so that no moment leaves half a log."""
    redacted = path.with_name(path.name + ".redacting")
    fd = os.open(redacted, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with path.open("rb") as source, os.fdopen(fd, "wb") as target:
            rest = b""
            while block := source.read(BLOCK_BYTES):
                block = rest + block
                cut = block.rfind(b"\n") + 1
                if cut == 0 and len(block) < 4 * BLOCK_BYTES:  # a line longer than a block: read on
                    rest = block
                    continue
                cut = cut or len(block)
                target.write(redact_secrets(block[:cut]))
                rest = block[cut:]
            target.write(redact_secrets(rest))
        os.replace(redacted, path)
    except BaseException:
        redacted.unlink(missing_ok=True)
        raise


def rotate(directory: Path, *, keep: int, max_bytes: int) -> list[Path]:
    """Delete the oldest logs until at most `keep` remain and they take at most `max_bytes`; the ones deleted."""
    logs = sorted(directory.glob("*.log"), key=lambda path: (path.stat().st_mtime, path.name))
    total = sum(path.stat().st_size for path in logs)
    removed: list[Path] = []
    while logs and (len(logs) > keep or total > max_bytes):
        oldest = logs.pop(0)
        total -= oldest.stat().st_size
        oldest.unlink(missing_ok=True)
        removed.append(oldest)
    return removed
