/*
 * The chat widget's flows: start a chat with an email address, restore it after a reload, send a message
 * (streamed, or plain where streaming is unavailable), end the chat or start a new one. A part of the
 * widget; widget.js loads it.
 */
(function (parts) {
  "use strict";

  parts["widget-chat.js"] = function (chat) {
    var state = chat.state;
    var ui = chat.ui;
    var json = chat.json;

    function forget() {
      state.token = null;
      state.sessionId = null;
      chat.store.clear();
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
          chat.store.write({ token: state.token, sessionId: state.sessionId });
          chat.showChat();
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
      return json("/auth/session")
        .then(function (session) {
          chat.setRemaining(session.messages_remaining);
          if (session.messages_remaining === 0) chat.limitReached();
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
      chat.showChat();
      chat.setBusy(true);
      json("/chat/history?limit=50")
        .then(function (history) {
          chat.showHistory(history.messages);
          chat.setBusy(false);
          return refreshSession();
        })
        .catch(function (error) {
          chat.setBusy(false);
          chat.explain(error);
        });
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
      var turn = chat.addTurn(text);
      chat.setBusy(true);
      chat.showStatus(chat.text.waiting, "waiting");
      var send = state.streaming ? sendStreaming : sendPlain;
      send(text, turn.reply)
        .then(function (done) {
          chat.hideStatus();
          chat.finish(turn.mine, turn.reply, done);
        })
        .catch(function (error) {
          chat.undo(turn.mine, turn.reply, text, error);
          chat.explain(error);
        })
        .then(function () {
          chat.setBusy(false);
        });
    }

    function sendPlain(text, reply) {
      return json("/chat", { method: "POST", body: { message: text } }).then(function (turn) {
        reply.body.textContent = turn.response;
        return turn;
      });
    }

    function sendStreaming(text, reply) {
      return chat.request("/chat/stream", {
        method: "POST",
        body: { message: text },
        accept: "text/event-stream, application/json", // errors before the stream are JSON
      }).then(
        function (response) {
          if (response.status === 404 || response.status === 405 || response.status === 406) {
            state.streaming = false; // this server has no stream endpoint: use POST /chat from now on
            return sendPlain(text, reply);
          }
          if (!response.ok) return chat.failure(response);
          if (!response.body || (response.headers.get("Content-Type") || "").indexOf("text/event-stream") !== 0) {
            return response.json().then(function (turn) {
              reply.body.textContent = turn.response;
              return turn;
            });
          }
          var result = null;
          return chat.readEvents(response, function (name, data) {
            if (name === "delta" && typeof data.content === "string") {
              chat.extendReply(reply, data.content);
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
