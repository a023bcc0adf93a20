/*
 * speechqa admin page: list, upload (file picker or drag-and-drop, with job progress), delete, and try a question.
 *
 * Talks to the admin HTTP API on this page's origin:
 *   GET    /v1/admin/documents            -> {documents: [...], index_version}
 *   POST   /v1/admin/documents            multipart `files` (+ title, speaker, role, date, region) -> 202 {job_id}
 *   GET    /v1/admin/jobs/{job_id}        -> {state, paragraphs_done, paragraphs_total, rate, eta_seconds, errors, ...}
 *   DELETE /v1/admin/documents/{id}       -> {removed, index_version}
 *   POST   /v1/ask                        {question} -> the answer with citations
 * Every call sends "Authorization: Bearer <key>"; the key is typed once and kept in sessionStorage (this tab only).
 * Errors are JSON {detail, code}. Everything from the server is shown with textContent, never as HTML.
 */
(function () {
  "use strict";

  var KEY_STORAGE = "speechqa.adminKey";
  var POLL_MS = 500;
  var STATES = { queued: "排队中", running: "处理中", done: "完成", failed: "失败" };

  function $(id) {
    return document.getElementById(id);
  }

  var keyForm = $("key-form");
  var keyInput = $("key-input");
  var keyForget = $("key-forget");
  var statusBox = $("status");
  var main = $("admin-main");
  var docsBody = $("docs-body");
  var docsEmpty = $("docs-empty");
  var indexVersion = $("index-version");
  var refreshBtn = $("docs-refresh");
  var uploadForm = $("upload-form");
  var dropZone = $("drop-zone");
  var fileInput = $("file-input");
  var pickedList = $("picked");
  var uploadBtn = $("upload-btn");
  var jobBox = $("job");
  var jobState = $("job-state");
  var jobProgress = $("job-progress");
  var jobNumbers = $("job-numbers");
  var jobErrors = $("job-errors");
  var askForm = $("ask-form");
  var askInput = $("ask-input");
  var askResult = $("ask-result");

  var adminKey = "";
  var pending = []; // File objects picked or dropped, not yet uploaded
  var jobRunning = false;

  // ---------- helpers (text only, never HTML) ----------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    for (var key in attrs || {}) {
      if (!Object.prototype.hasOwnProperty.call(attrs, key) || attrs[key] == null) continue;
      if (key === "text") node.textContent = attrs[key];
      else if (key === "className") node.className = attrs[key];
      else node.setAttribute(key, attrs[key]);
    }
    (children || []).forEach(function (child) {
      if (child == null) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function str(value) {
    return value == null ? "" : String(value);
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function showStatus(text, isError) {
    statusBox.textContent = text;
    statusBox.classList.toggle("error", !!isError);
    statusBox.hidden = !text;
  }

  function storage() {
    try {
      return window.sessionStorage;
    } catch (e) {
      return null; // storage disabled: the key lives for this page only
    }
  }

  // ---------- the API ----------

  function ApiError(status, detail, code) {
    this.status = status;
    this.detail = detail;
    this.code = code;
  }

  /** fetch with the admin key; resolves to the parsed JSON body, rejects with an ApiError. */
  function call(method, path, body) {
    var headers = { Authorization: "Bearer " + adminKey, Accept: "application/json" };
    var init = { method: method, headers: headers, credentials: "same-origin", cache: "no-store" };
    if (body instanceof FormData) {
      init.body = body; // the browser sets the multipart boundary
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(
      function (res) {
        return res
          .json()
          .catch(function () {
            return null;
          })
          .then(function (data) {
            if (res.ok) return data || {};
            throw new ApiError(res.status, str(data && data.detail), str(data && data.code));
          });
      },
      function () {
        throw new ApiError(0, "", "network");
      }
    );
  }

  /** A sentence for the person at the keyboard. `adminRoute`: a 404 means the admin API is not there at all. */
  function describe(err, adminRoute) {
    if (!(err instanceof ApiError)) return "出现意外错误：" + str(err && err.message);
    if (err.status === 401 || err.status === 403) {
      return "管理密钥被拒绝，请检查后重新输入。" + (err.detail ? "（" + err.detail + "）" : "");
    }
    if (err.status === 404 && adminRoute) return "此服务器未启用管理功能（管理接口不存在）。";
    if (err.status === 0) return "无法连接到服务器，请检查网络后重试。";
    return err.detail || "请求失败（HTTP " + err.status + "）。";
  }

  /** Show a failed call; a rejected key or a disabled admin API also closes the admin sections. */
  function fail(err, adminRoute) {
    showStatus(describe(err, adminRoute), true);
    var locked = err instanceof ApiError && (err.status === 401 || err.status === 403 || (err.status === 404 && adminRoute));
    if (locked) {
      main.hidden = true;
      if (err.status !== 404) forgetKey(false);
    }
  }

  // ---------- the key ----------

  function useKey(key) {
    adminKey = key;
    var store = storage();
    if (store) store.setItem(KEY_STORAGE, key);
    keyForget.hidden = false;
    loadDocuments(true);
  }

  function forgetKey(clearField) {
    adminKey = "";
    var store = storage();
    if (store) store.removeItem(KEY_STORAGE);
    keyForget.hidden = true;
    if (clearField) keyInput.value = "";
  }

  keyForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var key = keyInput.value.trim();
    if (key) useKey(key);
  });

  keyForget.addEventListener("click", function () {
    forgetKey(true);
    main.hidden = true;
    showStatus("已退出，密钥已从本标签页清除。", false);
    keyInput.focus();
  });

  // ---------- documents ----------

  function shortTime(value) {
    return str(value).replace("T", " ").replace(/\.\d+/, "").replace(/(Z|\+00:00)$/, " UTC");
  }

  function documentRow(doc) {
    var title = str(doc.title) || str(doc.speech_id);
    var del = el("button", {
      type: "button",
      "data-testid": "admin-delete",
      "aria-label": "删除《" + title + "》",
      text: "删除",
    });
    del.addEventListener("click", function () {
      removeDocument(doc, row, del);
    });
    var row = el("tr", { "data-testid": "admin-doc-row", "data-speech-id": str(doc.speech_id) }, [
      el("td", { "data-testid": "admin-doc-title", text: title }),
      el("td", { text: str(doc.speaker) }),
      el("td", { text: str(doc.role) }),
      el("td", { text: str(doc.date) }),
      el("td", { text: str(doc.region) }),
      el("td", { text: str(doc.source) }),
      el("td", { className: "num", text: str(doc.paragraphs) }),
      el("td", { title: str(doc.ingested_at), text: shortTime(doc.ingested_at) }),
      el("td", null, [del]),
    ]);
    return row;
  }

  function renderDocuments(data) {
    var docs = Array.isArray(data.documents) ? data.documents : [];
    clear(docsBody);
    docs.forEach(function (doc) {
      docsBody.appendChild(documentRow(doc));
    });
    docsEmpty.hidden = docs.length > 0;
    indexVersion.textContent = str(data.index_version) || "—";
  }

  /** GET the list; `connecting`: this call checks a newly entered key. */
  function loadDocuments(connecting) {
    refreshBtn.disabled = true;
    return call("GET", "/v1/admin/documents")
      .then(function (data) {
        renderDocuments(data);
        main.hidden = false;
        if (connecting) showStatus("已连接。", false);
      }, function (err) {
        fail(err, true);
      })
      .then(function () {
        refreshBtn.disabled = false;
      });
  }

  refreshBtn.addEventListener("click", function () {
    loadDocuments(false);
  });

  function removeDocument(doc, row, button) {
    var title = str(doc.title) || str(doc.speech_id);
    if (!window.confirm("确定删除《" + title + "》吗？\n删除后它不再参与问答，需重新上传才能恢复。")) return;
    button.disabled = true;
    row.classList.add("removing");
    call("DELETE", "/v1/admin/documents/" + encodeURIComponent(str(doc.speech_id))).then(
      function (data) {
        if (row.parentNode) row.parentNode.removeChild(row);
        docsEmpty.hidden = docsBody.children.length > 0;
        if (data.index_version) indexVersion.textContent = str(data.index_version);
        showStatus("已删除《" + title + "》。", false);
      },
      function (err) {
        button.disabled = false;
        row.classList.remove("removing");
        fail(err, false);
        if (err instanceof ApiError && err.status === 404) loadDocuments(false); // already gone: show the truth
      }
    );
  }

  // ---------- upload ----------

  function setPicked(fileList) {
    pending = Array.prototype.slice.call(fileList || []);
    clear(pickedList);
    pending.forEach(function (file) {
      pickedList.appendChild(el("li", { text: file.name + "（" + Math.max(1, Math.round(file.size / 1024)) + " KB）" }));
    });
    updateUploadButton();
  }

  function updateUploadButton() {
    uploadBtn.disabled = !pending.length || jobRunning;
    uploadBtn.textContent = pending.length > 1 ? "上传 " + pending.length + " 个文件" : "上传";
  }

  fileInput.addEventListener("change", function () {
    setPicked(fileInput.files);
  });

  function hasFiles(e) {
    var types = e.dataTransfer && e.dataTransfer.types;
    return !!types && Array.prototype.indexOf.call(types, "Files") >= 0;
  }

  ["dragenter", "dragover"].forEach(function (name) {
    dropZone.addEventListener(name, function (e) {
      if (!hasFiles(e)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
      dropZone.classList.add("over");
    });
  });
  dropZone.addEventListener("dragleave", function (e) {
    if (!dropZone.contains(e.relatedTarget)) dropZone.classList.remove("over");
  });
  dropZone.addEventListener("drop", function (e) {
    e.preventDefault();
    dropZone.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files.length) setPicked(e.dataTransfer.files);
  });
  // A file dropped beside the zone must not make the browser navigate away to it.
  ["dragover", "drop"].forEach(function (name) {
    window.addEventListener(name, function (e) {
      if (hasFiles(e)) e.preventDefault();
    });
  });

  uploadForm.addEventListener("submit", function (e) {
    e.preventDefault();
    if (!pending.length || jobRunning) return;
    var form = new FormData();
    pending.forEach(function (file) {
      form.append("files", file, file.name);
    });
    ["title", "speaker", "role", "date", "region"].forEach(function (name) {
      var value = uploadForm.elements[name].value.trim();
      if (value) form.append(name, value);
    });
    jobRunning = true;
    updateUploadButton();
    showJob({ state: "queued", paragraphs_done: 0, paragraphs_total: 0, errors: [] });
    call("POST", "/v1/admin/documents", form).then(
      function (data) {
        setPicked([]);
        fileInput.value = "";
        poll(str(data.job_id));
      },
      function (err) {
        endJob();
        jobBox.hidden = true;
        fail(err, true);
      }
    );
  });

  function poll(jobId) {
    call("GET", "/v1/admin/jobs/" + encodeURIComponent(jobId)).then(
      function (job) {
        showJob(job);
        if (job.state === "done" || job.state === "failed") {
          endJob();
          loadDocuments(false);
        } else {
          setTimeout(poll, POLL_MS, jobId);
        }
      },
      function (err) {
        endJob();
        fail(err, false);
      }
    );
  }

  function endJob() {
    jobRunning = false;
    updateUploadButton();
  }

  function numbers(job) {
    var done = Number(job.paragraphs_done) || 0;
    var total = Number(job.paragraphs_total) || 0;
    var parts = [done + " / " + total + " 段"];
    if (typeof job.rate === "number" && job.rate > 0) parts.push(job.rate.toFixed(1) + " 段/秒");
    if (job.state === "running" && typeof job.eta_seconds === "number") {
      parts.push("预计还需 " + Math.max(0, Math.ceil(job.eta_seconds)) + " 秒");
    }
    if (job.state === "done") {
      var n = Array.isArray(job.speeches) ? job.speeches.length : 0;
      parts.push("收录 " + n + " 篇" + (job.index_version ? "，索引版本 " + str(job.index_version) : ""));
    }
    return parts.join(" · ");
  }

  function showJob(job) {
    jobBox.hidden = false;
    var state = str(job.state);
    jobBox.setAttribute("data-state", state);
    jobState.textContent = STATES[state] || state;
    var total = Number(job.paragraphs_total) || 0;
    if (total > 0) {
      jobProgress.max = total;
      jobProgress.value = Math.min(Number(job.paragraphs_done) || 0, total);
    } else if (state === "done" || state === "failed") {
      jobProgress.max = 1;
      jobProgress.value = state === "done" ? 1 : 0;
    } else {
      jobProgress.removeAttribute("value"); // indeterminate until the server knows the total
    }
    jobNumbers.textContent = numbers(job);
    clear(jobErrors);
    (Array.isArray(job.errors) ? job.errors : []).forEach(function (err) {
      jobErrors.appendChild(
        el("li", { "data-testid": "admin-job-error" }, [el("b", { text: str(err.file) }), "：" + str(err.reason)])
      );
    });
  }

  // ---------- try a question ----------

  askForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var question = askInput.value.trim();
    if (!question) return;
    var send = askForm.querySelector("button");
    send.disabled = true;
    askResult.hidden = false;
    clear(askResult);
    askResult.appendChild(el("p", { className: "muted", text: "正在检索…" }));
    call("POST", "/v1/ask", { question: question })
      .then(showAnswer, function (err) {
        clear(askResult);
        askResult.appendChild(el("p", { className: "status error", text: describe(err, false) }));
      })
      .then(function () {
        send.disabled = false;
      });
  });

  function showAnswer(data) {
    clear(askResult);
    if (data.answerable === false) askResult.appendChild(el("p", { className: "refused", text: "资料中未找到依据" }));
    askResult.appendChild(el("div", { className: "answer", "data-testid": "admin-answer", text: str(data.answer) }));
    var citations = Array.isArray(data.citations) ? data.citations : [];
    if (!citations.length) return;
    var list = el("ol", { "data-testid": "admin-citations" });
    citations.forEach(function (c) {
      list.appendChild(
        el("li", { value: str(c.n) || null, "data-testid": "admin-citation" }, [
          el("b", { text: "《" + str(c.speech_title) + "》" }),
          " " + str(c.speaker),
          el("span", { className: "quote", text: "“" + str(c.quote) + "”" }),
        ])
      );
    });
    askResult.appendChild(list);
  }

  // ---------- start ----------

  var saved = storage() && storage().getItem(KEY_STORAGE);
  if (saved) {
    keyInput.value = saved;
    useKey(saved);
  } else {
    keyInput.focus();
  }
})();
