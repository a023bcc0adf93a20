"""The evaluation report opened in headless Chromium: it renders offline and asks the network for nothing."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Route, expect, sync_playwright

from evaluation.backends import ServiceBackend
from evaluation.gold import GoldItem
from evaluation.report import write_outputs
from evaluation.runner import evaluate, summarize
from qa.types import Answer, Citation, Hit
from tests.browser_util import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
if not Path(CHROMIUM).exists():
    pytest.skip(f"needs Debian's chromium at {CHROMIUM}", allow_module_level=True)

PASSAGES = {
    "p1": "2022年7月9日，区委理论学习中心组举行“首都发展大讲堂”专题辅导报告会。",
    "p2": "市委研究室副主任王汝满围绕北京市第十三次党代会报告精神解读作专题辅导报告。",
    "p3": "丽泽金融商务区要打造产业聚焦、北联南拓的金融新区。",
}


class _Service:
    """A scripted stand-in for AnswerService; the page, not the answers, is under test here."""

    index_version = "browser-test"

    def ask(self, question: str, top_k: int = 5) -> Answer:
        related = tuple(
            Hit(p, t, "s1", "讲话", "李国龙", "主任", "", 0.9 - i / 10)
            for i, (p, t) in enumerate(PASSAGES.items())
        )
        if "哪天" in question:
            quote = PASSAGES["p1"][:21]
            cite = Citation(
                1, "p1", "s1", "讲话", "李国龙", "主任", "", quote, 0, len(quote), PASSAGES["p1"], 0.9
            )
            return Answer(question, f"{quote}。[1]", True, (cite,), related)
        # A question whose text would break a page that forgot to escape it.
        return Answer(question, "没有找到<b>依据</b>。", False, (), related[::-1])

    def passage(self, passage_id: str) -> dict:
        return {"passage_id": passage_id, "text": PASSAGES[passage_id]}


@pytest.fixture(scope="module")
def report_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    items = [
        GoldItem(
            "q1",
            "报告会是哪天举行的？",
            True,
            (("2022年7月9日",), ("首都发展大讲堂",)),
            ("2022年7月9日，区委",),
        ),
        GoldItem("q2", '谁作的<script>alert("x")</script>报告？', True, (("王汝满",),), ("王汝满围绕",)),
        GoldItem("q3", "地铁什么时候开通？", False),
    ]
    results = evaluate(items, ServiceBackend(_Service(), source="scripted"), k=3)
    out = tmp_path_factory.mktemp("report")
    return write_outputs(
        out, results, summarize(results, k=3, source="scripted", index_version="browser-test")
    )


def test_report_renders_offline_with_summary_and_charts(report_path: Path) -> None:
    page_url = report_path.resolve().as_uri()
    requests: list[str] = []
    outside: list[str] = []

    def route(route: Route) -> None:
        url = route.request.url
        requests.append(url)
        # Only the report file itself may load; anything else (CDN, font, image, data fetch) is a bug.
        if urlsplit(url).scheme == "file" and url.split("#")[0] == page_url:
            route.continue_()
        else:
            outside.append(url)
            route.abort("blockedbyclient")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
            context.route("**/*", route)
            page = context.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(page_url, wait_until="load")

            assert page.title() == "speechqa evaluation"
            table = page.locator("table#summary")
            expect(table).to_be_visible()
            expect(table).to_contain_text("key_point_recall")
            expect(table).to_contain_text("hit@1")
            expect(table).to_contain_text("p95")
            charts = page.locator("figure svg")
            assert charts.count() >= 3
            box = charts.first.bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 50
            assert page.locator("svg rect").count() > 3  # bars actually drawn
            # The failing questions are laid out, with their text shown as text, not run as markup.
            failures = page.locator("article.failure")
            assert failures.count() == 2
            q2 = page.locator("article#q-q2")
            expect(q2).to_contain_text('<script>alert("x")</script>')
            expect(q2).to_contain_text("没有找到<b>依据</b>。")
            expect(page.locator("article#q-q1 li.missing")).to_have_text("首都发展大讲堂")
            assert page.locator("article.failure b").count() == 0
            assert dialogs == []

            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            browser.close()

    assert outside == [], f"the report requested something besides itself: {outside}"
    assert requests == [page_url]
