"""Chinese lexical side: jieba segmentation and a BM25 index over it (bm25s)."""

from __future__ import annotations

import functools
import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

log = logging.getLogger(__name__)

# Function words that carry no topic; kept short on purpose: a question's "哪些/如何" is handled by the composer.
_STOPWORDS = frozenset(
    """的 了 和 与 及 是 在 对 为 把 被 将 等 也 就 都 而 并 或 以 于 之 其 这 那 有 个 着 要 我 我们 你 他 她 它
    中 上 下 里 哪些 哪个 什么 怎么 怎样 如何 为什么 多少 几 吗 呢 吧 啊 请问 讲话 提到 提出 说 谈到 方面 问题
    a an and the of or to in on for is are be with by as at
    是否 哪 谁 何 一 能 会 时候 什么时候 哪年 哪一年 可以 进行 关于 一些 那么 还 又 及其 以及 通过 这个 那个""".split()
)
_TOKEN_OK = re.compile(r"[\w\u3400-\u9fff]")

_jieba_lock = threading.Lock()
_jieba_ready = False


def _jieba():
    global _jieba_ready
    import jieba

    if not _jieba_ready:
        with _jieba_lock:
            if not _jieba_ready:
                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba_ready = True
    return jieba


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def tokenize(text: str) -> list[str]:
    """Segment Chinese text for BM25: search-mode jieba (words plus their sub-words), no stopwords/punctuation."""
    jieba = _jieba()
    out = []
    for tok in jieba.lcut_for_search(normalize(text)):
        tok = tok.strip()
        if not tok or tok in _STOPWORDS or not _TOKEN_OK.search(tok):
            continue
        out.append(tok)
    return out


def words(text: str) -> list[str]:
    """jieba's plain (accurate-mode) segmentation of ``text``, as written: no normalization, nothing dropped."""
    return _jieba().lcut(text)


@functools.lru_cache(maxsize=1024)
def word_edges(text: str) -> tuple[int, ...]:
    """Where the words of ``text`` start and end, by jieba's dictionary (no HMM: a run it does not know is cut
    into characters, so a known name inside it still has edges). Remembered: the places asked about, the unit asked
    for (model features and the writer's count rule) read the same question's edges up to four times an answer."""
    edges = {0}
    for _word, start, end in _jieba().tokenize(text, HMM=False):
        edges.add(start)
        edges.add(end)
    return tuple(sorted(edges))


@functools.lru_cache(maxsize=1024)
def tokenize_question(question: str) -> tuple[str, ...]:
    """``tokenize`` of a question, remembered: retrieval, the composer and the answerability features each
    segment the same question (about 0.1 ms apiece); documents go through ``tokenize`` uncached."""
    return tuple(tokenize(question))


def question_terms(question: str, df: Callable[[str], int]) -> tuple[str, ...]:
    """``tokenize_question``, with the words jieba's HMM invented that the index does not know cut where the
    index's own words are: a run of characters outside jieba's dictionary is cut by its HMM, which glues a name to
    the function word after it or a function word to the word before ("丽泽在北京…" → 丽泽在, "报告说全社会…" →
    说全; the passages, where the same name stands elsewhere in its sentence, have 丽泽 and 全社会). Such a token
    matches no passage: BM25 loses the name and the answer features count a term the corpus never uses, the mark
    of a question the speeches do not answer. A token is cut only when the index knows none of it whole and it
    is not a dictionary word; its longest piece the index knows is kept, a function word at its edge dropped.
    A name the corpus never uses ("孙睿" over another district's speeches) has no known piece and stays.

    Used by BM25 retrieval and the extractive writer. The answerability model's features keep
    ``tokenize_question``, the segmentation it was trained with: retrained on these terms it refused more near
    misses of its validation split (79.9% against 76.6% at 3% answerable refused) but more answerable questions of
    the government dev sets too (docs/answerability.md, "Question terms")."""
    return tuple(_resegmented(tokenize_question(question), df))


# What jieba's HMM makes of a run outside its dictionary: Chinese words of a few characters. Digits and Latin
# ("2022", "GDP") are not its words, and a longer run is left as it is rather than cut by many lookups.
_HMM_WORD = re.compile(r"[\u3400-\u9fff]{2,8}")


def _resegmented(tokens: Sequence[str], df: Callable[[str], int]) -> Iterator[str]:
    freq = _jieba().dt.FREQ
    for tok in tokens:
        if not _HMM_WORD.fullmatch(tok) or freq.get(tok) or df(tok) > 0:
            yield tok
        else:
            yield from _pieces(tok, df)


def _pieces(tok: str, df: Callable[[str], int]) -> list[str]:
    """``tok`` (unknown to the index) cut into the index's words: the longest known piece at either end, the
    rest cut again; a function word (``_STOPWORDS``) at an edge is dropped; else ``tok`` whole."""
    if len(tok) < 2:
        return [] if tok in _STOPWORDS else [tok]
    for k in range(len(tok) - 1, 1, -1):
        if df(tok[:k]) > 0:
            return [tok[:k], *_pieces(tok[k:], df)]
        if df(tok[-k:]) > 0:
            return [*_pieces(tok[:-k], df), tok[-k:]]
    if tok[0] in _STOPWORDS:
        return _pieces(tok[1:], df)
    if tok[-1] in _STOPWORDS:
        return _pieces(tok[:-1], df)
    return [tok]


