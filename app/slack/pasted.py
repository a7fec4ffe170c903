"""Crash logs pasted into a message: find them, and tell them apart from ordinary chat."""

from __future__ import annotations

import re

from app.diagnosis.model import Diagnosis

CODE_BLOCK = re.compile(r"```(.*?)```", re.DOTALL)
TRACEBACK = re.compile(r"^\s*Traceback \(most recent call last\):", re.MULTILINE)


def pasted_text(message_text: str) -> str | None:
    """The part of a message that could be a log: its code blocks, or all of it if it holds a traceback."""
    text = unescape(message_text)
    blocks = [block.strip("\n") for block in CODE_BLOCK.findall(text)]
    blocks = [block for block in blocks if block.strip()]
    if blocks:
        return "\n".join(blocks) + "\n"
    if TRACEBACK.search(text):
        return text if text.endswith("\n") else text + "\n"
    return None


def looks_like_crash_log(text: str, diagnosis: Diagnosis) -> bool:
    """A Python traceback, or a line a signature knows: enough to answer; anything else is chat."""
    return diagnosis.signature is not None or TRACEBACK.search(text) is not None


def unescape(text: str) -> str:
    """Undo the escaping Slack applies to `&`, `<` and `>` in message text."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
