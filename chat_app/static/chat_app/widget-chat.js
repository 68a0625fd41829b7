/*
 * The chat widget's flows: start a chat with an email address, restore it after a reload (the log as it was,
 * then the conversation's events from the cursor on), send a message (streamed, or plain where streaming is
 * unavailable), end the chat or start a new one. A part of the widget; widget.js loads it.
 */
(function (parts) {
  "use strict";

  parts["widget-chat.js"] = function (chat) {
    var state = chat.state;
    var ui = chat.ui;
    var json = chat.json;

    function forget() {
      chat.stopEvents();
      state.token = null;
      state.sessionId = null;
      state.cursor = null;
      chat.store.clear();
      chat.resetHandoff();
    }

    function restart() {
      forget();
      chat.hideStatus();
      chat.clearLog();
      chat.showStart();
      ui.email.focus();
    }

    function onStart(event) {
      event.preventDefault();
      var email = ui.email.value.trim();
      if (!email || !ui.email.checkValidity()) {
        chat.showStatus("Please enter a valid email address.", "error");
        ui.email.focus();
        return;
      }
      ui.startButton.disabled = true;
      chat.hideStatus();
      json("/auth/email", { method: "POST", body: { email: email }, anonymous: true })
        .then(function (started) {
          state.token = started.access_token;
          state.sessionId = started.session_id;
          state.cursor = null;
          chat.persist();
          chat.showChat();
          chat.openEvents(false); // a new session has said nothing yet: straight to the live stream
          return refreshSession();
        })
        .then(function () {
          ui.message.focus();
        })
        .catch(function (error) {
          chat.explain(error);
        })
        .then(function () {
          ui.startButton.disabled = false;
        });
    }

    function refreshSession() {
      var modeChanges = state.modeChanges;
      return json("/auth/session")
        .then(function (session) {
          chat.setRemaining(session.messages_remaining);
          if (session.messages_remaining === 0) chat.limitReached();
          if (state.modeChanges === modeChanges) chat.setMode(session.mode, null); // unless an event was newer
        })
        .catch(function (error) {
          if (error instanceof chat.ApiError && error.status === 401) chat.sessionEnded();
        });
    }

    function restore() {
      var saved = chat.store.read();
      if (!saved || !saved.token) {
        chat.showStart();
        return;
      }
      state.token = saved.token;
      state.sessionId = saved.sessionId;
      state.cursor = typeof saved.cursor === "string" && saved.cursor ? saved.cursor : null;
      if (state.cursor) chat.showTranscript(saved.transcript); // without a cursor the events tell it all
      chat.showChat();
      chat.openEvents(true);
      refreshSession();
    }

    function onSend(event) {
      event.preventDefault();
      var text = ui.message.value;
      if (state.busy || state.countdown) return;
      if (!text.trim()) {
        chat.showStatus("Please type a message first.", "error");
        ui.message.focus();
        return;
      }
      chat.hideStatus();
      ui.message.value = "";
      var turn = chat.turnBegin(text);
      chat.setBusy(true);
      if (state.mode !== "human") chat.showStatus(chat.text.waiting, "waiting"); // else a person answers here
      var send = state.streaming ? sendStreaming : sendPlain;
      send(text, turn)
        .then(function (done) {
          chat.hideStatus();
          chat.turnSettle(turn, done);
        })
        .catch(function (error) {
          chat.turnFail(turn, text, error);
          chat.explain(error);
        })
        .then(function () {
          chat.setBusy(false);
        });
    }

    function sendPlain(text, turn) {
      return json("/chat", { method: "POST", body: { message: text } }).then(function (done) {
        if (done.response) chat.extendReply(turn, done.response);
        return done;
      });
    }

    function sendStreaming(text, turn) {
      return chat.request("/chat/stream", {
        method: "POST",
        body: { message: text },
        accept: "text/event-stream, application/json", // errors before the stream are JSON
      }).then(
        function (response) {
          if (response.status === 404 || response.status === 405 || response.status === 406) {
            state.streaming = false; // this server has no stream endpoint: use POST /chat from now on
            return sendPlain(text, turn);
          }
          if (!response.ok) return chat.failure(response);
          if (!response.body || (response.headers.get("Content-Type") || "").indexOf("text/event-stream") !== 0) {
            return response.json().then(function (done) {
              if (done.response) chat.extendReply(turn, done.response);
              return done;
            });
          }
          var result = null;
          return chat.readEvents(response, function (name, data) {
            if (name === "delta" && typeof data.content === "string") {
              chat.extendReply(turn, data.content);
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

    function onEnd() {
      chat.stopEvents(); // the `end` this logout causes would only say it again
      var ended = function () {
        chat.sessionEnded("You ended this chat.");
      };
      json("/auth/logout", { method: "POST" }).then(ended, ended);
    }

    chat.forget = forget;
    chat.restart = restart;
    chat.onStart = onStart;
    chat.refreshSession = refreshSession;
    chat.restore = restore;
    chat.onSend = onSend;
    chat.onEnd = onEnd;
  };
})(window.chatApiWidget.parts);
