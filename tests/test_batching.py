"""qa.batching: questions announced while waiting for an answer slot are encoded in one batch, correctly."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest

from embeddings.testing import HashEncoder
from qa.batching import QueryBatcher, batched


class Recording(HashEncoder):
    """A HashEncoder that records every call's texts and can be told to fail the next call."""

    def __init__(self, dim: int = 64) -> None:
        super().__init__(dim=dim)
        self.calls: list[list[str]] = []
        self.fail_next = False
        self._lock = threading.Lock()

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            self.calls.append(list(texts))
            if self.fail_next:
                self.fail_next = False
                raise RuntimeError("encoder failed")
        return super().encode_queries(texts)


def alone(text: str) -> np.ndarray:
    return HashEncoder(dim=64).encode_queries([text])[0]


def test_announced_questions_are_encoded_in_one_batch_and_handed_out():
    inner = Recording()
    batcher = QueryBatcher(inner, max_batch=8)
    questions = [f"问题{i}：丽泽商务区" for i in range(5)]
    tickets = [batcher.announce(q) for q in questions]

    first = batcher.encode_queries([questions[0]])
    assert inner.calls == [questions]  # its own first, then the others oldest first
    for q in questions[1:]:
        np.testing.assert_allclose(batcher.encode_queries([q])[0], alone(q), atol=1e-6)
    assert len(inner.calls) == 1  # the rest were ready
    np.testing.assert_allclose(first[0], alone(questions[0]), atol=1e-6)

    for t in tickets:
        batcher.withdraw(t)
    assert batcher.pending() == 0


def test_a_batch_holds_at_most_max_batch_oldest_first():
    inner = Recording()
    batcher = QueryBatcher(inner, max_batch=3)
    questions = [f"q{i}" for i in range(6)]
    for q in questions:
        batcher.announce(q)
    batcher.encode_queries(["q4"])
    assert inner.calls == [["q4", "q0", "q1"]]
    batcher.encode_queries(["q2"])
    assert inner.calls[-1] == ["q2", "q3", "q5"]


def test_unannounced_and_multi_text_calls_go_straight_through():
    inner = Recording()
    batcher = QueryBatcher(inner)
    batcher.announce("waiting")
    batcher.encode_queries(["not announced"])
    batcher.encode_queries(["a", "b"])
    assert inner.calls == [["not announced"], ["a", "b"]]
    assert batcher.encode_passages(["p"]).shape == (1, 64)
    assert batcher.model_id == inner.model_id and batcher.dim == 64


def test_the_same_question_twice_is_one_ticket_until_both_withdraw():
    batcher = QueryBatcher(Recording())
    a, b = batcher.announce("同一个问题"), batcher.announce("同一个问题")
    assert a is b and batcher.pending() == 1
    batcher.withdraw(a)
    assert batcher.pending() == 1
    batcher.withdraw(b)
    assert batcher.pending() == 0


def test_a_failed_batch_raises_for_its_taker_and_the_others_encode_their_own():
    inner = Recording()
    batcher = QueryBatcher(inner)
    batcher.announce("甲")
    batcher.announce("乙")
    inner.fail_next = True
    with pytest.raises(RuntimeError):
        batcher.encode_queries(["甲"])
    np.testing.assert_allclose(batcher.encode_queries(["乙"])[0], alone("乙"), atol=1e-6)
    assert inner.calls[-1][0] == "乙"


