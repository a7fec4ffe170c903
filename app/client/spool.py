"""The local spool: logs the server could not take yet, each beside a JSON sidecar with its metadata."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.client.submit import SubmissionMetadata


@dataclass(frozen=True, slots=True)
class SpooledLog:
    """One log waiting for the server."""

    log_path: Path
    sidecar_path: Path
    source: str  # where the log was when it was spooled, for messages
    spooled_at: datetime
    metadata: SubmissionMetadata


class Spool:
    """A folder of waiting logs. An entry exists once its sidecar does; both are written atomically.

    Several processes may share a spool: two of them sending the same entry is harmless, since the
    server answers a repeated log with the diagnosis it already has.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def add(self, log_path: Path, metadata: SubmissionMetadata) -> SpooledLog:
        """Keep the log (a hard link when the file system allows, else a copy) and its metadata."""
        self.directory.mkdir(parents=True, exist_ok=True)
        spooled_at = datetime.now(UTC)
        entry_id = f"{spooled_at:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"
        kept_log = self.directory / f"{entry_id}.log"
        try:
            os.link(log_path, kept_log)
        except OSError:
            partial = self.directory / f".{entry_id}.log.partial"
            shutil.copyfile(log_path, partial)
            os.replace(partial, kept_log)
        entry = SpooledLog(
            log_path=kept_log,
            sidecar_path=self.directory / f"{entry_id}.json",
            source=str(log_path.absolute()),
            spooled_at=spooled_at,
            metadata=metadata,
        )
        sidecar = {"source": entry.source, "spooled_at": spooled_at.isoformat(), "metadata": metadata.to_dict()}
        _write_atomically(entry.sidecar_path, json.dumps(sidecar, indent=2).encode())
        return entry

    def entries(self) -> list[SpooledLog]:
        """The waiting logs, oldest first; entries another process just removed are left out."""
        found = []
        for sidecar_path in sorted(self.directory.glob("*.json")):
            log_path = sidecar_path.with_suffix(".log")
            try:
                sidecar = json.loads(sidecar_path.read_bytes())
            except FileNotFoundError:
                continue
            if log_path.exists():
                found.append(
                    SpooledLog(
                        log_path=log_path,
                        sidecar_path=sidecar_path,
                        source=sidecar["source"],
                        spooled_at=datetime.fromisoformat(sidecar["spooled_at"]),
                        metadata=SubmissionMetadata.from_dict(sidecar["metadata"]),
                    )
                )
        return found

    def remove(self, entry: SpooledLog) -> None:
        """Forget an entry the server has acknowledged: the sidecar first, so no half-entry remains listed."""
        entry.sidecar_path.unlink(missing_ok=True)
        entry.log_path.unlink(missing_ok=True)


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, path)
