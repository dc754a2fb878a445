#!/usr/bin/env bash
# F1 (RELIABILITY.md): a real disk filling up under tallyd. The data
# directory is on a 32 MiB loop-mounted ext4 image (needs root; skipped with
# exit 77 otherwise), nearly filled by a filler file. Adds run until the WAL
# cannot grow: they must fail with NOT_PERSISTED and not be applied, reads
# keep working, adds resume by themselves within 2 s of space returning, and
# after kill -9 and a restart every acknowledged add is there, no more.
# Usage: disk_full_test.sh <tallyd> <tally> <tally-wal>
set -uo pipefail
tallyd="$1"; tally="$2"; tallywal="$3"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to loop-mount ext4"; exit 77; }
work=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  umount "$work/mnt" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
dd if=/dev/zero of="$work/img" bs=1M count=32 status=none
mkfs.ext4 -q -m 0 "$work/img" || { echo "SKIP: mkfs.ext4 failed"; exit 77; }
mkdir "$work/mnt"
mount -o loop "$work/img" "$work/mnt" 2>/dev/null ||
  { echo "SKIP: cannot loop-mount here"; exit 77; }
data="$work/mnt/data"

start() {
  "$tallyd" --allow_root --port=0 --threads=1 --data_dir="$data" --wal_segment_mb=1 \
    --snapshot_interval_s=0 >"$work/out" 2>>"$work/err" &
  pid=$!
  for _ in $(seq 200); do grep -q 'ready port=' "$work/out" && break; sleep 0.05; done
  port=$(grep -o 'port=[0-9]*' "$work/out" | cut -d= -f2)
  [ -n "$port" ] || { echo "FAIL: tallyd did not start"; cat "$work/err"; exit 1; }
}
count() { "$tally" -p "$port" --json QUERY disk:full WINDOW 1h | grep -o '"count":[0-9]*' | cut -d: -f2; }

start
# Leave ~2.5 MiB: room for about two more 1 MiB segments.
avail=$(df --output=avail -B1 "$work/mnt" | tail -1)
fallocate -l $((avail - 2621440)) "$work/mnt/filler"

acked=0; refused=0
for round in $(seq 40); do
  replies=$(yes 'ADD disk:full AMOUNT 1' | head -2000 | "$tally" -p "$port" --json)
  ok=$(grep -c '"ok":true' <<<"$replies")
  np=$(grep -c 'NOT_PERSISTED' <<<"$replies")
  other=$((2000 - ok - np))
  [ "$other" = 0 ] || { echo "FAIL: unexpected replies"; grep -v '"ok":true' <<<"$replies" | grep -v NOT_PERSISTED | head -3; exit 1; }
  acked=$((acked + ok)); refused=$((refused + np))
  [ "$np" -gt 0 ] && break
done
echo "disk full after $acked acknowledged adds ($refused refused in round $round)"
[ "$refused" -gt 0 ] || { echo "FAIL: the disk never filled"; exit 1; }
# Refused adds were not applied, and reads still work.
c=$(count)
[ "$c" = "$acked" ] || { echo "FAIL: count $c after $acked acknowledged adds"; exit 1; }
"$tally" -p "$port" INFO persistence | grep -E 'write_failed|rejected_not_persisted|last_write_error'

rm -f "$work/mnt/filler"
freed=$(date +%s%N)
resumed=""
for _ in $(seq 40); do
  if "$tally" -p "$port" --json ADD disk:full AMOUNT 1 | grep -q '"ok":true'; then
    resumed=$(( ($(date +%s%N) - freed) / 1000000 )); acked=$((acked + 1)); break
  fi
  sleep 0.1
done
[ -n "$resumed" ] || { echo "FAIL: adds did not resume within 4 s"; exit 1; }
echo "adds resumed ${resumed} ms after space returned"
[ "$resumed" -le 2500 ] || { echo "FAIL: resumed after ${resumed} ms (> 2 s + slack)"; exit 1; }
replies=$(yes 'ADD disk:full AMOUNT 1' | head -500 | "$tally" -p "$port" --json)
acked=$((acked + $(grep -c '"ok":true' <<<"$replies")))

kill -9 "$pid"; wait "$pid" 2>/dev/null; pid=""
"$tallywal" check "$data" >/dev/null; rc=$?
[ "$rc" -le 1 ] || { echo "FAIL: tally-wal check exit $rc after the episode"; "$tallywal" check "$data"; exit 1; }
: >"$work/out"
start
c=$(count)
[ "$c" = "$acked" ] || { echo "FAIL: after restart count $c, acknowledged $acked"; exit 1; }
echo "PASS: $acked acknowledged adds all present after kill -9 and restart"
