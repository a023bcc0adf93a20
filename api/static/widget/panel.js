// ---------- panel: the Shadow DOM shell (launcher, head, log, source view, composer) ----------

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
    el("p", { "data-testid": "speechqa-subtitle", text: subtitle }),
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
  // A greeting from data-greeting is shown as it is; the default one opens with a bold "您好！".
  var words = greeting === DEFAULTS.greeting ? [el("strong", { text: "您好！" }), greeting] : [greeting];
  return el("div", { className: "welcome", "data-testid": "speechqa-greeting" }, words);
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
  placeholder: placeholder,
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

// Opening and closing, scrolling the log, and the busy state of the composer.

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
