"""Comparing two summaries and gating a run on thresholds (``--compare``, ``--fail-under``, ``--fail-over``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from data.errors import SpeechQAError
from evaluation.runner import SUMMARY_GROUPS, metric_direction


def metric_paths(summary: Mapping[str, Any]) -> dict[str, float | None]:
    """Every numeric metric of a summary under its dotted path (``answer.key_point_recall``), in reading order."""
    out: dict[str, float | None] = {"n": summary.get("n")}
    for group, keys in SUMMARY_GROUPS.items():
        values = summary.get(group) or {}
        for key in keys:
            out[f"{group}.{key}"] = values.get(key) if isinstance(values, dict) else None
    for name in ("skipped", "errors", "failures"):
        if name in summary:
            out[name] = summary[name]
    # Keep any further numeric values (e.g. latency_ms.mean) addressable for gates.
    for group, values in summary.items():
        if isinstance(values, dict):
            for key, value in values.items():
                path = f"{group}.{key}"
                if (
                    path not in out
                    and (value is None or isinstance(value, int | float))
                    and not isinstance(value, bool)
                ):
                    out[path] = value
    return out


@dataclass(frozen=True, slots=True)
class MetricDelta:
    metric: str
    a: float | None
    b: float | None

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def better(self) -> bool | None:
        """Whether B improves on A (None when equal or unknown)."""
        d, direction = self.delta, metric_direction(self.metric)
        if d is None or abs(d) < 1e-12 or direction is None:
            return None
        return (d < 0) if direction == "lower" else (d > 0)


def compare_summaries(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[MetricDelta]:
    """Each metric of A next to B, for the groups of the summary (and anything numeric both share)."""
    pa, pb = metric_paths(a), metric_paths(b)
    names = [m for m in pa if m in pb or m.split(".")[0] in SUMMARY_GROUPS or m == "n"]
    names += [m for m in pb if m not in names]
    return [MetricDelta(m, pa.get(m), pb.get(m)) for m in names]


@dataclass(frozen=True, slots=True)
class Gate:
    """A threshold on one summary metric: ``under`` fails below it, ``over`` fails above it."""

    metric: str
    threshold: float
    kind: str  # "under" | "over"

    def describe(self) -> str:
        return f"--fail-{self.kind} {self.metric}={self.threshold:g}"


def parse_gate(spec: str, kind: str) -> Gate:
    """``answer.key_point_recall=0.85`` -> Gate; raises ValueError with what is wrong."""
    if kind not in ("under", "over"):
        raise ValueError(f"unknown gate kind {kind!r}")
    metric, sep, value = spec.partition("=")
    if not sep or not metric.strip():
        raise ValueError(f"{spec!r}: expected METRIC=VALUE, e.g. answer.key_point_recall=0.85")
    try:
        threshold = float(value)
    except ValueError:
        raise ValueError(f"{spec!r}: {value!r} is not a number") from None
    return Gate(metric.strip(), threshold, kind)


def check_gates(summary: Mapping[str, Any], gates: Sequence[Gate]) -> list[str]:
    """One message per violated gate, naming the metric; a metric without data fails its gate.

    Raises SpeechQAError for a metric name the summary does not have (a typo must not pass silently).
    """
    paths = metric_paths(summary)
    unknown = [g.metric for g in gates if g.metric not in paths]
    if unknown:
        raise SpeechQAError(
            f"unknown metric {', '.join(unknown)}",
            fix="use a dotted summary path: " + ", ".join(p for p in paths if "." in p),
        )
    violations = []
    for gate in gates:
        value = paths[gate.metric]
        if value is None:
            violations.append(f"{gate.metric} has no data ({gate.describe()})")
        elif gate.kind == "under" and value < gate.threshold:
            violations.append(f"{gate.metric} = {value:g} is under {gate.threshold:g}")
        elif gate.kind == "over" and value > gate.threshold:
            violations.append(f"{gate.metric} = {value:g} is over {gate.threshold:g}")
    return violations