def test_concurrent_requests_get_their_own_vectors_in_fewer_calls():
    inner = Recording()
    batcher = QueryBatcher(inner, max_batch=4)
    questions = [f"并发问题{i}" for i in range(16)]
    results: dict[str, np.ndarray] = {}
    start = threading.Barrier(len(questions))

    def request(q: str) -> None:
        ticket = batcher.announce(q)
        start.wait()
        try:
            results[q] = batcher.encode_queries([q])[0]
        finally:
            batcher.withdraw(ticket)

    threads = [threading.Thread(target=request, args=(q,)) for q in questions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sorted(results) == sorted(questions)
    for q in questions:
        np.testing.assert_allclose(results[q], alone(q), atol=1e-6)
    assert sum(len(c) for c in inner.calls) == len(questions)  # each question encoded exactly once
    assert max(len(c) for c in inner.calls) <= 4
    assert batcher.pending() == 0


def test_questions_waiting_for_a_slot_are_batched_over_http_with_unchanged_answers(fake_index_dir):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings
    from qa.index import load_index
    from qa.service import AnswerService

    inner = Recording(dim=256)  # the fake index's encoder (conftest.fake_encoder), recording its calls
    index = load_index(fake_index_dir, inner)
    alone_svc = AnswerService(index, HashEncoder(dim=256), composer="extractive-v1")
    batcher = QueryBatcher(inner)
    svc = AnswerService(index, batcher, composer="extractive-v1")
    questions = [
        "丽泽商务区的地铁16号线什么时候通车？",
        "丰台区的垃圾分类有什么举措？",
        "科技园区有哪些人才政策？",
    ]
    questions += ["区里怎样优化营商环境？", "数字经济发展有什么安排？"]

    with TestClient(create_app(Settings(max_concurrent=1, reload_interval_s=0), service=svc)) as c:
        gate = c.app.state.guard.gate
        c.portal.call(gate.acquire)  # the one slot is busy: every question below waits for it
        replies: dict[str, dict] = {}

        def ask(q: str) -> None:
            replies[q] = c.post("/v1/ask", json={"question": q}).json()

        threads = [threading.Thread(target=ask, args=(q,)) for q in questions]
        for t in threads:
            t.start()
        deadline = threading.Event()
        for _ in range(200):
            if batcher.pending() == len(questions):
                break
            deadline.wait(0.02)
        assert batcher.pending() == len(questions)
        c.portal.call(gate.release)
        for t in threads:
            t.join(timeout=30)

    assert len(inner.calls) == 1 and sorted(inner.calls[0]) == sorted(questions)  # one batch for all five
    for q in questions:
        expected = alone_svc.ask(q)
        assert replies[q]["answer"] == expected.answer
        assert [x["passage_id"] for x in replies[q]["citations"]] == [
            x.passage_id for x in expected.citations
        ]
    assert any(replies[q]["citations"] for q in questions)
    assert batcher.pending() == 0  # every announcement withdrawn once its request ended


def test_only_batch_invariant_encoders_are_batched_and_never_twice():
    class PerBatchQuantized(HashEncoder):
        batch_invariant = False

    plain = PerBatchQuantized()
    assert batched(plain) is plain  # its vectors would depend on batch-mates: left alone
    wrapped = batched(HashEncoder())
    assert isinstance(wrapped, QueryBatcher) and batched(wrapped) is wrapped


def test_a_request_refused_for_want_of_a_slot_withdraws_its_question(fake_index_dir):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings
    from qa.index import load_index
    from qa.service import AnswerService

    inner = Recording(dim=256)
    batcher = QueryBatcher(inner)
    svc = AnswerService(load_index(fake_index_dir, inner), batcher, composer="extractive-v1")
    settings = Settings(max_concurrent=1, queue_wait_s=0.2, reload_interval_s=0)
    with TestClient(create_app(settings, service=svc)) as c:
        gate = c.app.state.guard.gate
        c.portal.call(gate.acquire)
        try:
            r = c.post("/v1/ask", json={"question": "丽泽商务区的地铁什么时候通车？"})
            assert r.status_code == 503 and r.json()["code"] == "overloaded"
            assert batcher.pending() == 0 and inner.calls == []  # nothing left behind, nothing encoded
        finally:
            c.portal.call(gate.release)
        assert c.post("/v1/ask", json={"question": "丽泽商务区的地铁什么时候通车？"}).status_code == 200
    assert batcher.pending() == 0
