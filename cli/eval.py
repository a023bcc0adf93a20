"""`speechqa eval`: batch evaluation against the gold set, a server, or a public benchmark; compare and gate."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from api.assemble import build_encoder, build_service, open_cache, service_options
from api.settings import Settings
from data.errors import SpeechQAError
from evaluation.backends import (
    Backend,
    HttpBackend,
    ServiceBackend,
    open_benchmark_service,
    temporary_index_dir,
    with_composer,
)
from evaluation.datasets import BENCHMARKS, load_benchmark
from evaluation.gates import Gate, check_gates, compare_summaries, parse_gate
from evaluation.gold import load_gold
from evaluation.report import compare_markdown, summary_markdown, write_outputs
from evaluation.runner import evaluate, load_summary, summarize
from qa.service import AnswerService

EXIT_OK, EXIT_GATE, EXIT_USAGE = 0, 1, 2
DEFAULT_GOLD = Path(__file__).resolve().parents[1] / "data" / "eval" / "gold.jsonl"


def add_eval_parser(subparsers: Any) -> None:
    """Register `eval` on the CLI's subparsers."""
    p = subparsers.add_parser(
        "eval",
        help="evaluate answer quality on a gold set, a running server or a public benchmark",
        description=(
            "Ask every question of a gold JSONL file and measure retrieval, answers, citations, abstention "
            "and latency. Writes results.jsonl, summary.json and report.html to --out. Exit codes: 0 ok, "
            "1 a --fail-under/--fail-over gate was violated, 2 bad input or unreachable server."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "file",
        nargs="?",
        type=Path,
        metavar="FILE",
        help=f"gold JSONL (default: {DEFAULT_GOLD.name} shipped with speechqa)",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--index",
        type=Path,
        metavar="DIR",
        help="index directory to load in-process (default: the configured index)",
    )
    source.add_argument("--url", help="evaluate a running server instead, e.g. http://127.0.0.1:8000")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("eval-out"),
        metavar="DIR",
        help="output directory (default: ./eval-out)",
    )
    p.add_argument(
        "-k",
        "--top-k",
        dest="k",
        type=int,
        default=None,
        metavar="N",
        help="passages to retrieve per question",
    )
    p.add_argument(
        "--concurrency", type=int, default=1, metavar="N", help="questions in flight at once (default 1)"
    )
    p.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"), help="compare two summary.json files")
    p.add_argument(
        "--benchmark",
        choices=list(BENCHMARKS),
        metavar="NAME",
        help="evaluate on a benchmark with its own temporary index: " + ", ".join(BENCHMARKS),
    )
    p.add_argument(
        "--composer",
        metavar="NAME",
        help="answer composer to evaluate (passed to the service as its composer; default: the configured one)",
    )
    p.add_argument(
        "--data",
        type=Path,
        metavar="PATH",
        help="benchmark data: the benchmarks folder, a dataset folder or its file",
    )
    p.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="ask only N questions: the first N, or for cmrc2018-unanswerable a fixed half/half subsample",
    )
    p.add_argument(
        "--fail-under",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="exit 1 if a summary metric is below VALUE, e.g. answer.key_point_recall=0.85 (repeatable)",
    )
    p.add_argument(
        "--fail-over",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="exit 1 if a lower-is-better metric is above VALUE, e.g. abstention.false_refusals=0.1",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run_eval(args: argparse.Namespace, settings: Settings) -> int:
    """Run the `eval` subcommand; returns the exit code."""
    try:
        gates = [parse_gate(s, "under") for s in args.fail_under] + [
            parse_gate(s, "over") for s in args.fail_over
        ]
        problem = _check_args(args)
        if problem:
            return _usage(problem)
        # Fail on a misspelt metric now, not after the whole run.
        check_gates(summarize([]), gates)
        if args.compare is not None:
            return _compare(args.compare[0], args.compare[1], gates)
        settings = with_composer(settings, args.composer)
        summary = _benchmark(args, settings) if args.benchmark else _gold(args, settings)
        return _gate(summary, gates)
    except ValueError as exc:
        return _usage(str(exc))
    except SpeechQAError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.fix:
            print(f"fix: {exc.fix}", file=sys.stderr)
        return EXIT_USAGE


def _check_args(args: argparse.Namespace) -> str | None:
    """What is wrong with a combination of options, or None."""
    if sum(x is not None for x in (args.file, args.compare, args.benchmark)) > 1:
        return "give one of FILE, --compare A B or --benchmark NAME"
    if args.benchmark and (args.index or args.url):
        return "--benchmark builds its own temporary index; --index and --url do not apply"
    if args.composer and args.url:
        return "--composer chooses the in-process service's composer; a server at --url uses its own"
    if args.data is not None and not args.benchmark:
        return "--data is the benchmark data; use it with --benchmark"
    if args.data is not None and not BENCHMARKS[args.benchmark].needs_shared_data:
        return f"{args.benchmark} ships with speechqa; --data applies to the public data sets only"
    if (
        args.concurrency < 1
        or (args.k is not None and args.k < 1)
        or (args.limit is not None and args.limit < 1)
    ):
        return "--concurrency, -k and --limit must be at least 1"
    return None


def _usage(message: str) -> int:
    print(f"speechqa eval: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _compare(a: Path, b: Path, gates: list[Gate]) -> int:
    summary_b = load_summary(b)
    print(f"A = {a}\nB = {b}\n")
    print(compare_markdown(compare_summaries(load_summary(a), summary_b)))
    return _gate(summary_b, gates)


def _gate(summary: dict[str, Any], gates: list[Gate]) -> int:
    violations = check_gates(summary, gates)
    for v in violations:
        print(f"FAIL {v}")
    return EXIT_GATE if violations else EXIT_OK


def _gold(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    gold_file = args.file or DEFAULT_GOLD
    gold = load_gold(gold_file)
    for s in gold.skipped:
        print(f"{gold_file}:{s.line}: skipped: {s.error}", file=sys.stderr)
    k = args.k or settings.top_k
    backend: Backend
    if args.url:
        backend = http = HttpBackend.connect(args.url)
    else:
        http = None
        index_dir = args.index or settings.resolved_index_dir
        backend = ServiceBackend(_open_service(index_dir, settings), source=f"in-process:{index_dir}")
    items = gold.items[: args.limit] if args.limit else gold.items
    try:
        results = evaluate(items, backend, k=k, concurrency=args.concurrency, progress=not args.no_progress)
    finally:
        if http is not None:
            http.close()
    summary = summarize(
        results,
        skipped=gold.skipped,
        k=k,
        source=backend.source,
        index_version=backend.index_version,
        extra={"gold_file": str(gold_file), "composer": args.composer},
    )
    write_outputs(args.out, results, summary)
    print(summary_markdown(summary))
    print(f"\nwrote {args.out}/results.jsonl, summary.json, report.html")
    return summary


def _benchmark(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    bench = load_benchmark(args.benchmark, args.data, limit=args.limit)
    if bench.internal_only:
        print(
            f"WARNING: {bench.name} has no licence to redistribute; internal evaluation only. {bench.licence}"
        )
    k = args.k or settings.top_k
    encoder, cache = build_encoder(settings), open_cache(settings)
    with temporary_index_dir() as tmp:
        service = open_benchmark_service(
            bench.speeches,
            encoder,
            Path(tmp),
            cache=cache,
            progress=None if args.no_progress else f"indexing {bench.name}",
            **service_options(settings),
        )
        backend = ServiceBackend(service, source=f"benchmark:{bench.name}")
        results = evaluate(
            bench.items, backend, k=k, concurrency=args.concurrency, progress=not args.no_progress
        )
        summary = summarize(
            results,
            skipped=bench.skipped,
            k=k,
            source=backend.source,
            index_version=backend.index_version,
            extra={"benchmark": bench.info(), "composer": args.composer},
        )
    write_outputs(args.out, results, summary)
    print(summary_markdown(summary))
    print(f"\nlicence: {bench.licence}")
    print(f"wrote {args.out}/results.jsonl, summary.json, report.html")
    return summary


def _open_service(index_dir: Path, settings: Settings) -> AnswerService:
    return build_service(settings, index_dir, encoder=build_encoder(settings))
