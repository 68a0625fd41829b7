/*
 * The chat widget's API client: requests with the session's token, the API's errors, the reader of
 * Server-Sent Events, and the session (token, events cursor, conversation) kept in sessionStorage. A part
 * of the widget; widget.js loads it.
 */
(function (parts) {
  "use strict";

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

  /*
   * Server-Sent Events over fetch (EventSource can neither POST nor send the token): calls onEvent(name, data)
   * for each event, and onChunk() whenever bytes arrive (keep-alive comments too), if given.
   */
  function readEvents(response, onEvent, onChunk) {
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
        if (onChunk) onChunk();
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

  parts["widget-api.js"] = function (chat) {
    var API = chat.config.apiOrigin + "/api/v1";
    var state = chat.state;

    /*
     * The stored session, one per API origin in sessionStorage: { token, sessionId, cursor, transcript }. It is
     * written whole, so the cursor is never saved without the conversation it was read up to.
     */
    var store = {
      read: function () {
        try {
          return JSON.parse(window.sessionStorage.getItem(chat.storageKey) || "null");
        } catch (e) {
          return null;
        }
      },
      write: function (value) {
        try {
          window.sessionStorage.setItem(chat.storageKey, JSON.stringify(value));
        } catch (e) {
          /* storage full or disabled: the chat still works until the page is left */
        }
      },
      clear: function () {
        try {
          window.sessionStorage.removeItem(chat.storageKey);
        } catch (e) {
          /* nothing stored */
        }
      },
    };

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
        signal: options.signal,
      });
    }

    function json(path, options) {
      return request(path, options).then(function (response) {
        if (!response.ok) return failure(response);
        return response.status === 204 ? null : response.json();
      });
    }

    chat.ApiError = ApiError;
    chat.store = store;
    chat.request = request;
    chat.json = json;
    chat.failure = failure;
    chat.readEvents = readEvents;
  };
})(window.chatApiWidget.parts);
