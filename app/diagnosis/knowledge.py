"""Reading a knowledge file (a signature, a framework, a redaction form): YAML, validated, one clear error.

The schemas are frozen msgspec structs that forbid unknown fields (see app/validation.py).

A folder set, once validated, is kept in the cache folder as a pickle keyed by its files (paths, sizes and
modification times) and this code, so a fresh process reads it back in milliseconds instead of parsing,
validating and compiling hundreds of patterns again. Patterns of the loaded items are compiled on first use
(`compiled_pattern`), so reading the cache compiles nothing. The cache folder is the user's own, like the
Hyperscan one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import sys
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Annotated, Protocol, TypeVar, cast

import hyperscan
import msgspec
import regex

from app.errors import SignatureError, one_line
from app.validation import InvalidField, convert, error_location, validated

logger = logging.getLogger(__name__)


# A knowledge file's schema, or a part of one, is a frozen msgspec struct that forbids fields it does not name.
SpecT = TypeVar("SpecT", bound=msgspec.Struct)
ID_PATTERN = r"^[a-z0-9][a-z0-9-]*$"  # a knowledge item's id (and a step format's name)


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


ItemT = TypeVar("ItemT", bound=_HasId)
CachedT = TypeVar("CachedT")


class Samples(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a knowledge file's patterns must match, and the near misses they must not."""

    match: Annotated[list[str], msgspec.Meta(min_length=1)]
    no_match: Annotated[list[str], msgspec.Meta(min_length=1)]


def check_regex(field: str, pattern: str | None, *, groups: Sequence[str] = ()) -> None:
    """InvalidField unless the pattern compiles and names these groups."""
    if pattern is None:
        return
    try:
        named = regex.compile(pattern).groupindex
    except regex.error as error:
        raise InvalidField(field, f"invalid regex {pattern!r}: {error}") from None
    for group in groups:
        if group not in named:
            raise InvalidField(field, f"{pattern!r} names no `{group}` group")


def parse_yaml(text: str | bytes) -> object:
    """YAML with libyaml's parser where it is built. Imported only when a cache does not answer: a fresh
    `trainwreck diagnose` reads no YAML."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def read_spec(path: Path, schema: type[SpecT], *, kind: str) -> SpecT:
    """The file validated against its schema; SignatureError names the file and the field otherwise."""
    import yaml

    try:
        raw = parse_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise SignatureError(f"{path}: cannot read as YAML: {one_line(error)}") from None
    if not isinstance(raw, dict):
        raise SignatureError(f"{path}: a {kind} file is a YAML mapping")
    try:
        return validated(convert(raw, schema))
    except msgspec.ValidationError as error:
        location, message = error_location(error)
    except InvalidField as error:
        location, message = error.field, str(error)
    raise SignatureError(f"{path}: field '{location or '(top level)'}': {one_line(message)}") from None


@cache
def compiled_pattern(source: bytes, flags: int = 0) -> regex.Pattern[bytes]:
    """A knowledge pattern compiled once per process, when something first needs it."""
    return regex.compile(source, flags)


def load_folders(
    directories: Sequence[Path], load: Callable[[Path], ItemT], *, kind: str, cache_dir: Path | None = None
) -> tuple[list[ItemT], str]:
    """Every `*.yaml` of the folders, loaded in order, ids unique across all; and a version of the whole set
    that changes when any file's content does. With a cache folder, a set validated before is read back from it,
    found by its files' paths, sizes and modification times (as Python finds its bytecode), so that a fresh
    process opens none of them."""
    paths: list[Path] = []
    for directory in directories:
        if not directory.is_dir():
            raise SignatureError(f"{directory}: {kind} folder does not exist")
        paths.extend(sorted(directory.glob("*.yaml")))
    cached = _cache_path(cache_dir, kind, paths)
    if cached is not None and (hit := _read_cache(cached)) is not None:
        return cast("list[ItemT]", hit[0]), hit[1]  # written by this code for these very files
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    version = digest.hexdigest()[:12]
    loaded: list[ItemT] = []
    seen: dict[str, Path] = {}
    for path in paths:
        item = load(path)
        if item.id in seen:
            raise SignatureError(f"{path}: field 'id': {item.id!r} is already defined in {seen[item.id]}")
        seen[item.id] = path
        loaded.append(item)
    if cached is not None:
        _write_cache(cached, (loaded, version))
    return loaded, version


@cache
def _code_version() -> str:
    """What the pickled items' classes are made of: the knowledge modules (by size and modification time) and the
    libraries' versions."""
    digest = hashlib.sha256(sys.version.encode())
    package = Path(__file__).resolve().parent.parent
    for module in sorted([*package.glob("diagnosis/*.py"), *package.glob("check/*.py"), package / "validation.py"]):
        digest.update(_file_stamp(module))
    for name in ("msgspec", "regex"):
        digest.update(str(getattr(sys.modules[name], "__version__", "")).encode())
    return digest.hexdigest()


