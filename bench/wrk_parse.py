#!/usr/bin/env python3
"""Reads one wrk --latency output file; prints 'rps=N p99_ms=N p50_ms=N errors=N non2xx=N'."""
import re
import sys


def ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


text = open(sys.argv[1]).read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
errors = sum(int(x) for x in sock.groups()) if sock else 0
print("rps=%.0f p50_ms=%.3f p99_ms=%.3f errors=%d non2xx=%d" % (
    float(rps.group(1)) if rps else 0.0,
    ms(*p50.groups()) if p50 else -1, ms(*p99.groups()) if p99 else -1,
    errors, int(non2xx.group(1)) if non2xx else 0))
