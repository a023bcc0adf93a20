"""The embeddable widget: its parts in api/static/widget assembled into one script, with the server's text rules."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from data.text import rules_for_clients

WIDGET_DIR = Path(__file__).resolve().parent / "static" / "widget"

# In this order inside one IIFE: each part only uses at load time what an earlier part defined
# (functions are hoisted, so calls between parts at run time are free).
PARTS = ("config.js", "dom.js", "net.js", "render.js", "panel.js", "state.js", "main.js")

_OPEN = """(function () {
"use strict";

if (window.SpeechQAWidget && window.SpeechQAWidget.version) {
  return; // embedded twice: keep the first instance
}

// Set by the server (api/widget.py): the text rules of data/text.py, and the style sheet (no data in it).
var RULES = %s;
var CSS = %s;

"""
_CLOSE = "})();\n"


def marker_tail(marker: str) -> str:
    """The regex for the unfinished end of a citation marker (``[`` or ``[1`` for ``\\[(\\d{1,2})\\]``).

    The widget holds such a tail back until the next streamed delta completes or breaks it. Derived from
    the marker so the two cannot drift; a marker of another shape fails here, at start-up, not in a browser.
    """
    shape = re.fullmatch(r"(\\.|[^\\()])\((\\d)\{1,(\d+)\}\)(\\.|[^\\()])", marker)
    if shape is None:
        raise ValueError(f"cannot derive the partial-marker rule from the marker {marker!r}")
    opening, digit, most, _closing = shape.groups()
    return f"{opening}{digit}{{0,{most}}}$"


def client_rules() -> dict[str, str]:
    """``rules_for_clients()`` plus the partial-marker rule the streaming renderer needs."""
    rules = dict(rules_for_clients())
    rules["marker_tail"] = marker_tail(rules["marker"])
    return rules


@functools.cache
def widget_source() -> str:
    """The widget as served at /widget.js: one script, no build step (read once per process)."""
    header = (WIDGET_DIR / "header.js").read_text(encoding="utf-8")
    css = (WIDGET_DIR / "style.css").read_text(encoding="utf-8")
    # json.dumps escapes every non-ASCII character, so the literals are safe JavaScript in any charset.
    opening = _OPEN % (json.dumps(client_rules(), sort_keys=True), json.dumps(css))
    body = "\n".join((WIDGET_DIR / name).read_text(encoding="utf-8") for name in PARTS)
    return header + opening + body + _CLOSE


__all__ = ["client_rules", "marker_tail", "widget_source"]
