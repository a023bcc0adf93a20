"""Browsing the knowledge base: a passage with its neighbours, the list of speeches."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ServiceDep
from api.errors import ERROR_RESPONSES
from api.schemas import PassageDetailOut, SpeechOut

router = APIRouter(prefix="/v1", tags=["browse"], responses=ERROR_RESPONSES)


@router.get("/passages/{passage_id}", response_model=PassageDetailOut)
def passage(passage_id: str, svc: ServiceDep) -> PassageDetailOut:
    return PassageDetailOut(**svc.passage(passage_id))


@router.get("/speeches", response_model=list[SpeechOut])
def speeches(svc: ServiceDep) -> list[SpeechOut]:
    return [SpeechOut(**s) for s in svc.speeches()]
