-- Registers a different pending asset per request, from the ids in the file BENCH_IDS (one per
-- line, each a 1 KiB upload already PUT), split between wrk's threads; a thread stops when its
-- share is used up, so no request repeats a registration. BENCH_TOKEN, BENCH_SHA256 as in
-- request.lua.
local counter = 0
local threads = {}

function setup(thread)
    thread:set("index", counter)
    counter = counter + 1
    table.insert(threads, thread)
end

function init(args)
    local ids = {}
    for line in io.lines(os.getenv("BENCH_IDS")) do
        table.insert(ids, line)
    end
    local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
    mine = {}
    for i = index + 1, #ids, nthreads do
        table.insert(mine, ids[i])
    end
    next_id = 1
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
    wrk.headers["X-Tenant-Id"] = os.getenv("BENCH_TENANT") or "acme"
    wrk.headers["X-Env"] = os.getenv("BENCH_ENV") or "dev"
    body_tail = '","sha256":"' .. os.getenv("BENCH_SHA256")
        .. '","size_bytes":1024,"content_type":"application/octet-stream","train_ok":true}'
end

function request()
    local id = mine[next_id] or mine[#mine]
    next_id = next_id + 1
    return wrk.format(nil, nil, nil, '{"asset_id":"' .. id .. body_tail)
end

function response(status, headers, body)
    if next_id > #mine then
        wrk.thread:stop()
    end
end

function done(summary, latency, requests)
    io.write(string.format("BENCH requests=%d p50_us=%d p99_us=%d errors=%d duration_us=%d\n",
        summary.requests, latency:percentile(50), latency:percentile(99),
        summary.errors.connect + summary.errors.read + summary.errors.write
            + summary.errors.timeout, summary.duration))
end
