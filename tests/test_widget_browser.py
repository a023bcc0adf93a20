"""The embeddable widget, driven in headless Chromium against a real `speechqa serve`."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

try:
    from tests.browser_util import (  # noqa: F401 (pytest fixtures)
        Server,
        StaticSite,
        Tab,
        browser,
        ingest,
        make_tab,
        parse_sse,
    )
except ImportError:  # run with tests/ itself on sys.path (plain `pytest`, no tests/__init__.py)
    from browser_util import Server, StaticSite, Tab, browser, ingest, make_tab, parse_sse  # type: ignore[no-redef]  # noqa: F401


pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"

GOLD_QUESTION = "丽泽商务区的地铁16号线什么时候通车？"
FOLLOW_UP = "那丽泽城市航站楼呢？"
UNANSWERABLE = "丰台区2023年的财政预算是多少？"
LAUNCHER_FOCUSED = """() => {
  const host = document.activeElement;
  const inner = host && host.shadowRoot && host.shadowRoot.activeElement;
  return !!inner && inner.getAttribute("data-testid") === "speechqa-launcher";
}"""
FINISHED = re.compile(r"^(done|refused|error|stopped)$")
STREAM_TIMEOUT_MS = 60_000

if not Path("/usr/bin/chromium").exists():
    pytest.skip("needs Debian's chromium at /usr/bin/chromium", allow_module_level=True)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPEECHQA_")}
    # Reuse a configured home so the converted model and embedding cache are not rebuilt on every run.
    env["SPEECHQA_HOME"] = os.environ.get("SPEECHQA_HOME") or str(tmp_path_factory.mktemp("speechqa-home"))
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, server_env: dict[str, str]) -> Path:
    work = tmp_path_factory.mktemp("widget-index")
    index = work / "index"
    ingest(index, server_env, work / "ingest.log")
    return index


@pytest.fixture(scope="module")
def host_site() -> Iterator[StaticSite]:
    """Another origin (127.0.0.1, other port) whose pages embed the widget from the API server."""
    with StaticSite({}) as site:
        yield site


@pytest.fixture(scope="module")
def server(index_dir: Path, server_env: dict[str, str]) -> Iterator[Server]:
    """The server with default settings: same origin only."""
    srv = Server(index_dir=index_dir, env=dict(server_env), log_path=index_dir.parent / "serve.log").start()
    srv.warm_up()
    yield srv
    srv.stop()


# ---------------------------------------------------------------- helpers


def tid(scope: Page | Locator, name: str) -> Locator:
    return scope.get_by_test_id(name)


def last_answer(page: Page) -> Locator:
    return page.locator('[data-testid="speechqa-message"][data-role="assistant"]').last


def ask_with_enter(page: Page, question: str) -> tuple[Locator, list[tuple[str, dict]], dict]:
    """Type the question, press Enter, wait for the stream to finish.

    Returns the assistant message locator, the SSE events the server sent, and the request body.
    """
    field = tid(page, "speechqa-input")
    field.fill(question)
    with page.expect_response(lambda r: r.url.endswith("/v1/ask/stream"), timeout=STREAM_TIMEOUT_MS) as info:
        field.press("Enter")
    response = info.value
    message = last_answer(page)
    expect(message).to_have_attribute("data-state", FINISHED, timeout=STREAM_TIMEOUT_MS)
    assert response.status == 200, response.text()
    events = parse_sse(response.text())
    body = json.loads(response.request.post_data or "{}")
    return message, events, body


def streamed(events: list[tuple[str, dict]]) -> tuple[str, list[dict], bool]:
    names = [name for name, _ in events]
    assert "error" not in names, events
    assert names[0] == "meta" and names[-1] == "done", names
    answer = "".join(data["text"] for name, data in events if name == "delta")
    cites = next(data for name, data in events if name == "citations")
    return answer, cites["citations"], bool(cites["answerable"])


def report_timing(page: Page, events: list[tuple[str, dict]], label: str) -> None:
    """Print the widget's own Enter -> first text measurement next to the server's compute time (no assert)."""
    timings = page.evaluate("() => window.SpeechQAWidget.lastTimings") or {}
    server_ms = next((data["timing_ms"] for name, data in events if name == "done"), {})
    print(
        f"\n[widget] {label}: Enter -> first answer text {timings.get('firstTextMs')} ms, "
        f"-> complete {timings.get('totalMs')} ms; server timing_ms {server_ms}"
    )


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def check_answer_and_source(page: Page, screenshot_prefix: str) -> list[dict]:
    """Ask the gold question, check chips and the highlighted quote of the first chip's citation."""
    message, events, body = ask_with_enter(page, GOLD_QUESTION)
    answer, citations, answerable = streamed(events)
    report_timing(page, events, screenshot_prefix)
    assert body["question"] == GOLD_QUESTION
    assert answerable, f"gold question was refused: {answer!r}"
    expect(message).to_have_attribute("data-state", "done")

    # What is on screen is the streamed answer, with each [n] turned into a chip showing n.
    rendered = message.locator(".answer").text_content()
    assert rendered == re.sub(r"\[(\d+)\]", r"\1", answer)
    chips = tid(message, "speechqa-chip")
    assert chips.count() >= 1
    assert chips.count() == len(re.findall(r"\[\d+\]", answer))
    assert any("16号线" in c["quote"] for c in citations), citations
    by_n = {c["n"]: c for c in citations}
    for i in range(chips.count()):
        n = int(chips.nth(i).get_attribute("data-n") or 0)
        assert chips.nth(i).get_attribute("aria-label") == f"来源 {n}：{by_n[n]['speech_title']}"
        expect(chips.nth(i)).to_be_enabled()
    shot(page, f"{screenshot_prefix}-answer.png")

    chip = chips.first
    cited = by_n[int(chip.get_attribute("data-n") or 0)]
    assert cited["passage_text"][cited["start"] : cited["end"]] == cited["quote"]
    chip.click()
    source = tid(page, "speechqa-source")
    expect(source).to_be_visible()
    mark = tid(source, "speechqa-quote")
    expect(mark).to_have_count(1)
    quote_shown = mark.text_content() or ""
    passage_shown = tid(source, "speechqa-passage").text_content() or ""
    assert quote_shown == cited["quote"]
    assert quote_shown in passage_shown
    assert passage_shown == cited["passage_text"]
    source_text = source.text_content() or ""
    for key in ("speaker", "speaker_role", "speech_title", "section", "source"):
        assert cited[key] in source_text, (key, cited[key])
    assert cited["source"], "the citation names the file the speech came from"
    shot(page, f"{screenshot_prefix}-source.png")

    tid(source, "speechqa-source-back").click()
    expect(source).to_be_hidden()
    expect(chip).to_be_focused()
    return citations


