// The article's example, with each event shown on the page instead of in an alert.
"use strict";
(() => {
  const log = document.getElementById("log");
  const input = document.getElementById("demo-text");
  function show(kind, text, extra = {}) {
    const li = document.createElement("li");
    li.dataset.kind = kind;
    for (const [key, value] of Object.entries(extra)) li.dataset[key] = String(value);
    li.textContent = `[${kind}] ${text}`;
    log.append(li);
  }
  function run() {
    log.replaceChildren();
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/hello");
    socket.onopen = () => {
      show("open", "Connection established");
      show("send", "Sending to server: " + input.value);
      socket.send(input.value);
    };
    socket.onmessage = (event) => {
      show("message", `Data received from server: ${event.data}`, { data: event.data });
    };
    socket.onclose = (event) => {
      const extra = { code: event.code, reason: event.reason, clean: event.wasClean };
      if (event.wasClean) {
        show("close", `Connection closed cleanly, code=${event.code} reason=${event.reason}`, extra);
      } else {
        show("close", "Connection died", extra);
      }
    };
    socket.onerror = () => show("error", "error");
  }
  document.getElementById("again").addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  run();
})();
