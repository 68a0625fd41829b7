/*
 * The chat widget's panel: its elements, built and never parsed from strings, in a shadow root with the
 * widget's stylesheet, and its controls wired to the chat's flows. A part of the widget; widget.js loads it.
 */
(function (parts) {
  "use strict";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") node.textContent = attrs.text;
      else if (name === "hidden") node.hidden = attrs.hidden;
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) {
      node.appendChild(child);
    });
    return node;
  }

  parts["widget-panel.js"] = function (chat) {
    var config = chat.config;
    var state = chat.state;
    var ui = chat.ui;

    function buildHeader() {
      ui.remaining = el("span", { class: "cw-remaining", "aria-live": "polite" });
      ui.end = el("button", { type: "button", class: "cw-link", text: "End chat", hidden: true });
      return el("header", { class: "cw-header" }, [
        el("h2", { id: "cw-title", class: "cw-title", text: config.title }),
        ui.remaining,
        ui.end,
      ]);
    }

    function buildForms() {
      ui.email = el("input", { id: "cw-email", name: "email", type: "email", required: "", autocomplete: "email" });
      ui.startButton = el("button", { type: "submit", class: "cw-button", text: "Start chat" });
      ui.startForm = el("form", { class: "cw-start", novalidate: "" }, [
        el("p", { class: "cw-intro", text: chat.text.intro }),
        el("label", { for: "cw-email", text: "Email address" }),
        el("div", { class: "cw-row" }, [ui.email, ui.startButton]),
      ]);

      ui.log = el("ol", { class: "cw-log", "aria-label": "Conversation" });
      ui.announce = el("div", { class: "cw-visually-hidden", "aria-live": "polite", "aria-atomic": "true" });
      ui.message = el("textarea", { id: "cw-message", name: "message", rows: "2", maxlength: "4000", required: "" });
      ui.sendButton = el("button", { type: "submit", class: "cw-button", text: "Send" });
      ui.sendForm = el("form", { class: "cw-send", hidden: true, novalidate: "" }, [
        el("label", { for: "cw-message", text: "Your message" }),
        el("div", { class: "cw-row" }, [ui.message, ui.sendButton]),
      ]);

      // Who answers (the assistant or a person), and the way to ask for a person.
      ui.mode = el("p", { class: "cw-mode", "aria-live": "polite", hidden: true });
      ui.human = el("button", { type: "button", class: "cw-link", text: chat.text.talkToPerson, hidden: true });
      ui.handoff = el("div", { class: "cw-handoff" }, [ui.mode, ui.human]);

      ui.statusText = el("span", { class: "cw-status-text" });
      ui.restart = el("button", { type: "button", class: "cw-button", text: "Start a new chat", hidden: true });
      ui.status = el("div", { class: "cw-status", role: "status", hidden: true }, [ui.statusText, ui.restart]);
    }

    /* Inline in the site's element, or floating in the corner behind a "Chat" button. */
    function place(host, root) {
      if (config.target) {
        host.classList.add("cw-inline");
        root.appendChild(el("div", { class: "cw-frame cw-frame-inline" }, [ui.panel]));
        return;
      }
      ui.panel.id = "cw-panel";
      ui.panel.hidden = true;
      ui.launcher = el("button", {
        type: "button", class: "cw-launcher", "aria-expanded": "false", "aria-controls": "cw-panel", text: "Chat",
      });
      ui.launcher.addEventListener("click", function () {
        var open = ui.panel.hidden;
        ui.panel.hidden = !open;
        ui.launcher.setAttribute("aria-expanded", String(open));
        ui.launcher.textContent = open ? "Close chat" : "Chat";
        if (open) (state.token ? ui.message : ui.email).focus();
      });
      root.appendChild(el("div", { class: "cw-frame cw-frame-floating" }, [ui.panel, ui.launcher]));
    }

    function listen() {
      ui.startForm.addEventListener("submit", chat.onStart);
      ui.sendForm.addEventListener("submit", chat.onSend);
      ui.message.addEventListener("keydown", function (event) {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          ui.sendForm.requestSubmit ? ui.sendForm.requestSubmit() : chat.onSend(event);
        }
      });
      ui.end.addEventListener("click", chat.onEnd);
      ui.human.addEventListener("click", chat.askForPerson);
      ui.restart.addEventListener("click", chat.restart);
      window.addEventListener("offline", function () {
        chat.showStatus(chat.text.offlineNow, "error");
      });
      window.addEventListener("online", function () {
        if (ui.status.dataset.kind === "error") chat.hideStatus();
      });
      document.addEventListener("visibilitychange", function () {
        if (document.visibilityState === "visible" && state.token && !state.busy) chat.refreshSession();
      });
    }

    function build(host) {
      var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
      root.appendChild(el("link", { rel: "stylesheet", href: config.stylesheet }));

      ui.panel = el("section", { class: "cw-panel", "aria-labelledby": "cw-title" });
      var header = buildHeader();
      buildForms();
      ui.panel.appendChild(header);
      ui.panel.appendChild(ui.startForm);
      ui.panel.appendChild(ui.log);
      ui.panel.appendChild(ui.handoff);
      ui.panel.appendChild(ui.status);
      ui.panel.appendChild(ui.sendForm);
      ui.panel.appendChild(ui.announce);

      place(host, root);
      listen();
    }

    chat.el = el;
    chat.build = build;
  };
})(window.chatApiWidget.parts);
