-- bench/gateway.lua -- wrk script for bench/run-gateway.sh: POST /v1/events
-- with the token in BENCH_TOKEN, BENCH_BATCH events per request (1: one JSON
-- object; more: a JSON array). Each event is the need.reported of
-- bench_maillage.c (200 bytes as an Envelope: the same description padding)
-- with an event id unique across threads and runs (BENCH_TAG), so every one
-- is journaled, none answered as a duplicate.
local batch = tonumber(os.getenv("BENCH_BATCH") or "1")
local token = os.getenv("BENCH_TOKEN") or ""
local tag = os.getenv("BENCH_TAG") or "w"
local threads = 0

local head = '{"eventId":"'
local tail = '","type":"need.reported","occurredAtMs":"1700000000000","needReported":{"need":' ..
    '{"needId":"need-bench-0001","structureId":"asso-14-001","category":"locaux",' ..
    '"title":"Local de stockage partagé","description":"' .. string.rep("x", 69) .. '","commune":"14118"}}}'

function setup(thread)
    threads = threads + 1
    thread:set("tid", threads)
end

function init(args)
    prefix = string.format("bench-%s%d-", tag, tid)
    n = 0
    headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }
end

local function event()
    n = n + 1
    return head .. prefix .. string.format("%014d", n) .. tail
end

function request()
    local body
    if batch == 1 then
        body = event()
    else
        local parts = {}
        for i = 1, batch do parts[i] = event() end
        body = "[" .. table.concat(parts, ",") .. "]"
    end
    return wrk.format("POST", "/v1/events", headers, body)
end
