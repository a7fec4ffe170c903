"""What ships with the package beside the code: the knowledge folders and the migrations.

In the checkout they are the top-level folders (signatures/, frameworks/, rules/, ...); `app/bundled/`
links to them, so the same lookup finds them in the checkout, in an editable install and in a wheel,
where the links are copied in as files. Found beside this module rather than through `importlib.resources`,
whose import (with zipfile's) was ~4 ms of every `trainwreck diagnose`: the package is always installed as
files, since the folders are read as paths.
"""

from __future__ import annotations

from pathlib import Path

_BUNDLED = Path(__file__).parent / "bundled"


def bundled(name: str) -> Path:
    """The shipped folder or file of that name (`signatures`, `rules`, `migrations`, `alembic.ini`, ...)."""
    return _BUNDLED / name
