#!/usr/bin/env python3
"""Benchmark helper, not a test: splits timed aws-cni execs into phases with the plugin log.

    phases.py TIMES PLUGIN_LOG [--json]

TIMES has one exec per line, "CONTAINER_ID T0_US T1_US [RC]" (microseconds since the epoch, taken
around the exec; RC other than 0 is skipped). For each exec, the log lines of that container
whose timestamps fall inside [T0, T1] (ms resolution, so widened by 1 ms) give:
    start: exec -> first log line ("command start": process start, stdin, config decode)
    work:  first -> last log line (ipamd round trip, netlink, planning)
    end:   last log line -> exit (result encoding, the log write, exit)
Prints the median of each in ms, as text or as one JSON object.
"""
import datetime
import json
import sys


def ts_us(text):
    t = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp() * 1e6)


def median(v):
    v = sorted(v)
    return v[(len(v) + 1) // 2 - 1] if v else None  # nearest rank, like lib.sh


def main():
    times_path, log_path = sys.argv[1], sys.argv[2]
    by_cid = {}
    for line in open(log_path, errors="replace"):
        try:
            e = json.loads(line)
            by_cid.setdefault(e["cni.container_id"], []).append(ts_us(e["ts"]))
        except (ValueError, KeyError):
            continue
    start, work, end = [], [], []
    for line in open(times_path):
        f = line.split()
        if len(f) < 3 or (len(f) > 3 and f[3] != "0"):
            continue
        cid, t0, t1 = f[0], int(f[1]), int(f[2])
        inside = sorted(t for t in by_cid.get(cid, []) if t0 - 1000 <= t <= t1 + 1000)
        if not inside:
            continue
        start.append(inside[0] - t0)
        work.append(inside[-1] - inside[0])
        end.append(t1 - inside[-1])
    out = {"n": len(start)}
    for name, v in (("start", start), ("work", work), ("end", end)):
        m = median(v)
        out[name + "_ms"] = None if m is None else round(m / 1000, 1)
    if "--json" in sys.argv:
        print(json.dumps(out))
    else:
        print(f"exec -> 'command start' (process start, stdin, decode): median {out['start_ms']} ms")
        print(f"'command start' -> last line (ipamd RPC, planning, netlink): median {out['work_ms']} ms")
        print(f"last line -> exit (result encoding, log write, exit):      median {out['end_ms']} ms   (n={out['n']})")


main()
