"""The demo intranet page, the embeddable widget script and the admin page."""

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


@router.get("/admin")
def admin() -> FileResponse:
    return FileResponse(
        STATIC / "admin.html", media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"}
    )


@router.get("/admin.js")
def admin_script() -> FileResponse:
    return _asset("admin.js", "application/javascript; charset=utf-8")


@router.get("/admin.css")
def admin_style() -> FileResponse:
    return _asset("admin.css", "text/css; charset=utf-8")


def _asset(name: str, media_type: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type=media_type, headers={"Cache-Control": "no-cache"})
