// ---------- network: requests to the endpoint, SSE over fetch ----------

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

/** Headers for every request: `extra`, plus X-API-Key when the tag sets data-api-key. */
function requestHeaders(extra) {
  var headers = {};
  for (var key in extra || {}) {
    if (Object.prototype.hasOwnProperty.call(extra, key)) headers[key] = extra[key];
  }
  if (apiKey) headers["X-API-Key"] = apiKey;
  return headers;
}

/** POST the question and call onEvent(name, data) for each SSE event; resolves when the stream ends. */
function streamAsk(payload, signal, onEvent, onStall) {
  return fetch(endpoint + "/v1/ask/stream", {
    method: "POST",
    headers: requestHeaders({ "Content-Type": "application/json", Accept: "text/event-stream" }),
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

/** One paragraph from /v1/passages (text, prev_id, next_id) for the source view's context navigation. */
function getPassage(id) {
  return fetch(endpoint + "/v1/passages/" + encodeURIComponent(id), {
    headers: requestHeaders(),
    credentials: "omit",
  }).then(function (res) {
    if (!res.ok) throw new Error("HTTP " + res.status);
    return res.json();
  });
}
