"""Where the public benchmark data (``../shared/benchmarks``) is: evaluation reads it, the model export calibrates on it."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def default_data_roots(cwd: Path | None = None) -> list[Path]:
    """Where ``../shared/benchmarks`` may be: relative to the current dir and to the installed package."""
    roots = [(cwd or Path.cwd()) / ".." / "shared" / "benchmarks", REPO / ".." / "shared" / "benchmarks"]
    out: list[Path] = []
    for root in roots:
        resolved = root.resolve()
        if resolved not in out:
            out.append(resolved)
    return out
