// The chat page: one WebSocket to /ws, messages rendered as text (never as HTML), newest
// first, with a visible connection state and automatic reconnection with backoff.
"use strict";
(() => {
  const STRINGS = {
    en: {
      title: "tolqin chat",
      language: "Language",
      name: "Name",
      namePlaceholder: "Your name",
      message: "Message",
      messagePlaceholder: "Say something…",
      send: "Send",
      empty: "No messages yet.",
      demo: "The hello demo",
      connecting: "Connecting…",
      open: "Connected",
      closed: (code, reason) => `Disconnected (code ${code}${reason ? ": " + reason : ""})`,
      retry: (seconds) => `reconnecting in ${seconds} s`,
      notOpen: "Not connected: the message was not sent.",
    },
    uz: {
      title: "tolqin chat",
      language: "Til",
      name: "Ism",
      namePlaceholder: "Ismingiz",
      message: "Xabar",
      messagePlaceholder: "Biror narsa yozing…",
      send: "Yuborish",
      empty: "Hozircha xabar yoʻq.",
      demo: "Salom namoyishi",
      connecting: "Ulanmoqda…",
      open: "Ulandi",
      closed: (code, reason) => `Aloqa uzildi (kod ${code}${reason ? ": " + reason : ""})`,
      retry: (seconds) => `${seconds} soniyadan keyin qayta ulanadi`,
      notOpen: "Ulanmagan: xabar yuborilmadi.",
    },
  };
  const MAX_SHOWN = 200;
  const $ = (id) => document.getElementById(id);
  const form = $("send"), nameInput = $("name"), textInput = $("text");
  const list = $("messages"), stateEl = $("state"), errorEl = $("error"), langSelect = $("lang");

  const store = {
    get: (key) => { try { return localStorage.getItem(key); } catch (_) { return null; } },
    set: (key, value) => { try { localStorage.setItem(key, value); } catch (_) { /* private mode */ } },
  };

  function pickLanguage() {
    const saved = store.get("tolqin.lang");
    if (saved && STRINGS[saved]) return saved;
    const wanted = navigator.languages || [navigator.language || "en"];
    for (const tag of wanted) {
      const base = String(tag).toLowerCase().split("-")[0];
      if (STRINGS[base]) return base;
    }
    return "en";
  }
  let lang = pickLanguage();
  const t = () => STRINGS[lang];

  // The connection state, as shown and as data-* for tests.
  let state = { name: "connecting", code: 0, reason: "", retryIn: 0 };
  function renderState() {
    stateEl.dataset.state = state.name;
    stateEl.dataset.code = String(state.code);
    stateEl.dataset.reason = state.reason;
    if (state.name === "open") stateEl.textContent = t().open;
    else if (state.name === "connecting") stateEl.textContent = t().connecting;
    else {
      let text = t().closed(state.code, state.reason);
      if (state.retryIn > 0) text += " — " + t().retry(state.retryIn);
      stateEl.textContent = text;
    }
  }
  function setState(name, code = 0, reason = "", retryIn = 0) {
    state = { name, code, reason, retryIn };
    renderState();
  }

  function applyLanguage() {
    document.documentElement.lang = lang;
    langSelect.value = lang;
    for (const el of document.querySelectorAll("[data-i18n]")) {
      const value = t()[el.dataset.i18n];
      if (typeof value === "string") el.textContent = value;
    }
    for (const el of document.querySelectorAll("[data-i18n-placeholder]")) {
      el.placeholder = t()[el.dataset.i18nPlaceholder];
    }
    document.title = t().title;
    for (const time of list.querySelectorAll("time")) {
      time.textContent = new Date(Number(time.dataset.ts)).toLocaleTimeString(lang);
    }
    renderState();
  }
  langSelect.addEventListener("change", () => {
    lang = STRINGS[langSelect.value] ? langSelect.value : "en";
    store.set("tolqin.lang", lang);
    applyLanguage();
  });

  let errorTimer = null;
  function showError(text) {
    errorEl.textContent = text;
    errorEl.hidden = false;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(() => { errorEl.hidden = true; }, 6000);
  }

  // Messages: keyed by id and timestamp (ids restart with the server), newest first.
  const seen = new Set();
  function addMessage(m) {
    if (typeof m.id !== "number" || typeof m.user !== "string" || typeof m.content !== "string") return;
    const key = m.id + ":" + m.ts;
    if (seen.has(key)) return;
    seen.add(key);
    const li = document.createElement("li");
    li.dataset.id = String(m.id);
    const time = document.createElement("time");
    const when = new Date(Number(m.ts) || Date.now());
    time.dataset.ts = String(when.getTime());
    time.dateTime = when.toISOString();
    time.textContent = when.toLocaleTimeString(lang);
    const user = document.createElement("span");
    user.className = "user";
    user.textContent = m.user;
    const content = document.createElement("span");
    content.className = "content";
    content.textContent = m.content;
    li.append(time, " ", user, " ", content);
    list.prepend(li);
    while (list.children.length > MAX_SHOWN) list.lastElementChild.remove();
    $("empty").hidden = true;
  }

  // The connection, with reconnection: 0.5 s, 1 s, 2 s... up to 10 s, with jitter.
  let ws = null;
  let failures = 0;
  async function connect() {
    setState("connecting");
    if (failures > 0) {
      // The server may have restarted and forgotten our session: ask for a fresh cookie.
      try { await fetch("/session", { method: "POST", credentials: "same-origin", cache: "no-store" }); } catch (_) { /* retried below */ }
    }
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    let socket;
    try {
      socket = new WebSocket(scheme + location.host + "/ws");
    } catch (_) {
      scheduleReconnect(1006, "");
      return;
    }
    ws = socket;
    socket.onopen = () => {
      failures = 0;
      setState("open");
    };
    socket.onmessage = (event) => {
      let data;
      try { data = JSON.parse(event.data); } catch (_) { return; }
      if (data && typeof data.error === "string") showError(data.error);
      else if (data) addMessage(data);
    };
    socket.onclose = (event) => {
      if (ws !== socket) return;
      ws = null;
      scheduleReconnect(event.code, event.reason);
    };
  }
  function scheduleReconnect(code, reason) {
    const delay = Math.min(10000, 500 * 2 ** Math.min(failures, 5)) * (0.8 + Math.random() * 0.4);
    failures += 1;
    let left = Math.ceil(delay / 1000);
    setState("closed", code, reason, left);
    const tick = setInterval(() => {
      left -= 1;
      if (left > 0 && state.name === "closed") setState("closed", code, reason, left);
    }, 1000);
    setTimeout(() => { clearInterval(tick); connect(); }, delay);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const content = textInput.value;
    if (!content.trim()) return;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      showError(t().notOpen);
      return;
    }
    const user = nameInput.value.trim();
    store.set("tolqin.name", user);
    ws.send(JSON.stringify({ user, content }));
    textInput.value = "";
    textInput.focus();
  });

  nameInput.value = store.get("tolqin.name") || "";
  applyLanguage();
  connect();
})();
