"""Uploaded logs, streamed to a temporary file: a multipart `file` field or the raw body, never held in memory."""

from __future__ import annotations

import logging
import tempfile
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import anyio
from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import ClientDisconnect

from app.errors import (
    ClientDisconnectedError,
    InvalidRequestError,
    LogTooLargeError,
    UnsupportedMediaError,
    UploadStalledError,
)
from app.services.ingest_jobs import owner_gone, process_owner

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

logger = logging.getLogger(__name__)
FILE_FIELD = "file"
MAX_FIELD_BYTES = 1024
MAX_FIELDS = 20
GZIP_ENCODINGS = {"gzip", "x-gzip"}
IDENTITY_ENCODINGS = {"", "identity"}
UPLOAD_PREFIX = "trainwreck-upload-"
MAX_EXPANSION_RATIO = 500  # real logs gzip 10 to 150-fold; bombs of zeros a thousand-fold and more
BOMB_CHECK_AFTER_BYTES = 64 << 20  # the ratio is judged once this much has come out

# The request body the upload route reads itself, for the OpenAPI document.
UPLOAD_REQUEST_BODY = {
    "required": True,
    "description": (
        "The log as a multipart field `file`, or as the raw body (any other content type). Plain text, gzip or "
        "zstd (detected by magic bytes); `Content-Encoding: gzip` is also accepted. Metadata may come as form "
        "fields too."
    ),
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FILE_FIELD],
                "properties": {
                    FILE_FIELD: {"type": "string", "format": "binary"},
                    "team": {"type": "string"},
                    "job_id": {"type": "string"},
                    "project": {"type": "string"},
                    "cluster": {"type": "string"},
                    "user": {"type": "string"},
                    "exit_code": {"type": "integer"},
                },
            }
        },
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "text/plain": {"schema": {"type": "string"}},
    },
}


@dataclass(slots=True)
class SpooledUpload:
    """The uploaded log on disk, and the form fields that came with it."""

    path: Path
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None


