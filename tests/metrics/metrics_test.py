#!/usr/bin/python3
"""The Prometheus endpoint end to end, parsed by Debian's
python3-prometheus-client (never a hand-written parser).

Usage (run with /usr/bin/python3: the image's pyenv python does not see
Debian's python3-* packages):
  metrics_test.py endpoint  <tallyd> <tally>        families, types, counts move
  metrics_test.py dashboard <tallyd> <tally> <json> every PromQL name exported

Starts tallyd on ports it picks (--port=0, --metrics_port=-1) with
--unsafe_no_wal, drives traffic with the `tally` CLI, scrapes, and stops it.
"""

import json
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def start_tallyd(tallyd):
    data = tempfile.mkdtemp(prefix="tally-metrics-test.")
    proc = subprocess.Popen(
        [tallyd, "--allow_root", "--port=0", "--metrics_port=-1",
         "--threads=2", "--unsafe_no_wal", "--data_dir=" + data],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    metrics_port = port = None
    deadline = time.time() + 20
    while time.time() < deadline and port is None:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.match(r"tallyd metrics port=(\d+)", line)
        if m:
            metrics_port = int(m.group(1))
        m = re.match(r"tallyd ready port=(\d+)", line)
        if m:
            port = int(m.group(1))
    if port is None or metrics_port is None:
        proc.kill()
        sys.exit("tallyd did not print its ports")
    return proc, port, metrics_port


def stop(proc):
    proc.terminate()
    if proc.wait(timeout=30) != 0:
        sys.exit("tallyd did not stop cleanly: exit %d" % proc.returncode)


def cli(tally, port, *args):
    # A generous timeout: CI runs this on 2 loaded cores, under ASan too.
    return subprocess.run([tally, "-p", str(port), "--timeout", "20", *args],
                          capture_output=True, text=True, timeout=30)


def http(metrics_port, path, method="GET"):
    req = urllib.request.Request(
        "http://127.0.0.1:%d%s" % (metrics_port, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def scrape(metrics_port):
    status, ctype, body = http(metrics_port, "/metrics")
    assert status == 200, status
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    families = {}
    for f in text_string_to_metric_families(body):
        families[f.name] = f
    return families, body


def family(families, name):
    """The parser drops a counter's _total from the family name."""
    f = (families.get(name) or families.get(re.sub(r"_total$", "", name)) or
         families.get(re.sub(r"_(count|sum|bucket)$", "", name)))
    assert f is not None, "missing family " + name
    return f


def value(families, name, **labels):
    f = family(families, name)
    for s in f.samples:
        if s.name == name and all(s.labels.get(k) == v
                                  for k, v in labels.items()):
            return s.value
    return None


EXPECTED_TYPES = {
    "tally_build_info": "gauge",
    "process_start_time_seconds": "gauge",
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "tally_connected_clients": "gauge",
    "tally_connections_received_total": "counter",
    "tally_rejected_connections_total": "counter",
    "tally_commands_total": "counter",
    "tally_command_errors_total": "counter",
    "tally_command_duration_seconds": "histogram",
    "tally_commands_duration_seconds_total": "counter",
    "tally_inflight_requests": "gauge",
    "tally_deadline_exceeded_total": "counter",
    "tally_keys": "gauge",
    "tally_buckets": "gauge",
    "tally_events_ingested_total": "counter",
    "tally_late_events_total": "counter",
    "tally_expired_keys_total": "counter",
    "tally_evicted_keys_total": "counter",
    "tally_memory_used_bytes": "gauge",
    "tally_net_input_bytes_total": "counter",
    "tally_net_output_bytes_total": "counter",
    "tally_limit_rejections_total": "counter",
    "tally_wal_fsyncs_total": "counter",
    "tally_wal_fsync_duration_seconds": "summary",
    "tally_snapshots_total": "counter",
}


def endpoint_test(tallyd, tally):
    proc, port, metrics_port = start_tallyd(tallyd)
    try:
        before, _ = scrape(metrics_port)
        for i in range(20):
            r = cli(tally, port, "ADD", "user:%d" % (i % 3), "COUNT", "2")
            assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        r = cli(tally, port, "QUERY", "user:1", "WINDOW", "1h")
        assert r.returncode == 0, r.stderr
        r = cli(tally, port, "INFO", "no_such_section")
        assert r.returncode != 0, "an unknown INFO section must fail"
        after, body = scrape(metrics_port)

        for name, kind in EXPECTED_TYPES.items():
            assert family(after, name).type == kind, (name,
                                                      family(after, name).type)
        assert value(after, "tally_build_info", version="0.1.0") == 1
        assert value(after, "tally_commands_total", cmd="add") == 20
        assert value(after, "tally_commands_total", cmd="query") == 1
        assert value(after, "tally_command_errors_total", cmd="info",
                     code="INVALID_ARGUMENT") == 1
        ingested = value(after, "tally_events_ingested_total", type="applied")
        assert ingested == 20, ingested  # events (ADD ... COUNT 2 is one)
        assert value(after, "tally_keys", type="counter") == 3
        received = value(after, "tally_connections_received_total")
        assert received >= 22, received
        assert value(after, "tally_net_input_bytes_total") > \
            value(before, "tally_net_input_bytes_total")
        assert value(after, "tally_net_output_bytes_total") > 0
        assert value(after, "process_start_time_seconds") > 1.6e9

        # The histogram: cumulative buckets, +Inf equal to _count, the
        # count equal to the calls, and a sum that moved.
        h = family(after, "tally_command_duration_seconds")
        buckets = [(float(s.labels["le"]), s.value) for s in h.samples
                   if s.name.endswith("_bucket") and s.labels["cmd"] == "add"]
        assert buckets and buckets[-1][0] == float("inf"), buckets
        assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), buckets
        assert buckets[-1][1] == 20
        assert value(after, "tally_command_duration_seconds_count",
                     cmd="add") == 20
        assert value(after, "tally_command_duration_seconds_sum",
                     cmd="add") > 0
        # The fsync summary: its three quantiles and a _count equal to the
        # fsync counter (no _sum: the journal keeps no total time).
        fsync = family(after, "tally_wal_fsync_duration_seconds")
        quantiles = sorted(s.labels["quantile"] for s in fsync.samples
                           if s.name == fsync.name)
        assert quantiles == ["0.5", "0.99", "1"], quantiles
        assert value(after, "tally_wal_fsync_duration_seconds_count") == \
            value(after, "tally_wal_fsyncs_total"), fsync.samples
        assert value(after, "tally_wal_fsync_duration_seconds_sum") is None
        # No label ever carries a counter key.
        assert "user:" not in body

        status, _, text = http(metrics_port, "/healthz")
        assert status == 200 and text == "ok\n", (status, text)
        assert http(metrics_port, "/nothing")[0] == 404
        assert http(metrics_port, "/metrics", method="POST")[0] == 405
        # A request over the 8 KiB bound is dropped without an answer.
        with socket.create_connection(("127.0.0.1", metrics_port),
                                      timeout=10) as s:
            try:
                s.sendall(b"GET /metrics HTTP/1.1\r\nX-Big: " +
                          b"a" * 20000 + b"\r\n\r\n")
                answer = s.recv(100)
            except ConnectionError:  # reset, or a broken pipe mid-send
                answer = b""
            assert answer == b"", answer
    finally:
        stop(proc)
    print("metrics endpoint: ok")


# Metric names inside a PromQL expression: identifiers that are not
# functions, keywords, label names or label values.
PROMQL_WORDS = {
    "sum", "rate", "irate", "increase", "by", "without", "histogram_quantile",
    "avg", "max", "min", "count", "topk", "on", "ignoring", "group_left",
    "group_right", "and", "or", "unless", "clamp_min", "delta", "deriv",
    "label_replace", "time", "le", "offset", "bool", "vector", "abs",
}


def promql_metric_names(expr):
    # Drop label matchers {...}, range selectors [...] and strings.
    stripped = re.sub(r"\{[^}]*\}", "", expr)
    stripped = re.sub(r"\[[^\]]*\]", "", stripped)
    stripped = re.sub(r'"[^"]*"', "", stripped)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", stripped):
        word = m.group(0)
        after = stripped[m.end():].lstrip()
        if word in PROMQL_WORDS or after.startswith("("):
            continue
        # by (cmd, code): the grouping labels.
        before = stripped[:m.start()].rstrip()
        if re.search(r"\b(by|without|on|ignoring)\s*\([^)]*$", before):
            continue
        names.add(word)
    return names


def exported_series_names(families):
    names = set()
    for f in families.values():
        for s in f.samples:
            names.add(s.name)
        names.add(f.name)
        if f.type == "counter":
            names.add(f.name + "_total")
        if f.type == "histogram":
            names.update({f.name + "_bucket", f.name + "_sum",
                          f.name + "_count"})
    return names


def dashboard_test(tallyd, tally, dashboard_path):
    with open(dashboard_path) as f:
        dashboard = json.load(f)
    exprs = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                exprs.append(node["expr"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(dashboard)
    assert len(exprs) >= 7, "the dashboard has %d queries" % len(exprs)

    proc, port, metrics_port = start_tallyd(tallyd)
    try:
        # Traffic so that per-command families have samples.
        assert cli(tally, port, "ADD", "k", "COUNT", "1").returncode == 0
        families, _ = scrape(metrics_port)
    finally:
        stop(proc)
    exported = exported_series_names(families)
    jemalloc = "tally_allocator_allocated_bytes" in families
    missing = []
    for expr in exprs:
        for name in promql_metric_names(expr):
            if name in exported:
                continue
            # jemalloc's figures are absent from sanitizer builds only.
            if not jemalloc and name.startswith("tally_allocator_"):
                continue
            missing.append((name, expr))
    assert not missing, "dashboard names metrics tallyd does not export: %r" \
        % missing
    print("grafana dashboard: %d queries, every metric exported" % len(exprs))


def main():
    mode = sys.argv[1]
    if mode == "endpoint":
        endpoint_test(sys.argv[2], sys.argv[3])
    elif mode == "dashboard":
        dashboard_test(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("usage: metrics_test.py endpoint|dashboard ...")


if __name__ == "__main__":
    main()
