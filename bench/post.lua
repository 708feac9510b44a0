-- POST /v1/send with a ~1 KB JSON body and a unique Idempotency-Key per request.
local counter = 0
local key = os.getenv("JS2MAIL_BENCH_KEY") or "none"
local run = os.getenv("JS2MAIL_BENCH_RUN") or tostring(os.time())
local filler = string.rep("Lorem ipsum dolor sit amet. ", 28)
local body_head = '{"to":"customer'
local body_tail = '@example.org","subject":"Benchmark message","text":"' .. filler ..
                  '","scheduledAt":"2999-01-01T00:00:00Z"}'

request = function()
  counter = counter + 1
  return wrk.format("POST", "/v1/send", {
    ["Content-Type"] = "application/json",
    ["X-Api-Key"] = key,
    ["Idempotency-Key"] = run .. "-" .. counter,
  }, body_head .. counter .. body_tail)  -- a different recipient each time, as in real traffic
end