@asynccontextmanager
async def spooled_upload(
    request: Request, *, max_bytes: int, max_decompressed_bytes: int, spool_dir: Path, idle_seconds: float = 60.0
) -> AsyncIterator[SpooledUpload]:
    """Stream the request's log into a temporary file, deleted on exit.

    LogTooLargeError (413) past `max_bytes` on the wire (or `max_decompressed_bytes` after
    Content-Encoding: gzip), UnsupportedMediaError (415) for other encodings and multipart types,
    InvalidRequestError (400) for a broken body.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise LogTooLargeError(f"the upload is larger than the limit of {max_bytes:,} bytes")
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in GZIP_ENCODINGS | IDENTITY_ENCODINGS:
        raise UnsupportedMediaError(f"Content-Encoding {encoding!r} is not supported; send gzip or no encoding")
    body = _limited(request.stream(), max_bytes, idle_seconds)
    if encoding in GZIP_ENCODINGS:
        body = _gunzipped(body, max_decompressed_bytes)
    media_type, options = parse_options_header(request.headers.get("content-type"))
    spool_dir.mkdir(parents=True, exist_ok=True)
    # named by its process, so that a worker starting beside this one sweeps only what dead processes left
    with tempfile.NamedTemporaryFile(prefix=f"{UPLOAD_PREFIX}{process_owner()}.", suffix=".log", delete=False,
                                     dir=spool_dir) as spool:
        upload = SpooledUpload(path=Path(spool.name))
    try:
        with upload.path.open("wb") as sink:
            if media_type == b"multipart/form-data":
                await _read_multipart(body, options.get(b"boundary", b""), sink, upload)
            elif media_type.startswith(b"multipart/"):
                raise UnsupportedMediaError("send the log as multipart/form-data (field `file`) or as the raw body")
            else:
                async for chunk in body:
                    sink.write(chunk)
        yield upload
    finally:
        upload.path.unlink(missing_ok=True)


def sweep_spooled_uploads(spool_dir: Path) -> int:
    """Delete the uploads that processes of this host left half-written in the spool folder when they died; how
    many went. Those of live processes (the other workers of this server) are theirs: a worker that started
    beside them and swept every upload made their requests fail with `cannot open`."""
    removed = 0
    for leftover in spool_dir.glob(f"{UPLOAD_PREFIX}*"):
        # `<prefix><host>:<pid>.<random>.log`; older servers' names carry no owner
        owner = leftover.name.removeprefix(UPLOAD_PREFIX).rpartition(".")[0].rpartition(".")[0]
        if owner and not owner_gone(owner):
            continue
        leftover.unlink(missing_ok=True)
        removed += 1
    return removed


async def _limited(stream: AsyncIterator[bytes], max_bytes: int, idle_seconds: float) -> AsyncIterator[bytes]:
    """The body, refused past max_bytes or once it stalls for idle_seconds; a client that hangs up mid-body is a
    disconnect, not a server error."""
    received = 0
    chunks = stream.__aiter__()
    try:
        while True:
            try:
                with anyio.fail_after(idle_seconds):
                    chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise UploadStalledError(f"the upload sent nothing for {idle_seconds:g} s") from None
            received += len(chunk)
            if received > max_bytes:
                raise LogTooLargeError(f"the upload is larger than the limit of {max_bytes:,} bytes")
            yield chunk
    except ClientDisconnect:
        logger.info("client disconnected after %d bytes of its upload", received)
        raise ClientDisconnectedError("the client disconnected before its upload was complete") from None


async def _gunzipped(stream: AsyncIterator[bytes], max_bytes: int) -> AsyncIterator[bytes]:
    """The body decompressed, refused past max_bytes, or as soon as it expands like a bomb does."""
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    produced = 0
    consumed = 0
    try:
        async for chunk in stream:
            consumed += len(chunk)
            data = chunk
            while data:
                out = decompressor.decompress(data, 1 << 20)
                produced += len(out)
                if produced > max_bytes:
                    raise LogTooLargeError(f"the upload is larger than {max_bytes:,} bytes once decompressed")
                if produced > BOMB_CHECK_AFTER_BYTES and produced > MAX_EXPANSION_RATIO * consumed:
                    raise LogTooLargeError(
                        f"the gzip body expands more than {MAX_EXPANSION_RATIO}-fold: refused as a decompression bomb"
                    )
                yield out
                data = decompressor.unconsumed_tail
        if not decompressor.eof:
            raise InvalidRequestError("the gzip-encoded body is truncated")
    except zlib.error as error:
        raise InvalidRequestError(f"the body is not valid gzip (Content-Encoding: gzip): {error}") from None


async def _read_multipart(body: AsyncIterator[bytes], boundary: bytes, sink: BinaryIO, upload: SpooledUpload) -> None:
    if not boundary:
        raise InvalidRequestError("multipart/form-data without a boundary")
    reader = _MultipartReader(sink, upload)
    parser = MultipartParser(boundary, reader.callbacks())
    try:
        async for chunk in body:
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as error:
        raise InvalidRequestError(f"the multipart body is malformed: {error}") from None
    if parser.state != MultipartState.END:
        raise InvalidRequestError("the multipart body ends before its closing boundary")
    if not reader.file_seen:
        raise InvalidRequestError(f"the multipart body has no `{FILE_FIELD}` field with the log")


class _MultipartReader:
    """Parser callbacks: the `file` part goes to the sink, other parts become short text fields."""

    def __init__(self, sink: BinaryIO, upload: SpooledUpload) -> None:
        self.sink = sink
        self.upload = upload
        self.file_seen = False
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._field_name: str | None = None
        self._in_file = False
        self._value = bytearray()

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_part,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers.clear()
        self._value.clear()
        self._field_name = None
        self._in_file = False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name.extend(data[start:end])

    def _header_value_part(self, data: bytes, start: int, end: int) -> None:
        self._header_value.extend(data[start:end])

    def _header_end(self) -> None:
        self._headers[bytes(self._header_name).strip().lower()] = bytes(self._header_value).strip()
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", errors="replace")
        if name == FILE_FIELD:
            if self.file_seen:
                raise InvalidRequestError(f"send one `{FILE_FIELD}` field per upload")
            self.file_seen = True
            self._in_file = True
            filename = options.get(b"filename")
            self.upload.filename = filename.decode("utf-8", errors="replace")[:255] if filename else None
        elif len(self.upload.fields) >= MAX_FIELDS:
            raise InvalidRequestError("too many form fields")
        else:
            self._field_name = name

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.sink.write(data[start:end])
            return
        self._value.extend(data[start:end])
        if len(self._value) > MAX_FIELD_BYTES:
            raise InvalidRequestError(f"form field {self._field_name!r} is longer than {MAX_FIELD_BYTES} bytes")

    def _part_end(self) -> None:
        if self._field_name is not None:
            self.upload.fields[self._field_name] = self._value.decode("utf-8", errors="replace")
