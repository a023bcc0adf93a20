"""The knowledge base over HTTP (/v1/admin): list, upload (a background job), remove, and ask with the admin key.

Every route here needs SPEECHQA_ADMIN_KEY (router-level ``AdminDep``); without one configured they are 404.
"""

from __future__ import annotations

import shutil
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from api.deps import AdminDep
from api.errors import ERROR_RESPONSES
from api.knowledge import METADATA_FIELDS, KnowledgeBase
from api.routes.qa import ask
from api.schemas import AnswerOut, DocumentsOut, ErrorOut, JobCreatedOut, JobOut, RemovedOut
from api.uploads import FILE_FIELD, receive_upload
from data.errors import NotReadyError

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[AdminDep],
    responses={
        **ERROR_RESPONSES,
        401: {"model": ErrorOut, "description": "no admin key was sent"},
        403: {"model": ErrorOut, "description": "the key sent is not the admin key"},
    },
)


def get_knowledge(request: Request) -> KnowledgeBase:
    kb = getattr(request.app.state, "knowledge", None)
    if kb is None:
        raise NotReadyError("the knowledge base is not available: the embedding model did not load")
    return kb


KnowledgeDep = Annotated[KnowledgeBase, Depends(get_knowledge)]

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {
                        FILE_FIELD: {"type": "array", "items": {"type": "string", "format": "binary"}},
                        **{name: {"type": "string"} for name in sorted(METADATA_FIELDS)},
                    },
                }
            }
        },
    }
}


@router.get("/documents", response_model=DocumentsOut)
def documents(kb: KnowledgeDep) -> DocumentsOut:
    """The speeches of the index version serving now, with when each was ingested."""
    return DocumentsOut(**kb.documents())


@router.post(
    "/documents",
    status_code=202,
    response_model=JobCreatedOut,
    openapi_extra=_UPLOAD_BODY,
    responses={413: {"model": ErrorOut, "description": "a file or the request is over the size limit"}},
)
async def upload(request: Request, kb: KnowledgeDep) -> JobCreatedOut:
    """Add (or replace, same title and speaker) speeches from uploaded files; poll the job it returns.
    Form fields title/speaker/role/date/region override what the documents state."""
    folder = kb.new_upload_dir()
    try:
        received = await receive_upload(request, folder, kb.limits, METADATA_FIELDS)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return JobCreatedOut(job_id=kb.submit_upload(received, folder).job_id)


@router.get("/jobs/{job_id}", response_model=JobOut)
def job(job_id: str, kb: KnowledgeDep) -> JobOut:
    return JobOut(**kb.job(job_id).view())


@router.delete("/documents/{speech_id}", response_model=RemovedOut)
def remove(speech_id: str, kb: KnowledgeDep) -> RemovedOut:
    """Remove a speech; when this returns, the server answers from the index without it."""
    return RemovedOut(**kb.remove(speech_id))


# The same handler as POST /v1/ask, so the admin page can try a question with the admin key alone.
router.add_api_route("/ask", ask, methods=["POST"], response_model=AnswerOut, name="admin_ask")
