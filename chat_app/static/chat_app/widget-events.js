/*
 * The chat widget's line to /chat/events: what the team says, edits, who answers, and the chat's end. It reads
 * on from the cursor kept with the token: first a plain page to catch up (after a reload), then a live
 * Server-Sent Events stream read with fetch (EventSource cannot send the token), reopened from the cursor after
 * a drop with a growing pause. When streams keep failing (a proxy that holds them back, say) it long polls
 * instead. After the chat ends it stops. A part of the widget; widget.js loads it.
 */
(function (parts) {
  "use strict";

  var PAGE = 200; // the server's page of events: a full one means more are waiting
  var FIRST_BYTE_MS = 5000; // the server opens every stream with `retry:` at once; silence means it is held back
  var IDLE_MS = 45000; // the server writes at least every 15 s: three missed keep-alives, the line is dead
  var STREAM_TRIES = 2; // streams failing in a row before long polling takes over
  var POLL_WAIT = 25; // seconds the server holds a long poll
  var RECONNECT_MS = 2000; // as the stream's `retry:` asks
  var BACKOFF_MS = [1000, 2000, 5000, 10000, 30000];

  parts["widget-events.js"] = function (chat) {
    var state = chat.state;
    var run = null; // the one line open: { stopped, controller, timer, failures, polling }

    function eventsPath(wait) {
      var query = [];
      if (state.cursor) query.push("after=" + encodeURIComponent(state.cursor));
      if (wait) query.push("wait=" + wait);
      return "/chat/events" + (query.length ? "?" + query.join("&") : "");
    }

    function take(line, event, quiet) {
      if (line.stopped || !event || typeof event !== "object") return;
      if (typeof event.id === "string" && event.type !== "end") state.cursor = event.id;
      chat.applyEvent(event, quiet);
    }

    /* Open the line; `catchUp` first reads what was said since the cursor as one page, the log busy meanwhile. */
    function openEvents(catchUp) {
      stopEvents();
      if (!state.token) return;
      var line = (run = { stopped: false, controller: null, timer: null, failures: 0, polling: !state.streaming });
      if (!catchUp) return later(line, 0);
      chat.setBusy(true);
      readPages(line)
        .catch(function (error) {
          var status = error instanceof chat.ApiError ? error.status : 0;
          if (status === 401) chat.sessionEnded();
          else if (status === 400) state.cursor = null; // not a cursor this server gave: read from the start
        })
        .then(function () {
          if (line.stopped) return;
          chat.setBusy(false);
          later(line, 0);
        });
    }

    function readPages(line) {
      return chat.json(eventsPath(0)).then(function (page) {
        var events = Array.isArray(page.events) ? page.events : [];
        events.forEach(function (event) {
          take(line, event, true);
        });
        if (!line.stopped && events.length >= PAGE) return readPages(line);
      });
    }

    function stopEvents() {
      if (!run) return;
      run.stopped = true;
      window.clearTimeout(run.timer);
      run.timer = null;
      if (run.controller) run.controller.abort();
      run = null;
    }

    function later(line, delay) {
      if (line.stopped) return;
      window.clearTimeout(line.timer);
      line.timer = window.setTimeout(function () {
        line.timer = null;
        (line.polling ? poll : stream)(line);
      }, delay);
    }

    function failed(line) {
      if (line.stopped) return;
      line.failures += 1;
      if (!line.polling && line.failures >= STREAM_TRIES) {
        line.polling = true; // streams do not get through here: long poll from now on
        line.failures = 0;
        return later(line, 0);
      }
      later(line, BACKOFF_MS[Math.min(line.failures - 1, BACKOFF_MS.length - 1)]);
    }

    /* An answer that is not events: a refused token ends the chat, a stale cursor reads from the start. */
    function refused(line, error) {
      var status = error instanceof chat.ApiError ? error.status : 0;
      if (status === 401) return chat.sessionEnded();
      if (status === 404 || status === 405 || status === 406) return stopEvents(); // a server without events
      if (status === 400 && state.cursor) {
        state.cursor = null;
        return later(line, 0);
      }
      failed(line);
    }

    function stream(line) {
      var controller = (line.controller = new AbortController());
      var watchdog = null;
      var heard = false;
      function quiet(ms) {
        window.clearTimeout(watchdog);
        watchdog = window.setTimeout(function () {
          controller.abort();
        }, ms);
      }
      quiet(FIRST_BYTE_MS);
      chat
        .request(eventsPath(0), { accept: "text/event-stream", signal: controller.signal })
        .then(function (response) {
          if (!response.ok) return chat.failure(response);
          if ((response.headers.get("Content-Type") || "").indexOf("text/event-stream") !== 0 || !response.body) {
            throw new Error("not a stream");
          }
          return chat.readEvents(
            response,
            function (name, event) {
              take(line, event);
            },
            function () {
              heard = true;
              line.failures = 0;
              quiet(IDLE_MS);
            }
          );
        })
        .then(
          function () {
            if (heard) later(line, RECONNECT_MS); // closed without `end` (a restart, a proxy's limit): read on
            else failed(line);
          },
          function (error) {
            if (!line.stopped) refused(line, error);
          }
        )
        .then(function () {
          window.clearTimeout(watchdog);
        });
    }

    function poll(line) {
      var controller = (line.controller = new AbortController());
      var watchdog = window.setTimeout(function () {
        controller.abort();
      }, (POLL_WAIT + 15) * 1000);
      chat
        .json(eventsPath(POLL_WAIT), { signal: controller.signal })
        .then(function (page) {
          (Array.isArray(page.events) ? page.events : []).forEach(function (event) {
            take(line, event);
          });
          line.failures = 0;
          later(line, 0);
        })
        .catch(function (error) {
          if (!line.stopped) refused(line, error);
        })
        .then(function () {
          window.clearTimeout(watchdog);
        });
    }

    /* Back online: read on at once rather than at the end of the pause. */
    window.addEventListener("online", function () {
      if (run && run.timer) later(run, 0);
    });

    chat.openEvents = openEvents;
    chat.stopEvents = stopEvents;
  };
})(window.chatApiWidget.parts);
