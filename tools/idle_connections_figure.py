#!/usr/bin/env python3
"""RELIABILITY.md P6 figure: tallyd's RSS per idle connection at full size.

Starts tallyd (path as argv[1]) with RLIMIT_NOFILE 20000, opens N idle
loopback connections (default 10000) spread over source addresses
127.0.0.2-127.0.0.11, holds them, and prints the server's RSS growth per
connection and its descriptor count before, while held and after release.
With a tally-bench path (argv[4]) it also runs a legitimate W1 load (the
mixed phase, 4 connections) before the idle connections are opened and
again while they are held, and prints both decision p99s: the "legitimate
p99 within 2x baseline" of P6.
Usage: tools/idle_connections_figure.py build/bin/tallyd [N] [hold_s]
           [build/bin/tally-bench]
"""
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def legitimate_load(bench, port):
    """Decision p99 (us) and decisions/s of a short W1 mixed phase."""
    out = subprocess.run(
        [bench, "--port", str(port), "--phase", "mixed", "-c", "4",
         "--keys", "10000", "--history", "100000", "--seconds", "5",
         "--warmup", "1", "--json"],
        capture_output=True, text=True, check=True).stdout
    report = json.loads(out[out.index("{"):])
    mixed = [p for p in report["phases"] if p["name"] == "mixed"][0]
    return mixed["decision_p99_us"], mixed["decisions_per_sec"]


def main():
    tallyd = sys.argv[1]
    bench = sys.argv[4] if len(sys.argv) > 4 else None
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    hold = float(sys.argv[3]) if len(sys.argv) > 3 else 10
    want = n + 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < want:
        print(f"skip: hard RLIMIT_NOFILE {hard} < {want}")
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    data = tempfile.mkdtemp(prefix="tally-p6-")
    proc = subprocess.Popen(
        [tallyd, "--allow_root", "--port=0", "--threads=2", "--durability=os",
         f"--data_dir={data}", f"--max_connections={n + 100}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = 0
        for line in proc.stdout:
            if line.startswith("tallyd ready port="):
                port = int(line.split("=")[1])
                break
        time.sleep(0.5)
        base = legitimate_load(bench, port) if bench else None
        rss0, fd0 = rss_kib(proc.pid), fds(proc.pid)
        conns = []
        start = time.monotonic()
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((f"127.0.0.{2 + i % 10}", 0))
            s.connect(("127.0.0.1", port))
            conns.append(s)
        accept_s = time.monotonic() - start
        time.sleep(hold)
        rss1, fd1 = rss_kib(proc.pid), fds(proc.pid)
        held = legitimate_load(bench, port) if bench else None
        for s in conns:
            s.close()
        time.sleep(2)
        rss2, fd2 = rss_kib(proc.pid), fds(proc.pid)
        print(f"connections={n} connect_rate_per_s={n / accept_s:.0f} "
              f"rss_kib_before={rss0} rss_kib_held={rss1} "
              f"rss_kib_after={rss2} "
              f"kib_per_connection={(rss1 - rss0) / n:.2f} "
              f"fds_before={fd0} fds_held={fd1} fds_after={fd2}")
        if bench:
            print(f"legitimate_p99_us_baseline={base[0]:.0f} "
                  f"legitimate_p99_us_held={held[0]:.0f} "
                  f"ratio={held[0] / base[0]:.2f} "
                  f"decisions_per_s_baseline={base[1]:.0f} "
                  f"decisions_per_s_held={held[1]:.0f}")
    finally:
        proc.terminate()
        proc.wait()
        subprocess.run(["rm", "-rf", data])


if __name__ == "__main__":
    main()
