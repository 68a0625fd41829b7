/*
 * The chat widget: one plain script, no build step, no dependencies.
 *
 * Embed it on any page:
 *   <script src="https://chat.example.com/static/chat_app/widget.js" defer></script>
 * Optional data attributes on that tag:
 *   data-api-origin  the chat API's origin (default: the origin the script came from)
 *   data-target      a CSS selector: mount inside that element instead of a floating button
 *   data-title       the panel's heading (default "Chat with us")
 *   data-stylesheet  the widget's CSS (default: widget.css beside this script)
 *
 * Visitor and model text only ever reaches the page through textContent, never as HTML, and the
 * script injects no inline script or style, so it runs under a strict Content-Security-Policy.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script) return;
  var scriptUrl = new URL(script.src, document.baseURI);
  var config = {
    apiOrigin: (script.dataset.apiOrigin || scriptUrl.origin).replace(/\/+$/, ""),
    target: script.dataset.target || "",
    title: script.dataset.title || "Chat with us",
    stylesheet: script.dataset.stylesheet || new URL("widget.css", scriptUrl).href,
  };
  var STORAGE_KEY = "chat-widget:" + config.apiOrigin;
  var API = config.apiOrigin + "/api/v1";

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
  };

  /* ---- small DOM helpers: elements are built, never parsed from strings ---- */

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

  /* ---- the stored session: the token lives in sessionStorage, one per API origin ---- */

  var store = {
    read: function () {
      try {
        return JSON.parse(window.sessionStorage.getItem(STORAGE_KEY) || "null");
      } catch (e) {
        return null;
      }
    },
    write: function (value) {
      try {
        window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify(value));
      } catch (e) {
        /* storage full or disabled: the chat still works until the page is left */
      }
    },
    clear: function () {
      try {
        window.sessionStorage.removeItem(STORAGE_KEY);
      } catch (e) {
        /* nothing stored */
      }
    },
  };

  /* ---- the API ---- */

  function ApiError(status, detail, retryAfter) {
    this.status = status;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }

  function detailOf(body) {
    if (!body || typeof body !== "object") return "";
    if (typeof body.detail === "string") return body.detail;
    var first = Object.keys(body)[0];
    var value = first && body[first];
    return Array.isArray(value) ? String(value[0]) : "";
  }

  function request(path, options) {
    options = options || {};
    var headers = { Accept: options.accept || "application/json" };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    if (state.token && !options.anonymous) headers.Authorization = "Bearer " + state.token;
    return fetch(API + path, {
      method: options.method || "GET",
      headers: headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      credentials: "omit",
      cache: "no-store",
    });
  }

  function failure(response) {
    var retryAfter = parseInt(response.headers.get("Retry-After") || "", 10);
    return response
      .json()
      .catch(function () {
        return null;
      })
      .then(function (body) {
        throw new ApiError(response.status, detailOf(body), isNaN(retryAfter) ? null : retryAfter);
      });
  }

  function json(path, options) {
    return request(path, options).then(function (response) {
      if (!response.ok) return failure(response);
      return response.status === 204 ? null : response.json();
    });
  }

  /* Server-Sent Events over fetch (EventSource cannot POST): calls onEvent(name, data). */
  function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function dispatch(block) {
      var name = "message";
      var data = [];
      block.split("\n").forEach(function (line) {
        if (line.indexOf("event:") === 0) name = line.slice(6).trim();
        else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
      });
      if (!data.length) return;
      var parsed;
      try {
        parsed = JSON.parse(data.join("\n"));
      } catch (e) {
        return;
      }
      onEvent(name, parsed);
    }
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) {
          buffer += decoder.decode();
          if (buffer.trim()) dispatch(buffer.replace(/\r\n?/g, "\n"));
          return;
        }
        buffer = (buffer + decoder.decode(chunk.value, { stream: true })).replace(/\r\n?/g, "\n");
        var end;
        while ((end = buffer.indexOf("\n\n")) !== -1) {
          dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
        return pump();
      });
    }
    return pump();
  }

  /* ---- state and the view ---- */

  var state = {
    token: null,
    sessionId: null,
    remaining: null,
    streaming: typeof ReadableStream !== "undefined" && typeof TextDecoder !== "undefined",
    busy: false,
    countdown: null,
  };
  var ui = {};

  function build(host) {
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    root.appendChild(el("link", { rel: "stylesheet", href: config.stylesheet }));

    ui.panel = el("section", { class: "cw-panel", "aria-labelledby": "cw-title" });
    ui.remaining = el("span", { class: "cw-remaining", "aria-live": "polite" });
    ui.end = el("button", { type: "button", class: "cw-link", text: "End chat", hidden: true });
    var header = el("header", { class: "cw-header" }, [
      el("h2", { id: "cw-title", class: "cw-title", text: config.title }),
      ui.remaining,
      ui.end,
    ]);

    ui.email = el("input", { id: "cw-email", name: "email", type: "email", required: "", autocomplete: "email" });
    ui.startButton = el("button", { type: "submit", class: "cw-button", text: "Start chat" });
    ui.startForm = el("form", { class: "cw-start", novalidate: "" }, [
      el("p", { class: "cw-intro", text: TEXT.intro }),
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

    ui.statusText = el("span", { class: "cw-status-text" });
    ui.restart = el("button", { type: "button", class: "cw-button", text: "Start a new chat", hidden: true });
    ui.status = el("div", { class: "cw-status", role: "status", hidden: true }, [ui.statusText, ui.restart]);

    ui.panel.appendChild(header);
    ui.panel.appendChild(ui.startForm);
    ui.panel.appendChild(ui.log);
    ui.panel.appendChild(ui.status);
    ui.panel.appendChild(ui.sendForm);
    ui.panel.appendChild(ui.announce);

    if (config.target) {
      host.classList.add("cw-inline");
      root.appendChild(el("div", { class: "cw-frame cw-frame-inline" }, [ui.panel]));
    } else {
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

    ui.startForm.addEventListener("submit", onStart);
    ui.sendForm.addEventListener("submit", onSend);
    ui.message.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        ui.sendForm.requestSubmit ? ui.sendForm.requestSubmit() : onSend(event);
      }
    });
    ui.end.addEventListener("click", onEnd);
    ui.restart.addEventListener("click", restart);
    window.addEventListener("offline", function () {
      showStatus(TEXT.offlineNow, "error");
    });
    window.addEventListener("online", function () {
      if (ui.status.dataset.kind === "error") hideStatus();
    });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible" && state.token && !state.busy) refreshSession();
    });
  }

  function showStatus(text, kind, offerRestart) {
    ui.status.hidden = false;
    ui.status.dataset.kind = kind || "info";
    ui.statusText.textContent = text;
    ui.restart.hidden = !offerRestart;
  }

  function hideStatus() {
    stopCountdown();
    ui.status.hidden = true;
    ui.status.dataset.kind = "";
    ui.statusText.textContent = "";
    ui.restart.hidden = true;
  }

  function stopCountdown() {
    if (state.countdown) window.clearInterval(state.countdown);
    state.countdown = null;
  }

  function setRemaining(count) {
    state.remaining = count;
    ui.remaining.textContent =
      count === null ? "" : count === 1 ? "1 message left" : count + " messages left";
  }

  function setBusy(busy) {
    state.busy = busy;
    ui.sendButton.disabled = busy || Boolean(state.countdown);
    ui.log.setAttribute("aria-busy", String(busy));
  }

  function showChat() {
    ui.startForm.hidden = true;
    ui.sendForm.hidden = false;
    ui.end.hidden = false;
    ui.log.hidden = false;
  }

  function showStart() {
    ui.startForm.hidden = false;
    ui.sendForm.hidden = true;
    ui.end.hidden = true;
    ui.log.hidden = true;
    setRemaining(null);
  }

  function addBubble(kind, text, extra) {
    var item = el("li", { class: "cw-message cw-" + kind });
    item.appendChild(el("span", { class: "cw-visually-hidden", text: kind === "visitor" ? "You: " : "Assistant: " }));
    var body = el("p", { class: "cw-text", text: text });
    item.appendChild(body);
    if (extra && extra.flagged) markFlagged(item);
    if (extra && extra.note) item.appendChild(el("p", { class: "cw-note", text: extra.note }));
    ui.log.appendChild(item);
    ui.log.scrollTop = ui.log.scrollHeight;
    return { item: item, body: body };
  }

  function markFlagged(item) {
    item.classList.add("cw-flagged");
    item.appendChild(el("p", { class: "cw-note", text: TEXT.flaggedNote }));
  }

  function forget() {
    state.token = null;
    state.sessionId = null;
    store.clear();
  }

  function sessionEnded(text) {
    forget();
    setBusy(false);
    ui.sendForm.hidden = true;
    ui.end.hidden = true;
    setRemaining(null);
    showStatus(text || TEXT.sessionEnded, "ended", true);
  }

  function restart() {
    forget();
    hideStatus();
    while (ui.log.firstChild) ui.log.removeChild(ui.log.firstChild);
    showStart();
    ui.email.focus();
  }

  /* ---- flows ---- */

  function onStart(event) {
    event.preventDefault();
    var email = ui.email.value.trim();
    if (!email || !ui.email.checkValidity()) {
      showStatus("Please enter a valid email address.", "error");
      ui.email.focus();
      return;
    }
    ui.startButton.disabled = true;
    hideStatus();
    json("/auth/email", { method: "POST", body: { email: email }, anonymous: true })
      .then(function (started) {
        state.token = started.access_token;
        state.sessionId = started.session_id;
        store.write({ token: state.token, sessionId: state.sessionId });
        showChat();
        return refreshSession();
      })
      .then(function () {
        ui.message.focus();
      })
      .catch(function (error) {
        explain(error);
      })
      .then(function () {
        ui.startButton.disabled = false;
      });
  }

  function refreshSession() {
    return json("/auth/session")
      .then(function (session) {
        setRemaining(session.messages_remaining);
        if (session.messages_remaining === 0) limitReached();
      })
      .catch(function (error) {
        if (error instanceof ApiError && error.status === 401) sessionEnded();
      });
  }

  function restore() {
    var saved = store.read();
    if (!saved || !saved.token) {
      showStart();
      return;
    }
    state.token = saved.token;
    state.sessionId = saved.sessionId;
    showChat();
    setBusy(true);
    json("/chat/history?limit=50")
      .then(function (history) {
        history.messages.forEach(function (exchange) {
          var mine = addBubble("visitor", exchange.message, { flagged: exchange.flagged });
          mine.item.dataset.messageId = String(exchange.id);
          addBubble("assistant", exchange.response);
        });
        setBusy(false);
        return refreshSession();
      })
      .catch(function (error) {
        setBusy(false);
        explain(error);
      });
  }

  function onSend(event) {
    event.preventDefault();
    var text = ui.message.value;
    if (state.busy || state.countdown) return;
    if (!text.trim()) {
      showStatus("Please type a message first.", "error");
      ui.message.focus();
      return;
    }
    hideStatus();
    ui.message.value = "";
    var mine = addBubble("visitor", text);
    var reply = addBubble("assistant", "");
    reply.item.classList.add("cw-pending");
    reply.item.setAttribute("aria-busy", "true");
    setBusy(true);
    showStatus(TEXT.waiting, "waiting");
    var send = state.streaming ? sendStreaming : sendPlain;
    send(text, mine, reply)
      .then(function (done) {
        hideStatus();
        finish(mine, reply, done);
      })
      .catch(function (error) {
        undo(mine, reply, text, error);
        explain(error);
      })
      .then(function () {
        setBusy(false);
      });
  }

  function sendPlain(text, mine, reply) {
    return json("/chat", { method: "POST", body: { message: text } }).then(function (turn) {
      reply.body.textContent = turn.response;
      return turn;
    });
  }

  function sendStreaming(text, mine, reply) {
    return request("/chat/stream", {
      method: "POST",
      body: { message: text },
      accept: "text/event-stream, application/json", // errors before the stream are JSON
    }).then(
      function (response) {
        if (response.status === 404 || response.status === 405 || response.status === 406) {
          state.streaming = false; // this server has no stream endpoint: use POST /chat from now on
          return sendPlain(text, mine, reply);
        }
        if (!response.ok) return failure(response);
        if (!response.body || (response.headers.get("Content-Type") || "").indexOf("text/event-stream") !== 0) {
          return response.json().then(function (turn) {
            reply.body.textContent = turn.response;
            return turn;
          });
        }
        var result = null;
        return readEvents(response, function (name, data) {
          if (name === "delta" && typeof data.content === "string") {
            reply.body.textContent += data.content;
            ui.log.scrollTop = ui.log.scrollHeight;
          } else if (name === "done" || name === "error") {
            result = data;
            result.interrupted = name === "error";
          }
        }).then(
          function () {
            return result || { interrupted: true };
          },
          function () {
            return { interrupted: true }; // the connection broke mid-reply: the message is stored
          }
        );
      }
    );
  }

  function finish(mine, reply, done) {
    reply.item.classList.remove("cw-pending");
    reply.item.removeAttribute("aria-busy");
    if (done.message_id) mine.item.dataset.messageId = String(done.message_id);
    if (done.flagged) markFlagged(mine.item);
    if (done.fallback) reply.item.appendChild(el("p", { class: "cw-note", text: TEXT.fallbackNote }));
    if (done.interrupted) {
      reply.item.classList.add("cw-interrupted");
      reply.item.appendChild(el("p", { class: "cw-note", text: TEXT.interrupted }));
    }
    ui.announce.textContent = "Assistant: " + reply.body.textContent;
    if (state.remaining !== null) setRemaining(Math.max(0, state.remaining - 1));
    if (state.remaining === 0) limitReached();
  }

  /* A message the server refused was not stored: take it off the log and give the text back. */
  function undo(mine, reply, text, error) {
    if (error instanceof ApiError || error instanceof TypeError) {
      ui.log.removeChild(mine.item);
      ui.log.removeChild(reply.item);
      if (!ui.message.value) ui.message.value = text;
    }
  }

  function limitReached() {
    ui.sendForm.hidden = true;
    showStatus(TEXT.limitReached, "limit", true);
  }

  function rateLimited(seconds) {
    var left = Math.max(1, seconds || 60);
    function tick() {
      if (left <= 0) {
        hideStatus();
        ui.sendButton.disabled = state.busy;
        return;
      }
      showStatus(
        "You are sending messages too quickly. Please wait " + left + (left === 1 ? " second." : " seconds."),
        "rate-limited"
      );
      left -= 1;
    }
    stopCountdown();
    tick();
    state.countdown = window.setInterval(tick, 1000);
    ui.sendButton.disabled = true;
  }

  function explain(error) {
    if (!(error instanceof ApiError)) {
      showStatus(navigator.onLine === false || error instanceof TypeError ? TEXT.offline : TEXT.serverError, "error");
      return;
    }
    if (error.status === 401) return sessionEnded();
    if (error.status === 429 && /message limit/i.test(error.detail)) return limitReached();
    if (error.status === 429) return rateLimited(error.retryAfter);
    if (error.status >= 500) return showStatus(TEXT.serverError, "error");
    showStatus(error.detail || "That did not work; please check and try again.", "error");
  }

  function onEnd() {
    var ended = function () {
      sessionEnded("You ended this chat.");
    };
    json("/auth/logout", { method: "POST" }).then(ended, ended);
  }

  /* ---- mount ---- */

  function mount() {
    var host;
    if (config.target) {
      var target = document.querySelector(config.target);
      if (!target) return;
      host = el("div", { class: "chat-widget" });
      target.appendChild(host);
    } else {
      host = el("div", { class: "chat-widget" });
      document.body.appendChild(host);
    }
    build(host);
    restore();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();
})();
