// The chat page: one WebSocket to /ws, messages rendered as text (never as HTML), newest
// first, with the connection state in words, automatic reconnection with backoff and a
// "reconnect now" button. Every text is in the page's language (English or Uzbek): the
// server sends codes (errors, close codes), the page words them.
//
// A send carries a "cid" of the page's choosing; the text stays in the box until the server
// acknowledges that cid ({"ack":cid}) or refuses it ({"error":code,"cid":cid}): a refused or
// unanswered message is never lost. Over the rate limit the wait is shown, counting down,
// and the send button stays disabled until then.
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
      reconnectIn: (seconds) => `Reconnecting in ${seconds} s.`,
      reconnectNow: "Reconnect now",
      count: (n, max) => `${n}/${max}`,
      countLabel: (n, max) => `${n} of at most ${max} characters`,
      overLimit: (max) => `Longer than ${max} characters: the server will cut it.`,
      cut: (max) => `The server cut your message to ${max} characters.`,
      notOpen: "Not connected: the message was not sent. It is still in the box.",
      noAnswer: "The server did not answer: the message may not have been sent. It is still in the box.",
      errors: {
        rate_limited: (seconds) =>
          `Too many messages at once: you can send again in ${seconds} s. Your message is still in the box.`,
        too_large: (e) => `The message is too large (${e.bytes} bytes; at most ${e.max}).`,
        bad_shape: "The server did not understand the message.",
        empty: "The message is empty.",
        binary: "The server accepts text messages only.",
        unknown: (code) => `The server refused the message (${code}).`,
      },
      close: {
        1000: "The server closed the connection.",
        1001: "The server is restarting or shutting down.",
        1006: "The connection was lost.",
        1008: "The server closed the connection: against its rules.",
        "1008:too slow": "The server closed the connection: it could not keep up with the room.",
        "1008:too many refused messages": "The server closed the connection: too many refused messages.",
        1009: "The server closed the connection: a message was too large.",
        1011: "The server closed the connection after an error.",
        1012: "The server is restarting.",
        1013: "The server is busy: try again later.",
        1015: "The secure connection failed.",
        other: (code) => `The connection closed (code ${code}).`,
      },
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
      reconnectIn: (seconds) => `${seconds} soniyadan keyin qayta ulanadi.`,
      reconnectNow: "Hozir ulanish",
      count: (n, max) => `${n}/${max}`,
      countLabel: (n, max) => `${n} belgi, koʻpi bilan ${max}`,
      overLimit: (max) => `${max} belgidan uzun: server uni qisqartiradi.`,
      cut: (max) => `Server xabaringizni ${max} belgigacha qisqartirdi.`,
      notOpen: "Ulanmagan: xabar yuborilmadi. U maydonda turibdi.",
      noAnswer: "Server javob bermadi: xabar yuborilmagan boʻlishi mumkin. U maydonda turibdi.",
      errors: {
        rate_limited: (seconds) =>
          `Juda koʻp xabar yuborildi: ${seconds} soniyadan keyin yana yubora olasiz. Xabaringiz maydonda turibdi.`,
        too_large: (e) => `Xabar juda katta (${e.bytes} bayt; koʻpi bilan ${e.max}).`,
        bad_shape: "Server xabarni tushunmadi.",
        empty: "Xabar boʻsh.",
        binary: "Server faqat matnli xabarlarni qabul qiladi.",
        unknown: (code) => `Server xabarni rad etdi (${code}).`,
      },
      close: {
        1000: "Server aloqani yopdi.",
        1001: "Server qayta ishga tushmoqda yoki toʻxtamoqda.",
        1006: "Aloqa uzildi.",
        1008: "Server aloqani yopdi: qoidalarga zid.",
        "1008:too slow": "Server aloqani yopdi: ulanish xonaga ulgurmadi.",
        "1008:too many refused messages": "Server aloqani yopdi: rad etilgan xabarlar juda koʻp.",
        1009: "Server aloqani yopdi: xabar juda katta edi.",
        1011: "Server xatolik tufayli aloqani yopdi.",
        1012: "Server qayta ishga tushmoqda.",
        1013: "Server band: keyinroq urinib koʻring.",
        1015: "Xavfsiz ulanish amalga oshmadi.",
        other: (code) => `Aloqa yopildi (kod ${code}).`,
      },
    },
  };
  const MAX_SHOWN = 200;
  const NO_ANSWER_MS = 10000;
  const $ = (id) => document.getElementById(id);
  const form = $("send"), nameInput = $("name"), textInput = $("text"), submit = $("submit");
  const list = $("messages"), stateEl = $("state"), errorEl = $("error"), noticeEl = $("notice");
  const langSelect = $("lang"), countEl = $("count"), reconnectButton = $("reconnect");

  const store = {
    get: (key) => { try { return localStorage.getItem(key); } catch (_) { return null; } },
    set: (key, value) => { try { localStorage.setItem(key, value); } catch (_) { /* private mode */ } },
  };

  // The language: ?lang=uz (remembered), else the one chosen before, else the browser's.
  function pickLanguage() {
    const asked = new URLSearchParams(location.search).get("lang");
    if (asked && STRINGS[asked]) {
      store.set("tolqin.lang", asked);
      return asked;
    }
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

  // Characters as a person counts them (grapheme clusters), as the server cuts them.
  let segmenter = null;
  try { segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" }); } catch (_) { /* old browser */ }
  function characters(text) {
    if (segmenter) {
      let n = 0;
      for (const _ of segmenter.segment(text)) n += 1;
      return n;
    }
    return Array.from(text).length; // code points: close enough without Intl.Segmenter
  }
  let maxChars = 50; // until /config says
  function renderCount() {
    const n = characters(textInput.value.trim());
    const over = n > maxChars;
    countEl.textContent = t().count(n, maxChars);
    countEl.dataset.count = String(n);
    countEl.dataset.max = String(maxChars);
    countEl.classList.toggle("over", over);
    countEl.title = over ? t().overLimit(maxChars) : t().countLabel(n, maxChars);
    countEl.setAttribute("aria-label", countEl.title);
  }

  // The connection state, as shown and as data-* for tests.
  let state = { name: "connecting", code: 0, reason: "", retryIn: 0 };
  function closeText(code, reason) {
    const words = t().close;
    return words[code + ":" + reason] || words[code] || words.other(code);
  }
  function renderState() {
    stateEl.dataset.state = state.name;
    stateEl.dataset.code = String(state.code);
    stateEl.dataset.reason = state.reason;
    if (state.name === "open") stateEl.textContent = t().open;
    else if (state.name === "connecting") stateEl.textContent = t().connecting;
    else {
      let text = closeText(state.code, state.reason);
      if (state.retryIn > 0) text += " " + t().reconnectIn(state.retryIn);
      stateEl.textContent = text;
    }
    reconnectButton.hidden = state.name !== "closed";
  }
  function setState(name, code = 0, reason = "", retryIn = 0) {
    state = { name, code, reason, retryIn };
    renderState();
  }

  // Messages to the person: an error (role=alert) and a notice (role=status), each kept as
  // a function of the language so that switching language rewords them. They stay until the
  // next send (a person who looked away still reads them); the wait of a rate limit goes
  // away at its end.
  let errorWords = null, noticeWords = null;
  function renderMessages() {
    errorEl.hidden = !errorWords;
    errorEl.textContent = errorWords ? errorWords() : "";
    noticeEl.hidden = !noticeWords;
    noticeEl.textContent = noticeWords ? noticeWords() : "";
  }
  function showError(words, code = "") {
    errorWords = words;
    errorEl.dataset.code = code;
    renderMessages();
  }
  function showNotice(words, code = "") {
    noticeWords = words;
    noticeEl.dataset.code = code;
    renderMessages();
  }

  // Sending: one message in flight at a time; over the rate limit, a wait counted down.
  let pending = null; // { cid, content, timer }
  let sequence = 0;
  let waitUntil = 0, waitTimer = null;
  function renderSend() {
    submit.disabled = pending !== null || Date.now() < waitUntil;
    submit.dataset.busy = pending ? "sending" : Date.now() < waitUntil ? "waiting" : "";
  }
  function settle() {
    if (pending) clearTimeout(pending.timer);
    pending = null;
    renderSend();
  }
  function secondsLeft() {
    const seconds = Math.max(0, waitUntil - Date.now()) / 1000;
    return seconds.toLocaleString(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  }
  function startWait(ms) {
    waitUntil = Date.now() + Math.max(100, Math.min(60000, Number(ms) || 1000));
    clearInterval(waitTimer);
    errorWords = () => t().errors.rate_limited(secondsLeft());
    errorEl.dataset.code = "rate_limited";
    renderMessages();
    renderSend();
    waitTimer = setInterval(() => {
      if (Date.now() >= waitUntil) {
        clearInterval(waitTimer);
        if (errorEl.dataset.code === "rate_limited") errorWords = null;
      }
      renderMessages();
      renderSend();
    }, 100);
  }
  function refusalWords(data) {
    const words = t().errors[data.error];
    if (typeof words === "function") return words(data);
    return typeof words === "string" ? words : t().errors.unknown(String(data.error));
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
    renderCount();
    renderMessages();
  }
  langSelect.addEventListener("change", () => {
    lang = STRINGS[langSelect.value] ? langSelect.value : "en";
    store.set("tolqin.lang", lang);
    applyLanguage();
  });

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

  function onServerMessage(data) {
    if (!data || typeof data !== "object") return;
    if (typeof data.error === "string") {
      // Refusals name the cid of the message when it had one; without one, it is ours.
      if (pending && (data.cid === undefined || data.cid === pending.cid)) settle();
      if (data.error === "rate_limited") startWait(data.retry_ms);
      else showError(() => refusalWords(data), data.error);
    } else if ("ack" in data || "notice" in data) {
      if (pending && data.ack === pending.cid) {
        // Delivered: the box empties, unless the person already typed something else.
        if (textInput.value === pending.content) textInput.value = "";
        settle();
        renderCount();
      }
      if (data.notice === "cut") {
        const max = Number(data.max_chars) || maxChars;
        showNotice(() => t().cut(max), "cut");
      }
    } else {
      addMessage(data);
    }
  }

  // The connection, with reconnection: 0.5 s, 1 s, 2 s... up to 10 s, with jitter.
  let ws = null;
  let failures = 0;
  let retryTimer = null, tickTimer = null;
  async function connect() {
    clearTimeout(retryTimer);
    clearInterval(tickTimer);
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
      onServerMessage(data);
    };
    socket.onclose = (event) => {
      if (ws !== socket) return;
      ws = null;
      // A message in flight may be lost with the connection: it stays in the box.
      settle();
      scheduleReconnect(event.code, event.reason);
    };
  }
  function scheduleReconnect(code, reason) {
    const delay = Math.min(10000, 500 * 2 ** Math.min(failures, 5)) * (0.8 + Math.random() * 0.4);
    failures += 1;
    const at = Date.now() + delay;
    const left = () => Math.max(1, Math.ceil((at - Date.now()) / 1000));
    setState("closed", code, reason, left());
    clearInterval(tickTimer);
    tickTimer = setInterval(() => {
      if (state.name === "closed") setState("closed", code, reason, left());
    }, 250);
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, delay);
  }
  reconnectButton.addEventListener("click", () => {
    if (state.name === "closed") connect();
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (pending || Date.now() < waitUntil) return;
    const content = textInput.value;
    if (!content.trim()) return;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      showError(() => t().notOpen, "not_open");
      return;
    }
    const user = nameInput.value.trim();
    store.set("tolqin.name", user);
    sequence += 1;
    const cid = "c" + sequence;
    ws.send(JSON.stringify({ user, content, cid }));
    errorWords = null;
    noticeWords = null;
    renderMessages();
    pending = {
      cid,
      content,
      timer: setTimeout(() => {
        if (pending && pending.cid === cid) {
          settle();
          showError(() => t().noAnswer, "no_answer");
        }
      }, NO_ANSWER_MS),
    };
    renderSend();
    textInput.focus();
  });
  textInput.addEventListener("input", renderCount);

  // The room's limits, for the live count.
  fetch("/config", { cache: "no-store" })
    .then((response) => (response.ok ? response.json() : null))
    .then((config) => {
      if (config && Number.isInteger(config.max_chars) && config.max_chars > 0) {
        maxChars = config.max_chars;
        renderCount();
      }
    })
    .catch(() => { /* keep the default */ });

  // For tests and the curious: the words for a close code and reason in the page's language.
  window.tolqinChat = { closeText };

  nameInput.value = store.get("tolqin.name") || "";
  applyLanguage();
  connect();
})();
