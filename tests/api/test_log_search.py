"""Search finds a past failure by a word from its stored log, on SQLite (FTS5) and PostgreSQL (tsvector)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from server_support import bearer, oom_log

URL = "/api/v1/diagnoses"


def _log(head: str, *, job: str) -> bytes:
    return f"[INFO:swift] args: model={head} job={job}\n".encode() + oom_log(job=job)


def _search(client: TestClient, q: str, **headers: str) -> dict:  # type: ignore[type-arg]
    response = client.get(URL, params={"q": q}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_word_from_the_log_finds_it_with_the_line(api_client: TestClient) -> None:
    wanted = api_client.post(URL, content=_log("Qwen/Qwen2.5-7B-Instruct", job="a")).json()
    api_client.post(URL, content=_log("meta-llama/Llama-3.1-8B", job="b"))

    for q in ("Qwen2.5-7B-Instruct", "qwen2.5", "QWEN"):
        found = _search(api_client, q)
        assert [item["id"] for item in found["items"]] == [wanted["id"]], q
        match = found["items"][0]["log_match"]
        assert match["line"] == 1 and "Qwen/Qwen2.5-7B-Instruct" in match["text"]
        assert match["url"].endswith(f"/diagnoses/{wanted['id']}/log?around=1#L1")
    assert _search(api_client, "Qwen2.5 Llama")["total"] == 0  # every word, in one log


def test_search_metacharacters_are_words_not_syntax(api_client: TestClient) -> None:
    literal = api_client.post(URL, content=_log("m", job="c") + b"loader_worker 100% [a-z]* (x|y) \\d+ ' OR 1=1 --\n")
    api_client.post(URL, content=_log("m", job="d") + b"loaderXworker 1000 loaded\n")
    hits = _search(api_client, "loader_worker")  # `_` is no LIKE wildcard here
    assert [item["id"] for item in hits["items"]] == [literal.json()["id"]]
    for q in ("%%", "_q_", ".*.*", "*zz*", '"qq"', "NEAR(qq zz)", "\\\\"):  # in neither log, as written
        assert _search(api_client, q)["total"] == 0, q  # a wildcard or query syntax would match both


def test_a_log_with_nul_bytes_is_stored_and_searchable(api_client: TestClient) -> None:
    """Binary garbage in a log (a core dump, a stray image) is no reason to refuse it; PostgreSQL text holds no NUL."""
    posted = api_client.post(URL, content=_log("m", job="f") + b"checkpoint\x00\x00shard\x89PNG\x00 written\n")
    assert posted.status_code == 201, posted.text

    match = _search(api_client, "checkpointshard")["items"][0]["log_match"]
    assert match["text"].startswith("checkpointshard") and "\x00" not in match["text"]


def test_search_never_crosses_teams(api_client: TestClient, make_token: Callable[[str], str]) -> None:
    vision, nlp = make_token("vision"), make_token("nlp")
    api_client.post(URL, content=_log("secret-model-of-nlp", job="e"), headers=bearer(nlp))
    assert _search(api_client, "secret-model-of-nlp", **bearer(vision))["total"] == 0
    assert _search(api_client, "secret-model-of-nlp", **bearer(nlp))["total"] == 1


def test_the_tail_of_a_long_log_is_searched_and_the_line_number_is_the_logs(api_client: TestClient) -> None:
    filler = b"".join(b"step %d loss 1.0\n" % number for number in range(1, 40_001))
    log = b"[INFO] start\n" + filler + b"RuntimeError: zebra-crossing failed at the end\n"
    created = api_client.post(URL, content=log).json()
    found = _search(api_client, "zebra-crossing")
    assert found["items"][0]["id"] == created["id"]
    assert found["items"][0]["log_match"]["line"] == 40_002


def test_project_cluster_and_user_are_shown_and_filter(api_client: TestClient) -> None:
    tagged = api_client.post(URL, content=oom_log(job="p1"),
                             params={"project": "llm-sft", "cluster": "east-a100", "user": "ana"}).json()
    api_client.post(URL, content=oom_log(job="p2"), params={"project": "vision", "cluster": "west", "user": "bo"})
    for field, value in (("project", "llm-sft"), ("cluster", "east-a100"), ("user", "ana")):
        listed = api_client.get(URL, params={field: value}).json()
        assert [item["id"] for item in listed["items"]] == [tagged["id"]], field
        page = api_client.get("/", params={field: value}).text
        assert "llm-sft · east-a100 · ana" in page and "vision · west · bo" not in page
    detail = api_client.get(f"/diagnoses/{tagged['id']}").text
    assert '<a href="/?cluster=east-a100">east-a100</a>' in detail


def test_stats_group_by_project_cluster_and_user(api_client: TestClient) -> None:
    api_client.post(URL, content=oom_log(job="s1"), params={"project": "llm", "cluster": "east"})
    api_client.post(URL, content=oom_log(job="s2"), params={"project": "llm", "cluster": "west"})
    api_client.post(URL, content=oom_log(job="s3"))
    stats = api_client.get("/api/v1/stats", params={"group_by": "project"}).json()
    assert {group["key"]: group["count"] for group in stats["groups"]} == {"llm": 2, "(none)": 1}
    clusters = api_client.get("/api/v1/stats", params={"group_by": "cluster"}).json()
    assert {group["key"] for group in clusters["groups"]} == {"east", "west", "(none)"}
