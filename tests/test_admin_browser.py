"""The admin page (/admin) in headless Chromium: against the in-memory admin API double (tests/admin_fake.py) for every state the page shows, and against the real admin API for the upload/delete round trip."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

try:
    from tests.admin_fake import ADMIN_KEY, FakeAdminStore, create_fake_admin_app
    from tests.browser_util import AppServer, Tab, browser, make_tab  # noqa: F401 (pytest fixtures)
except ImportError:  # run with tests/ itself on sys.path (plain `pytest`, no tests/__init__.py)
    from admin_fake import ADMIN_KEY, FakeAdminStore, create_fake_admin_app  # type: ignore[no-redef]
    from browser_util import AppServer, Tab, browser, make_tab  # type: ignore[no-redef]  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not Path("/usr/bin/chromium").exists():
    pytest.skip("needs Debian's chromium at /usr/bin/chromium", allow_module_level=True)

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
PICKED_TITLE = "<b>浙江省政府工作报告</b>"  # markup in a field must come back as text
PICKED_TEXT = "\n\n".join(f"第{i}段：推进杭州湾跨海铁路建设，完善全省综合交通网络。" for i in range(1, 41))
DROPPED_TEXT = "# 宁波市政府工作报告\n\n加快宁波舟山港建设。\n\n推动港口与产业联动发展。\n"
DROP = """(zone, files) => {
  const data = new DataTransfer();
  for (const f of files) data.items.add(new File([f.text], f.name, { type: "text/plain" }));
  for (const type of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: data }));
  }
}"""


@pytest.fixture(scope="module")
def fake_api() -> Iterator[AppServer]:
    with AppServer(create_fake_admin_app(job_seconds=1.5)) as server:
        yield server


def tid(scope: Page | Locator, name: str) -> Locator:
    return scope.get_by_test_id(name)


def store_of(server: AppServer) -> FakeAdminStore:
    return server.server.config.app.state.store  # type: ignore[no-any-return]


def enter_key(page: Page, key: str) -> None:
    tid(page, "admin-key-input").fill(key)
    tid(page, "admin-key-save").click()


def wait_for_job(page: Page) -> list[str]:
    """Wait until the upload job is done; return the distinct job states the page showed on the way."""
    job = tid(page, "admin-job")
    seen: list[str] = []
    for _ in range(200):
        state = job.get_attribute("data-state") or ""
        if not seen or seen[-1] != state:
            seen.append(state)
        if state in ("done", "failed"):
            break
        page.wait_for_timeout(50)
    expect(job).to_have_attribute("data-state", "done")
    return seen


def row(page: Page, title: str) -> Locator:
    return tid(page, "admin-doc-row").filter(has=page.get_by_text(title, exact=True))


def test_admin_uploads_by_picker_and_drop_shows_progress_deletes_and_tries_a_question(
    fake_api: AppServer, make_tab: Callable[[], Tab]
) -> None:
    store = store_of(fake_api)
    tab = make_tab()
    page = tab.page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(fake_api.base_url + "/admin")
    enter_key(page, ADMIN_KEY)
    expect(tid(page, "admin-status")).to_have_text("已连接。")
    expect(tid(page, "admin-index-version")).to_have_text("fake-v1")
    expect(tid(page, "admin-doc-row")).to_have_count(0)

    # 1. File picker, with the optional fields.
    tid(page, "admin-field-title").fill(PICKED_TITLE)
    tid(page, "admin-field-speaker").fill("王浩")
    tid(page, "admin-field-region").fill("浙江省")
    tid(page, "admin-file-input").set_input_files(
        {"name": "report.txt", "mimeType": "text/plain", "buffer": PICKED_TEXT.encode("utf-8")}
    )
    expect(tid(page, "admin-picked")).to_contain_text("report.txt")
    tid(page, "admin-upload").click()
    seen = wait_for_job(page)
    assert "running" in seen, seen  # the bar moved through the job, not only its end
    expect(tid(page, "admin-job-numbers")).to_contain_text("40 / 40 段")
    expect(tid(page, "admin-job-numbers")).to_contain_text("段/秒")
    assert tid(page, "admin-job-progress").evaluate("p => [p.value, p.max]") == [40, 40]
    picked = row(page, PICKED_TITLE)
    expect(picked).to_have_count(1)
    expect(picked).to_contain_text("王浩")
    expect(picked).to_contain_text("浙江省")
    expect(picked.locator("td.num")).to_have_text("40")
    expect(tid(page, "admin-index-version")).to_have_text("fake-v2")
    assert page.locator("table b").count() == 0  # the title's markup stayed text

    # 2. Drag and drop: one good file and one empty file, which is reported and skipped.
    for name in ("title", "speaker", "region"):
        tid(page, f"admin-field-{name}").fill("")
    zone = tid(page, "admin-drop-zone")
    zone.evaluate(
        DROP,
        [{"name": "ningbo.txt", "text": DROPPED_TEXT}, {"name": "empty.txt", "text": ""}],
    )
    expect(tid(page, "admin-picked")).to_contain_text("ningbo.txt")
    expect(tid(page, "admin-upload")).to_have_text("上传 2 个文件")
    tid(page, "admin-upload").click()
    wait_for_job(page)
    expect(tid(page, "admin-job-error")).to_have_text(["empty.txt：empty file"])
    dropped = row(page, "宁波市政府工作报告")
    expect(dropped).to_have_count(1)
    expect(tid(page, "admin-doc-row")).to_have_count(2)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin.png"), full_page=True)

    # 3. Try a question: the admin key goes along, the answer and its citation are shown as text.
    tid(page, "admin-ask-input").fill("杭州湾跨海铁路建设有什么安排？")
    tid(page, "admin-ask-send").click()
    expect(tid(page, "admin-answer")).to_contain_text("杭州湾跨海铁路")
    citation = tid(page, "admin-citation")
    expect(citation).to_have_count(1)
    expect(citation).to_contain_text("《" + PICKED_TITLE + "》")
    expect(citation).to_contain_text("王浩")
    expect(citation).to_contain_text("推进杭州湾跨海铁路建设")
    assert ("POST", "/v1/ask", f"Bearer {ADMIN_KEY}") in store.requests

    # 4. Delete: cancelling the confirmation keeps the row; confirming removes it.
    tab.answer_dialogs = False
    tid(dropped, "admin-delete").click()
    expect(dropped).to_have_count(1)
    assert len(store.documents) == 2
    tab.answer_dialogs = True
    tid(dropped, "admin-delete").click()
    expect(dropped).to_have_count(0)
    expect(tid(page, "admin-doc-row")).to_have_count(1)
    assert [d["title"] for d in store.documents.values()] == [PICKED_TITLE]
    assert len(tab.answered) == 2 and all("宁波市政府工作报告" in m for m in tab.answered)
    expect(tid(page, "admin-status")).to_contain_text("已删除")

    # Every admin call carried the key as a bearer token.
    admin_calls = [r for r in store.requests if r[1].startswith("/v1/admin/")]
    assert admin_calls and all(auth == f"Bearer {ADMIN_KEY}" for _, _, auth in admin_calls)

    # The key is kept for this tab's session: a reload connects without typing it again.
    page.reload()
    expect(tid(page, "admin-status")).to_have_text("已连接。")
    expect(tid(page, "admin-doc-row")).to_have_count(1)
    tab.assert_clean()


def test_wrong_key_is_rejected_and_not_kept(fake_api: AppServer, make_tab: Callable[[], Tab]) -> None:
    tab = make_tab()
    page = tab.page
    page.goto(fake_api.base_url + "/admin")
    enter_key(page, "not-the-key")
    expect(tid(page, "admin-status")).to_contain_text("管理密钥被拒绝")
    expect(tid(page, "admin-status")).to_have_class(re.compile(r"\berror\b"))
    expect(page.locator("#admin-main")).to_be_hidden()
    assert page.evaluate("() => sessionStorage.getItem('speechqa.adminKey')") is None

    enter_key(page, ADMIN_KEY)
    expect(tid(page, "admin-status")).to_have_text("已连接。")
    expect(page.locator("#admin-main")).to_be_visible()
    tab.assert_clean()


def test_server_without_admin_says_admin_is_disabled(make_tab: Callable[[], Tab]) -> None:
    with AppServer(create_fake_admin_app(admin_enabled=False)) as server:
        tab = make_tab()
        page = tab.page
        page.goto(server.base_url + "/admin")
        enter_key(page, ADMIN_KEY)
        expect(tid(page, "admin-status")).to_contain_text("此服务器未启用管理功能")
        expect(page.locator("#admin-main")).to_be_hidden()
        tab.assert_clean()


@pytest.fixture(scope="module")
def real_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The real app (admin API, jobs, live index) on a copy of the built-in corpus, with the hash encoder."""
    from api.app import create_app
    from api.settings import Settings
    from data.load import builtin_corpus_dir, load_paths
    from embeddings.testing import HashEncoder
    from qa.index import build_index
    from qa.service import AnswerService

    work = tmp_path_factory.mktemp("admin-real")
    encoder = HashEncoder(dim=256)
    build_index(load_paths([builtin_corpus_dir()]).speeches, encoder, work / "index")
    settings = Settings(
        home=work / "home", admin_key=ADMIN_KEY, reload_interval_s=0.2, composer="extractive-v1"
    )
    service = AnswerService.open(work / "index", encoder, composer="extractive-v1")
    with AppServer(create_app(settings, service=service)) as server:
        yield server


