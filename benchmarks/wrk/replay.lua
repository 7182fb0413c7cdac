-- wrk script of `make bench-http`: replays the requests listed in the file named by
-- $BENCH_WRK_FILE, one per line as METHOD<tab>PATH<tab>BODY, with a JSON content type and
-- $BENCH_WRK_AUTH (if set) as the Authorization header. Each wrk thread takes every n-th line
-- (all of them when there are fewer lines than threads); a thread that reaches its last line
-- starts again, and done() says how many requests each thread sent over how many lines.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  local auth = os.getenv("BENCH_WRK_AUTH")
  if auth and auth ~= "" then
    headers["Authorization"] = auth
  end
  local thread_count = tonumber(os.getenv("BENCH_WRK_THREADS") or "1")
  local all = {}
  for line in io.lines(os.getenv("BENCH_WRK_FILE")) do
    table.insert(all, line)
  end
  lines = {}
  for index, line in ipairs(all) do
    -- fewer lines than threads (one request repeated): every thread takes them all
    if #all < thread_count or (index - 1) % thread_count == id then
      local method, path, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
      table.insert(lines, wrk.format(method, path, headers, body))
    end
  end
  sent = 0
  distinct = #lines
end

function request()
  sent = sent + 1
  return lines[(sent - 1) % distinct + 1]
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    io.write(string.format("replay: thread sent %d requests over %d distinct lines\n",
      thread:get("sent"), thread:get("distinct")))
  end
end
