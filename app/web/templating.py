"""The Jinja2 environment of the pages (autoescaping on) and the one way a page is rendered."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from app.formatting import format_value
from app.web.categories import category_label, stage_label

WEB_DIR = Path(__file__).parent
STATIC_DIR = WEB_DIR / "static"
TEMPLATES_DIR = WEB_DIR / "templates"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def static_versions(directory: Path = STATIC_DIR) -> dict[str, str]:
    """A short content hash of every static file, appended to its URL so browsers refetch on change."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:10]
        for path in sorted(directory.iterdir())
        if path.is_file()
    }


def time_ago(moment: datetime, now: datetime | None = None) -> str:
    """A moment relative to now, as people say it: "just now", "5 min ago", "3 h ago", "12 days ago"."""
    current = now or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = max((current - moment).total_seconds(), 0)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    days = int(seconds // 86400)
    return "1 day ago" if days == 1 else f"{days} days ago"


def utc_text(moment: datetime) -> str:
    """A moment in UTC, to the minute: 2026-03-04 17:05 UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def build_templates(directory: Path = TEMPLATES_DIR) -> Jinja2Templates:
    """The page templates: HTML autoescaped, undefined names are errors, helpers as globals."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    versions = static_versions()
    environment.globals.update(
        static_url=lambda name: f"/static/{name}?v={versions.get(name, '0')}",
        category_label=category_label,
        stage_label=stage_label,
    )
    environment.filters.update(time_ago=time_ago, utc_text=utc_text, format_value=format_value)
    return Jinja2Templates(env=environment)


def render_page(
    templates: Jinja2Templates,
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """One page, with the strict security headers every page carries."""
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(PAGE_HEADERS)
    return response
