-- wrk script for bench/run. Run with as many threads as connections (-t N -c N), so every
-- connection is its own wrk thread and sends with its own session token: no two requests of one
-- session are ever in flight together, and per-session serialization cannot distort the figures.
--
--   wrk -t N -c N -d 15s -s bench/load.lua http://127.0.0.1:PORT -- TOKENS_FILE MODE PATH [MESSAGE]
--
-- TOKENS_FILE: one bearer token a line (at least N lines). MODE: "chat" (POST PATH with a JSON
-- message) or "get" (GET PATH). done() prints one line, "BENCH_JSON {...}", for bench/bench.py.

local threads = {}
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local function nth_line(path, n)
  local i = 0
  for line in io.lines(path) do
    i = i + 1
    if i == n then
      return line
    end
  end
  error("bench: " .. path .. " has fewer than " .. n .. " tokens")
end

local req
non200 = 0
fallbacks = 0

function init(args)
  local tokens, mode, path, message = args[1], args[2], args[3], args[4]
  local headers = {
    ["Authorization"] = "Bearer " .. nth_line(tokens, id),
    ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) chatapi-bench/1.0",
    ["Accept"] = "application/json",
  }
  if mode == "chat" then
    headers["Content-Type"] = "application/json"
    local body = '{"message": "' .. (message or "Hello! What are your opening hours on Saturdays?") .. '"}'
    req = wrk.format("POST", path, headers, body)
  else
    req = wrk.format("GET", path, headers)
  end
end

function request()
  return req
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  elseif body and string.find(body, '"fallback":true', 1, true) then
    fallbacks = fallbacks + 1
  end
end

function done(summary, latency, requests)
  local bad, fell = 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("non200") or 0)
    fell = fell + (thread:get("fallbacks") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
      .. '"status": %d, "timeout": %d, "non200": %d, "fallbacks": %d, "p50_us": %d, "p90_us": %d, '
      .. '"p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, bad, fell,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean
  ))
end
