/*
 * The chat widget's conversation log: the visitor's, the assistant's and the team's bubbles, as text only, each
 * known by its message id once the server named it (so none shows twice), a reply as it arrives and once it is
 * done (with its notes), edits and withdrawals, and the log saved and shown again after a reload. A part of the
 * widget; widget.js loads it.
 */
(function (parts) {
  "use strict";

  var SPOKEN = { visitor: "You: ", assistant: "Assistant: ", staff: "From our team: " };

  parts["widget-log.js"] = function (chat) {
    var state = chat.state;
    var ui = chat.ui;
    var TEXT = chat.text;
    var el = chat.el;
    var byId = {}; // message id -> its bubble, for every bubble the server has named

    /* A bubble: { item, body }. A staff bubble shows its author's name above the text. */
    function addBubble(role, text, extra) {
      extra = extra || {};
      var kind = SPOKEN[role] ? role : "assistant";
      var item = el("li", { class: "cw-message cw-" + kind });
      item.dataset.role = kind;
      item.appendChild(el("span", { class: "cw-visually-hidden", text: SPOKEN[kind] }));
      if (kind === "staff") {
        item.dataset.author = extra.author || "";
        item.appendChild(el("p", { class: "cw-author", text: extra.author || TEXT.staff }));
      }
      var body = el("p", { class: "cw-text", text: text });
      item.appendChild(body);
      if (extra.flagged) markFlagged(item);
      if (extra.note) addNote(item, extra.note);
      ui.log.appendChild(item);
      ui.log.scrollTop = ui.log.scrollHeight;
      return { item: item, body: body };
    }

    function addNote(item, note) {
      item.dataset.note = note;
      item.appendChild(el("p", { class: "cw-note", text: note }));
    }

    function markFlagged(item) {
      item.classList.add("cw-flagged");
      item.appendChild(el("p", { class: "cw-note", text: TEXT.flaggedNote }));
    }

    function bindMessage(bubble, id) {
      bubble.item.dataset.messageId = String(id);
      byId[String(id)] = bubble;
    }

    function findMessage(id) {
      var bubble = byId[String(id)];
      return bubble && bubble.item.parentNode === ui.log ? bubble : null;
    }

    /* The text as the server stored it; an edited or withdrawn message keeps what it was changed to. */
    function refreshText(bubble, text) {
      var item = bubble.item;
      if (item.classList.contains("cw-edited") || item.classList.contains("cw-withdrawn")) return;
      if (typeof text === "string" && text && bubble.body.textContent !== text) bubble.body.textContent = text;
    }

    function markEdited(bubble, text) {
      if (bubble.item.classList.contains("cw-withdrawn")) return;
      bubble.body.textContent = text;
      if (!bubble.item.classList.contains("cw-edited")) {
        bubble.item.classList.add("cw-edited");
        bubble.item.appendChild(el("p", { class: "cw-note cw-edited-note", text: TEXT.edited }));
      }
    }

    function markWithdrawn(bubble) {
      var item = bubble.item;
      item.classList.remove("cw-edited");
      item.classList.add("cw-withdrawn");
      bubble.body.textContent = TEXT.withdrawn;
      Array.prototype.slice.call(item.querySelectorAll(".cw-edited-note")).forEach(function (note) {
        item.removeChild(note);
      });
    }

    function announce(text) {
      ui.announce.textContent = text;
    }

    /* What the log shows of the messages the server named, to be shown again after a reload. */
    function transcript() {
      return Array.prototype.slice.call(ui.log.children).filter(function (item) {
        return item.dataset.messageId;
      }).map(function (item) {
        var withdrawn = item.classList.contains("cw-withdrawn");
        return {
          id: item.dataset.messageId,
          role: item.dataset.role,
          text: withdrawn ? "" : item.querySelector(".cw-text").textContent,
          author: item.dataset.author || null,
          edited: item.classList.contains("cw-edited"),
          withdrawn: withdrawn,
          flagged: item.classList.contains("cw-flagged"),
          note: item.dataset.note || null,
        };
      });
    }

    function showTranscript(entries) {
      (Array.isArray(entries) ? entries : []).forEach(function (entry) {
        if (!entry || !entry.id || findMessage(entry.id)) return;
        var bubble = addBubble(entry.role, String(entry.text || ""), entry);
        bindMessage(bubble, entry.id);
        if (entry.withdrawn) markWithdrawn(bubble);
        else if (entry.edited) markEdited(bubble, bubble.body.textContent);
      });
    }

    function clearLog() {
      while (ui.log.firstChild) ui.log.removeChild(ui.log.firstChild);
      byId = {};
    }

    /* The visitor's message, and an empty reply waiting for the assistant unless a person answers: { mine, reply }. */
    function addTurn(text) {
      var turn = { mine: addBubble("visitor", text), reply: null };
      if (state.mode !== "human") addReply(turn);
      return turn;
    }

    function addReply(turn) {
      turn.reply = addBubble("assistant", "");
      turn.reply.item.classList.add("cw-pending");
      turn.reply.item.setAttribute("aria-busy", "true");
      return turn.reply;
    }

    function extendReply(turn, text) {
      var reply = turn.reply || addReply(turn);
      reply.body.textContent += text;
      ui.log.scrollTop = ui.log.scrollHeight;
    }

    /* The reply is complete: its notes, and the messages left. No reply (a person answers): its bubble goes. */
    function finish(turn, done) {
      var mine = turn.mine;
      var reply = turn.reply;
      if (done.flagged) markFlagged(mine.item);
      if (reply && done.response_id === null && !reply.body.textContent) {
        ui.log.removeChild(reply.item);
        turn.reply = reply = null;
      }
      if (reply) {
        reply.item.classList.remove("cw-pending");
        reply.item.removeAttribute("aria-busy");
        if (done.fallback) addNote(reply.item, TEXT.fallbackNote);
        if (done.interrupted) {
          reply.item.classList.add("cw-interrupted");
          addNote(reply.item, TEXT.interrupted);
        }
        announce("Assistant: " + reply.body.textContent);
      }
      if (state.remaining !== null) chat.setRemaining(Math.max(0, state.remaining - 1));
      if (state.remaining === 0) chat.limitReached();
    }

    /* A message the server refused was not stored: take it off the log and give the text back. */
    function undo(turn, text, error) {
      if (error instanceof chat.ApiError || error instanceof TypeError) {
        ui.log.removeChild(turn.mine.item);
        if (turn.reply) ui.log.removeChild(turn.reply.item);
        if (!ui.message.value) ui.message.value = text;
      }
    }

    chat.addBubble = addBubble;
    chat.bindMessage = bindMessage;
    chat.findMessage = findMessage;
    chat.refreshText = refreshText;
    chat.markEdited = markEdited;
    chat.markWithdrawn = markWithdrawn;
    chat.announce = announce;
    chat.transcript = transcript;
    chat.showTranscript = showTranscript;
    chat.clearLog = clearLog;
    chat.addTurn = addTurn;
    chat.extendReply = extendReply;
    chat.finish = finish;
    chat.undo = undo;
  };
})(window.chatApiWidget.parts);
