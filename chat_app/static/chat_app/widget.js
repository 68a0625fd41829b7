/*
 * The chat widget's start-up: the one script a site embeds. It reads its own tag, loads the widget's
 * other parts from beside itself, and mounts the widget. Plain scripts, no build step, no dependencies.
 *
 * Embed it on any page:
 *   <script src="https://chat.example.com/static/chat_app/widget.js" defer></script>
 * Optional data attributes on that tag:
 *   data-api-origin  the chat API's origin (default: the origin the script came from)
 *   data-target      a CSS selector: mount inside that element instead of a floating button
 *   data-title       the panel's heading (default "Chat with us")
 *   data-stylesheet  the widget's CSS (default: widget.css beside this script)
 *
 * The parts (PARTS below) come as <script> elements from this script's origin and path, in order. Each
 * adds an installer to window.chatApiWidget.parts, the one name the widget puts on window. A mounted
 * widget is one `chat` object: this script gives it its settings, words and state, each installer (in the
 * order of PARTS, so a part may keep an earlier one's function) adds its part's functions to it, and the
 * parts call each other through it (chat.showStatus(...)).
 *
 * Visitor, model and staff text only ever reaches the page through textContent, never as HTML, and the
 * scripts inject no inline script or style, so they run under a strict Content-Security-Policy.
 */
(function () {
  "use strict";

  var PARTS = [
    "widget-api.js",
    "widget-panel.js",
    "widget-status.js",
    "widget-log.js",
    "widget-handoff.js",
    "widget-events.js",
    "widget-chat.js",
  ];

  var script = document.currentScript;
  if (!script) return;
  var scriptUrl = new URL(script.src, document.baseURI);
  var config = {
    apiOrigin: (script.dataset.apiOrigin || scriptUrl.origin).replace(/\/+$/, ""),
    target: script.dataset.target || "",
    title: script.dataset.title || "Chat with us",
    stylesheet: script.dataset.stylesheet || new URL("widget.css", scriptUrl).href,
  };

  var TEXT = {
    intro: "Tell us your email address to start a chat. We use it only to follow up on your questions.",
    waiting: "The assistant is writing…",
    sessionEnded: "This chat has ended. Start a new one to keep talking.",
    limitReached: "This chat has reached its message limit. Start a new one to keep talking.",
    offlineNow: "You seem to be offline.",
    offline: "You seem to be offline. Your message was not sent; try again once you are connected.",
    serverError: "Something went wrong on our side. Your message was not sent; please try again in a moment.",
    interrupted: "The reply was cut off. Please try again.",
    fallbackNote: "The assistant could not answer right now; your message was saved.",
    flaggedNote: "Flagged: our team may review this message.",
    staff: "Our team",
    edited: "edited",
    withdrawn: "This message was withdrawn.",
    talkToPerson: "Talk to a person",
    personAsked: "A person has been asked for. Someone from our team will answer here.",
    personAnswering: "A person is answering",
    assistantBack: "The assistant is answering again.",
    endedBecause: {
      logout: "This chat has ended: you ended it. Start a new one to keep talking.",
      staff: "This chat has ended: our team closed it. Start a new one to keep talking.",
      expired: "This chat has ended: it expired. Start a new one to keep talking.",
      deleted: "This chat has ended: it was deleted. Start a new one to keep talking.",
    },
  };

  var namespace = (window.chatApiWidget = window.chatApiWidget || { parts: {}, loading: {} });

  /* ---- loading the parts: once per folder, however many tags embed the widget ---- */

  function loadPart(src) {
    return new Promise(function (resolve, reject) {
      var tag = document.createElement("script");
      tag.src = src;
      tag.async = false; // inserted scripts then run in the order they were added, as PARTS lists them
      if (script.nonce) tag.nonce = script.nonce; // a nonce-based CSP that allowed this tag allows its parts
      tag.addEventListener("load", resolve);
      tag.addEventListener("error", function () {
        reject(new Error("The chat widget could not load " + src));
      });
      (document.head || document.documentElement).appendChild(tag);
    });
  }

  function loadParts() {
    var folder = new URL(".", scriptUrl).href;
    if (!namespace.loading[folder]) {
      namespace.loading[folder] = Promise.all(
        PARTS.map(function (name) {
          return loadPart(new URL(name, scriptUrl).href);
        })
      );
    }
    return namespace.loading[folder];
  }

  /* ---- one widget: its settings, words and state, and every part installed on it ---- */

  function create() {
    var chat = {
      config: config,
      text: TEXT,
      storageKey: "chat-widget:" + config.apiOrigin,
      state: {
        token: null,
        sessionId: null,
        remaining: null,
        streaming: typeof ReadableStream !== "undefined" && typeof TextDecoder !== "undefined",
        busy: false,
        countdown: null,
        cursor: null, // the last event read from /chat/events, kept with the token
        mode: "ai", // who answers: "ai" (the model) or "human" (a person from the team)
        staffName: null, // the person answering, as the latest staff message or mode change named them
        asked: false, // a person was asked for and has not answered yet
        turn: null, // the message being sent, until its reply is settled (widget-handoff.js)
      },
      ui: {},
    };
    PARTS.forEach(function (name) {
      var install = namespace.parts[name];
      if (typeof install !== "function") throw new Error("The chat widget's part " + name + " did not load");
      install(chat);
    });
    return chat;
  }

  /* ---- mount ---- */

  function mount() {
    var chat = create();
    var host;
    if (config.target) {
      var target = document.querySelector(config.target);
      if (!target) return;
      host = chat.el("div", { class: "chat-widget" });
      target.appendChild(host);
    } else {
      host = chat.el("div", { class: "chat-widget" });
      document.body.appendChild(host);
    }
    chat.build(host);
    chat.restore();
  }

  loadParts().then(
    function () {
      if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
      else mount();
    },
    function (error) {
      console.error(error.message);
    }
  );
})();
