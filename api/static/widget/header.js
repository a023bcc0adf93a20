/*
 * speechqa widget: a chat panel that answers questions about the indexed speeches with cited sources.
 *
 * Embed with one tag:
 *   <script src="https://HOST/widget.js" data-endpoint="https://HOST" data-title="讲话问答"></script>
 * No build step, no dependencies, no remote assets.
 *
 * Attributes (all optional; a missing or empty one keeps the default):
 *   data-endpoint     the API's base URL; default: the script's own origin
 *   data-title        launcher and panel title; default "讲话问答"
 *   data-subtitle     the line under the title; default "依据区领导讲话原文作答，点击编号查看出处"
 *   data-greeting     the first message in the log; default "您好！可以就已收录的区领导讲话提问，…"
 *   data-placeholder  the question box's placeholder; default "例如：丽泽商务区的交通建设有哪些安排？"
 *   data-api-key      sent as the X-API-Key header on every request (the server must allow that header
 *                     for a cross-origin page, which SPEECHQA_CORS_ORIGINS does)
 *   data-filter       a JSON object sent as `filters` with every question, e.g.
 *                     data-filter='{"speaker":"李国龙"}' or data-filter='{"region":"浙江省","year_from":2024}';
 *                     invalid JSON or a non-object logs a console warning and asks without a filter
 *
 * Everything renders inside an open Shadow DOM so the host page's CSS cannot leak in (or ours out).
 * Every string that comes from the server, the corpus or the attributes is inserted with
 * textContent/createTextNode; nothing here ever writes HTML from data.
 *
 * Host pages and tests may use window.SpeechQAWidget = {open(), close(), ask(text), stop(), reset(), lastTimings}.
 *
 * Source: api/static/widget/*.js and style.css, assembled into this one script by api/widget.py.
 */
