-- The "Lua" row of the benchmark: envoy/policy.json written by hand as an
-- Envoy Lua filter, doing what the mtls-authz filter does for these rules:
-- identity from the verified connection (never from headers), deny rules
-- first, then allow rules, default deny with a 403 JSON body, and on allow the
-- same identity headers replaced for the upstream. It is as cheap as a Lua
-- version reasonably gets (string compares, no regex, no JSON library) and
-- it is NOT general: it knows the three rules of envoy/policy.json.
--
-- The filter's header names and reason are filled in by bench/run.py from
-- filter/constants.json (@PRINCIPAL@, @RULE@, @DRY_RUN@, @NO_RULE_REASON@), so
-- this row sets exactly the headers the filter sets.

local ORDER_URI = "spiffe://shop.test/ns/prod/sa/order"

local function deny(handle, rule, reason)
  handle:headers():remove("@PRINCIPAL@")
  handle:headers():remove("@RULE@")
  handle:headers():remove("@DRY_RUN@")
  local r = rule and ('"' .. rule .. '"') or "null"
  handle:respond({[":status"] = "403", ["content-type"] = "application/json"},
    '{"error":"forbidden","rule":' .. r .. ',"reason":"' .. reason .. '"}')
end

-- RFC 2253 subject ("CN=report-service,OU=reporting") -> CN (only if exactly
-- one) and whether OU=reporting is present. Escaped commas are not handled:
-- good enough for the benchmark's certificates, not for production.
local function subject_fields(subject)
  local cn, cns, reporting = nil, 0, false
  for key, value in string.gmatch(subject, "([^,=]+)=([^,]*)") do
    if key == "CN" then
      cn, cns = value, cns + 1
    elseif key == "OU" and value == "reporting" then
      reporting = true
    end
  end
  if cns ~= 1 then cn = nil end
  return cn, reporting
end

function envoy_on_request(handle)
  -- peerCertificatePresented, not peerCertificateValidated: on Envoy 1.40 the
  -- latter is true for the first request of a keep-alive connection only
  -- (observed here), so a Lua filter that checks it denies every later
  -- request. The listener's require_client_certificate guarantees that a
  -- presented certificate was verified; RBAC's `authenticated` relies on the
  -- same guarantee.
  local ssl = handle:streamInfo():downstreamSslConnection()
  if ssl == nil or not ssl:peerCertificatePresented() then
    return deny(handle, nil, "no verified client certificate")
  end
  local headers = handle:headers()
  local method = headers:get(":method")
  local path = headers:get(":path")
  if method == nil or path == nil then
    return deny(handle, nil, "the request has no path or method")
  end
  local q = string.find(path, "?", 1, true)
  if q then path = string.sub(path, 1, q - 1) end

  -- Deny rules win: nobody-on-admin.
  if path == "/api/payment/admin" or string.sub(path, 1, 19) == "/api/payment/admin/" then
    return deny(handle, "nobody-on-admin", "denied by rule")
  end

  local uris = ssl:uriSanPeerCertificate()
  local cn, reporting = subject_fields(ssl:subjectPeerCertificate())
  local rule = nil
  if path == "/api/payment/create" and method == "POST" then
    if cn == "order-service" then rule = "orders-create-payment" end
    for _, uri in ipairs(uris) do
      if uri == ORDER_URI then rule = "orders-create-payment" end
    end
  elseif (path == "/api/payment/query" or string.sub(path, 1, 19) == "/api/payment/query/")
      and (method == "GET" or method == "HEAD") then
    if cn == "report-service" and reporting then rule = "reports-read-payment" end
  end
  if rule == nil then
    return deny(handle, nil, "@NO_RULE_REASON@")
  end

  -- Same upstream contract as the filter: its headers, and only its headers.
  headers:replace("@PRINCIPAL@", uris[1] or cn or ssl:subjectPeerCertificate())
  headers:replace("@RULE@", rule)
  headers:remove("@DRY_RUN@")
end
