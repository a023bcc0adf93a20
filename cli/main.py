"""The `speechqa` command: ingest, search, ask, serve, speeches, model, eval. Each: parse -> build -> call -> print."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from api.assemble import build_encoder, build_service, open_cache
from api.settings import Settings
from data.errors import IndexNotFoundError, SpeechQAError
from qa.types import Filters

log = logging.getLogger("speechqa")


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings()
    if getattr(args, "index", None):
        settings = settings.model_copy(update={"index_dir": Path(args.index)})
    return settings


class _Progress:
    """A tqdm bar on stderr, created on the first report so tiny ingests print nothing extra."""

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit="para", file=sys.stderr, disable=None)
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ----------------------------------------------------------------------------------------------------
# ingest


def run_ingest(
    settings: Settings,
    paths: Sequence[Path],
    *,
    add: bool = False,
    remove: Sequence[str] = (),
    faiss_kind: str = "auto",
    as_json: bool = False,
) -> int:
    from data.parse import builtin_corpus_dir, load_paths
    from qa import catalog
    from qa.index import add_to_index, build_index, remove_from_index

    started = time.perf_counter()
    index_dir = settings.resolved_index_dir
    encoder = build_encoder(settings, for_ingest=True)
    if remove:
        manifest = remove_from_index(index_dir, list(remove), encoder)
        catalog.forget(index_dir, remove)
        print(f"removed {len(remove)} speech(es); index now holds {dict(manifest.counts)}")
        return 0
    paths = list(paths) or [builtin_corpus_dir()]
    report = load_paths(paths)
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if not report.speeches:
        print("error: no speeches found in " + ", ".join(map(str, paths)), file=sys.stderr)
        return 1
    cache = open_cache(settings)
    progress = _Progress("encoding")
    try:
        if add:
            manifest = add_to_index(index_dir, report.speeches, encoder, cache=cache, progress=progress)
        else:
            manifest = build_index(
                report.speeches, encoder, index_dir, cache=cache, faiss_kind=faiss_kind, progress=progress
            )
    finally:
        progress.close()
    catalog.record_ingest(index_dir, report.speeches)
    seconds = time.perf_counter() - started
    n_par = sum(len(s.paragraphs) for s in report.speeches)
    summary = {
        "index": str(index_dir),
        "files_read": len(report.files_read),
        "files_skipped": [{"path": p, "reason": r} for p, r in report.skipped],
        "speeches": len(report.speeches),
        "paragraphs": n_par,
        "sentences": sum(len(p.sentences) for s in report.speeches for p in s.paragraphs),
        "encoded_now": manifest.encoded_paragraphs,
        "index_totals": dict(manifest.counts),
        "seconds": round(seconds, 2),
    }
    if as_json:
        print(json.dumps(summary, ensure_ascii=False, indent=1))
    else:
        print(
            f"files read: {summary['files_read']}, skipped: {len(report.skipped)}; "
            f"speeches: {summary['speeches']}, paragraphs: {summary['paragraphs']}, "
            f"sentences: {summary['sentences']} (encoded now: {summary['encoded_now']}); "
            f"{summary['seconds']} s -> {index_dir}"
        )
        if add:
            print(f"index now holds {dict(manifest.counts)}")
    return 0


# ----------------------------------------------------------------------------------------------------
# search / ask


def _passage_json(hit) -> dict:
    return {
        "passage_id": hit.passage_id,
        "text": hit.text,
        "speech_title": hit.speech_title,
        "speaker": hit.speaker,
        "section": hit.section,
        "score": round(hit.score, 6),
    }


def run_search(settings: Settings, question: str, k: int, as_json: bool, filters: Filters | None) -> int:
    service = build_service(settings)
    if question == "-":
        for line in sys.stdin:
            q = line.strip()
            if not q:
                continue
            try:
                hits = service.search(q, k, filters)
                row = {"question": q, "passages": [_passage_json(h) for h in hits]}
            except SpeechQAError as exc:
                row = {"question": q, "error": str(exc), "code": exc.code}
            print(json.dumps(row, ensure_ascii=False), flush=True)
        return 0
    hits = service.search(question, k, filters)
    if as_json:
        print(
            json.dumps(
                {"question": question, "passages": [_passage_json(h) for h in hits]},
                ensure_ascii=False,
                indent=1,
            )
        )
        return 0
    for i, h in enumerate(hits, 1):
        print(f"{i}. [{h.score:.4f}] {h.speaker}《{h.speech_title}》{(' ' + h.section) if h.section else ''}")
        print(f"   {h.text[:160]}{'…' if len(h.text) > 160 else ''}  ({h.passage_id})")
    return 0


def run_ask(settings: Settings, question: str, k: int | None, as_json: bool, filters: Filters | None) -> int:
    service = build_service(settings)
    answer = service.ask(question, k, filters)
    if as_json:
        from api.schemas import AnswerOut

        print(AnswerOut.of(answer).model_dump_json(indent=1))
        return 0
    print(answer.answer)
    if answer.citations:
        print("\n来源：")
        for c in answer.citations:
            role = f"（{c.speaker_role}）" if c.speaker_role else ""
            section = f" · {c.section}" if c.section else ""
            print(f"[{c.n}] {c.speaker}{role}《{c.speech_title}》{section}")
            print(f"    “{c.quote}”")
    elif answer.related:
        print("\n相关段落：")
        for h in answer.related[:3]:
            print(f"- {h.speaker}《{h.speech_title}》：{h.text[:60]}…")
    return 0


# ----------------------------------------------------------------------------------------------------
# serve


def run_serve(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    from api.app import create_app
    from qa.index import read_manifest

    try:
        read_manifest(settings.resolved_index_dir)
    except IndexNotFoundError:
        print(
            f"no index at {settings.resolved_index_dir}; building it from the built-in corpus",
            file=sys.stderr,
        )
        code = run_ingest(settings, [])
        if code:
            return code
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
    return 0


def run_speeches(settings: Settings, as_json: bool) -> int:
    service = build_service(settings)
    rows = service.speeches()
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    else:
        for r in rows:
            print(
                f"{r['speech_id']}  {r['speaker'] or '-'}（{r['role'] or '-'}）《{r['title']}》 {r['paragraphs']} 段"
            )
    return 0


def run_train(settings: Settings, benchmarks: Path | None, out: Path | None, limit: int | None) -> int:
    """Rebuild the answerability model from public data (CMRC2018 trial, DRCD) for the configured model."""
    import tempfile

    from qa.answerability import ARTIFACT_DIR
    from training.answerability import train

    root = benchmarks or _find_benchmarks()
    if root is None:
        print("error: ../shared/benchmarks not found; pass --benchmarks DIR", file=sys.stderr)
        return 2
    encoder = build_encoder(settings, for_ingest=True)
    with tempfile.TemporaryDirectory(prefix="speechqa-train-") as work:
        meta = train(
            root, encoder, Path(work), cache=open_cache(settings), out_dir=out or ARTIFACT_DIR, limit=limit
        )
    print(
        json.dumps(
            {"model_key": meta["model_key"], "seconds": meta["seconds"], **meta["report"]},
            ensure_ascii=False,
            indent=1,
        )
    )
    return 0


def _find_benchmarks() -> Path | None:
    here = Path(__file__).resolve().parent.parent
    for candidate in (Path.cwd() / ".." / "shared" / "benchmarks", here.parent / "shared" / "benchmarks"):
        if (candidate / "drcd").is_dir():
            return candidate.resolve()
    return None


def run_model(settings: Settings) -> int:
    encoder = build_encoder(settings)
    print(f"model ready: {encoder.model_id} (dim {encoder.dim})")
    return 0


# ----------------------------------------------------------------------------------------------------


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--index",
        metavar="DIR",
        help="index directory (default: $SPEECHQA_INDEX_DIR or ~/.cache/speechqa/index)",
    )


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--speaker", help="only speeches by this speaker")
    p.add_argument("--speech", dest="speech_id", help="only this speech id")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speechqa", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="build (or change) the index from speech files")
    p.add_argument(
        "paths", nargs="*", type=Path, help="files or folders (.txt/.md/.jsonl); default: built-in corpus"
    )
    p.add_argument("--add", action="store_true", help="add PATHs to the existing index instead of rebuilding")
    p.add_argument("--remove", nargs="+", metavar="SPEECH_ID", default=(), help="remove speeches by id")
    p.add_argument(
        "--faiss",
        choices=["auto", "flat", "hnsw", "ivf"],
        default="auto",
        help="dense index kind (auto: exact up to 50k paragraphs per segment, IVF above)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_common(p)

    p = sub.add_parser("search", help="retrieve passages for a question ('-' reads one per line from stdin)")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--json", action="store_true")
    _add_filters(p)
    _add_common(p)

    p = sub.add_parser("ask", help="answer a question with citations")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=None)
    p.add_argument("--json", action="store_true")
    _add_filters(p)
    _add_common(p)

    p = sub.add_parser("serve", help="serve the HTTP API and the chat widget")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    _add_common(p)

    p = sub.add_parser("speeches", help="list the indexed speeches")
    p.add_argument("--json", action="store_true")
    _add_common(p)

    sub.add_parser("model", help="convert/load the embedding model now (done by `make install`)")

    p = sub.add_parser(
        "train", help="rebuild the answerability model from public data for the configured embedding model"
    )
    p.add_argument(
        "--benchmarks", type=Path, help="the shared benchmarks folder (default: ../shared/benchmarks)"
    )
    p.add_argument("--out", type=Path, help="artifact folder (default: the shipped qa/models/answerability)")
    p.add_argument("--limit", type=int, help="questions per data set (quick runs)")

    try:
        from cli.eval import add_eval_parser
    except ImportError:  # pragma: no cover - eval is part of the package; tolerate a partial checkout
        pass
    else:
        add_eval_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = _settings(args)
        filters = None
        if getattr(args, "speaker", None) or getattr(args, "speech_id", None):
            filters = Filters(speaker=args.speaker, speech_id=args.speech_id)
        if args.command == "ingest":
            return run_ingest(
                settings,
                args.paths,
                add=args.add,
                remove=args.remove,
                faiss_kind=args.faiss,
                as_json=args.json,
            )
        if args.command == "search":
            return run_search(settings, args.question, args.k, args.json, filters)
        if args.command == "ask":
            return run_ask(settings, args.question, args.k, args.json, filters)
        if args.command == "serve":
            return run_serve(settings, args.host, args.port)
        if args.command == "speeches":
            return run_speeches(settings, args.json)
        if args.command == "model":
            return run_model(settings)
        if args.command == "train":
            return run_train(settings, args.benchmarks, args.out, args.limit)
        if args.command == "eval":
            from cli.eval import run_eval

            return run_eval(args, settings)
    except SpeechQAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
