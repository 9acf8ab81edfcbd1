-- wrk script: random aligned Range requests over one file, and a JSON summary.
-- Usage: wrk -t2 -c16 -d5s -s wrk-ranges.lua http://127.0.0.1:PORT/PATH -- FILE_SIZE RANGE_BYTES
-- wrk counts only non-2xx/3xx (and socket errors) as errors. No response() hook on
-- purpose: defining one makes wrk buffer every body for Lua, which would cost the
-- client more CPU on 4 MiB bodies than the server spends sending them. The C
-- client (rangeclient.c) is the one that checks 206 and Content-Length exactly.

local counter = 1

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

local size, rlen, slots

function init(args)
  size = tonumber(args[1])
  rlen = tonumber(args[2])
  slots = math.floor(size / rlen)
  -- Each thread draws its own sequence: same seeds every run, different per thread.
  math.randomseed(1000 + id)
end

function request()
  local off = math.random(0, slots - 1) * rlen
  return wrk.format("GET", nil, { ["Range"] = "bytes=" .. off .. "-" .. (off + rlen - 1) })
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"bytes":%d,"seconds":%.4f,"errors":%d,"p50_ms":%.3f,"p99_ms":%.3f}\n',
    summary.requests, summary.bytes, summary.duration / 1e6,
    e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000))
end
