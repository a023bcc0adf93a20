// ---------- small DOM helpers (text only, never HTML) ----------

function el(tag, attrs, children) {
  var node = document.createElement(tag);
  if (attrs) {
    for (var key in attrs) {
      if (!Object.prototype.hasOwnProperty.call(attrs, key) || attrs[key] == null) continue;
      if (key === "className") node.className = attrs[key];
      else if (key === "text") node.textContent = attrs[key];
      else node.setAttribute(key, attrs[key]);
    }
  }
  (children || []).forEach(function (child) {
    if (child == null) return;
    node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  });
  return node;
}

var SVG_NS = "http://www.w3.org/2000/svg";
var ICONS = {
  chat: ["M4 5.5A2.5 2.5 0 0 1 6.5 3h11A2.5 2.5 0 0 1 20 5.5v8a2.5 2.5 0 0 1-2.5 2.5H10l-4.5 4v-4A2.5 2.5 0 0 1 4 13.5z"],
  close: ["M6 6l12 12", "M18 6L6 18"],
  back: ["M15 5l-7 7 7 7"],
  info: ["M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z", "M12 11v5", "M12 7.5v.5"],
  reset: ["M4 12a8 8 0 1 0 2.3-5.6", "M4 4v4h4"],
};

function icon(name) {
  var svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("fill", "none");
  svg.setAttribute("stroke", "currentColor");
  svg.setAttribute("stroke-width", "2");
  svg.setAttribute("stroke-linecap", "round");
  svg.setAttribute("stroke-linejoin", "round");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  ICONS[name].forEach(function (d) {
    var path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", d);
    svg.appendChild(path);
  });
  return svg;
}

function str(value) {
  return value == null ? "" : String(value);
}

function now() {
  return window.performance && performance.now ? performance.now() : Date.now();
}

// start/end are Python str indices (code points); slice by code points so astral characters cannot shift them.
function splitQuote(text, start, end, quote) {
  var chars = Array.from(text);
  if (typeof start === "number" && typeof end === "number" && start >= 0 && end <= chars.length && start < end) {
    var mid = chars.slice(start, end).join("");
    if (!quote || mid === quote) {
      return [chars.slice(0, start).join(""), mid, chars.slice(end).join("")];
    }
  }
  // Offsets disagree with the quote (should not happen): fall back to locating the quote itself.
  var at = quote ? text.indexOf(quote) : -1;
  if (at >= 0) return [text.slice(0, at), quote, text.slice(at + quote.length)];
  return null;
}
