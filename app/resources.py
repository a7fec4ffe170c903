"""What ships with the package beside the code: the knowledge folders and the migrations.

In the checkout they are the top-level folders (signatures/, frameworks/, rules/, ...); `app/bundled/`
links to them, so the same lookup finds them in the checkout, in an editable install and in a wheel,
where the links are copied in as files.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def bundled(name: str) -> Path:
    """The shipped folder or file of that name (`signatures`, `rules`, `migrations`, `alembic.ini`, ...)."""
    return Path(str(files("app") / "bundled" / name))