def test_admin_page_round_trip_against_the_real_admin_api(
    real_api: AppServer, make_tab: Callable[[], Tab]
) -> None:
    tab = make_tab()
    page = tab.page
    page.goto(real_api.base_url + "/admin")
    enter_key(page, ADMIN_KEY)
    expect(tid(page, "admin-status")).to_have_text("已连接。")
    expect(tid(page, "admin-doc-row")).to_have_count(3)  # the built-in corpus
    before = tid(page, "admin-index-version").inner_text()

    tid(page, "admin-field-region").fill("浙江省")
    tid(page, "admin-file-input").set_input_files(
        {"name": "zhejiang.txt", "mimeType": "text/plain", "buffer": DROPPED_TEXT.encode("utf-8")}
    )
    tid(page, "admin-upload").click()
    wait_for_job(page)
    added = row(page, "宁波市政府工作报告")
    expect(added).to_have_count(1)
    expect(added).to_contain_text("浙江省")
    expect(tid(page, "admin-doc-row")).to_have_count(4)
    expect(tid(page, "admin-index-version")).not_to_have_text(before)

    tab.answer_dialogs = True
    tid(added, "admin-delete").click()
    expect(added).to_have_count(0)
    expect(tid(page, "admin-doc-row")).to_have_count(3)
    tab.assert_clean()
