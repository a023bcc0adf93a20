"""Probes and metrics: liveness (always open), readiness (open; 503 with the cause until the index is loaded),
Prometheus metrics (open, or behind SPEECHQA_METRICS_TOKEN when that is set)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from api.deps import MetricsToken, ServiceDep
from api.observe import metrics_payload
from api.schemas import ErrorOut

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"model": ErrorOut}})
def readyz(svc: ServiceDep) -> dict:
    return {"status": "ready", "index_version": svc.index_version}


@router.get(
    "/metrics",
    dependencies=[MetricsToken],
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        401: {"model": ErrorOut},
        403: {"model": ErrorOut},
    },
)
def metrics() -> Response:
    body, content_type = metrics_payload()
    return Response(body, media_type=content_type)
