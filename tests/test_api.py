"""HTTP API: every 4xx case on an in-process app, and the real server end to end over loopback."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from qa.compose import REFUSAL
from qa.index import load_index
from qa.service import AnswerService

from .conftest import GOLD


@pytest.fixture(scope="module")
def client(fake_index_dir, fake_encoder):
    service = AnswerService(load_index(fake_index_dir, fake_encoder), fake_encoder, composer="extractive-v1")
    with TestClient(create_app(Settings(), service=service)) as c:
        yield c


@pytest.mark.parametrize(
    "body, where",
    [
        ({}, "question"),
        ({"question": ""}, "question"),
        ({"question": "   \n\t "}, "whitespace"),
        ({"question": "问" * 501}, "501"),
        ({"question": 123}, "question"),
        ({"question": ["列表"]}, "question"),
        ({"question": "地铁", "top_k": 0}, "top_k"),
        ({"question": "地铁", "top_k": 21}, "top_k"),
        ({"question": "地铁", "top_k": "5"}, "top_k"),
        ({"question": "地铁", "filters": {"district": "丰台"}}, "district"),
        ({"question": "地铁", "filters": {"speaker": "不存在的人"}}, "不存在的人"),
        ({"question": "地铁", "filters": {"speech_id": "s0000"}}, "s0000"),
        ({"question": "地铁", "extra": 1}, "extra"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/ask", "/v1/search", "/v1/ask/stream"])
def test_bad_requests_are_422_with_a_readable_detail(client, path, body, where):
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    payload = r.json()
    assert set(payload) == {"detail", "code"}
    assert where in payload["detail"]


def test_malformed_json_is_422(client):
    r = client.post("/v1/ask", content=b'{"question": "x"', headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_request"


def test_unknown_passage_is_404_with_code(client):
    r = client.get("/v1/passages/no-such-id")
    assert r.status_code == 404
    assert r.json() == {
        "detail": "no passage with id 'no-such-id' use an id from a search or an answer",
        "code": "not_found",
    }


def test_unknown_route_is_json_404(client):
    r = client.get("/v2/nothing")
    assert r.status_code == 404 and r.json()["code"] == "not_found"


def test_probes_docs_and_speeches(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/v1/ask", "/v1/ask/stream", "/v1/search", "/v1/passages/{passage_id}", "/v1/speeches"} <= set(
        spec["paths"]
    )
    speeches = client.get("/v1/speeches").json()
    assert [s["speaker"] for s in speeches] == ["李国龙", "孙睿", "孙永文"]
    assert all(s["paragraphs"] > 0 and s["speech_id"] for s in speeches)


def test_passage_navigation(client):
    hits = client.post("/v1/search", json={"question": "丽泽", "top_k": 5}).json()["passages"]
    p = client.get(f"/v1/passages/{hits[0]['passage_id']}").json()
    assert p["text"] == hits[0]["text"]
    # Follow next_id from a passage that has one (the first hit may be a speech's last paragraph).
    linked = [q for q in (client.get(f"/v1/passages/{h['passage_id']}").json() for h in hits) if q["next_id"]]
    assert linked, "no retrieved passage has a next paragraph"
    assert client.get(f"/v1/passages/{linked[0]['next_id']}").json()["prev_id"] == linked[0]["passage_id"]


def test_not_ready_service_is_503_with_code(tmp_path):
    app = create_app(
        Settings(home=tmp_path, index_dir=tmp_path / "missing", model=str(tmp_path / "no-model"))
    )
    with TestClient(app) as c:
        assert c.get("/healthz").status_code == 200
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["code"]
        r = c.post("/v1/ask", json={"question": "地铁"})
        assert r.status_code == 503 and "detail" in r.json()


def test_cors_is_same_origin_by_default_and_allowlisted_otherwise(fake_index_dir, fake_encoder):
    service = AnswerService(load_index(fake_index_dir, fake_encoder), fake_encoder, composer="extractive-v1")
    pre = {"Origin": "http://intranet.example", "Access-Control-Request-Method": "POST"}
    with TestClient(create_app(Settings(), service=service)) as c:
        r = c.options("/v1/ask", headers=pre)
        assert "access-control-allow-origin" not in r.headers
    with TestClient(create_app(Settings(cors_origins="http://intranet.example"), service=service)) as c:
        r = c.options("/v1/ask", headers=pre)
        assert r.headers["access-control-allow-origin"] == "http://intranet.example"


# ----------------------------------------------------------------------------------------------------
# The real server: uvicorn on 127.0.0.1, real model, real index.


def _gold():
    return [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]


def _check_citations(base: str, body: dict) -> None:
    markers = [int(m) for m in re.findall(r"\[(\d+)\]", body["answer"])]
    assert list(dict.fromkeys(markers)) == list(range(1, len(body["citations"]) + 1))
    for c in body["citations"]:
        assert c["passage_text"][c["start"] : c["end"]] == c["quote"] and c["quote"]
        p = httpx.get(f"{base}/v1/passages/{c['passage_id']}", timeout=10).json()
        assert p["text"] == c["passage_text"]
        assert (p["speech_id"], p["speaker"], p["section"]) == (c["speech_id"], c["speaker"], c["section"])


@pytest.mark.slow
def test_every_gold_answer_over_http_has_valid_citations_and_unanswerables_are_refused(live_server):
    gold = _gold()
    refused_unanswerable = 0
    unanswerable = [g for g in gold if not g["answerable"]]
    with httpx.Client(base_url=live_server, timeout=30) as http:
        for g in gold:
            r = http.post("/v1/ask", json={"question": g["question"]})
            assert r.status_code == 200, r.text
            body = r.json()
            assert set(body["timing_ms"]) == {"retrieve", "compose", "total"} and body["index_version"]
            _check_citations(live_server, body)
            if body["answerable"]:
                assert body["citations"], g["id"]
            else:
                assert body["answer"] == REFUSAL and body["citations"] == [] and body["related"], g["id"]
                refused_unanswerable += not g["answerable"]
    assert refused_unanswerable / len(unanswerable) >= 0.9


@pytest.mark.slow
def test_stream_carries_the_same_answer_as_ask(live_server):
    q = {"question": "丽泽商务区的地铁16号线什么时候通车？"}
    plain = httpx.post(f"{live_server}/v1/ask", json=q, timeout=30).json()
    events = []
    with httpx.stream("POST", f"{live_server}/v1/ask/stream", json=q, timeout=30) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for block in r.read().decode().split("\n\n"):
            if block.strip():
                name = block.split("\n")[0].removeprefix("event: ")
                data = json.loads(block.split("\n")[1].removeprefix("data: "))
                events.append((name, data))
    names = [n for n, _ in events]
    assert names[0] == "meta" and names[-1] == "done" and "citations" in names
    assert "".join(d["text"] for n, d in events if n == "delta") == plain["answer"]
    cites = next(d for n, d in events if n == "citations")["citations"]
    assert [c["quote"] for c in cites] == [c["quote"] for c in plain["citations"]]
    assert "16号线" in plain["answer"]


def test_region_and_year_filters_narrow_search_and_citations_carry_date_and_source(tmp_path, fake_encoder):
    from data.parse import make_speech
    from qa.index import build_index

    speeches = [
        make_speech(
            title=f"{year}年{region}政府工作报告",
            region=region,
            date=f"{year}-01-15",
            source=f"{region}.docx",
            paragraphs=[("", f"{region}推进科技创新，建设现代化产业体系。{region}扩大内需。")],
        )
        for region, year in (("浙江省", 2025), ("江苏省", 2024))
    ]
    build_index(speeches, fake_encoder, tmp_path / "idx")
    service = AnswerService(
        load_index(tmp_path / "idx", fake_encoder), fake_encoder, composer="extractive-v1"
    )
    with TestClient(create_app(Settings(reload_interval_s=0), service=service)) as c:
        body = {"question": "科技创新", "filters": {"region": "江苏"}}
        passages = c.post("/v1/search", json=body).json()["passages"]
        assert passages and {p["speech_title"] for p in passages} == {"2024年江苏省政府工作报告"}
        assert passages[0]["date"] == "2024-01-15" and passages[0]["source"] == "江苏省.docx"
        body = {"question": "科技创新", "filters": {"year_from": 2025}}
        assert {p["speech_title"] for p in c.post("/v1/search", json=body).json()["passages"]} == {
            "2025年浙江省政府工作报告"
        }
        unknown = c.post("/v1/search", json={"question": "科技创新", "filters": {"region": "西藏"}})
        assert unknown.status_code == 422 and "西藏" in unknown.json()["detail"]
        bad_date = c.post("/v1/search", json={"question": "科技创新", "filters": {"date_from": "2025/01"}})
        assert bad_date.status_code == 422
