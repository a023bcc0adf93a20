"""Live index: a new version on disk is served without a restart, atomically, and a broken one never is."""

from __future__ import annotations

import logging
import os
import shutil
import time

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.live import ServiceHolder, manifest_signature
from api.settings import Settings
from data.parse import make_speech
from qa.index import MANIFEST, add_to_index
from qa.service import AnswerService

NEW_TEXT = "青蛙湖畔的萤火虫观测站将于明年七月正式开放，每晚接待游客二百人。"


def _new_speech():
    return make_speech(title="萤火虫观测站建设情况", speaker="林晓", paragraphs=[("", NEW_TEXT)])


@pytest.fixture
def index_dir(tmp_path, fake_index_dir):
    path = tmp_path / "index"
    shutil.copytree(fake_index_dir, path)
    return path


def _holder(index_dir, encoder) -> ServiceHolder:
    holder = ServiceHolder(
        index_dir, lambda d: AnswerService.open(d, encoder, composer="extractive-v1"), interval_s=0
    )
    assert holder.refresh()
    return holder


def test_a_request_that_started_before_the_swap_finishes_on_the_old_version(index_dir, fake_encoder):
    holder = _holder(index_dir, fake_encoder)
    in_flight = holder.current()  # what a request got from get_service when it started
    old_version = in_flight.index_version
    add_to_index(index_dir, [_new_speech()], fake_encoder)
    assert holder.refresh()
    assert holder.current().index_version != old_version
    # The old service still answers, from the old index, naming its own version.
    old_answer = in_flight.ask("萤火虫观测站什么时候开放？")
    assert old_answer.index_version == old_version
    assert all(c.speech_title != "萤火虫观测站建设情况" for c in old_answer.citations)
    new_answer = holder.current().ask("萤火虫观测站什么时候开放？")
    assert new_answer.index_version == holder.current().index_version
    assert any(c.speech_title == "萤火虫观测站建设情况" for c in new_answer.citations)


def test_an_unchanged_manifest_is_not_reloaded(index_dir, fake_encoder):
    holder = _holder(index_dir, fake_encoder)
    svc = holder.current()
    assert not holder.refresh()
    assert holder.current() is svc


def test_a_corrupt_new_manifest_keeps_the_old_version_serving_and_logs_why(index_dir, fake_encoder, caplog):
    holder = _holder(index_dir, fake_encoder)
    svc = holder.current()
    # A new manifest (new inode, as every write renames) that cannot be read.
    tmp = index_dir / "manifest.json.new"
    tmp.write_text("{not json", encoding="utf-8")
    os.replace(tmp, index_dir / MANIFEST)
    with caplog.at_level(logging.ERROR, logger="api.live"):
        assert not holder.refresh()
    assert holder.current() is svc
    assert "still serving " + svc.index_version in caplog.text
    # The failed version is not retried on every check, only when the manifest changes again.
    caplog.clear()
    assert not holder.refresh()
    assert caplog.text == ""


def test_no_index_at_start_is_a_load_error_and_a_later_index_is_picked_up(
    tmp_path, fake_index_dir, fake_encoder
):
    path = tmp_path / "later"
    holder = ServiceHolder(
        path, lambda d: AnswerService.open(d, fake_encoder, composer="extractive-v1"), interval_s=0
    )
    assert not holder.refresh()
    assert holder.current() is None and holder.load_error is not None
    assert holder.load_error.code == "index_not_found"
    shutil.copytree(fake_index_dir, path)
    assert holder.refresh()
    assert holder.current() is not None and holder.load_error is None


def test_the_server_serves_a_new_version_written_by_another_writer_without_restart(index_dir, fake_encoder):
    service = AnswerService.open(index_dir, fake_encoder, composer="extractive-v1")
    settings = Settings(home=index_dir.parent / "home", reload_interval_s=0.05, composer="extractive-v1")
    with TestClient(create_app(settings, service=service)) as client:
        before = client.get("/readyz").json()["index_version"]
        sig = manifest_signature(index_dir)
        add_to_index(index_dir, [_new_speech()], fake_encoder)  # as `speechqa ingest --add` would
        assert manifest_signature(index_dir) != sig
        deadline = time.monotonic() + 20
        while client.get("/readyz").json()["index_version"] == before and time.monotonic() < deadline:
            time.sleep(0.05)
        body = client.post("/v1/ask", json={"question": "萤火虫观测站什么时候开放？"}).json()
        assert body["index_version"] != before
        assert body["citations"] and body["citations"][0]["speech_title"] == "萤火虫观测站建设情况"
