/*
 * The chat widget's side of the conversation's events (/chat/events): messages from the team, edits and
 * withdrawals, who is answering (the assistant or a person), asking for a person, and the chat's end. Every
 * message is shown once, by its message id: the visitor's own message and a streamed reply are shown at once,
 * and their `message` events, which may come before the stream names their ids, wait for the turn to settle.
 * A part of the widget; widget.js loads it.
 */
(function (parts) {
  "use strict";

  var ASK_AGAIN_MS = 60000; // the server pings the team at most once a minute

  parts["widget-handoff.js"] = function (chat) {
    var state = chat.state;
    var ui = chat.ui;
    var TEXT = chat.text;
    var askAgain = null;

    /* ---- the turn being sent: its own events wait until the stream or the answer names its ids ---- */

    function turnBegin(text) {
      var turn = chat.addTurn(text);
      turn.text = text.trim();
      turn.held = [];
      turn.settled = false;
      state.turn = turn;
      return turn;
    }

    function turnSettle(turn, done) {
      if (done.message_id) chat.bindMessage(turn.mine, done.message_id);
      chat.finish(turn, done);
      if (turn.reply && done.response_id) chat.bindMessage(turn.reply, done.response_id);
      if (done.mode) setMode(done.mode, null);
      release(turn, !done.message_id);
    }

    function turnFail(turn, text, error) {
      chat.undo(turn, text, error);
      release(turn, false);
    }

    /* The turn is over: its held events go through; a turn the stream never named is matched by its text. */
    function release(turn, unnamed) {
      turn.settled = true;
      if (state.turn === turn) state.turn = null;
      state.unnamed = unnamed && turn.mine.item.parentNode ? turn : null;
      turn.held.forEach(function (event) {
        applyEvent(event);
      });
      turn.held = [];
      persist();
    }

    /* A broken stream named no ids: the first visitor message with its text is it, the next reply is its reply. */
    function adoptUnnamed(event) {
      var turn = state.unnamed;
      if (!turn) return false;
      if (event.role === "visitor" && !turn.mine.item.dataset.messageId && event.content === turn.text) {
        chat.bindMessage(turn.mine, event.message_id);
        chat.refreshText(turn.mine, event.content);
        return true;
      }
      if (event.role === "assistant" && turn.mine.item.dataset.messageId && turn.reply) {
        chat.bindMessage(turn.reply, event.message_id);
        chat.refreshText(turn.reply, event.content);
        state.unnamed = null;
        return true;
      }
      return false;
    }

    /* ---- events ---- */

    /* One event of /chat/events; `quiet` while catching up on what was said before (nothing is announced). */
    function applyEvent(event, quiet) {
      if (!event || typeof event !== "object") return;
      if (event.type === "message") showMessage(event, quiet);
      else if (event.type === "edit") editMessage(event, quiet);
      else if (event.type === "delete") withdrawMessage(event, quiet);
      else if (event.type === "mode") setMode(event.mode, event.author);
      else if (event.type === "end") {
        chat.sessionEnded(TEXT.endedBecause[event.reason] || TEXT.sessionEnded);
        return;
      }
      persist();
    }

    function showMessage(event, quiet) {
      var shown = chat.findMessage(event.message_id);
      if (shown) return chat.refreshText(shown, event.content);
      var own = event.role === "visitor" || event.role === "assistant";
      if (own && state.turn && !state.turn.settled) return state.turn.held.push(event);
      if (adoptUnnamed(event)) return;
      var bubble = chat.addBubble(event.role, String(event.content || ""), { author: event.author });
      chat.bindMessage(bubble, event.message_id);
      if (event.role === "staff") {
        state.staffName = event.author || state.staffName;
        if (state.mode === "human") showMode(answeringText());
      }
      if (!quiet && event.role !== "visitor") {
        chat.announce((event.role === "staff" ? event.author || TEXT.staff : "Assistant") + ": " + event.content);
      }
    }

    function editMessage(event, quiet) {
      var shown = chat.findMessage(event.message_id);
      if (!shown || typeof event.content !== "string") return;
      chat.markEdited(shown, event.content);
      if (!quiet) chat.announce("A message was edited: " + event.content);
    }

    function withdrawMessage(event, quiet) {
      var shown = chat.findMessage(event.message_id);
      if (!shown) return;
      chat.markWithdrawn(shown);
      if (!quiet) chat.announce(TEXT.withdrawn);
    }

    /* ---- who answers ---- */

    function answeringText() {
      return TEXT.personAnswering + (state.staffName ? ": " + state.staffName : "");
    }

    function showMode(text) {
      ui.mode.textContent = text || "";
      ui.mode.hidden = !text;
    }

    /* From a mode event, a reply's `mode` or the session's: say who answers when it changes. */
    function setMode(mode, author) {
      if (mode !== "human" && mode !== "ai") return;
      var previous = state.mode;
      state.mode = mode;
      state.modeChanges = (state.modeChanges || 0) + 1;
      if (mode === "human") {
        state.asked = false;
        if (author) state.staffName = author;
        showMode(answeringText());
      } else if (previous === "human") {
        showMode(TEXT.assistantBack);
      }
      showHumanButton();
    }

    function showHumanButton() {
      ui.human.hidden = !state.token || state.mode === "human" || state.asked;
    }

    function askForPerson() {
      if (!state.token) return;
      ui.human.disabled = true;
      chat
        .json("/chat/human", { method: "POST" })
        .then(function () {
          if (state.mode === "human") return;
          state.asked = true;
          showMode(TEXT.personAsked);
          showHumanButton();
          if (!ui.sendForm.hidden) ui.message.focus(); // the button it was on is gone
          window.clearTimeout(askAgain);
          askAgain = window.setTimeout(function () {
            state.asked = false;
            showHumanButton();
          }, ASK_AGAIN_MS);
        })
        .catch(function (error) {
          chat.explain(error);
        })
        .then(function () {
          ui.human.disabled = false;
        });
    }

    function resetHandoff() {
      window.clearTimeout(askAgain);
      state.mode = "ai";
      state.staffName = null;
      state.asked = false;
      state.turn = null;
      state.unnamed = null;
      showMode("");
      showHumanButton();
    }

    /* ---- kept across a reload: the token, the cursor and what the log shows, written together ---- */

    function persist() {
      if (!state.token || (state.turn && !state.turn.settled)) return; // the turn's end writes it
      chat.store.write({
        token: state.token,
        sessionId: state.sessionId,
        cursor: state.cursor,
        transcript: chat.transcript(),
      });
    }

    chat.turnBegin = turnBegin;
    chat.turnSettle = turnSettle;
    chat.turnFail = turnFail;
    chat.applyEvent = applyEvent;
    chat.setMode = setMode;
    chat.showHumanButton = showHumanButton;
    chat.askForPerson = askForPerson;
    chat.resetHandoff = resetHandoff;
    chat.persist = persist;
  };
})(window.chatApiWidget.parts);