def check_refusal(page: Page, screenshot_name: str) -> None:
    message, events, body = ask_with_enter(page, UNANSWERABLE)
    answer, citations, answerable = streamed(events)
    assert not answerable and citations == [], answer
    expect(message).to_have_attribute("data-state", "refused")
    refusal = tid(message, "speechqa-refusal")
    expect(refusal).to_be_visible()
    expect(refusal).to_contain_text("资料中未找到依据")
    expect(tid(message, "speechqa-chip")).to_have_count(0)
    assert GOLD_QUESTION in body.get("history", [])
    shot(page, screenshot_name)


# ---------------------------------------------------------------- tests


def test_demo_page_answers_with_clickable_citations_follow_up_and_refusal(
    server: Server, make_tab: Callable[..., Tab]
) -> None:
    tab = make_tab(viewport={"width": 1280, "height": 860})
    page = tab.page
    page.goto(server.base_url + "/")
    launcher = tid(page, "speechqa-launcher")
    launcher.click()
    panel = tid(page, "speechqa-panel")
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("role", "dialog")
    expect(tid(page, "speechqa-log")).to_have_attribute("aria-live", "polite")
    expect(tid(page, "speechqa-input")).to_be_focused()
    expect(tid(page, "speechqa-input")).to_have_attribute(
        "placeholder", "例如：丽泽商务区的交通建设有哪些安排？"
    )

    check_answer_and_source(page, "widget")

    # A follow-up in the same conversation carries the earlier question as history.
    message, events, body = ask_with_enter(page, FOLLOW_UP)
    assert body["history"] == [GOLD_QUESTION]
    answer, _citations, answerable = streamed(events)
    expect(message).to_have_attribute("data-state", "done" if answerable else "refused")
    print(f"[widget] follow-up answered={answerable}: {answer[:80]}")

    check_refusal(page, "widget-refusal.png")
    assert page.locator('[data-testid="speechqa-message"][data-role="user"]').count() == 3
    tab.assert_clean()


def test_phone_width_panel_is_full_screen(server: Server, make_tab: Callable[..., Tab]) -> None:
    tab = make_tab(
        viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    page = tab.page
    page.goto(server.base_url + "/")
    tid(page, "speechqa-launcher").tap()
    panel = tid(page, "speechqa-panel")
    expect(panel).to_be_visible()
    box = panel.bounding_box()
    assert box is not None
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 375, 740), box

    check_answer_and_source(page, "widget-mobile")
    check_refusal(page, "widget-mobile-refusal.png")
    tab.assert_clean()


def test_keyboard_open_escape_closes_and_returns_focus(server: Server, make_tab: Callable[..., Tab]) -> None:
    tab = make_tab()
    page = tab.page
    page.goto(server.base_url + "/")
    launcher = tid(page, "speechqa-launcher")
    panel = tid(page, "speechqa-panel")
    field = tid(page, "speechqa-input")

    # Reach the launcher with Tab alone: it must be in the page's tab order.
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate(LAUNCHER_FOCUSED):
            break
    else:
        pytest.fail("the launcher is not reachable with Tab")
    page.keyboard.press("Enter")
    expect(panel).to_be_visible()
    expect(field).to_be_focused()

    # Shift+Enter is a newline, not a send.
    page.keyboard.type("第一行")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("第二行")
    assert field.input_value() == "第一行\n第二行"
    expect(page.locator('[data-testid="speechqa-message"]')).to_have_count(0)

    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(launcher).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "false")

    page.keyboard.press("Space")
    expect(panel).to_be_visible()
    expect(field).to_be_focused()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(launcher).to_be_focused()
    tab.assert_clean()


