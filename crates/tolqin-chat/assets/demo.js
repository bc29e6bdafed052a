// The article's example, with each event shown on the page instead of in an alert, in the
// page's language (English or Uzbek, chosen as on the chat page: ?lang=, then the language
// chosen before, then the browser's). What the server sends ("Hello from server, NAME!",
// the close reason "Bye!") is shown as it came: it is the data the demo is about.
"use strict";
(() => {
  const STRINGS = {
    en: {
      title: "tolqin: the hello demo",
      heading: "The hello demo",
      language: "Language",
      about: "This page opens a WebSocket to /hello and sends a message. The server answers " +
        "“Hello from server, NAME!” (NAME: the last word of the message) and closes the " +
        "connection five seconds later with code 1000 and reason “Bye!”. Each event is shown " +
        "below as it happens.",
      input: "Message",
      again: "Run again",
      back: "Back to the chat",
      example: "My name is John",
      open: "Connection established",
      send: (text) => `Sending to server: ${text}`,
      message: (data) => `Data received from server: ${data}`,
      clean: (code, reason) => `Connection closed cleanly, code=${code} reason=${reason}`,
      died: (code) => `Connection died (code ${code})`,
      error: "The connection failed",
    },
    uz: {
      title: "tolqin: salom namoyishi",
      heading: "Salom namoyishi",
      language: "Til",
      about: "Bu sahifa /hello manziliga WebSocket ochib, xabar yuboradi. Server " +
        "“Hello from server, ISM!” deb javob beradi (ISM: xabarning oxirgi soʻzi) va besh " +
        "soniyadan keyin aloqani 1000 kodi va “Bye!” sababi bilan yopadi. Har bir hodisa " +
        "quyida sodir boʻlishi bilan koʻrsatiladi.",
      input: "Xabar",
      again: "Yana ishga tushirish",
      back: "Chatga qaytish",
      example: "Mening ismim O‘tkir",
      open: "Aloqa oʻrnatildi",
      send: (text) => `Serverga yuborilmoqda: ${text}`,
      message: (data) => `Serverdan kelgan maʼlumot: ${data}`,
      clean: (code, reason) => `Aloqa toza yopildi, kod=${code} sabab=${reason}`,
      died: (code) => `Aloqa uzilib qoldi (kod ${code})`,
      error: "Ulanishda xatolik",
    },
  };
  const store = {
    get: (key) => { try { return localStorage.getItem(key); } catch (_) { return null; } },
    set: (key, value) => { try { localStorage.setItem(key, value); } catch (_) { /* private mode */ } },
  };
  function pickLanguage() {
    const asked = new URLSearchParams(location.search).get("lang");
    if (asked && STRINGS[asked]) {
      store.set("tolqin.lang", asked);
      return asked;
    }
    const saved = store.get("tolqin.lang");
    if (saved && STRINGS[saved]) return saved;
    for (const tag of navigator.languages || [navigator.language || "en"]) {
      const base = String(tag).toLowerCase().split("-")[0];
      if (STRINGS[base]) return base;
    }
    return "en";
  }
  let lang = pickLanguage();
  const t = () => STRINGS[lang];

  const log = document.getElementById("log");
  const input = document.getElementById("demo-text");
  const langSelect = document.getElementById("lang");

  // Each entry keeps its words as a function of the language, so switching rewords the log.
  function render(li) {
    li.textContent = `[${li.dataset.kind}] ${li.words()}`;
  }
  function show(kind, words, extra = {}) {
    const li = document.createElement("li");
    li.dataset.kind = kind;
    for (const [key, value] of Object.entries(extra)) li.dataset[key] = String(value);
    li.words = words;
    render(li);
    log.append(li);
  }
  function applyLanguage(resetExample) {
    document.documentElement.lang = lang;
    langSelect.value = lang;
    document.title = t().title;
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t()[el.dataset.i18n];
    for (const el of document.querySelectorAll("[data-i18n-label]")) {
      el.setAttribute("aria-label", t()[el.dataset.i18nLabel]);
    }
    if (resetExample) input.value = t().example;
    for (const li of log.children) render(li);
  }
  langSelect.addEventListener("change", () => {
    const before = t().example;
    lang = STRINGS[langSelect.value] ? langSelect.value : "en";
    store.set("tolqin.lang", lang);
    // The example follows the language unless the person wrote their own.
    applyLanguage(input.value === before);
  });

  let current = null;
  function run() {
    if (current) current.close();
    log.replaceChildren();
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/hello");
    current = socket;
    const text = input.value;
    // Events of a socket replaced by "run again" no longer belong on the page.
    const mine = (handler) => (event) => { if (current === socket) handler(event); };
    socket.onopen = mine(() => {
      show("open", () => t().open);
      show("send", () => t().send(text));
      socket.send(text);
    });
    socket.onmessage = mine((event) => {
      show("message", () => t().message(event.data), { data: event.data });
    });
    socket.onclose = mine((event) => {
      const extra = { code: event.code, reason: event.reason, clean: event.wasClean };
      if (event.wasClean) show("close", () => t().clean(event.code, event.reason), extra);
      else show("close", () => t().died(event.code), extra);
    });
    socket.onerror = mine(() => show("error", () => t().error));
  }
  document.getElementById("again").addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  applyLanguage(true);
  run();
})();
