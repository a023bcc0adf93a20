/*
 * speechqa widget: a chat panel that answers questions about district speeches with cited sources.
 *
 * Embed with one tag:
 *   <script src="https://HOST/widget.js" data-endpoint="https://HOST" data-title="讲话问答"></script>
 * data-endpoint defaults to the script's own origin. No build step, no dependencies, no remote assets.
 *
 * Everything renders inside an open Shadow DOM so the host page's CSS cannot leak in (or ours out).
 * Every string that comes from the server or the corpus is inserted with textContent/createTextNode;
 * nothing here ever writes HTML from data.
 *
 * Host pages and tests may use window.SpeechQAWidget = {open(), close(), ask(text), reset(), lastTimings}.
 */
(function () {
  "use strict";

  if (window.SpeechQAWidget && window.SpeechQAWidget.version) {
    return; // embedded twice: keep the first instance
  }

  var MAX_QUESTION = 500;
  var MAX_HISTORY = 5;
  var STALL_MS = 60000; // no bytes from the server for this long counts as a lost connection
  var PLACEHOLDER = "例如：丽泽商务区的交通建设有哪些安排？";

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
  var scriptOrigin = script && script.src ? new URL(script.src, location.href).origin : location.origin;
  var endpoint = ((script && script.getAttribute("data-endpoint")) || scriptOrigin).replace(/\/+$/, "");
  var title = (script && script.getAttribute("data-title")) || "讲话问答";
  var crossOrigin = new URL(endpoint, location.href).origin !== location.origin;

  // Static style sheet (no data in it).
  var CSS = [
    ":host { all: initial; }",
    "*, *::before, *::after { box-sizing: border-box; }",
    ".root { position: fixed; right: 24px; bottom: 24px; z-index: 2147483000;",
    "  font-family: system-ui, -apple-system, 'PingFang SC', 'Hiragino Sans GB', 'Microsoft YaHei',",
    "    'Noto Sans CJK SC', 'Noto Sans SC', 'Source Han Sans SC', 'WenQuanYi Micro Hei', sans-serif;",
    "  font-size: 14px; line-height: 1.6; color: #1f2733; -webkit-font-smoothing: antialiased; }",
    "button, textarea { font: inherit; color: inherit; }",
    "button { cursor: pointer; }",
    ":focus-visible { outline: 2px solid #2563eb; outline-offset: 2px; }",
    ".launcher { display: flex; align-items: center; gap: 8px; height: 52px; padding: 0 20px 0 16px;",
    "  border: 0; border-radius: 26px; background: #b3261e; color: #fff; font-size: 15px; font-weight: 600;",
    "  letter-spacing: .5px; box-shadow: 0 6px 20px rgba(120, 20, 20, .35); }",
    ".launcher:hover { background: #99201a; }",
    ".launcher svg { width: 22px; height: 22px; flex: none; }",
    ".launcher[aria-expanded='true'] { display: none; }",
    ".panel { position: absolute; right: 0; bottom: 0; width: 400px; height: min(640px, calc(100vh - 48px));",
    "  display: flex; flex-direction: column; overflow: hidden; background: #fff; border-radius: 14px;",
    "  box-shadow: 0 12px 40px rgba(15, 23, 42, .28), 0 0 0 1px rgba(15, 23, 42, .06); }",
    ".panel[hidden] { display: none; }",
    ".head { display: flex; align-items: center; gap: 8px; padding: 12px 12px 12px 16px; background: #b3261e;",
    "  color: #fff; flex: none; }",
    ".head-text { flex: 1; min-width: 0; }",
    ".head h2 { margin: 0; font-size: 16px; font-weight: 600; line-height: 1.4; }",
    ".head p { margin: 0; font-size: 12px; opacity: .85; }",
    ".icon-btn { border: 0; background: transparent; color: inherit; border-radius: 8px; padding: 6px 8px;",
    "  font-size: 13px; line-height: 1; display: inline-flex; align-items: center; gap: 4px; }",
    ".head .icon-btn:hover { background: rgba(255, 255, 255, .16); }",
    ".head .icon-btn:focus-visible { outline-color: #fff; }",
    ".icon-btn svg { width: 18px; height: 18px; }",
    ".body { position: relative; flex: 1; min-height: 0; display: flex; flex-direction: column; }",
    ".log { flex: 1; min-height: 0; overflow-y: auto; padding: 16px; display: flex; flex-direction: column;",
    "  gap: 14px; background: #f6f7f9; overscroll-behavior: contain; }",
    ".welcome { color: #4b5563; font-size: 13px; background: #fff; border: 1px solid #e5e7eb; border-radius: 10px;",
    "  padding: 10px 12px; }",
    ".welcome strong { color: #1f2733; }",
    ".msg { max-width: 88%; padding: 10px 12px; border-radius: 12px; white-space: pre-wrap; word-break: break-word; }",
    ".msg.user { align-self: flex-end; background: #b3261e; color: #fff; border-bottom-right-radius: 4px; }",
    ".msg.bot { align-self: flex-start; background: #fff; border: 1px solid #e5e7eb; border-bottom-left-radius: 4px;",
    "  max-width: 94%; }",
    ".msg.bot[data-state='streaming'] .answer:empty::before { content: '正在检索讲话资料…'; color: #6b7280; }",
    ".msg.bot .answer:empty { display: none; }",
    ".msg.bot[data-state='streaming'] .answer:empty { display: block; }",
    ".cite { white-space: nowrap; }",
    ".msg.bot[data-state='streaming'] .answer:not(:empty)::after { content: ''; display: inline-block; width: 7px;",
    "  height: 15px; margin-left: 2px; vertical-align: -2px; background: #b3261e; animation: blink 1s steps(2) infinite; }",
    "@keyframes blink { 50% { opacity: 0; } }",
    ".chip { display: inline-flex; align-items: center; justify-content: center; min-width: 20px; height: 20px;",
    "  margin: 0 2px; padding: 0 5px; vertical-align: 2px; border: 1px solid #f1b8b4; border-radius: 10px;",
    "  background: #fdecea; color: #99201a; font-size: 12px; font-weight: 600; line-height: 1; }",
    ".chip:hover:not(:disabled) { background: #b3261e; border-color: #b3261e; color: #fff; }",
    ".chip:disabled { cursor: default; opacity: .6; }",
    ".sources { margin-top: 8px; padding-top: 8px; border-top: 1px dashed #e5e7eb; font-size: 12px; color: #6b7280;",
    "  white-space: normal; }",
    ".sources ol { margin: 4px 0 0; padding: 0; list-style: none; display: flex; flex-direction: column; gap: 2px; }",
    ".src-link { display: block; width: 100%; text-align: left; border: 0; background: transparent; padding: 2px 0;",
    "  color: #374151; font-size: 12px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }",
    ".src-link:hover { color: #b3261e; }",
    ".src-link b { color: #99201a; font-weight: 600; margin-right: 4px; }",
    ".refusal { display: flex; gap: 10px; align-items: flex-start; background: #f3f4f6; border: 1px solid #e5e7eb;",
    "  border-radius: 10px; padding: 10px 12px; color: #4b5563; white-space: normal; }",
    ".refusal svg { width: 20px; height: 20px; flex: none; color: #6b7280; margin-top: 1px; }",
    ".refusal strong { display: block; color: #374151; font-weight: 600; }",
    ".refusal p { margin: 2px 0 0; font-size: 13px; }",
    ".msg.bot.refused { background: transparent; border: 0; padding: 0; max-width: 94%; }",
    ".related { margin-top: 8px; font-size: 12px; color: #6b7280; white-space: normal; }",
    ".related h3 { margin: 0 0 4px; font-size: 12px; font-weight: 600; color: #4b5563; }",
    ".related ul { margin: 0; padding: 0; list-style: none; display: flex; flex-direction: column; gap: 6px; }",
    ".rel-item { display: block; width: 100%; text-align: left; border: 1px solid #e5e7eb; background: #fff;",
    "  border-radius: 8px; padding: 6px 8px; font-size: 12px; color: #374151; }",
    ".rel-item:hover { border-color: #f1b8b4; }",
    ".rel-item .rel-meta { display: block; color: #6b7280; margin-bottom: 2px; }",
    ".error { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; padding: 8px 10px;",
    "  border-radius: 8px; background: #fff4e5; border: 1px solid #f5c98b; color: #8a4b08; font-size: 13px;",
    "  white-space: normal; }",
    ".answer + .error, .answer + .note { margin-top: 6px; }",
    ".error .err-text { flex: 1; min-width: 150px; }",
    ".error .err-detail { display: block; font-size: 12px; opacity: .8; }",
    ".retry { border: 1px solid #d97706; background: #fff; color: #8a4b08; border-radius: 6px; padding: 3px 12px;",
    "  font-size: 13px; }",
    ".retry:hover { background: #d97706; color: #fff; }",
    ".note { display: block; margin-top: 6px; font-size: 12px; color: #6b7280; white-space: normal; }",
    ".note .retry { margin-left: 8px; padding: 1px 10px; font-size: 12px; }",
    ".composer { flex: none; display: flex; gap: 8px; align-items: flex-end; padding: 10px 12px 6px;",
    "  border-top: 1px solid #e5e7eb; background: #fff; }",
    ".composer textarea { flex: 1; min-height: 40px; max-height: 120px; resize: none; padding: 9px 10px;",
    "  border: 1px solid #d1d5db; border-radius: 10px; background: #fff; line-height: 1.5; outline: none; }",
    ".composer textarea:focus { border-color: #b3261e; box-shadow: 0 0 0 3px rgba(179, 38, 30, .15); }",
    ".composer textarea::placeholder { color: #9ca3af; }",
    ".send, .stop { flex: none; height: 40px; padding: 0 16px; border: 0; border-radius: 10px; font-weight: 600; }",
    ".send { background: #b3261e; color: #fff; }",
    ".send:hover:not(:disabled) { background: #99201a; }",
    ".send:disabled { background: #e5a8a4; cursor: default; }",
    ".stop { background: #fff; color: #374151; border: 1px solid #d1d5db; }",
    ".stop:hover { background: #f3f4f6; }",
    ".stop[hidden], .send[hidden] { display: none; }",
    ".foot { flex: none; display: flex; justify-content: space-between; gap: 8px; padding: 0 14px 8px;",
    "  background: #fff; font-size: 11px; color: #9ca3af; }",
    ".count.warn { color: #b3261e; }",
    ".source { position: absolute; inset: 0; display: flex; flex-direction: column; background: #fff; }",
    ".source[hidden] { display: none; }",
    ".source-bar { flex: none; display: flex; align-items: center; gap: 8px; padding: 8px 12px;",
    "  border-bottom: 1px solid #e5e7eb; }",
    ".source-bar .icon-btn { color: #b3261e; }",
    ".source-bar .icon-btn:hover { background: #fdecea; }",
    ".source-bar h3 { margin: 0; font-size: 14px; font-weight: 600; outline: none; }",
    ".source-scroll { flex: 1; min-height: 0; overflow-y: auto; padding: 14px 16px 18px; }",
    ".meta { margin: 0 0 12px; display: grid; grid-template-columns: auto 1fr; gap: 4px 10px; font-size: 13px; }",
    ".meta dt { color: #6b7280; }",
    ".meta dd { margin: 0; color: #1f2733; }",
    ".meta .role { color: #6b7280; }",
    ".passage { margin: 0; padding: 12px 14px; border-left: 3px solid #b3261e; background: #fafafa; border-radius: 0 8px 8px 0;",
    "  font-size: 14px; line-height: 1.85; white-space: pre-wrap; word-break: break-word; }",
    ".passage mark { background: #ffe58f; color: inherit; padding: 1px 0; border-radius: 2px;",
    "  box-shadow: 0 0 0 2px #ffe58f; }",
    ".context { margin: 8px 0; padding: 8px 14px; color: #6b7280; font-size: 13px; line-height: 1.8;",
    "  border-left: 3px solid #e5e7eb; white-space: pre-wrap; word-break: break-word; }",
    ".ctx-nav { display: flex; gap: 8px; margin: 10px 0 0; }",
    ".ctx-nav button { border: 1px solid #d1d5db; background: #fff; border-radius: 6px; padding: 3px 10px;",
    "  font-size: 12px; color: #374151; }",
    ".ctx-nav button:hover { border-color: #b3261e; color: #b3261e; }",
    ".ctx-nav button[hidden] { display: none; }",
    ".quote-note { margin: 10px 0 0; font-size: 12px; color: #6b7280; }",
    ".sr-only { position: absolute; width: 1px; height: 1px; margin: -1px; overflow: hidden; clip: rect(0 0 0 0);",
    "  white-space: nowrap; border: 0; }",
    "@media (max-width: 480px) {",
    "  .root { right: 16px; bottom: 16px; }",
    "  .root.open { inset: 0; }",
    "  .panel { position: fixed; inset: 0; width: 100%; height: 100%; border-radius: 0; }",
    "  .composer textarea { font-size: 16px; }", // 16px stops iOS Safari from zooming on focus
    "  .msg { max-width: 92%; }",
    "  .head p { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }",
    "  .head .icon-btn span { display: none; }",
    "  .foot .hint { display: none; }",
    "}",
    "@media (prefers-reduced-motion: reduce) { .msg.bot[data-state='streaming'] .answer:not(:empty)::after { animation: none; } }",
  ].join("\n");

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

  // ---------- SSE over fetch ----------

  function parseEvent(block) {
    var name = "message";
    var data = [];
    block.split(/\r\n|\r|\n/).forEach(function (line) {
      if (!line || line.charAt(0) === ":") return;
      var colon = line.indexOf(":");
      var field = colon < 0 ? line : line.slice(0, colon);
      var value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    });
    if (!data.length) return null;
    return { name: name, data: data.join("\n") };
  }

  function WidgetError(kind, message, detail) {
    this.kind = kind; // "http" | "network" | "server" | "lost" | "stall"
    this.message = message;
    this.detail = detail || "";
  }

  function httpError(res) {
    return res
      .json()
      .catch(function () {
        return {};
      })
      .then(function (body) {
        var msg;
        if (res.status === 422) msg = "问题需为 1–" + MAX_QUESTION + " 个字，请修改后再试。";
        else if (res.status === 429) msg = "提问过于频繁，请稍后再试。";
        else if (res.status === 503) msg = "问答服务正在启动，请稍后重试。";
        else msg = "问答服务暂时出现问题（" + res.status + "）。";
        throw new WidgetError("http", msg, str(body && body.detail));
      });
  }

  /** POST the question and call onEvent(name, data) for each SSE event; resolves when the stream ends. */
  function streamAsk(payload, signal, onEvent, onStall) {
    return fetch(endpoint + "/v1/ask/stream", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(payload),
      signal: signal,
      credentials: "omit",
      cache: "no-store",
    }).then(function (res) {
      if (!res.ok) return httpError(res);
      if (!res.body || !res.body.getReader) {
        throw new WidgetError("network", "当前浏览器不支持流式回答。");
      }
      var reader = res.body.getReader();
      var decoder = new TextDecoder("utf-8");
      var buffer = "";
      var stallTimer = null;
      function armStall() {
        clearTimeout(stallTimer);
        stallTimer = setTimeout(onStall, STALL_MS);
      }
      function drain(final) {
        // Events end with a blank line; keep the unfinished tail for the next chunk.
        var parts = buffer.split(/\r\n\r\n|\n\n|\r\r/);
        buffer = final ? "" : parts.pop();
        parts.forEach(function (block) {
          var ev = parseEvent(block);
          if (!ev) return;
          var data;
          try {
            data = JSON.parse(ev.data);
          } catch (e) {
            return; // not ours; ignore rather than break the answer
          }
          onEvent(ev.name, data);
        });
      }
      function pump() {
        armStall();
        return reader.read().then(function (chunk) {
          if (chunk.done) {
            clearTimeout(stallTimer);
            buffer += decoder.decode();
            drain(true);
            return;
          }
          buffer += decoder.decode(chunk.value, { stream: true });
          drain(false);
          return pump();
        }, function (err) {
          clearTimeout(stallTimer);
          throw err;
        });
      }
      return pump();
    });
  }

  // ---------- widget ----------

  var host = el("div", { id: "speechqa-widget", "data-speechqa": "" });
  var shadow = host.attachShadow({ mode: "open" });
  shadow.appendChild(el("style", { text: CSS }));

  var root = el("div", { className: "root" });
  shadow.appendChild(root);

  var launcher = el(
    "button",
    {
      type: "button",
      className: "launcher",
      "data-testid": "speechqa-launcher",
      "aria-label": "打开" + title,
      "aria-expanded": "false",
      "aria-controls": "speechqa-panel",
      "aria-haspopup": "dialog",
    },
    [icon("chat"), el("span", { text: title })]
  );

  var titleId = "speechqa-title";
  var resetBtn = el(
    "button",
    { type: "button", className: "icon-btn", "data-testid": "speechqa-reset", "aria-label": "开始新对话", title: "开始新对话" },
    [icon("reset"), el("span", { text: "新对话" })]
  );
  var closeBtn = el(
    "button",
    { type: "button", className: "icon-btn", "data-testid": "speechqa-close", "aria-label": "关闭", title: "关闭（Esc）" },
    [icon("close")]
  );
  var head = el("div", { className: "head" }, [
    el("div", { className: "head-text" }, [
      el("h2", { id: titleId, text: title }),
      el("p", { text: "依据区领导讲话原文作答，点击编号查看出处" }),
    ]),
    resetBtn,
    closeBtn,
  ]);

  var log = el("div", {
    className: "log",
    role: "log",
    "aria-live": "polite",
    "aria-relevant": "additions",
    "aria-label": "对话记录",
    "data-testid": "speechqa-log",
    tabindex: "0",
  });

  function welcome() {
    return el("div", { className: "welcome" }, [
      el("strong", { text: "您好！" }),
      "可以就已收录的区领导讲话提问，回答中的编号可点击查看原文出处。资料中没有依据的问题将如实说明。",
    ]);
  }
  log.appendChild(welcome());

  var sourceHeading = el("h3", { tabindex: "-1", text: "来源" });
  var sourceBack = el(
    "button",
    { type: "button", className: "icon-btn", "data-testid": "speechqa-source-back", "aria-label": "返回对话" },
    [icon("back"), el("span", { text: "返回" })]
  );
  var sourceScroll = el("div", { className: "source-scroll" });
  var sourceView = el(
    "section",
    { className: "source", hidden: "", "data-testid": "speechqa-source", "aria-label": "引用来源" },
    [el("div", { className: "source-bar" }, [sourceBack, sourceHeading]), sourceScroll]
  );

  var input = el("textarea", {
    rows: "1",
    placeholder: PLACEHOLDER,
    maxlength: String(MAX_QUESTION),
    "aria-label": "输入问题",
    "data-testid": "speechqa-input",
    enterkeyhint: "send",
  });
  var sendBtn = el("button", { type: "submit", className: "send", "data-testid": "speechqa-send", text: "发送" });
  var stopBtn = el("button", {
    type: "button",
    className: "stop",
    hidden: "",
    "data-testid": "speechqa-stop",
    text: "停止",
    "aria-label": "停止生成",
  });
  var composer = el("form", { className: "composer", "aria-label": "提问" }, [input, sendBtn, stopBtn]);
  var counter = el("span", { className: "count", "aria-hidden": "true", text: "0/" + MAX_QUESTION });
  var foot = el("div", { className: "foot" }, [el("span", { className: "hint", text: "Enter 发送，Shift+Enter 换行" }), counter]);

  var panel = el(
    "div",
    {
      id: "speechqa-panel",
      className: "panel",
      role: "dialog",
      "aria-label": title,
      hidden: "",
      "data-testid": "speechqa-panel",
    },
    [head, el("div", { className: "body" }, [log, sourceView]), composer, foot]
  );

  root.appendChild(panel);
  root.appendChild(launcher);

  // ---------- state ----------

  var history = []; // questions that got an answer (or a refusal), oldest first
  var current = null; // the turn being streamed: {controller, msg, ...}
  var sourceOpener = null; // element to refocus when the source view closes
  var api = {
    version: "1",
    endpoint: endpoint,
    lastTimings: null,
  };

  function isOpen() {
    return !panel.hasAttribute("hidden");
  }

  function open() {
    if (!host.isConnected) mount();
    panel.removeAttribute("hidden");
    root.classList.add("open");
    launcher.setAttribute("aria-expanded", "true");
    if (sourceView.hasAttribute("hidden")) input.focus();
    else sourceHeading.focus();
  }

  function close() {
    closeSource(false);
    panel.setAttribute("hidden", "");
    root.classList.remove("open");
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }

  function nearBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  }

  function scrollToBottom(force) {
    if (force || nearBottom()) log.scrollTop = log.scrollHeight;
  }

  function setBusy(busy) {
    sendBtn.hidden = busy;
    stopBtn.hidden = !busy;
    // Screen readers announce the finished answer once instead of every streamed fragment.
    log.setAttribute("aria-busy", busy ? "true" : "false");
    updateSend();
  }

  function updateSend() {
    var len = Array.from(input.value).length;
    counter.textContent = len + "/" + MAX_QUESTION;
    counter.classList.toggle("warn", len > MAX_QUESTION - 50);
    sendBtn.disabled = !input.value.trim() || !!current;
  }

  function autosize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 120) + "px";
  }

  // ---------- messages ----------

  function addUserMessage(text) {
    var msg = el("div", { className: "msg user", "data-testid": "speechqa-message", "data-role": "user" });
    msg.textContent = text;
    log.appendChild(msg);
    scrollToBottom(true);
    return msg;
  }

  function addBotMessage() {
    var msg = el("div", {
      className: "msg bot",
      "data-testid": "speechqa-message",
      "data-role": "assistant",
      "data-state": "streaming",
    });
    log.appendChild(msg);
    scrollToBottom(true);
    return msg;
  }

  /** Renders streamed answer text into `target`, turning complete [n] markers into chip buttons. */
  function AnswerRenderer(target, onFirstText) {
    this.target = target;
    this.pending = "";
    this.text = "";
    this.chips = [];
    this.onFirstText = onFirstText;
  }

  AnswerRenderer.prototype.push = function (text) {
    this.text += text;
    this.pending += text;
    var out = this.pending;
    // Hold back a trailing "[" or "[12" that may become a marker once the next delta arrives.
    var tail = /\[\d{0,3}$/.exec(out);
    var ready = tail ? out.slice(0, tail.index) : out;
    this.pending = tail ? out.slice(tail.index) : "";
    this.emit(ready);
  };

  AnswerRenderer.prototype.finish = function () {
    var rest = this.pending;
    this.pending = "";
    this.emit(rest);
  };

  // Closing punctuation that must not start a line after a chip ("…通车[1]。").
  var CLOSERS = /^[。，、；：！？）」』》”’．,.;:!?)\]]+/;

  AnswerRenderer.prototype.text_ = function (text) {
    var last = this.target.lastChild;
    if (last && last.nodeType === 1 && last.className === "cite") {
      var m = CLOSERS.exec(text);
      if (m) {
        last.appendChild(document.createTextNode(m[0]));
        text = text.slice(m[0].length);
      }
    }
    if (text) this.target.appendChild(document.createTextNode(text));
  };

  AnswerRenderer.prototype.emit = function (chunk) {
    if (!chunk) return;
    var re = /\[(\d{1,3})\]/g;
    var last = 0;
    var m;
    var wroteText = false;
    while ((m = re.exec(chunk))) {
      if (m.index > last) {
        this.text_(chunk.slice(last, m.index));
        wroteText = true;
      }
      var n = parseInt(m[1], 10);
      var chip = el("button", {
        type: "button",
        className: "chip",
        "data-testid": "speechqa-chip",
        "data-n": String(n),
        "aria-label": "来源 " + n,
        disabled: "",
        text: String(n),
      });
      this.chips.push(chip);
      var prev = this.target.lastChild;
      if (prev && prev.nodeType === 1 && prev.className === "cite" && prev.lastChild && prev.lastChild.nodeType === 1) {
        prev.appendChild(chip); // "[1][2]": keep adjacent chips together
      } else {
        // Take the preceding character along so a chip never starts a line on its own.
        var glue = "";
        if (prev && prev.nodeType === 3 && prev.data) {
          var cut = /[\uDC00-\uDFFF]$/.test(prev.data) ? 2 : 1;
          glue = prev.data.slice(-cut);
          prev.data = prev.data.slice(0, -cut);
          if (!prev.data) this.target.removeChild(prev);
        }
        this.target.appendChild(el("span", { className: "cite" }, [glue || null, chip]));
      }
      last = re.lastIndex;
    }
    if (last < chunk.length) {
      this.text_(chunk.slice(last));
      wroteText = true;
    }
    if (wroteText && this.onFirstText) {
      var cb = this.onFirstText;
      this.onFirstText = null;
      cb();
    }
  };

  function citationLabel(c) {
    return "来源 " + c.n + "：" + (str(c.speech_title) || "讲话");
  }

  function wireChips(turn, citations) {
    var byN = {};
    citations.forEach(function (c) {
      byN[c.n] = c;
    });
    turn.renderer.chips.forEach(function (chip) {
      var c = byN[parseInt(chip.getAttribute("data-n"), 10)];
      if (!c) {
        // A marker without a citation (the server validates this, so it should not happen): show it as text.
        chip.replaceWith(document.createTextNode("[" + chip.getAttribute("data-n") + "]"));
        return;
      }
      chip.removeAttribute("disabled");
      chip.setAttribute("aria-label", citationLabel(c));
      chip.setAttribute("title", citationLabel(c));
      chip.addEventListener("click", function () {
        openSource({ citation: c }, chip);
      });
    });
    turn.renderer.chips = turn.renderer.chips.filter(function (chip) {
      return chip.isConnected;
    });
    if (!citations.length) return;
    var list = el("ol");
    citations.forEach(function (c) {
      var link = el("button", { type: "button", className: "src-link", "aria-label": citationLabel(c) }, [
        el("b", { text: "[" + c.n + "]" }),
        str(c.speaker) + " · 《" + str(c.speech_title) + "》" + (c.section ? " · " + str(c.section) : ""),
      ]);
      link.addEventListener("click", function () {
        openSource({ citation: c }, link);
      });
      list.appendChild(el("li", null, [link]));
    });
    turn.msg.appendChild(el("div", { className: "sources" }, [el("span", { text: "出处" }), list]));
  }

  function showRefusal(turn) {
    var msg = turn.msg;
    var serverText = turn.renderer.text.trim();
    while (msg.firstChild) msg.removeChild(msg.firstChild);
    msg.classList.add("refused");
    var box = el("div", { className: "refusal", "data-testid": "speechqa-refusal", role: "note" }, [
      icon("info"),
      el("div", null, [
        el("strong", { text: "资料中未找到依据" }),
        serverText ? el("p", { text: serverText }) : null,
      ]),
    ]);
    msg.appendChild(box);
    var related = (turn.related || []).slice(0, 3);
    if (related.length) {
      var ul = el("ul");
      related.forEach(function (p) {
        var snippet = Array.from(str(p.text));
        var short = snippet.length > 60 ? snippet.slice(0, 60).join("") + "…" : snippet.join("");
        var item = el("button", { type: "button", className: "rel-item", "data-testid": "speechqa-related" }, [
          el("span", { className: "rel-meta", text: str(p.speaker) + " · 《" + str(p.speech_title) + "》" }),
          short,
        ]);
        item.addEventListener("click", function () {
          openSource({ passage: p }, item);
        });
        ul.appendChild(el("li", null, [item]));
      });
      msg.appendChild(el("div", { className: "related" }, [el("h3", { text: "相关段落" }), ul]));
    }
  }

  function showError(turn, err) {
    var msg = turn.msg;
    msg.setAttribute("data-state", "error");
    var text = err && err.message ? err.message : "出现未知错误。";
    var retry = retryButton(turn, "重试");
    var box = el("div", { className: "error", "data-testid": "speechqa-error", role: "alert" }, [
      el("span", { className: "err-text" }, [
        text,
        err && err.detail ? el("span", { className: "err-detail", text: err.detail }) : null,
      ]),
      retry,
    ]);
    msg.appendChild(box);
    scrollToBottom(true);
    return retry;
  }

  function retryButton(turn, label) {
    var btn = el("button", { type: "button", className: "retry", "data-testid": "speechqa-retry", text: label });
    btn.addEventListener("click", function () {
      if (current) return;
      runTurn(turn.question, turn.history, turn.msg);
    });
    return btn;
  }

  function showStopped(turn) {
    turn.msg.setAttribute("data-state", "stopped");
    turn.msg.appendChild(
      el("span", { className: "note" }, ["已停止生成。", retryButton(turn, "重新回答")])
    );
  }

  // ---------- asking ----------

  function ask(text, t0) {
    var question = str(text).trim();
    if (!question) return Promise.resolve(null);
    if (Array.from(question).length > MAX_QUESTION) question = Array.from(question).slice(0, MAX_QUESTION).join("");
    if (!isOpen()) open();
    if (current) current.controller.abort(); // a new question supersedes the one still streaming
    closeSource(false);
    addUserMessage(question);
    return runTurn(question, history.slice(-MAX_HISTORY), null, t0);
  }

  function runTurn(question, prevQuestions, reuseMsg, t0) {
    var started = typeof t0 === "number" ? t0 : now();
    var msg = reuseMsg || addBotMessage();
    if (reuseMsg) {
      while (msg.firstChild) msg.removeChild(msg.firstChild);
      msg.className = "msg bot";
      msg.setAttribute("data-state", "streaming");
      scrollToBottom(true);
    }
    var answerEl = el("div", { className: "answer" });
    msg.appendChild(answerEl);

    var controller = new AbortController();
    var turn = {
      question: question,
      history: prevQuestions,
      msg: msg,
      controller: controller,
      related: [],
      citations: null,
      answerable: null,
      done: false,
      failure: null,
      stalled: false,
      timings: { firstTextMs: null, totalMs: null },
    };
    turn.renderer = new AnswerRenderer(answerEl, function () {
      turn.timings.firstTextMs = Math.round(now() - started);
      api.lastTimings = { firstTextMs: turn.timings.firstTextMs, totalMs: null };
    });
    current = turn;
    setBusy(true);

    function onEvent(name, data) {
      if (current !== turn || turn.failure) return;
      if (name === "meta") {
        turn.related = Array.isArray(data.passages) ? data.passages : [];
      } else if (name === "delta") {
        turn.renderer.push(str(data.text));
        scrollToBottom(false);
      } else if (name === "citations") {
        turn.citations = Array.isArray(data.citations) ? data.citations : [];
        turn.answerable = data.answerable !== false;
      } else if (name === "done") {
        turn.done = true;
        if (turn.answerable === null) turn.answerable = data.answerable !== false;
        turn.serverTiming = data.timing_ms || null;
      } else if (name === "error") {
        turn.failure = new WidgetError("server", "生成回答时出现问题，请重试。", str(data.detail));
      }
    }

    var payload = { question: question };
    if (prevQuestions.length) payload.history = prevQuestions;

    var finished = streamAsk(payload, controller.signal, onEvent, function () {
      turn.stalled = true;
      controller.abort();
    })
      .then(function () {
        if (turn.failure) throw turn.failure;
        if (!turn.done) throw new WidgetError("lost", "连接中断，回答未完成。");
      })
      .then(
        function () {
          turn.stick = nearBottom();
          turn.renderer.finish();
          turn.timings.totalMs = Math.round(now() - started);
          if (turn.answerable === false) {
            msg.setAttribute("data-state", "refused");
            showRefusal(turn);
          } else {
            msg.setAttribute("data-state", "done");
            wireChips(turn, turn.citations || []);
          }
          history.push(question);
          if (history.length > MAX_HISTORY) history = history.slice(-MAX_HISTORY);
          return { answerable: turn.answerable, citations: turn.citations || [], answer: turn.renderer.text };
        },
        function (err) {
          turn.stick = nearBottom();
          turn.renderer.finish();
          turn.timings.totalMs = Math.round(now() - started);
          if (err && err.name === "AbortError" && !turn.stalled) {
            showStopped(turn);
            return null;
          }
          var shown = err instanceof WidgetError ? err : null;
          if (turn.stalled) shown = new WidgetError("stall", "服务器长时间没有响应，连接可能已中断。");
          if (!shown) {
            // fetch() rejects with a bare TypeError for offline, DNS, refused connections and CORS blocks alike.
            shown = turn.renderer.text
              ? new WidgetError("network", "连接中断，回答未完成。")
              : new WidgetError(
                  "network",
                  "无法连接到问答服务，请检查网络后重试。",
                  crossOrigin ? "问答服务位于其他域名时，需由管理员在服务端允许本站点访问（跨域设置）。" : ""
                );
          }
          showError(turn, shown);
          return null;
        }
      )
      .then(function (result) {
        if (current === turn) {
          current = null;
          setBusy(false);
          api.lastTimings = {
            firstTextMs: turn.timings.firstTextMs,
            totalMs: turn.timings.totalMs,
            serverMs: turn.serverTiming ? turn.serverTiming.total : null,
          };
        }
        scrollToBottom(turn.stick);
        return result;
      });
    return finished;
  }

  function stop() {
    if (current) current.controller.abort();
  }

  function reset() {
    stop();
    current = null;
    setBusy(false);
    history = [];
    closeSource(false);
    while (log.firstChild) log.removeChild(log.firstChild);
    log.appendChild(welcome());
    input.focus();
  }

  // ---------- source view ----------

  function metaRow(label, nodes) {
    return [el("dt", { text: label }), el("dd", null, nodes)];
  }

  function openSource(what, opener) {
    var c = what.citation;
    var p = what.passage;
    var info = c || p;
    sourceOpener = opener || null;
    while (sourceScroll.firstChild) sourceScroll.removeChild(sourceScroll.firstChild);
    sourceHeading.textContent = c ? "来源 " + c.n : "相关段落";

    var speakerNodes = [el("span", { text: str(info.speaker) || "（未注明）" })];
    if (info.speaker_role) speakerNodes.push(el("span", { className: "role", text: "，" + str(info.speaker_role) }));
    var meta = el("dl", { className: "meta" });
    metaRow("讲话人", speakerNodes).forEach(function (n) {
      meta.appendChild(n);
    });
    metaRow("讲话", [el("span", { "data-testid": "speechqa-source-title", text: "《" + str(info.speech_title) + "》" })]).forEach(
      function (n) {
        meta.appendChild(n);
      }
    );
    if (info.section) {
      metaRow("章节", [el("span", { "data-testid": "speechqa-source-section", text: str(info.section) })]).forEach(function (n) {
        meta.appendChild(n);
      });
    }
    sourceScroll.appendChild(meta);

    var passageText = str(c ? c.passage_text : p.text);
    var passage = el("blockquote", { className: "passage", "data-testid": "speechqa-passage" });
    var mark = null;
    var parts = c ? splitQuote(passageText, c.start, c.end, str(c.quote)) : null;
    if (parts) {
      if (parts[0]) passage.appendChild(document.createTextNode(parts[0]));
      mark = el("mark", { "data-testid": "speechqa-quote", text: parts[1] });
      passage.appendChild(mark);
      if (parts[2]) passage.appendChild(document.createTextNode(parts[2]));
    } else {
      passage.appendChild(document.createTextNode(passageText));
    }
    var before = el("div");
    var after = el("div");
    sourceScroll.appendChild(before);
    sourceScroll.appendChild(passage);
    sourceScroll.appendChild(after);
    if (c && !parts && c.quote) {
      sourceScroll.appendChild(el("p", { className: "quote-note", text: "引用句：" + str(c.quote) }));
    }
    if (c) sourceScroll.appendChild(el("p", { className: "quote-note", text: "黄色标记为回答所依据的原句。" }));
    addContextNav(info.passage_id, before, after);

    sourceView.removeAttribute("hidden");
    sourceScroll.scrollTop = 0;
    sourceHeading.focus();
    if (mark && mark.scrollIntoView) mark.scrollIntoView({ block: "nearest" });
  }

  /** "上一段 / 下一段" buttons that pull neighbouring paragraphs from /v1/passages for context. */
  function addContextNav(passageId, beforeBox, afterBox) {
    if (!passageId) return;
    var prevBtn = el("button", { type: "button", hidden: "", "data-testid": "speechqa-ctx-prev", text: "↑ 上一段" });
    var nextBtn = el("button", { type: "button", hidden: "", "data-testid": "speechqa-ctx-next", text: "↓ 下一段" });
    var nav = el("div", { className: "ctx-nav" }, [prevBtn, nextBtn]);
    sourceScroll.appendChild(nav);
    var ends = { prev: null, next: null };

    function getPassage(id) {
      return fetch(endpoint + "/v1/passages/" + encodeURIComponent(id), { credentials: "omit" }).then(function (res) {
        if (!res.ok) throw new Error("HTTP " + res.status);
        return res.json();
      });
    }
    function refresh() {
      prevBtn.hidden = !ends.prev;
      nextBtn.hidden = !ends.next;
    }
    function load(dir) {
      var id = ends[dir];
      if (!id) return;
      ends[dir] = null;
      refresh();
      getPassage(id).then(function (p) {
        var block = el("div", { className: "context", text: str(p.text) });
        if (dir === "prev") {
          beforeBox.insertBefore(block, beforeBox.firstChild);
          ends.prev = p.prev_id || null;
        } else {
          afterBox.appendChild(block);
          ends.next = p.next_id || null;
        }
        refresh();
      }, refresh);
    }
    prevBtn.addEventListener("click", function () {
      load("prev");
    });
    nextBtn.addEventListener("click", function () {
      load("next");
    });
    getPassage(passageId).then(function (p) {
      ends.prev = p.prev_id || null;
      ends.next = p.next_id || null;
      refresh();
    }, function () {
      /* context is optional; the cited passage is already shown */
    });
  }

  function closeSource(refocus) {
    if (sourceView.hasAttribute("hidden")) return;
    sourceView.setAttribute("hidden", "");
    var opener = sourceOpener;
    sourceOpener = null;
    if (refocus) {
      if (opener && opener.isConnected) opener.focus();
      else input.focus();
    }
  }

  // ---------- events ----------

  launcher.addEventListener("click", open);
  closeBtn.addEventListener("click", close);
  resetBtn.addEventListener("click", reset);
  sourceBack.addEventListener("click", function () {
    closeSource(true);
  });
  stopBtn.addEventListener("click", function () {
    stop();
    input.focus();
  });

  function submitFromInput(t0) {
    var text = input.value;
    if (!text.trim() || current) return;
    input.value = "";
    autosize();
    updateSend();
    ask(text, t0);
  }

  composer.addEventListener("submit", function (e) {
    e.preventDefault();
    submitFromInput(now());
  });

  input.addEventListener("keydown", function (e) {
    // Enter inside an IME composition (pinyin) picks a candidate; it must not send.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submitFromInput(e.timeStamp > 0 ? e.timeStamp : now());
    }
  });
  input.addEventListener("input", function () {
    autosize();
    updateSend();
  });

  panel.addEventListener("keydown", function (e) {
    if (e.key !== "Escape" || e.isComposing) return;
    e.preventDefault();
    e.stopPropagation();
    if (!sourceView.hasAttribute("hidden")) closeSource(true);
    else close();
  });

  function mount() {
    if (!host.isConnected && document.body) document.body.appendChild(host);
  }

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
  updateSend();

  api.open = open;
  api.close = close;
  api.ask = function (text) {
    return ask(text, now());
  };
  api.stop = stop;
  api.reset = reset;
  window.SpeechQAWidget = api;
})();