def _file_stamp(path: Path) -> bytes:
    status = path.stat()
    return f"{os.path.abspath(path)}\0{status.st_size}\0{status.st_mtime_ns}\0".encode()


def _cache_path(cache_dir: Path | None, kind: str, paths: list[Path]) -> Path | None:
    if cache_dir is None:
        return None
    key = hashlib.sha256(b"".join(_file_stamp(path) for path in paths) + _code_version().encode())
    return cache_dir / f"{kind}-{key.hexdigest()[:24]}.pickle"


def _read_cache(path: Path) -> tuple[list[object], str] | None:
    cached: object = read_cache_file(path, pickle.loads)
    if isinstance(cached, tuple) and len(cached) == 2 and isinstance(cached[0], list) and isinstance(cached[1], str):
        return cached[0], cached[1]
    return None


def _write_cache(path: Path, cached: tuple[list[ItemT], str]) -> None:
    try:
        data = pickle.dumps(cached, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as error:
        logger.info("cannot cache knowledge %s: %s", path, error)
        return
    write_cache_file(path, data)


def cached_value(cache_dir: Path | None, kind: str, key: object, compute: Callable[[], CachedT]) -> CachedT:
    """What compute() gives, pickled in the cache folder under `key` and this code's version, so that a fresh
    process reads it back instead of working it out again."""
    digest = hashlib.sha256(repr((key, _code_version())).encode()).hexdigest()[:24]
    cached = cache_dir / f"{kind}-{digest}.pickle" if cache_dir is not None else None
    value: CachedT | None = read_cache_file(cached, pickle.loads)
    if value is None:
        value = compute()
        if cached is not None:
            write_cache_file(cached, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    return value


def compile_database(expressions: list[bytes], flags: list[int]) -> hyperscan.Database:
    """A Hyperscan block-mode database, each expression's id its index (hyperscan.error if one does not compile)."""
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    database.compile(expressions=expressions, ids=list(range(len(expressions))), flags=flags)
    return database


def cached_database(expressions: list[bytes], flags: list[int], cache_dir: Path | None) -> hyperscan.Database:
    """compile_database, read from the cache folder when it was compiled before."""
    key = repr((expressions, flags, getattr(hyperscan, "__version__", ""))).encode()
    cached = cache_dir / f"hyperscan-{hashlib.sha256(key).hexdigest()[:24]}.db" if cache_dir is not None else None
    database = read_cache_file(cached, lambda data: hyperscan.loadb(data, hyperscan.HS_MODE_BLOCK))
    if database is None:
        database = compile_database(expressions, flags)
        if cached is not None:
            write_cache_file(cached, hyperscan.dumpb(database))
    return database


def read_cache_file(path: Path | None, parse: Callable[[bytes], CachedT]) -> CachedT | None:
    """What a cache file holds, parsed; None when there is none or it cannot be read."""
    if path is None:
        return None
    try:
        return parse(path.read_bytes())
    except FileNotFoundError:
        return None
    except Exception as error:  # a cache of any kind that does not read back is simply not used
        logger.info("ignoring unreadable cache %s: %s", path, error)
        return None


def write_cache_file(path: Path, data: bytes) -> None:
    """Best effort, atomically: a cache that cannot be written is simply not used."""
    import tempfile  # here, not at the top: with a warm cache a process writes none (tempfile imports random)

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except OSError as error:
        logger.info("cannot write cache %s: %s", path, error)
