import re

import pytest
from fastapi.testclient import TestClient

from app.web.templating import CONTENT_SECURITY_POLICY
from tests.web.sample_logs import gpu_oom_log, missing_field_log, nan_loss_log, nccl_timeout_log, script_log

PAGES = ["/", "/dashboard", "/login", "/check"]


def test_every_page_carries_a_strict_content_security_policy(client: TestClient, upload):
    diagnosis = upload(gpu_oom_log())
    for path in [*PAGES, f"/diagnoses/{diagnosis['id']}", f"/diagnoses/{diagnosis['id']}/log"]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "default-src 'self'" in CONTENT_SECURITY_POLICY
        assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
        assert response.headers["x-content-type-options"] == "nosniff"


def test_pages_have_no_inline_scripts_or_styles(client: TestClient, upload):
    diagnosis = upload(nan_loss_log())
    for path in [*PAGES, f"/diagnoses/{diagnosis['id']}"]:
        html = client.get(path).text
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == [], path
        assert " style=" not in html and "<style" not in html, path
        assert " on" + "click=" not in html


def test_log_text_with_html_is_escaped_everywhere(client: TestClient, upload):
    diagnosis = upload(script_log())
    detail = client.get(f"/diagnoses/{diagnosis['id']}").text
    log = client.get(f"/diagnoses/{diagnosis['id']}/log").text
    for html in (detail, log):
        assert "<script>alert" not in html
        assert "<img src=x" not in html
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in detail
    assert "&lt;img src=x onerror=alert(2)&gt;" in log


def test_the_list_shows_newest_first_with_badge_and_repeats(client: TestClient, upload):
    upload(gpu_oom_log(), job_id="job-old")
    upload(gpu_oom_log(step=640), job_id="job-new")
    html = client.get("/").text
    assert html.index("job-new") < html.index("job-old")
    assert 'class="badge category-gpu_oom"' in html
    assert "×2" in html
    assert "2 diagnoses" in html


def test_list_filters_are_kept_in_the_url_and_applied(client: TestClient, upload):
    upload(gpu_oom_log(), team="vision", job_id="vision-oom")
    upload(nan_loss_log(), team="nlp", job_id="nlp-nan")
    upload(missing_field_log(), team="nlp", job_id="nlp-data")
    html = client.get("/", params={"team": "nlp", "stage": "mid_run"}).text
    assert "nlp-nan" in html and "nlp-data" not in html and "vision-oom" not in html
    assert '<option value="nlp" selected>' in html
    assert '<option value="mid_run" selected>' in html
    html = client.get("/", params={"q": "instruction"}).text
    assert "nlp-data" in html and "nlp-nan" not in html
    html = client.get("/", params={"category": "gpu_oom", "since": "2000-01-01", "until": "2000-01-02"}).text
    assert "Nothing matches these filters." in html


def test_nonsense_filters_are_ignored_not_errors(client: TestClient, upload):
    upload(gpu_oom_log(), job_id="still-listed")
    response = client.get("/", params={"since": "not-a-date", "category": "nope", "page": "x"})
    assert response.status_code == 200
    assert "still-listed" in response.text


