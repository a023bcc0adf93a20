// ---------- main: wire the events, mount, and publish window.SpeechQAWidget ----------

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
