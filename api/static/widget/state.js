// ---------- state: the conversation (history, the turn being streamed) and asking ----------

var history = []; // questions that got an answer (or a refusal), oldest first
var current = null; // the turn being streamed: {controller, msg, ...}
var sourceOpener = null; // element to refocus when the source view closes
var api = {
  version: "1",
  endpoint: endpoint,
  lastTimings: null,
};

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
  if (filter) payload.filters = filter;

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
