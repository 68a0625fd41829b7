/*
 * The chat widget's states around the conversation: the status line, the messages left, busy, the start
 * form or the chat, and what an error, a rate limit, the message limit or an ended session show the
 * visitor. A part of the widget; widget.js loads it.
 */
(function (parts) {
  "use strict";

  parts["widget-status.js"] = function (chat) {
    var state = chat.state;
    var ui = chat.ui;
    var TEXT = chat.text;

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
      chat.showHumanButton();
    }

    function showStart() {
      ui.startForm.hidden = false;
      ui.sendForm.hidden = true;
      ui.end.hidden = true;
      ui.log.hidden = true;
      setRemaining(null);
      chat.showHumanButton();
    }

    function sessionEnded(text) {
      chat.forget();
      setBusy(false);
      ui.sendForm.hidden = true;
      ui.end.hidden = true;
      setRemaining(null);
      showStatus(text || TEXT.sessionEnded, "ended", true);
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
      if (!(error instanceof chat.ApiError)) {
        showStatus(navigator.onLine === false || error instanceof TypeError ? TEXT.offline : TEXT.serverError, "error");
        return;
      }
      if (error.status === 401) return sessionEnded();
      if (error.status === 429 && /message limit/i.test(error.detail)) return limitReached();
      if (error.status === 429) return rateLimited(error.retryAfter);
      if (error.status >= 500) return showStatus(TEXT.serverError, "error");
      showStatus(error.detail || "That did not work; please check and try again.", "error");
    }

    chat.showStatus = showStatus;
    chat.hideStatus = hideStatus;
    chat.setRemaining = setRemaining;
    chat.setBusy = setBusy;
    chat.showChat = showChat;
    chat.showStart = showStart;
    chat.sessionEnded = sessionEnded;
    chat.limitReached = limitReached;
    chat.explain = explain;
  };
})(window.chatApiWidget.parts);
