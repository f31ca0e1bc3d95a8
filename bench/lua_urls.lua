-- Cycles through the request URIs in $URLS (one per line). With $VERIFY_HEADERS set, each
-- URI is sent to /verify in the X-Original-URI header, as nginx's auth location does;
-- with $BENCH_REFERER set, the page that asked too (nginx's X-Original-Referer).
local uris = {}
for line in io.lines(os.getenv("URLS")) do uris[#uris + 1] = line end
local direct = os.getenv("VERIFY_HEADERS") ~= nil
local host = os.getenv("BENCH_HOST") or "image.example.com"
local referer = os.getenv("BENCH_REFERER")  -- nil: no header, as nginx sends none
local i = 0

request = function()
  i = i % #uris + 1
  if direct then
    return wrk.format("GET", "/verify", {
      ["Host"] = "127.0.0.1",
      ["X-Original-URI"] = uris[i],
      ["X-Original-Method"] = "GET",
      ["X-Original-Host"] = host,
      ["X-Real-IP"] = "127.0.0.1",
      ["X-Request-ID"] = "bench",
      ["X-Original-Referer"] = referer,
    })
  end
  return wrk.format("GET", uris[i], { ["Host"] = host })
end
