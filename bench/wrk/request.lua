-- One request, sent again and again on every connection, for the scenarios
-- of bench/run.sh that are a single HTTP request (discovery, JWKS, the
-- client_credentials token, introspection, userinfo).
--
--   WRK_METHOD=POST WRK_AUTHORIZATION='Basic …' WRK_BODY='grant_type=client_credentials' \
--     wrk -t2 -c64 -d10s -s bench/wrk/request.lua http://127.0.0.1:18080/oauth/token
--
-- WRK_METHOD defaults to GET; WRK_AUTHORIZATION (the whole header value) and
-- WRK_BODY (sent as application/x-www-form-urlencoded) are optional. They
-- come from the environment so that secrets stay off the command line.
--
-- At the end one JSON line is printed on standard output: `requests` and
-- `rps` count successful answers (status below 400) only, `errors` is every
-- failure wrk saw (connect, read, write, timeout, status >= 400), and the
-- first answers with status >= 400 of each thread are written to standard
-- error with their bodies, so an application error is never just a number.

local reported = 0

function init(args)
  wrk.method = os.getenv("WRK_METHOD") or "GET"
  local auth = os.getenv("WRK_AUTHORIZATION")
  if auth and auth ~= "" then
    wrk.headers["Authorization"] = auth
  end
  local body = os.getenv("WRK_BODY")
  if body and body ~= "" then
    wrk.body = body
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  end
end

function response(status, headers, body)
  if status >= 400 and reported < 3 then
    reported = reported + 1
    io.stderr:write(string.format("wrk: %s %s -> %d: %s\n", wrk.method, wrk.path, status,
      string.sub(string.gsub(body or "", "\n", " "), 1, 300)))
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local failed = e.connect + e.read + e.write + e.status + e.timeout
  local ok = summary.requests - e.status
  local secs = summary.duration / 1e6
  io.write(string.format(
    '{"requests":%d,"duration_s":%.3f,"rps":%.3f,"p50_ms":%.3f,"p99_ms":%.3f,"errors":%d,' ..
    '"errors_detail":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    ok, secs, ok / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000, failed,
    e.connect, e.read, e.write, e.status, e.timeout))
end
