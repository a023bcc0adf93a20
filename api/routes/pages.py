"""The demo intranet page and the embeddable widget script."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from api.widget import widget_source

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
def demo() -> FileResponse:
    return FileResponse(STATIC / "demo.html", media_type="text/html; charset=utf-8")


@router.get("/widget.js")
def widget() -> Response:
    return Response(
        widget_source(),
        media_type="application/javascript; charset=utf-8",
        headers={"Cache-Control": "no-cache"},
    )

