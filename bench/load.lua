-- wrk script for bench/run: a few threads, each cycling round-robin through its share of the sessions.
--
--   wrk -t T -c N -d Ds --timeout Ss -s bench/load.lua http://127.0.0.1:PORT -- TOKENS T METHOD PATH TIMEOUT [MESSAGE]
--
-- TOKENS: a file of bearer tokens, one a line, as many as connections: thread i takes lines i, i+T, ...
-- and each request goes to the thread's next session, so a session rarely has two requests in flight.
-- METHOD: POST (a chat: JSON {"message": MESSAGE}) or GET. TIMEOUT: wrk's --timeout in seconds.
--
-- What it counts, beyond wrk's own figures:
-- - answers: 200 responses that are not a fallback reply ("fallback":true), by the second they came
--   (os.time()), so bench/bench.py can take the rate over a steady window and leave the edges out;
-- - non-200 responses and fallback replies;
-- - requests still unanswered when the run stopped, and how many of those had waited longer than
--   TIMEOUT: wrk counts a timeout only when the late answer does arrive. Each request carries its own
--   X-Request-ID, which the server echoes (the API contract), so an answer is matched to its request.
-- done() prints one line, "BENCH_JSON {...}", for bench/bench.py.

local threads = {}
local count = 0

function setup(thread)
  thread:set("tid", count)
  count = count + 1
  table.insert(threads, thread)
end

local heads = {}
local next_head = 0
local seq = 0
local method, path, body
local verified -- wrk calls request() once on the first thread to check it, before any connection

wrk_timeout = 0
answered = {}
pending = {}
sent = 0
received = 0
matched = 0
non200 = 0
fallbacks = 0

function init(args)
  local tokens, nthreads = args[1], tonumber(args[2])
  method, path, wrk_timeout = args[3], args[4], tonumber(args[5])
  local message = args[6] or "Hello! What are your opening hours on Saturdays?"
  local n = 0
  for line in io.lines(tokens) do
    if n % nthreads == tid then
      local headers = {
        ["Authorization"] = "Bearer " .. line,
        ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) chatapi-bench/1.0",
        ["Accept"] = "application/json",
      }
      if method == "POST" then
        headers["Content-Type"] = "application/json"
      end
      table.insert(heads, headers)
    end
    n = n + 1
  end
  if #heads == 0 then
    error("bench: " .. tokens .. " has too few tokens for thread " .. tid)
  end
  if method == "POST" then
    body = '{"message": "' .. message .. '"}'
  end
  verified = tid ~= 0
end

function request()
  next_head = next_head % #heads + 1
  seq = seq + 1
  local id = "bench-" .. tid .. "-" .. seq
  local headers = heads[next_head]
  headers["X-Request-ID"] = id
  if verified then
    pending[id] = os.time()
    sent = sent + 1
  else
    verified = true
  end
  return wrk.format(method, path, headers, body)
end

function response(status, headers, body)
  received = received + 1
  local id = headers["X-Request-ID"] or headers["x-request-id"] or headers["X-Request-Id"]
  if id and pending[id] then
    pending[id] = nil
    matched = matched + 1
  end
  if status ~= 200 then
    non200 = non200 + 1
  elseif method == "POST" and body and (string.find(body, '"fallback":true', 1, true)
      or string.find(body, '"fallback": true', 1, true)) then
    fallbacks = fallbacks + 1
  else
    local second = os.time()
    answered[second] = (answered[second] or 0) + 1
  end
end

function done(summary, latency, requests)
  local timeout = threads[1]:get("wrk_timeout")
  local now = os.time()
  local totals = { sent = 0, received = 0, matched = 0, non200 = 0, fallbacks = 0, unanswered = 0, stuck = 0 }
  local buckets = {}
  for _, thread in ipairs(threads) do
    for _, name in ipairs({ "sent", "received", "matched", "non200", "fallbacks" }) do
      totals[name] = totals[name] + (thread:get(name) or 0)
    end
    for second, n in pairs(thread:get("answered") or {}) do
      buckets[second] = (buckets[second] or 0) + n
    end
    for _, since in pairs(thread:get("pending") or {}) do
      totals.unanswered = totals.unanswered + 1
      if now - since > timeout then
        totals.stuck = totals.stuck + 1
      end
    end
  end
  local parts = {}
  for second, n in pairs(buckets) do
    table.insert(parts, string.format('"%d": %d', second, n))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, '
      .. '"timeout": %d, "sent": %d, "received": %d, "matched": %d, "non200": %d, "fallbacks": %d, '
      .. '"unanswered": %d, "stuck": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, '
      .. '"mean_us": %.1f, "answered": {%s}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, totals.sent,
    totals.received, totals.matched, totals.non200, totals.fallbacks, totals.unanswered, totals.stuck,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    table.concat(parts, ", ")
  ))
end
