"""The `speechqa` command: ingest, search, ask, serve, speeches, model, eval. Each: parse -> build -> call -> print."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from api.assemble import build_encoder, build_service, open_cache
from api.settings import Settings
from data.convert import Metadata
from data.errors import IndexCorruptedError, IndexNotFoundError, SpeechQAError
from qa.types import Filters

log = logging.getLogger("speechqa")


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings()
    if getattr(args, "index", None):
        settings = settings.model_copy(update={"index_dir": Path(args.index)})
    return settings


class _Progress:
    """Encoding progress on stderr: a tqdm bar (paragraphs/s, ETA) on a terminal, a plain line every
    ``every`` seconds when stderr is a file or pipe (CI logs, `nohup`), nothing when ``quiet``.

    Called as ``progress(done, total)``, the callback qa.index takes."""

    def __init__(
        self, desc: str, *, quiet: bool = False, stream: Any = None, every: float = 5.0, clock: Any = None
    ) -> None:
        self.desc = desc
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self.every = every
        self.clock = clock or time.monotonic
        self.bar: Any = None
        self.started: float | None = None
        self.last_line = 0.0
        self.finished = False

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        if _isatty(self.stream):
            from tqdm import tqdm

            if self.bar is None:
                self.bar = tqdm(
                    total=total, desc=self.desc, unit="para", file=self.stream, dynamic_ncols=True
                )
            self.bar.total = total
            self.bar.n = done
            self.bar.refresh()
            return
        now = self.clock()
        if self.started is None:
            self.started = self.last_line = now
        final = done >= total and not self.finished
        if now - self.last_line >= self.every or final:
            elapsed = max(now - self.started, 1e-9)
            rate = done / elapsed
            eta = (total - done) / rate if rate > 0 else float("inf")
            print(
                f"{self.desc}: {done}/{total} paragraphs, {rate:.1f}/s, "
                f"ETA {_duration(eta)}, elapsed {_duration(elapsed)}",
                file=self.stream,
                flush=True,
            )
            self.last_line, self.finished = now, self.finished or final

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


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
    follow_symlinks: bool = False,
    skip_bad: bool = False,
    overrides: Metadata | None = None,
    quiet: bool = False,
) -> int:
    from data.load import builtin_corpus_dir, load_paths
    from qa import catalog
    from qa.index import add_to_index, build_index, remove_from_index

    started = time.perf_counter()
    index_dir = settings.resolved_index_dir
    if remove:
        encoder = build_encoder(settings, for_ingest=True)
        manifest = remove_from_index(index_dir, list(remove), encoder)
        catalog.forget(index_dir, remove)
        print(f"removed {len(remove)} speech(es); index now holds {dict(manifest.counts)}")
        return 0
    paths = list(paths) or [builtin_corpus_dir()]
    # Files are read before the model is loaded: bad input fails in a second, not after a model load.
    report = load_paths(paths, follow_symlinks=follow_symlinks, skip_bad=skip_bad, overrides=overrides)
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if report.errors:
        for where, reason in report.errors:
            print(f"error: {where}: {reason}", file=sys.stderr)
        print(
            f"error: {len(report.errors)} bad record(s); fix them or pass --skip-bad to skip them",
            file=sys.stderr,
        )
        return 1
    if not report.speeches:
        print("error: no speeches found in " + ", ".join(map(str, paths)), file=sys.stderr)
        return 1
    encoder = build_encoder(settings, for_ingest=True)
    cache = open_cache(settings)
    progress = _Progress("encoding", quiet=quiet)
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
        # Bytes, decoded line by line: one line that is not UTF-8 is reported as a row, the rest still run.
        for lineno, raw in enumerate(sys.stdin.buffer, 1):
            try:
                q = raw.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                row = {"line": lineno, "error": f"line is not valid UTF-8 ({exc.reason} at byte {exc.start})"}
                print(json.dumps({**row, "code": "invalid_utf8"}), flush=True)
                continue
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


def _needs_builtin_index(index_dir: Path) -> bool:
    """True when ``index_dir`` is missing or empty (serve then builds the built-in corpus into it); False for
    a readable index. Anything else raises, so serve never builds over a directory that holds other files."""
    from qa.index import MANIFEST, read_manifest

    try:
        read_manifest(index_dir)
        return False
    except IndexNotFoundError:
        if not index_dir.exists() or (index_dir.is_dir() and not any(index_dir.iterdir())):
            return True
        raise IndexCorruptedError(
            f"{index_dir} is not empty but has no {MANIFEST}; refusing to build the built-in index over it",
            fix="point --index at an index or at a new or empty directory, or rebuild this one with "
            f"`speechqa ingest --index {index_dir}`",
        ) from None


def run_serve(settings: Settings, host: str, port: int, workers: int = 1) -> int:
    """One process (``workers == 1``, the app built here) or ``workers`` uvicorn processes behind one port,
    each building the app from the environment (``api.app:create_app_from_env``)."""
    import shutil
    import tempfile

    import uvicorn

    from api.guard import Guard
    from api.protocol import HeaderTimeoutH11Protocol

    # A malformed key setting is one error line here, not a worker crash loop later.
    try:
        Guard.from_settings(settings)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    index_dir = settings.resolved_index_dir
    if _needs_builtin_index(index_dir):
        print(f"no index at {index_dir}; building it from the built-in corpus", file=sys.stderr)
        code = run_ingest(settings, [])
        if code:
            return code
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        # h11 explicitly (the header-size cap below is h11's; httptools, if installed, would ignore it), with a
        # deadline for the request line and headers, which uvicorn itself does not have.
        "http": HeaderTimeoutH11Protocol,
        "timeout_keep_alive": settings.keep_alive_s,
        # Request line + headers over 16 KiB is a 400 (uvicorn's default is 64 KiB).
        "h11_max_incomplete_event_size": 16 * 1024,
        "access_log": False,  # speechqa.access writes one JSON line per request instead
    }
    if workers <= 1:
        from api.app import create_app
        from api.observe import serve_log_config

        uvicorn.run(create_app(settings), log_config=serve_log_config(), **options)
        return 0
    # The workers read their settings from the environment: carry over what the command line changed, and
    # give prometheus-client a fresh directory to sum the workers' metrics in (set before it is imported).
    os.environ["SPEECHQA_INDEX_DIR"] = str(index_dir)
    if settings.max_concurrent is None:
        # The cores are shared by the workers: N workers with one slot per core each would run N x cores
        # encodes at once and every answer would wait on the others (docs/benchmarks.md).
        os.environ["SPEECHQA_MAX_CONCURRENT"] = str(max(1, (os.cpu_count() or 1) // workers))
    metrics_dir = tempfile.mkdtemp(prefix="speechqa-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        from api.balance import create_balance_file
        from api.observe import serve_log_config
        from cli.workers import ReusePortWorkers, reuse_port_supported

        # Where the workers publish how many clients each serves, to even out keep-alive connections that
        # SO_REUSEPORT's hash split unevenly (api.balance). Beside the metrics, which only read *.db files.
        balance_file = Path(metrics_dir) / "workers.balance"
        create_balance_file(balance_file)
        os.environ["SPEECHQA_BALANCE_FILE"] = str(balance_file)

        worker_options: dict[str, Any] = {
            "factory": True,
            "workers": workers,
            # Loading the model holds the GIL for seconds at a time; uvicorn's default 5 s health check
            # then takes a starting worker for hung and kills it (seen on 2 busy cores).
            "timeout_worker_healthcheck": 60,
            "log_config": serve_log_config(),
            **options,
        }
        if not reuse_port_supported():  # one shared socket, as uvicorn does it
            uvicorn.run("api.app:create_app_from_env", **worker_options)
            return 0
        try:
            supervisor = ReusePortWorkers(uvicorn.Config("api.app:create_app_from_env", **worker_options))
        except OSError as exc:
            print(f"error: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
            return 1
        supervisor.run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def run_speeches(settings: Settings, as_json: bool) -> int:
    from qa.index import list_speeches  # no model: listing needs the index's speech table only

    rows = [
        {
            "speech_id": sp.speech_id,
            "title": sp.title,
            "speaker": sp.speaker,
            "role": sp.role,
            "date": sp.date,
            "paragraphs": n,
        }
        for sp, n in list_speeches(settings.resolved_index_dir)
    ]
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
    target = out or settings.answerability_dir or ARTIFACT_DIR
    # A folder that cannot take the model fails now, not after minutes of training (an OSError: main says it).
    target.mkdir(parents=True, exist_ok=True)
    probe = target / f".write-test-{os.getpid()}"
    probe.write_bytes(b"")
    probe.unlink()
    encoder = build_encoder(settings, for_ingest=True)
    with tempfile.TemporaryDirectory(prefix="speechqa-train-") as work:
        meta = train(
            root,
            encoder,
            Path(work),
            cache=open_cache(settings),
            out_dir=target,
            **({"limit": limit} if limit else {}),
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
    p.add_argument("--region", help="only speeches of this region (e.g. 浙江省, or part of it)")
    p.add_argument("--year-from", type=int, help="only speeches from this year on")
    p.add_argument("--year-to", type=int, help="only speeches up to this year")
    p.add_argument("--date-from", type=_iso_date, help="only speeches on or after this ISO date")
    p.add_argument("--date-to", type=_iso_date, help="only speeches on or before this ISO date")


def _filters(args: argparse.Namespace) -> Filters | None:
    """The search/ask filters the command line gives, or None."""
    values: dict[str, Any] = {
        name: getattr(args, name, None)
        for name in ("speaker", "speech_id", "region", "year_from", "year_to", "date_from", "date_to")
    }
    return Filters(**values) if any(v not in (None, "") for v in values.values()) else None


def _iso_date(value: str) -> str:
    import re

    if not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2025-01-14, 2025-01 or 2025")
    return value


def _overrides(args: argparse.Namespace) -> Metadata:
    values = {k.removeprefix("meta_"): v for k, v in vars(args).items() if k.startswith("meta_") and v}
    return Metadata(**values)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speechqa", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="build (or change) the index from speech files")
    p.add_argument(
        "paths",
        nargs="*",
        type=Path,
        help="files or folders (.txt .md .jsonl .docx .pdf .html .zip); default: built-in corpus",
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
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument(
        "--skip-bad", action="store_true", help="report bad JSONL records and go on (default: fail)"
    )
    p.add_argument(
        "--follow-symlinks", action="store_true", help="read symlinks, also those pointing outside PATHs"
    )
    meta = p.add_argument_group(
        "metadata", "override what the documents state (applies to every speech read)"
    )
    for name in ("title", "speaker", "role", "region", "place"):
        meta.add_argument(f"--{name}", dest=f"meta_{name}", metavar=name.upper())
    meta.add_argument("--date", dest="meta_date", metavar="YYYY[-MM[-DD]]", type=_iso_date)
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
    p.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes behind the port, each with its own model (default: CPU cores; 1 = in-process)",
    )
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
    p.add_argument(
        "--out",
        type=Path,
        help="artifact folder (default: $SPEECHQA_ANSWERABILITY_DIR, else the shipped qa/models/answerability)",
    )
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        help="questions per data set (default: training.answerability.RC_LIMIT)",
    )

    try:
        from cli.eval import add_eval_parser
    except ImportError:  # pragma: no cover - eval is part of the package; tolerate a partial checkout
        pass
    else:
        add_eval_parser(sub)
    return parser


def _invalid_text_arg(args: argparse.Namespace) -> str | None:
    """The name of a text argument that is not valid UTF-8 (Python hands such bytes over as lone surrogates)."""
    for name in ("question", "speaker", "speech_id"):
        value = getattr(args, name, None)
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return name
    return None


def _os_error_line(exc: OSError) -> str:
    """One line for a file-system failure (disk full, permissions) instead of a traceback."""
    where = f" ({exc.filename})" if exc.filename else ""
    hint = {
        errno.ENOSPC: "free some disk space and run the command again; the previous index is left as it was",
        errno.EDQUOT: "free some disk space and run the command again; the previous index is left as it was",
        errno.EACCES: "check that this user may write there, or choose another --index directory",
        errno.EPERM: "check that this user may write there, or choose another --index directory",
        errno.EROFS: "the file system is read-only; choose another --index directory",
    }.get(exc.errno or 0, "")
    return f"error: {exc.strerror or exc}{where}" + (f"; {hint}" if hint else "")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    bad = _invalid_text_arg(args)
    if bad is not None:
        print(f"error: the {bad.replace('_', ' ')} argument is not valid UTF-8", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = _settings(args)
        filters = _filters(args) if args.command in ("search", "ask") else None
        if args.command == "ingest":
            return run_ingest(
                settings,
                args.paths,
                add=args.add,
                remove=args.remove,
                faiss_kind=args.faiss,
                as_json=args.json,
                follow_symlinks=args.follow_symlinks,
                skip_bad=args.skip_bad,
                overrides=_overrides(args),
                quiet=args.quiet,
            )
        if args.command == "search":
            return run_search(settings, args.question, args.k, args.json, filters)
        if args.command == "ask":
            return run_ask(settings, args.question, args.k, args.json, filters)
        if args.command == "serve":
            return run_serve(settings, args.host, args.port, args.workers)
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
    except OSError as exc:
        print(_os_error_line(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