def _host_page(api: str) -> str:
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>外部门户</title>'
        "<style>button{background:lime!important}</style></head>"
        "<body><h1>另一个来源的门户页面</h1>"
        f'<script src="{api}/widget.js" data-endpoint="{api}" data-title="讲话问答"></script>'
        "</body></html>"
    )


def test_cross_origin_embed_needs_the_origin_allowed(
    server: Server,
    index_dir: Path,
    server_env: dict[str, str],
    host_site: StaticSite,
    make_tab: Callable[..., Tab],
) -> None:
    # `allowing` lists host_site's origin (comma-separated, as documented); `server` keeps the default.
    origins = f"{host_site.origin},http://localhost:{host_site.port}"
    allowing = Server(
        index_dir=index_dir,
        env=dict(server_env, SPEECHQA_CORS_ORIGINS=origins),
        log_path=index_dir.parent / "serve-cors.log",
    )
    allowing.start()
    try:
        host_site.pages["/allowed.html"] = _host_page(allowing.base_url)
        host_site.pages["/closed.html"] = _host_page(server.base_url)

        tab = make_tab()
        page = tab.page
        page.goto(host_site.origin + "/allowed.html")
        tid(page, "speechqa-launcher").click()
        message, events, _body = ask_with_enter(page, GOLD_QUESTION)
        answer, _citations, answerable = streamed(events)
        assert answerable
        expect(message).to_have_attribute("data-state", "done")
        assert tid(message, "speechqa-chip").count() >= 1
        shot(page, "widget-cross-origin.png")
        tab.assert_clean()

        tab = make_tab()
        page = tab.page
        page.goto(host_site.origin + "/closed.html")
        tid(page, "speechqa-launcher").click()
        tid(page, "speechqa-input").fill(GOLD_QUESTION)
        tid(page, "speechqa-input").press("Enter")
        message = last_answer(page)
        expect(message).to_have_attribute("data-state", "error", timeout=STREAM_TIMEOUT_MS)
        expect(tid(message, "speechqa-error")).to_be_visible()
        expect(tid(message, "speechqa-retry")).to_be_visible()
        expect(tid(message, "speechqa-chip")).to_have_count(0)
        assert (message.locator(".answer").text_content() or "") == ""
        shot(page, "widget-cors-blocked.png")
        assert tab.blocked == [] and tab.page_errors == []
    finally:
        allowing.stop()


def test_lost_connection_shows_error_and_retry_recovers(server: Server, make_tab: Callable[..., Tab]) -> None:
    tab = make_tab()
    page = tab.page
    page.goto(server.base_url + "/")
    tid(page, "speechqa-launcher").click()

    # The stream breaks off after one delta, with no `done`.
    cut = 'event: meta\ndata: {"passages": [], "index_version": "x"}\n\nevent: delta\ndata: {"text": "丽泽"}\n\n'
    page.route(
        "**/v1/ask/stream",
        lambda route: route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=cut),
    )
    tid(page, "speechqa-input").fill(GOLD_QUESTION)
    tid(page, "speechqa-input").press("Enter")
    message = last_answer(page)
    expect(message).to_have_attribute("data-state", "error")
    expect(tid(message, "speechqa-error")).to_contain_text("连接中断")
    shot(page, "widget-error.png")

    page.unroute("**/v1/ask/stream")
    with page.expect_response(lambda r: r.url.endswith("/v1/ask/stream"), timeout=STREAM_TIMEOUT_MS):
        tid(message, "speechqa-retry").click()
    expect(message).to_have_attribute("data-state", "done", timeout=STREAM_TIMEOUT_MS)
    expect(tid(message, "speechqa-error")).to_have_count(0)
    assert tid(message, "speechqa-chip").count() >= 1
    tab.assert_clean()


def test_markup_in_a_question_is_shown_as_text(server: Server, make_tab: Callable[..., Tab]) -> None:
    tab = make_tab()
    page = tab.page
    page.goto(server.base_url + "/")
    tid(page, "speechqa-launcher").click()
    question = "<img src=x onerror=alert(1)>丽泽商务区的交通建设有哪些安排？"
    message, _events, body = ask_with_enter(page, question)
    assert body["question"] == question
    bubble = page.locator('[data-testid="speechqa-message"][data-role="user"]').last
    assert bubble.text_content() == question
    images = page.evaluate(
        "() => document.querySelectorAll('img').length"
        " + document.getElementById('speechqa-widget').shadowRoot.querySelectorAll('img').length"
    )
    assert images == 0
    assert tab.dialogs == []
    tab.assert_clean()
