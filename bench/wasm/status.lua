-- wrk script: count responses per HTTP status and print them when wrk ends.
-- Used by bench/wasm.sh for the load sent to the "bad" tenant, to show how it was answered
-- (200, 503 over max_concurrency, 504 timeout, 500 trap, ...). Works with any -t.
-- Usage: wrk -s bench/wasm/status.lua -H 'Host: bad.localhost' http://127.0.0.1:PORT/loop
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   statuses = {}
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local total = {}
   for _, thread in ipairs(threads) do
      local counts = thread:get("statuses")
      for status, n in pairs(counts or {}) do
         total[status] = (total[status] or 0) + n
      end
   end
   local codes = {}
   for status in pairs(total) do
      table.insert(codes, status)
   end
   table.sort(codes)
   local parts = {}
   for _, status in ipairs(codes) do
      table.insert(parts, string.format("%d=%d", status, total[status]))
   end
   io.write("Statuses: " .. (#parts > 0 and table.concat(parts, " ") or "none") .. "\n")
end
