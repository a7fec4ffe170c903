"""Typed structs read from loose data (a YAML file, the environment) with msgspec, and errors that name the field.

msgspec rather than pydantic for what every command reads (the knowledge files, the settings): it imports in
~20 ms, where pydantic took ~0.1 s of every `trainwreck diagnose`. The checks that types and constraints cannot
say are a struct's `validate()` method, run by `validated()` when a file is read; not in `__post_init__`, which
msgspec also runs when a cached struct is unpickled (and would compile every pattern again).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TypeVar

import msgspec

StructT = TypeVar("StructT", bound=msgspec.Struct)


class Names(list[str]):
    """A list of names that may also be given as one name (`when: during_eval`)."""


class InvalidField(ValueError):
    """A field that a struct's own `validate()` finds wrong; the error names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def convert(raw: object, schema: type[StructT], *, strict: bool = True) -> StructT:
    """raw validated against the schema (strict=False: numbers and booleans may be spelt as text);
    msgspec.ValidationError otherwise, which error_location reads."""
    return msgspec.convert(raw, schema, strict=strict, dec_hook=_decode_extra)


def validated(struct: StructT) -> StructT:
    """The struct, once it and every struct within it passed its own `validate()`; InvalidField names the wrong
    field by its path (`remedies.0.when_error`)."""
    _validate(struct, "")
    return struct


def _validate(value: object, path: str) -> None:
    if isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            _validate(getattr(value, name), f"{path}{name}.")
        validate = getattr(value, "validate", None)
        if validate is not None:
            try:
                validate()
            except InvalidField as error:
                raise InvalidField(path + error.field, str(error)) from None
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _validate(item, f"{path}{index}.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _validate(item, f"{path}{key}.")


def error_location(error: msgspec.ValidationError) -> tuple[str, str]:
    """(the field, as `remedies.0.action`, and what is wrong with it) of a validation error."""
    message, found, path = str(error).rpartition(" - at `$")
    if not found:
        message, path = str(error), ""
    parts = [part for part in re.split(r"[.\[\]`]+", path) if part]
    named = re.match(r"Object (?:contains unknown|missing required) field `([^`]+)`", message)
    if named is not None:
        parts.append(named.group(1))
    return ".".join(parts), message


def _decode_extra(kind: type, value: object) -> object:
    """The types msgspec does not read by itself: Names (one or a list) and paths."""
    if isinstance(value, kind):
        return value
    if kind is Names:
        if isinstance(value, str):
            return Names([value])
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return Names(value)
        raise ValueError("Expected a name or a list of names")
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError
