from datetime import UTC, datetime, timedelta

from markupsafe import Markup

from app.web.templating import STATIC_DIR, build_templates, static_versions, time_ago, utc_text

NOW = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)


def test_time_ago_reads_like_people_talk():
    assert time_ago(NOW - timedelta(seconds=20), NOW) == "just now"
    assert time_ago(NOW - timedelta(minutes=5), NOW) == "5 min ago"
    assert time_ago(NOW - timedelta(hours=3), NOW) == "3 h ago"
    assert time_ago(NOW - timedelta(days=1, hours=2), NOW) == "1 day ago"
    assert time_ago(NOW - timedelta(days=12), NOW) == "12 days ago"
    assert time_ago(NOW + timedelta(minutes=1), NOW) == "just now"


def test_utc_text_is_to_the_minute():
    assert utc_text(datetime(2026, 3, 4, 17, 5, 59, tzinfo=UTC)) == "2026-03-04 17:05 UTC"


def test_every_static_file_gets_a_content_hash():
    versions = static_versions()
    assert {"style.css", "categories.css", "upload.js", "copy.js", "logo.svg"} <= set(versions)
    assert all(len(version) == 10 for version in versions.values())
    assert set(versions) == {path.name for path in STATIC_DIR.iterdir() if path.is_file()}


def test_templates_escape_everything_they_are_given():
    environment = build_templates().env
    rendered = environment.from_string("{{ text }}|{{ markup }}").render(text="<script>", markup=Markup("<b>"))
    assert rendered == "&lt;script&gt;|<b>"
