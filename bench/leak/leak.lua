-- bench/leak/leak.lua: every request asks for a page nobody asked for before
-- (GET /?id=<run>-<n>), so the app's lru_cache gains an entry per request.
-- LEAK_PREFIX (the run) and LEAK_DELAY_MS (each connection's pause between its
-- response and its next request, which sets the offered rate) come from the runner.
local n = 0
local prefix = os.getenv("LEAK_PREFIX") or tostring(os.time())
local pause = tonumber(os.getenv("LEAK_DELAY_MS") or "20")

request = function()
  n = n + 1
  return wrk.format("GET", "/?id=" .. prefix .. "-" .. n)
end

delay = function()
  return pause
end