def test_the_list_pages_keep_their_filters(client: TestClient, upload, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("app.web.routes.PAGE_SIZE", 1)
    upload(gpu_oom_log(), job_id="first")
    upload(gpu_oom_log(step=500), job_id="second")
    html = client.get("/", params={"category": "gpu_oom"}).text
    assert "Page 1 of 2" in html
    assert 'href="/?category=gpu_oom&amp;page=2"' in html
    assert "first" in client.get("/", params={"category": "gpu_oom", "page": "2"}).text


def test_grouping_by_failure_kind_counts_each_kind_once(client: TestClient, upload):
    upload(gpu_oom_log(), job_id="a")
    upload(gpu_oom_log(step=500), job_id="b")
    upload(nccl_timeout_log(), job_id="c")
    html = client.get("/", params={"group": "1"}).text
    assert "2 failure kinds" in html
    assert "kind=" in html


def test_the_diagnosis_page_explains_the_failure(client: TestClient, upload):
    first = upload(gpu_oom_log(step=700), job_id="earlier-run")
    diagnosis = upload(gpu_oom_log(step=853), job_id="this-run")
    html = client.get(f"/diagnoses/{diagnosis['id']}").text
    assert "The GPU ran out of memory" in html
    assert "Died at step 850 of 1,900" in html
    assert 'class="chart chart-loss"' in html
    assert "per_device_train_batch_size" in html and 'id="corrected-command"' in html
    assert 'class="root"' in html and "follow-on failure" in html
    assert f'href="/diagnoses/{first["id"]}"' in html
    assert "Run facts" in html and "world size" in html
    assert f"/diagnoses/{diagnosis['id']}/log?around=" in html


def test_the_diagnosis_page_shows_context_lines_from_the_stored_log(client: TestClient, upload):
    diagnosis = upload(gpu_oom_log())
    html = client.get(f"/diagnoses/{diagnosis['id']}").text
    assert 'class="context"' in html
    assert "trainer.train()" in html


def test_the_nan_run_marks_the_nan_on_its_loss_curve(client: TestClient, upload):
    diagnosis = upload(nan_loss_log())
    html = client.get(f"/diagnoses/{diagnosis['id']}").text
    assert "NaN at step" in html


def test_the_log_page_anchors_every_line_and_pages_through_big_logs(client: TestClient, upload, monkeypatch):
    monkeypatch.setattr("app.web.routes.LOG_PAGE_LINES", 50)
    diagnosis = upload(gpu_oom_log())
    html = client.get(f"/diagnoses/{diagnosis['id']}/log").text
    assert 'id="L1"' in html and 'id="L50"' in html and 'id="L51"' not in html
    assert 'href="?start=51"' in html
    around = client.get(f"/diagnoses/{diagnosis['id']}/log", params={"around": "185"}).text
    assert 'id="L185"' in around
    assert re.search(r'<li id="L185" class="root">', around)


def test_a_missing_diagnosis_is_a_404_page(client: TestClient):
    for path in ("/diagnoses/999", "/diagnoses/999/log", "/diagnoses/not-a-number"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")
        assert "Not found" in response.text
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_the_dashboard_counts_by_category_stage_and_day(client: TestClient, upload):
    upload(gpu_oom_log(), team="vision")
    upload(gpu_oom_log(step=300), team="vision")
    upload(missing_field_log(), team="nlp")
    html = client.get("/dashboard").text
    assert "GPU out of memory: 2" in html
    assert "Data error: 1" in html
    assert "33 %" in html  # one of three died while loading
    assert "3 failures over 30 days" in html
    assert 'href="/?category=gpu_oom&amp;since=' in html
    team_html = client.get("/dashboard", params={"team": "nlp", "days": "7"}).text
    assert "GPU out of memory: 2" not in team_html
    assert "last 7 days" in team_html


def test_the_dashboard_groups_failures_by_project_cluster_and_user(client: TestClient, upload):
    upload(gpu_oom_log(), project="llama-sft", cluster="a100-east", user="ana")
    upload(gpu_oom_log(step=300), project="llama-sft", cluster="h100-west", user="ana")
    upload(missing_field_log(), project="vision-pretrain", cluster="h100-west", user="bo")
    upload(missing_field_log(), team="nlp")  # said none of them

    def origins(**params: str) -> list[tuple[str, ...]]:
        html = client.get("/dashboard", params=params).text
        table = html.split('<table class="origins">', 1)[1].split("</table>", 1)[0]
        return [
            tuple(re.sub(r"<[^>]+>|\s+", " ", cell).strip()
                  for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S))
            for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>", 1)[1], re.S)
        ]

    by_project = origins()
    assert [row[:4] for row in by_project] == [
        ("llama-sft", "2", "0 %", "GPU out of memory"),
        ("vision-pretrain", "1", "100 %", "Data error"),
        ("not given", "1", "100 %", "Data error"),
    ]
    assert [row[:2] for row in origins(by="cluster")] == [("h100-west", "2"), ("a100-east", "1"), ("not given", "1")]
    assert [row[:2] for row in origins(by="user", days="7")] == [("ana", "2"), ("bo", "1"), ("not given", "1")]
    assert origins(by="nonsense") == by_project

    html = client.get("/dashboard", params={"by": "cluster"}).text
    link = re.search(r'<a href="(/\?[^"]*cluster=h100-west[^"]*)">h100-west</a>', html)
    assert link is not None
    listed = client.get(link.group(1).replace("&amp;", "&")).text
    assert re.search(r"\b2 diagnoses\b", listed) and listed.count('<td class="title">') == 2


def test_the_dashboard_of_an_empty_store_says_so(client: TestClient):
    html = client.get("/dashboard").text
    assert "No failures in this window" in html


def test_static_files_are_served_by_the_app(client: TestClient):
    for name in ("style.css", "categories.css", "upload.js", "copy.js", "logo.svg"):
        assert client.get(f"/static/{name}").status_code == 200
    html = client.get("/").text
    assert re.search(r'href="/static/style\.css\?v=[0-9a-f]{10}"', html)
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/?until=9999-12-31", 200),  # the day after the last day there is: the filter is dropped
        ("/dashboard?since=9999-12-31", 200),
        ("/?page=99999999999999999999", 200),  # far past the last page: an empty page, not an overflow
        ("/diagnoses/9223372036854775808", 404),
        ("/diagnoses/9223372036854775808/log", 404),
    ],
)
def test_values_past_what_the_store_can_hold_are_an_html_page_not_a_server_error(
    client: TestClient, path: str, status: int
) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")


