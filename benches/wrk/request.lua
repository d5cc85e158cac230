-- One request, the same each time, from the environment the bench script sets:
-- BENCH_METHOD, BENCH_BODY (JSON, optional), BENCH_TOKEN (bearer, optional; then the
-- X-Tenant-Id/X-Env scope of BENCH_TENANT and BENCH_ENV is sent too).
local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
local token = os.getenv("BENCH_TOKEN")

wrk.method = method
if body and body ~= "" then
    wrk.body = body
    wrk.headers["Content-Type"] = "application/json"
end
if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
    wrk.headers["X-Tenant-Id"] = os.getenv("BENCH_TENANT") or "acme"
    wrk.headers["X-Env"] = os.getenv("BENCH_ENV") or "dev"
end

function done(summary, latency, requests)
    io.write(string.format("BENCH requests=%d p50_us=%d p99_us=%d errors=%d duration_us=%d\n",
        summary.requests, latency:percentile(50), latency:percentile(99),
        summary.errors.connect + summary.errors.read + summary.errors.write
            + summary.errors.timeout, summary.duration))
end
