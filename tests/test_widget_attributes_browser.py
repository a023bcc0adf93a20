"""The widget's <script> attributes (texts, API key, filter), in headless Chromium against the real app.

The app is the real one (create_app, real routes, real /widget.js) with the test encoder, so it starts in
seconds; the page that embeds the widget is on another origin, as on an intranet portal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from html import escape
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, Request, expect

try:
    from tests.browser_util import AppServer, StaticSite, Tab, browser, make_tab  # noqa: F401 (pytest fixtures)
except ImportError:  # run with tests/ itself on sys.path (plain `pytest`, no tests/__init__.py)
    from browser_util import AppServer, StaticSite, Tab, browser, make_tab  # type: ignore[no-redef]  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not Path("/usr/bin/chromium").exists():
    pytest.skip("needs Debian's chromium at /usr/bin/chromium", allow_module_level=True)

QUESTION = "丽泽商务区的地铁16号线什么时候通车？"
FINISHED = re.compile(r"^(done|refused|error|stopped)$")
CUSTOM = {
    "title": "报告问答",
    "subtitle": "依据省政府工作报告原文作答",
    "greeting": "欢迎查询省政府工作报告，回答会标注原文出处。",
    "placeholder": "例如：今年的经济增长目标是多少？",
}


@pytest.fixture(scope="module")
def host_site() -> Iterator[StaticSite]:
    with StaticSite({}) as site:
        yield site


@pytest.fixture(scope="module")
def api(fake_index_dir: Path, fake_encoder: Any, host_site: StaticSite) -> Iterator[AppServer]:
    from api.app import create_app
    from api.settings import Settings
    from qa.index import load_index
    from qa.service import AnswerService

    # The extractive composer, as in test_api: these tests are about the tag's attributes, not about answering.
    service = AnswerService(load_index(fake_index_dir, fake_encoder), fake_encoder, composer="extractive-v1")
    app = create_app(Settings(cors_origins=[host_site.origin]), service=service)
    with AppServer(app) as server:
        yield server


def embed(site: StaticSite, name: str, api_url: str, **attrs: str) -> str:
    """Put a portal page embedding the widget with ``data-<key>`` attributes on the host site; return its URL."""
    extra = "".join(f' data-{key.replace("_", "-")}="{escape(value)}"' for key, value in attrs.items())
    site.pages[f"/{name}.html"] = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>省政府门户</title></head>'
        f'<body><h1>省政府门户</h1><script src="{api_url}/widget.js" data-endpoint="{api_url}"{extra}></script>'
        "</body></html>"
    )
    return f"{site.origin}/{name}.html"


def tid(page: Page, name: str) -> Locator:
    return page.get_by_test_id(name)


def ask(page: Page, question: str) -> Request:
    """Send a question with Enter; return the /v1/ask/stream POST once its answer has finished."""
    tid(page, "speechqa-input").fill(question)
    with page.expect_request(lambda r: r.url.endswith("/v1/ask/stream") and r.method == "POST") as info:
        tid(page, "speechqa-input").press("Enter")
    message = page.locator('[data-testid="speechqa-message"][data-role="assistant"]').last
    expect(message).to_have_attribute("data-state", FINISHED, timeout=30_000)
    return info.value


def test_custom_texts_key_and_filter_reach_the_page_and_every_request(
    api: AppServer, host_site: StaticSite, make_tab: Callable[[], Tab]
) -> None:
    url = embed(
        host_site, "custom", api.base_url, api_key="office-key-123", filter='{"speaker":"李国龙"}', **CUSTOM
    )
    tab = make_tab()
    page = tab.page
    page.goto(url)
    tid(page, "speechqa-launcher").click()
    expect(tid(page, "speechqa-panel")).to_be_visible()
    expect(page.locator("#speechqa-title")).to_have_text(CUSTOM["title"])
    expect(tid(page, "speechqa-subtitle")).to_have_text(CUSTOM["subtitle"])
    expect(tid(page, "speechqa-greeting")).to_have_text(CUSTOM["greeting"])
    expect(tid(page, "speechqa-input")).to_have_attribute("placeholder", CUSTOM["placeholder"])

    request = ask(page, QUESTION)
    assert request.header_value("x-api-key") == "office-key-123"
    assert json.loads(request.post_data or "{}") == {"question": QUESTION, "filters": {"speaker": "李国龙"}}
    response = request.response()
    assert response is not None and response.status == 200  # the real server took the filter and the header
    message = page.locator('[data-testid="speechqa-message"][data-role="assistant"]').last
    expect(message).to_have_attribute("data-state", re.compile("^(done|refused)$"))

    # The source view's context requests (/v1/passages/...) carry the key too.
    opener = message.get_by_test_id("speechqa-chip").or_(message.get_by_test_id("speechqa-related")).first
    with page.expect_request(lambda r: "/v1/passages/" in r.url and r.method == "GET") as info:
        opener.click()
    assert info.value.header_value("x-api-key") == "office-key-123"
    expect(tid(page, "speechqa-source")).to_be_visible()
    tab.assert_clean()
    assert tab.warnings == []


def test_defaults_without_attributes_and_a_bad_filter_is_ignored_with_a_warning(
    api: AppServer, host_site: StaticSite, make_tab: Callable[[], Tab]
) -> None:
    url = embed(host_site, "plain", api.base_url, filter="{speaker: 李国龙")
    tab = make_tab()
    page = tab.page
    page.goto(url)
    tid(page, "speechqa-launcher").click()
    expect(page.locator("#speechqa-title")).to_have_text("讲话问答")
    expect(tid(page, "speechqa-subtitle")).to_have_text("依据区领导讲话原文作答，点击编号查看出处")
    expect(tid(page, "speechqa-greeting")).to_have_text(
        "您好！可以就已收录的区领导讲话提问，回答中的编号可点击查看原文出处。资料中没有依据的问题将如实说明。"
    )
    expect(tid(page, "speechqa-input")).to_have_attribute(
        "placeholder", "例如：丽泽商务区的交通建设有哪些安排？"
    )
    assert any("data-filter" in w for w in tab.warnings), tab.warnings

    request = ask(page, QUESTION)
    assert request.header_value("x-api-key") is None
    assert json.loads(request.post_data or "{}") == {"question": QUESTION}
    tab.assert_clean()


def test_filter_object_is_sent_as_written(
    api: AppServer, host_site: StaticSite, make_tab: Callable[[], Tab]
) -> None:
    # Region and year filters are passed through untouched; the stream is answered by the test itself.
    url = embed(host_site, "region", api.base_url, filter='{"region":"浙江省","year_from":2024}')
    tab = make_tab()
    page = tab.page
    page.route(
        "**/v1/ask/stream",
        lambda route: route.fulfill(
            status=200,
            headers={"Content-Type": "text/event-stream", "Access-Control-Allow-Origin": "*"},
            body='event: delta\ndata: {"text": "好"}\n\nevent: citations\ndata: {"citations": [], "answerable": true}\n\n'
            'event: done\ndata: {"answerable": true}\n\n',
        ),
    )
    page.goto(url)
    tid(page, "speechqa-launcher").click()
    request = ask(page, QUESTION)
    assert json.loads(request.post_data or "{}")["filters"] == {"region": "浙江省", "year_from": 2024}
    tab.assert_clean()
