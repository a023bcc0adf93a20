"""The widget script as assembled by api/widget.py: one IIFE with the server's text rules, served at /widget.js."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from api.widget import PARTS, WIDGET_DIR, client_rules, marker_tail, widget_source
from data.text import MARKER_PATTERN, rules_for_clients


def test_widget_is_one_iife_with_the_header_first() -> None:
    source = widget_source()
    assert source.startswith("/*\n * speechqa widget")
    assert source.count('(function () {\n"use strict";') == 1
    assert source.rstrip().endswith("})();")
    for name in PARTS:
        assert (WIDGET_DIR / name).read_text(encoding="utf-8") in source


def test_widget_gets_the_marker_rule_from_the_server() -> None:
    rules = json.loads(re.search(r"^var RULES = (.*);$", widget_source(), re.M).group(1))  # type: ignore[union-attr]
    assert rules["marker"] == MARKER_PATTERN
    assert {k: rules[k] for k in rules_for_clients()} == rules_for_clients()
    assert rules == client_rules()
    # The parts keep no copy of the marker regex of their own.
    for name in PARTS:
        text = (WIDGET_DIR / name).read_text(encoding="utf-8")
        assert r"\[(\d" not in text and r"\[\d" not in text, name


def test_marker_tail_holds_back_what_may_still_become_a_marker() -> None:
    tail = re.compile(marker_tail(MARKER_PATTERN))
    for text in ("通车[", "通车[1", "通车[12"):
        assert tail.search(text), text
    for text in ("通车[123", "通车[1]", "通车"):
        assert not tail.search(text), text
    with pytest.raises(ValueError):
        marker_tail(r"【(\d+)】|\[(\d{1,2})\]")


def test_widget_route_serves_the_assembled_script(fake_index_dir, fake_encoder) -> None:
    from qa.index import load_index
    from qa.service import AnswerService

    # The extractive composer, as in test_api: this test is about the route, not about answering.
    service = AnswerService(load_index(fake_index_dir, fake_encoder), fake_encoder, composer="extractive-v1")
    with TestClient(create_app(Settings(), service=service)) as client:
        res = client.get("/widget.js")
        assert res.status_code == 200
        assert res.headers["content-type"] == "application/javascript; charset=utf-8"
        assert res.headers["cache-control"] == "no-cache"
        assert res.text == widget_source()
        for path, kind in (
            ("/admin", "text/html"),
            ("/admin.js", "application/javascript"),
            ("/admin.css", "text/css"),
        ):
            res = client.get(path)
            assert res.status_code == 200 and res.headers["content-type"].startswith(kind), path


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_assembled_widget_and_admin_script_parse(tmp_path) -> None:
    script = tmp_path / "widget.js"
    script.write_text(widget_source(), encoding="utf-8")
    for path in (script, WIDGET_DIR.parent / "admin.js"):
        proc = subprocess.run(["node", "--check", str(path)], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
