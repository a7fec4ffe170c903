"""Reading a knowledge file (a signature, a framework, a redaction form): YAML, validated, one clear error."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.errors import SignatureError, one_line

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SpecT = TypeVar("SpecT", bound=BaseModel)


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
