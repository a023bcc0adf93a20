// ---------- config: limits, the server's text rules, and the <script> tag's data-* attributes ----------
// RULES and CSS are defined by the assembler (api/widget.py) before this part.

var MAX_QUESTION = 500;
var MAX_HISTORY = 5;
var STALL_MS = 60000; // no bytes from the server for this long counts as a lost connection

// Citation markers as the server writes them ("[1]"), and a trailing piece of one ("[", "[1") that the next
// streamed delta may complete. Both come from the server (data/text.py) so the two cannot drift apart.
var MARKER_SOURCE = RULES.marker;
var MARKER_TAIL = new RegExp(RULES.marker_tail);

var DEFAULTS = {
  title: "讲话问答",
  subtitle: "依据区领导讲话原文作答，点击编号查看出处",
  greeting: "可以就已收录的区领导讲话提问，回答中的编号可点击查看原文出处。资料中没有依据的问题将如实说明。",
  placeholder: "例如：丽泽商务区的交通建设有哪些安排？",
};

var script =
  document.currentScript ||
  (function () {
    // currentScript is null for defer/async/dynamically injected tags; fall back to the tag itself.
    var tags = document.querySelectorAll("script[src]");
    for (var i = tags.length - 1; i >= 0; i--) {
      if (/(^|\/)widget\.js(\?|#|$)/.test(tags[i].getAttribute("src"))) return tags[i];
    }
    return null;
  })();

/** The tag's data-NAME attribute, or `fallback` when it is missing or empty. */
function attr(name, fallback) {
  var value = script ? script.getAttribute("data-" + name) : null;
  return value ? value : fallback;
}

/** data-filter: a JSON object sent as `filters` with every question; anything else is ignored with a warning. */
function parseFilter(raw) {
  if (!raw) return null;
  var value;
  try {
    value = JSON.parse(raw);
  } catch (e) {
    value = undefined;
  }
  if (value && typeof value === "object" && !Array.isArray(value)) return value;
  if (window.console && console.warn) {
    console.warn("speechqa widget: data-filter is not a JSON object, asking without a filter:", raw);
  }
  return null;
}

var scriptOrigin = script && script.src ? new URL(script.src, location.href).origin : location.origin;
var endpoint = attr("endpoint", scriptOrigin).replace(/\/+$/, "");
var title = attr("title", DEFAULTS.title);
var subtitle = attr("subtitle", DEFAULTS.subtitle);
var greeting = attr("greeting", DEFAULTS.greeting);
var placeholder = attr("placeholder", DEFAULTS.placeholder);
var apiKey = attr("api-key", "");
var filter = parseFilter(attr("filter", ""));
var crossOrigin = new URL(endpoint, location.href).origin !== location.origin;
