/*
 * The chat widget's conversation log: the visitor's and the assistant's bubbles, as text only, a reply as
 * it arrives and once it is done (with its notes), the history after a reload, and a refused message
 * taken back. A part of the widget; widget.js loads it.
 */
(function (parts) {
  "use strict";

  parts["widget-log.js"] = function (chat) {
    var state = chat.state;
    var ui = chat.ui;
    var TEXT = chat.text;
    var el = chat.el;

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

    function showHistory(exchanges) {
      exchanges.forEach(function (exchange) {
        var mine = addBubble("visitor", exchange.message, { flagged: exchange.flagged });
        mine.item.dataset.messageId = String(exchange.id);
        addBubble("assistant", exchange.response);
      });
    }

    function clearLog() {
      while (ui.log.firstChild) ui.log.removeChild(ui.log.firstChild);
    }

    /* The visitor's message and an empty reply waiting for the assistant: { mine, reply }. */
    function addTurn(text) {
      var mine = addBubble("visitor", text);
      var reply = addBubble("assistant", "");
      reply.item.classList.add("cw-pending");
      reply.item.setAttribute("aria-busy", "true");
      return { mine: mine, reply: reply };
    }

    function extendReply(reply, text) {
      reply.body.textContent += text;
      ui.log.scrollTop = ui.log.scrollHeight;
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
      if (state.remaining !== null) chat.setRemaining(Math.max(0, state.remaining - 1));
      if (state.remaining === 0) chat.limitReached();
    }

    /* A message the server refused was not stored: take it off the log and give the text back. */
    function undo(mine, reply, text, error) {
      if (error instanceof chat.ApiError || error instanceof TypeError) {
        ui.log.removeChild(mine.item);
        ui.log.removeChild(reply.item);
        if (!ui.message.value) ui.message.value = text;
      }
    }

    chat.showHistory = showHistory;
    chat.clearLog = clearLog;
    chat.addTurn = addTurn;
    chat.extendReply = extendReply;
    chat.finish = finish;
    chat.undo = undo;
  };
})(window.chatApiWidget.parts);
