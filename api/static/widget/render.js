// ---------- render: messages, streamed answer text with citation chips, refusals, errors, the source view ----------

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
  var tail = MARKER_TAIL.exec(out);
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
  var re = new RegExp(MARKER_SOURCE, "g");
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
  // Date and source of the speech (a file name or URL), when the document stated them.
  if (info.date) {
    metaRow("日期", [el("span", { "data-testid": "speechqa-source-date", text: str(info.date) })]).forEach(function (n) {
      meta.appendChild(n);
    });
  }
  if (info.source) {
    metaRow("来源", [el("span", { "data-testid": "speechqa-source-origin", text: str(info.source) })]).forEach(function (n) {
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
