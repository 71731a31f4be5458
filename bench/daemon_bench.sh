#!/usr/bin/env bash
# Whole-daemon figures for docs/performance.md, printed as a Markdown table:
#   - /metrics throughput and latency with wrk, poolwatchd vs prometheus-node-exporter
#     (--collector.disable-defaults, its own metrics only), side by side in the same run;
#   - tick lateness p50/p99 and frame overruns at 60 Hz, idle and under that load, from
#     poolwatchd's own histogram;
#   - RSS minus pooled bytes; a steady soak at 1 kHz under periodic scrapes (RSS growth,
#     outstanding buffers); start-up time from exec to the first successful scrape.
# Usage: bench/daemon_bench.sh [--soak SECONDS] [--load SECONDS]   (defaults 180 and 15)
# Everything runs on 127.0.0.1 and is stopped by pid at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

soak=180
load=15
while [[ $# -gt 0 ]]; do
  case "$1" in
    --soak) soak=$2; shift 2 ;;
    --load) load=$2; shift 2 ;;
    *) echo "usage: $0 [--soak SECONDS] [--load SECONDS]" >&2; exit 2 ;;
  esac
done

scripts/install-deps.sh bench
cmake --preset release >/dev/null
cmake --build --preset release --target poolwatchd >/dev/null
bin=build/release/daemon/poolwatchd

source bench/lib.sh  # $work, $pids stopped at exit, free_port

metric() {  # metric NAME URL: the value of one unlabelled or pool-labelled sample
  curl -fsS "$2" | awk -v name="$1" '$1 == name || index($1, name "{") == 1 { print $2; exit }'
}

# histogram_quantile over the difference of two scrapes of a histogram's buckets.
quantile() {  # quantile Q BEFORE_FILE AFTER_FILE NAME
  awk -v q="$1" -v name="$4_bucket" '
    FNR == 1 { file++ }
    index($1, name "{") == 1 {
      match($1, /le="[^"]*"/); le = substr($1, RSTART + 4, RLENGTH - 5)
      if (file == 1) before[le] = $2; else { after[le] = $2; order[++n] = le }
    }
    END {
      total = after["+Inf"] - before["+Inf"]
      if (total <= 0) { print "n/a"; exit }
      rank = q * total; prev_le = 0; prev_count = 0
      for (i = 1; i <= n; i++) {
        le = order[i]; count = after[le] - before[le]
        if (count >= rank) {
          if (le == "+Inf") { printf "> %.3f ms\n", prev_le * 1000; exit }
          frac = (count == prev_count) ? 0 : (rank - prev_count) / (count - prev_count)
          printf "%.3f ms\n", (prev_le + (le - prev_le) * frac) * 1000; exit
        }
        prev_le = le; prev_count = count
      }
    }' "$2" "$3"
}

# Sets pw_pid and startup_us. Not to be called in $(...): the daemon would hold its pipe open.
start_poolwatchd() {  # start_poolwatchd HZ PORT
  cat > "$work/poolwatchd.json" <<JSON
{"http": {"listen": "127.0.0.1:$2", "max_connections": 256}, "log": {"level": "warn"},
 "loop": {"tick_hz": $1}, "workload": {"scenario": "steady"}}
JSON
  local t0 t1
  t0=$(date +%s%N)
  "$bin" --config "$work/poolwatchd.json" >>"$work/poolwatchd.log" 2>&1 &
  pw_pid=$!
  pids+=("$pw_pid")
  until curl -fsS -o /dev/null "http://127.0.0.1:$2/metrics" 2>/dev/null; do sleep 0.001; done
  t1=$(date +%s%N)
  startup_us=$(( (t1 - t0) / 1000 ))
}

stop_pid() { kill "$1"; wait "$1" 2>/dev/null || true; }

wrk_run() {  # wrk_run URL -> "req/s p50 p99"
  wrk -t2 -c16 -d"${load}s" --latency "$1" | awk '
    /Requests\/sec/ { rps = $2 }
    $1 == "50%" { p50 = $2 } $1 == "99%" { p99 = $2 }
    END { printf "%s %s %s\n", rps, p50, p99 }'
}

echo "# poolwatchd daemon benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r)"
echo

