"""Reading a knowledge file (a signature, a framework, a redaction form): YAML, validated, one clear error."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.errors import SignatureError, one_line

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SpecT = TypeVar("SpecT", bound=BaseModel)


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


ItemT = TypeVar("ItemT", bound=_HasId)


class Samples(BaseModel):
    """What a knowledge file's patterns must match, and the near misses they must not."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: list[str] = Field(min_length=1)
    no_match: list[str] = Field(min_length=1)


def read_spec(path: Path, schema: type[SpecT], *, kind: str) -> SpecT:
    """The file validated against its schema; SignatureError names the file and the field otherwise."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise SignatureError(f"{path}: cannot read as YAML: {one_line(error)}") from None
    if not isinstance(raw, dict):
        raise SignatureError(f"{path}: a {kind} file is a YAML mapping")
    try:
        return schema.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise SignatureError(f"{path}: field '{location}': {one_line(first['msg'])}") from None


def load_folders(
    directories: Sequence[Path], load: Callable[[Path], ItemT], *, kind: str
) -> tuple[list[ItemT], str]:
    """Every `*.yaml` of the folders, loaded in order, ids unique across all; and a version of the whole set
    that changes when any file does."""
    loaded: list[ItemT] = []
    seen: dict[str, Path] = {}
    digest = hashlib.sha256()
    for directory in directories:
        if not directory.is_dir():
            raise SignatureError(f"{directory}: {kind} folder does not exist")
        for path in sorted(directory.glob("*.yaml")):
            item = load(path)
            if item.id in seen:
                raise SignatureError(f"{path}: field 'id': {item.id!r} is already defined in {seen[item.id]}")
            seen[item.id] = path
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
            loaded.append(item)
    return loaded, digest.hexdigest()[:12]
