"""Probes: liveness (always open) and readiness (503 with the cause until the index is loaded)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ServiceDep
from api.schemas import ErrorOut

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"model": ErrorOut}})
def readyz(svc: ServiceDep) -> dict:
    return {"status": "ready", "index_version": svc.index_version}