# Start-up, then idle tick precision at 60 Hz.
port=$(free_port)
start_poolwatchd 60 "$port"
first_startup_us=$startup_us
url="http://127.0.0.1:$port/metrics"
sleep 2
curl -fsS "$url" > "$work/idle0"
sleep "$load"
curl -fsS "$url" > "$work/idle1"
idle_p50=$(quantile 0.5 "$work/idle0" "$work/idle1" poolwatch_tick_lateness_seconds)
idle_p99=$(quantile 0.99 "$work/idle0" "$work/idle1" poolwatch_tick_lateness_seconds)
idle_overruns=$(awk 'index($1,"poolwatch_frame_overruns_total{")==1{v[FILENAME]=$2} END{print v[ARGV[2]]-v[ARGV[1]]}' "$work/idle0" "$work/idle1")

# /metrics under wrk, with the tick loop's view of the same period.
curl -fsS "$url" > "$work/load0"
read -r pw_rps pw_p50 pw_p99 < <(wrk_run "$url")
curl -fsS "$url" > "$work/load1"
load_p50=$(quantile 0.5 "$work/load0" "$work/load1" poolwatch_tick_lateness_seconds)
load_p99=$(quantile 0.99 "$work/load0" "$work/load1" poolwatch_tick_lateness_seconds)
load_overruns=$(awk 'index($1,"poolwatch_frame_overruns_total{")==1{v[FILENAME]=$2} END{print v[ARGV[2]]-v[ARGV[1]]}' "$work/load0" "$work/load1")
rss=$(metric process_resident_memory_bytes "$url")
pooled=$(metric poolwatch_pool_pooled_bytes "$url")
body_bytes=$(curl -fsS "$url" | wc -c)
stop_pid "$pw_pid"

ne_port=$(free_port)
prometheus-node-exporter --collector.disable-defaults --web.listen-address="127.0.0.1:$ne_port" \
  >>"$work/node_exporter.log" 2>&1 &
ne_pid=$!
pids+=("$ne_pid")
until curl -fsS -o /dev/null "http://127.0.0.1:$ne_port/metrics" 2>/dev/null; do sleep 0.01; done
ne_body_bytes=$(curl -fsS "http://127.0.0.1:$ne_port/metrics" | wc -c)
read -r ne_rps ne_p50 ne_p99 < <(wrk_run "http://127.0.0.1:$ne_port/metrics")
stop_pid "$ne_pid"

# Soak: 1 kHz, a scrape a second.
port=$(free_port)
start_poolwatchd 1000 "$port"
url="http://127.0.0.1:$port/metrics"
sleep 10
rss0=$(metric process_resident_memory_bytes "$url")
for ((i = 0; i < soak; i++)); do curl -fsS -o /dev/null "$url"; sleep 1; done
curl -fsS "$url" > "$work/soak"
rss1=$(awk '$1=="process_resident_memory_bytes"{print $2}' "$work/soak")
outstanding=$(awk 'index($1,"poolwatch_pool_outstanding_buffers{")==1{print $2}' "$work/soak")
soak_frames=$(awk 'index($1,"poolwatch_frames_total{")==1{print $2}' "$work/soak")
soak_overruns=$(awk 'index($1,"poolwatch_frame_overruns_total{")==1{print $2}' "$work/soak")
stop_pid "$pw_pid"

ratio=$(awk -v a="$pw_rps" -v b="$ne_rps" 'BEGIN { printf "%.1f", a / b }')
mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }

cat <<TABLE
| figure | value |
|---|---|
| start-up: exec to first successful scrape | $((first_startup_us / 1000)).$(printf %03d $((first_startup_us % 1000))) ms |
| /metrics, poolwatchd (wrk -t2 -c16, ${load}s, ${body_bytes} B body) | ${pw_rps} req/s, p50 ${pw_p50}, p99 ${pw_p99} |
| /metrics, node_exporter --collector.disable-defaults (${ne_body_bytes} B body) | ${ne_rps} req/s, p50 ${ne_p50}, p99 ${ne_p99} |
| poolwatchd / node_exporter requests/s | ${ratio}× |
| tick lateness at 60 Hz, idle (${load}s) | p50 ${idle_p50}, p99 ${idle_p99}; overruns ${idle_overruns} |
| tick lateness at 60 Hz, under the wrk load | p50 ${load_p50}, p99 ${load_p99}; overruns ${load_overruns} |
| RSS − pooled bytes (steady, 60 Hz) | $(mib $((${rss%.*} - ${pooled%.*}))) (RSS $(mib "${rss%.*}"), pooled $(mib "${pooled%.*}")) |
| soak: ${soak}s at 1 kHz, a scrape a second | RSS $(mib "${rss0%.*}") → $(mib "${rss1%.*}"); outstanding ${outstanding}; frames ${soak_frames}, overruns ${soak_overruns} |
TABLE
