"""Work on a question done ahead (qa/prepare.py): taken once, never stale, never fatal."""

from __future__ import annotations

import logging

from qa import prepare
from qa.prepare import Prepared


def test_a_prepared_result_is_taken_once_then_worked_out_again():
    calls: list[str] = []

    def work(question: str) -> str:
        calls.append(question)
        return question.upper()

    p = Prepared(work)
    p.prepare("abc")
    assert p.take("abc") == "ABC" and calls == ["abc"]
    # The same question again is new work, not the first answer's leftovers.
    assert p.take("abc") == "ABC" and calls == ["abc", "abc"]
    assert p.take("xyz") == "XYZ"  # nothing prepared: done on the spot


def test_results_nobody_takes_are_dropped_oldest_first():
    p = Prepared(str.upper, max_waiting=2)
    for q in ("a", "b", "c"):
        p.prepare(q)
    assert list(p._done) == ["b", "c"]


def test_a_failing_preparation_is_logged_and_the_answer_does_the_work_itself(caplog):
    def broken(question: str) -> None:
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="qa.prepare"):
        prepare.start(broken, "问题").result(timeout=5)  # does not raise
    assert "preparing a question failed" in caplog.text


def test_a_forked_child_prepares_on_threads_of_its_own():
    """``serve --workers N`` forks: the parent's helper threads do not exist in the child."""
    import os

    prepare.start(lambda q: None, "父进程").result(timeout=5)  # the parent's pool exists
    pid = os.fork()
    if pid == 0:  # the child: a prepare must run, not wait forever on threads that are not there
        try:
            prepare.start(lambda q: None, "子进程").result(timeout=5)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
