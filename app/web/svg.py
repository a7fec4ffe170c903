"""Tiny helpers to write SVG markup safely: every text and attribute value is escaped."""

from __future__ import annotations

from markupsafe import Markup, escape


def number(value: float) -> str:
    """A coordinate written compactly (at most two decimals, no trailing zeros)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def element(tag: str, content: str | Markup = "", **attributes: object) -> Markup:
    """One SVG element; attribute names use `_` for `-` (fill_opacity → fill-opacity), `class_` for class."""
    parts = [tag]
    for name, value in attributes.items():
        if value is None:
            continue
        attribute = name.rstrip("_").replace("_", "-")
        text = number(value) if isinstance(value, float) else str(value)
        parts.append(f'{attribute}="{escape(text)}"')
    opening = " ".join(parts)
    if not content:
        return Markup(f"<{opening}/>")
    return Markup(f"<{opening}>{escape(content)}</{tag}>")


def svg_document(content: Markup, *, width: float, height: float, label: str, class_: str) -> Markup:
    """An inline <svg> with a viewBox, announced to screen readers as one image with a label."""
    return element(
        "svg",
        content,
        viewBox=f"0 0 {number(width)} {number(height)}",
        class_=class_,
        role="img",
        aria_label=label,
        xmlns="http://www.w3.org/2000/svg",
    )
