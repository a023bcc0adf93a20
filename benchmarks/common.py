"""Helpers shared by the benchmark scripts: machine description, settings, percentiles, ingest threads."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SPEECHQA_SHARED", REPO.parent / "shared"))


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} thread(s) for queries, {os.cpu_count()} for ingest)"
    )


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]
    )


def setup():
    """(settings, encoder, embedding cache) as the service would assemble them; prints the machine and model."""
    from api.assemble import build_encoder, open_cache
    from api.settings import Settings

    settings = Settings()
    encoder = build_encoder(settings)
    print(f"machine: {machine()}")
    print(f"model: {encoder.model_id}")
    return settings, encoder, open_cache(settings)


@contextlib.contextmanager
def ingest_threads():
    """Run a block with as many torch threads as `speechqa ingest` uses (all cores), then go back."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
