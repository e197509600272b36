-- wrk script for bench/webhook.py: POST /inbound-message, a new message each time (or one
-- message over and over with WRK_DUPLICATE). Prints one line "JSON {...}" with the counts and
-- latency percentiles. (wrk runs for a duration: a thread that stops early still leaves wrk
-- waiting, with its connections open, until the duration ends.)
-- Environment: WRK_API_KEY, WRK_RUN (makes external ids unique), WRK_PHONES (phone-number pool),
-- WRK_DUPLICATE, WRK_CONNECTION_CLOSE (a fresh connection per request).
threads = {}
next_id = 0
id = 0
sent = 0
answered = 0
non202 = 0

local key = os.getenv("WRK_API_KEY")
local run = os.getenv("WRK_RUN") or "run"
local phones = tonumber(os.getenv("WRK_PHONES") or "2000")
local duplicate = os.getenv("WRK_DUPLICATE")
local close = os.getenv("WRK_CONNECTION_CLOSE")

function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Api-Key"] = key
  if close then wrk.headers["Connection"] = "close" end
end

function request()
  sent = sent + 1
  -- n: unique across threads (the external id). The phone: each thread walks the whole pool from
  -- its own offset, so the threads do not send from the same person at the same moment.
  local n = duplicate and 0 or (sent * 64 + id)
  local phone = duplicate and 0 or ((sent + id * 997) % phones)
  local body = string.format(
    '{"phone_number":"+8801712%06d","contact_name":"Bench %d","message_text":"wrk %s message %d:'
      .. ' is the AC servicing available this week?","channel":"console","external_id":"wrk-%s-%d"}',
    phone, phone, run, n, run, n)
  return wrk.format(nil, "/inbound-message", nil, body)
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 202 then non202 = non202 + 1 end
end

function done(summary, latency, requests)
  local bad, total = 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non202")
    total = total + thread:get("answered")
  end
  local errors = summary.errors
  io.write(string.format(
    'JSON {"answered": %d, "non202": %d, "seconds": %.4f, "p50_ms": %.3f, "p99_ms": %.3f,'
      .. ' "socket_errors": %d}\n',
    total, bad, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    errors.connect + errors.read + errors.write + errors.timeout))
end
