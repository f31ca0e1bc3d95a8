-- HAProxy asks the sidecar before every image (HAProxy >= 2.6, tested with 2.6.12: core.httpclient).
--
-- Loaded by haproxy.cfg (lua-load), run as `http-request lua.signed_url_auth`. The request
-- to the sidecar is built here from HAProxy's own fetches alone, under the names nginx's
-- auth_request snippet uses (the sidecar's proxy = "haproxy"): none of the client's
-- headers reaches the sidecar, so a client's own X-Original-URI or X-Real-IP is no fact.
--
-- The answer is left in transaction variables for haproxy.cfg to act on:
--   txn.signed_url_status  the sidecar's status (0: no answer in time)
--   txn.signed_url_result  its X-Signature-Result (for the log)

-- Where the sidecar listens (its [server] listen).
local VERIFY_URL = "http://127.0.0.1:8080/verify"
-- How long an answer may take. A sidecar that does not answer fails closed, as a 500 from
-- haproxy.cfg; HAProxy 2.6's client also retries a refused connection (3 times, about a
-- second apart) before it gives up.
local TIMEOUT_MS = 1000

-- The first value of one of the client's headers, or nil.
local function first(headers, name)
    local values = headers[name]
    return values and values[0]
end

-- Every Cookie header the client sent, joined as one (signed cookies, accept_cookies).
local function cookies(headers)
    local values = headers["cookie"]
    if not values then
        return nil
    end
    local joined = {}
    for i = 0, #values do
        joined[#joined + 1] = values[i]
    end
    return table.concat(joined, "; ")
end

local function facts(txn)
    local client = txn.http:req_get_headers()
    local sent = {
        ["X-Original-URI"] = { txn.sf:pathq() },       -- the raw path and query, as sent
        ["X-Original-Method"] = { txn.sf:method() },
        ["X-Original-Host"] = { txn.sf:req_hdr("host") }, -- the Host haproxy.cfg routed on
        ["X-Real-IP"] = { txn.sf:src() },                 -- the peer's address
        ["X-Request-ID"] = { txn.sf:uuid() },
    }
    local referrer = first(client, "referer")
    if referrer then
        sent["X-Original-Referer"] = { referrer }
    end
    local cookie = cookies(client)
    if cookie then
        sent["Cookie"] = { cookie }
    end
    return sent
end

core.register_action("signed_url_auth", { "http-req" }, function(txn)
    txn:set_var("txn.signed_url_status", 0)
    local ok, reply = pcall(function()
        return core.httpclient():get({ url = VERIFY_URL, headers = facts(txn), timeout = TIMEOUT_MS })
    end)
    if not ok or type(reply) ~= "table" or not reply.status then
        return -- no answer: status 0, denied by haproxy.cfg
    end
    txn:set_var("txn.signed_url_status", reply.status)
    local result = first(reply.headers or {}, "x-signature-result")
    if result then
        txn:set_var("txn.signed_url_result", result)
    end
end)