def test_the_check_page_shows_findings_for_a_pasted_command(client: TestClient):
    response = client.post("/check", data={
        "command": "NPROC_PER_NODE=8 swift sft --model Qwen/Qwen2.5-7B-Instruct --deepspeed zero3 --device_map auto",
        "gpu": "NVIDIA A100-SXM4-80GB", "gpus": "8"})
    assert response.status_code == 200
    assert 'data-rule="deepspeed-with-device-map"' in response.text
    assert re.search(r"<code>device_map</code> →\s*\(remove\)", response.text)
    corrected = re.search(r'<pre id="corrected-command">([^<]*)</pre>', response.text)
    assert corrected and "--device_map" not in corrected.group(1)
    assert 'value="NVIDIA A100-SXM4-80GB"' in response.text  # the form keeps what was typed


def test_the_check_page_says_what_is_wrong_with_the_form(client: TestClient):
    bad_number = client.post("/check", data={"command": "python t.py --lr 1", "gpus": "eight"})
    assert bad_number.status_code == 422 and "GPUs per node: &#39;eight&#39; is not a number" in bad_number.text
    no_command = client.post("/check", data={"command": "echo hi\nls"})
    assert no_command.status_code == 422 and "no launch command given" in no_command.text


def test_repeats_are_the_teams_own_with_other_teams_as_a_count_and_the_reason(client: TestClient, upload):
    first = upload(gpu_oom_log(step=100), team="vision", job_id="v1")
    upload(gpu_oom_log(step=300), team="vision", job_id="v2")
    upload(gpu_oom_log(step=200), team="nlp", job_id="n1")
    page = client.get(f"/diagnoses/{first['id']}").text
    assert ">v2</a>" in page and ">n1</a>" not in page
    assert "Also seen 1 time in 1 other team." in page
    assert "Why these runs are grouped" in page and f"<code>{first['signature']}</code>" in page


def test_the_same_signature_in_another_framework_is_another_kind():
    from app.diagnosis.rootcause import fingerprint

    line = "[rank3]: torch.distributed.DistBackendError: Watchdog caught collective operation timeout: SeqNum=12"
    assert fingerprint("nccl_timeout", "nccl-timeout", line, framework="megatron-lm") != fingerprint(
        "nccl_timeout", "nccl-timeout", line, framework="torchrun")
    assert fingerprint("nccl_timeout", "nccl-timeout", line, framework="torchrun") == fingerprint(
        "nccl_timeout", "nccl-timeout", line.replace("12", "9041"), framework="torchrun")


def test_unknown_failures_are_clustered_with_a_signature_skeleton_that_loads(client: TestClient, upload, tmp_path):
    from app.diagnosis.signatures import load_signature_set

    for number in (17, 4242):
        upload(f"step 1\nFrobnicatorError: the flux capacitor {number} at /srv/jobs/run-{number}/x.bin jammed\n"
               .encode(), team="vision", job_id=f"u{number}")
    dashboard = client.get("/dashboard").text
    assert "Failures no signature knows" in dashboard
    row = dashboard.split('class="unknown-clusters"')[1].split("</tr>")[1]
    assert '>2</a>' in row and "skeleton (YAML)" in row
    link = row.split('href="/unknown/')[1].split('"')[0]
    skeleton = client.get(f"/unknown/{link}")
    assert skeleton.status_code == 200 and skeleton.headers["content-type"].startswith("application/yaml")
    identifier = skeleton.text.split("\nid: ")[1].split("\n")[0]
    (tmp_path / f"{identifier}.yaml").write_text(skeleton.text)
    loaded = load_signature_set([tmp_path])  # its pattern matches its samples, or loading fails
    assert identifier in {signature.spec.id for signature in loaded.signatures}
    assert client.get("/unknown/not-hex.yaml").status_code == 404