def warm_up() -> None:
    """Load jieba's dictionaries (words and parts of speech) now rather than on the first request."""
    _jieba()
    import jieba.posseg

    jieba.posseg.lcut("预热")


@functools.lru_cache(maxsize=4096)
def pos_tags(text: str) -> tuple[tuple[str, str], ...]:
    """jieba's (word, part of speech) for ``text``, HMM included (it finds names its dictionary lacks), cached: the
    rules that read names (``names_unasked``) and the model's person feature ask it of the same candidate
    sentences again and again."""
    _jieba()
    import jieba.posseg as pseg

    return tuple((w.word, w.flag) for w in pseg.lcut(text))


def names_unasked(
    question: str,
    text: str,
    flags: tuple[str, ...],
    endings: frozenset[str],
    ending_words: tuple[str, ...] = (),
) -> bool:
    """Whether ``text`` has a word of two characters or more that ``question`` does not, tagged with one of ``flags``
    (jieba's POS prefixes) or ending in one of ``endings`` (characters) or ``ending_words``: the name of a kind of
    thing (someone: ``qa.features.names_someone``; a place: ``qa.places.names_a_place``)."""
    for word, flag in pos_tags(text):
        if len(word) < 2 or word in question:
            continue
        if flag.startswith(flags) or word[-1] in endings or word.endswith(ending_words):
            return True
    return False


def pos_tags_skipping(text: str, skip: Callable[[str], bool]) -> list[tuple[str, str]]:
    """jieba's (word, part of speech) for ``text``, except that a run of characters jieba's dictionary does not
    cover is returned whole with tag ``x`` when ``skip(run)`` holds, instead of being cut and tagged by jieba's
    POS HMM (a pure-Python Viterbi, about 1 ms per question: the slowest step of an answer after the encoder).

    ``skip(run)`` promises that the caller cares about no word inside ``run``: every word the HMM could make of
    it is a substring of it. Dictionary words are tagged exactly as by ``jieba.posseg.lcut``.
    """
    _jieba()
    import jieba.posseg as pseg

    return [(w.word, w.flag) for w in _SkippingTagger(pseg.dt, skip).cut(text)]


def _skipping_tagger_class() -> type:
    import jieba.posseg as pseg

    class SkippingTagger(pseg.POSTokenizer):
        """jieba 0.42's POSTokenizer whose HMM step (``__cut_detail``, name-mangled) is skipped where asked.

        Built per call over the shared tagger's dictionaries (a shallow copy of its attributes), so calls
        from many threads never share ``skip``.
        """

        def __init__(
            self, base: Any, skip: Callable[[str], bool]
        ) -> None:  # no super(): shares base's tables
            self.__dict__.update(base.__dict__)
            self._skip = skip

        def _POSTokenizer__cut_detail(self, sentence: str) -> Iterator[Any]:  # noqa: N802 (jieba's mangled name)
            if self._skip(sentence):
                yield pseg.pair(sentence, "x")
                return
            yield from pseg.POSTokenizer._POSTokenizer__cut_detail(self, sentence)  # type: ignore[attr-defined]

    return SkippingTagger


class _LazyTagger:
    """The tagger class, made on first use so importing this module does not import jieba."""

    _cls: type | None = None

    def __call__(self, base: Any, skip: Callable[[str], bool]) -> Any:
        if self._cls is None:
            self._cls = _skipping_tagger_class()
        return self._cls(base, skip)


_SkippingTagger = _LazyTagger()


class LexicalIndex:
    """BM25 over pre-segmented documents; scores every document so callers can filter and fuse."""

    def __init__(self, retriever: bm25s.BM25, n_docs: int) -> None:
        self._retriever = retriever
        self.n_docs = n_docs

    @classmethod
    def build(cls, docs: Sequence[str]) -> LexicalIndex:
        corpus_tokens = [tokenize(d) or ["<empty>"] for d in docs]
        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every build at DEBUG to stderr
        retriever = bm25s.BM25(k1=1.2, b=0.75)
        retriever.index(corpus_tokens, show_progress=False)
        return cls(retriever, len(docs))

    def save(self, path: Path) -> None:
        self._retriever.save(str(path))

    @classmethod
    def load(cls, path: Path, n_docs: int) -> LexicalIndex:
        retriever = bm25s.BM25.load(str(path), mmap=False)
        return cls(retriever, n_docs)

    def df(self, term: str) -> int:
        """Number of documents containing ``term`` (0 when unknown)."""
        col = self._retriever.vocab_dict.get(term)
        if col is None:
            return 0
        indptr = self._retriever.scores["indptr"]
        return int(indptr[col + 1] - indptr[col])

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for ``query`` (zeros when no query term is known)."""
        tokens = [t for t in tokenize(query) if t in self._retriever.vocab_dict]
        if not tokens:
            return np.zeros(self.n_docs, dtype=np.float32)
        return np.asarray(self._retriever.get_scores(tokens), dtype=np.float32)
