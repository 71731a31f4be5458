#!/usr/bin/env bash
# Whole-daemon figures for docs/performance.md, printed as a Markdown table:
#   - /metrics throughput and latency with wrk (two threads, and one, which leaves the server a
#     core), poolwatchd vs prometheus-node-exporter
#     (--collector.disable-defaults, its own metrics only), side by side in the same run;
#   - tick lateness p50/p99 and frame overruns at 60 Hz, idle and under that load, from
#     poolwatchd's own histogram;
#   - RSS minus pooled bytes, split into private and file-backed pages; a steady soak at 1 kHz
#     under periodic scrapes (RSS growth, outstanding buffers), after a warm-up that fills the
#     diagnostics history; start-up time from exec to the first successful scrape.
# Usage: bench/daemon_bench.sh [--soak SECONDS] [--load SECONDS] [--warmup SECONDS] [--bin PATH]
#   defaults 180, 15 and 310; --bin measures that poolwatchd (say, an older commit's build, for
#   a comparison on the same machine) instead of building build/release, and installs nothing:
#   wrk, prometheus-node-exporter and curl must be there (CTest's bench.daemon runs it so).
# Everything runs on 127.0.0.1 and is stopped by pid at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

soak=180
load=15
# The diagnostics store keeps a point a second for the longest alert window (300 s by default,
# docs/architecture.md): RSS grows by a page now and then until it is full, then stays flat.
# The soak starts after it.
warmup=310
bin=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --soak) soak=$2; shift 2 ;;
    --load) load=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "usage: $0 [--soak SECONDS] [--load SECONDS] [--warmup SECONDS] [--bin PATH]" >&2
       exit 2 ;;
  esac
done

if [[ -z $bin ]]; then
  scripts/install-deps.sh bench
  cmake --preset release >/dev/null
  cmake --build --preset release --target poolwatchd >/dev/null
  bin=build/release/daemon/poolwatchd
fi
for tool in wrk prometheus-node-exporter curl; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is missing: scripts/install-deps.sh bench" >&2; exit 1; }
done

source bench/lib.sh  # $work, $pids stopped at exit, free_port

summed() {  # summed NAME FILE: the sum of every series of NAME in a saved scrape
  awk -v name="$1" '$1 == name || index($1, name "{") == 1 { sum += $2 }
    END { printf "%.0f\n", sum }' "$2"
}

increase() {  # increase NAME BEFORE_FILE AFTER_FILE: a counter's increase between two scrapes
  echo $(($(summed "$1" "$3") - $(summed "$1" "$2")))
}

kib() {  # kib FIELD PID: a field of /proc/PID/status, in KiB (VmRSS, RssAnon, RssFile)
  awk -v field="$1:" '$1 == field { print $2 }' "/proc/$2/status"
}

now_us() { echo "${EPOCHREALTIME/./}"; }

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
# Polled from this shell through /dev/tcp, with no process per attempt: starting curl takes
# ~20 ms on a small VM, about what the daemon does. Between attempts, a 0.5 ms wait on an empty
# pipe (no fork either) leaves the cores to the daemon.
start_poolwatchd() {  # start_poolwatchd HZ PORT
  cat > "$work/poolwatchd.json" <<JSON
{"http": {"listen": "127.0.0.1:$2", "max_connections": 256}, "log": {"level": "warn"},
 "loop": {"tick_hz": $1}, "workload": {"scenario": "steady"}}
JSON
  local t0 status=""
  exec 4<> <(:)
  t0=$(now_us)
  "$bin" --config "$work/poolwatchd.json" >>"$work/poolwatchd.log" 2>&1 &
  pw_pid=$!
  pids+=("$pw_pid")
  until [[ $status == "HTTP/1.1 200 "* ]]; do
    if ! kill -0 "$pw_pid" 2>/dev/null; then
      echo "poolwatchd exited at start; its log:" >&2
      cat "$work/poolwatchd.log" >&2
      exit 1
    fi
    if ! { exec 3<>"/dev/tcp/127.0.0.1/$2"; } 2>/dev/null; then
      read -rt 0.0005 -u 4 || true
      continue
    fi
    printf 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
    read -r status <&3 || status=""
    exec 3<&-
  done
  startup_us=$(($(now_us) - t0))
  exec 4<&-
}

# The machine's floor for the same measurement: fork and exec of a program that does nothing.
exec_floor_us() {
  local t0
  t0=$(now_us)
  /bin/true
  echo $(($(now_us) - t0))
}

stop_pid() { kill "$1"; wait "$1" 2>/dev/null || true; }

wrk_run() {  # wrk_run THREADS URL -> "req/s p50 p99"
  wrk -t"$1" -c16 -d"${load}s" --latency "$2" | awk '
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
idle_overruns=$(increase poolwatch_frame_overruns_total "$work/idle0" "$work/idle1")

# /metrics under wrk, with the tick loop's view of the same period.
curl -fsS "$url" > "$work/load0"
read -r pw_rps pw_p50 pw_p99 < <(wrk_run 2 "$url")
curl -fsS "$url" > "$work/load1"
load_p50=$(quantile 0.5 "$work/load0" "$work/load1" poolwatch_tick_lateness_seconds)
load_p99=$(quantile 0.99 "$work/load0" "$work/load1" poolwatch_tick_lateness_seconds)
load_overruns=$(increase poolwatch_frame_overruns_total "$work/load0" "$work/load1")
rss_kib=$(kib VmRSS "$pw_pid")  # = process_resident_memory_bytes, read with its parts
rss_anon_kib=$(kib RssAnon "$pw_pid")
rss_file_kib=$(kib RssFile "$pw_pid")
pooled=$(summed poolwatch_pool_pooled_bytes "$work/load1")
body_bytes=$(curl -fsS "$url" | wc -c)
# wrk -t2 keeps both cores of a 2-core machine busy, so the server's I/O thread waits for a time
# slice now and then (its p99); with one wrk thread, the other core is the server's.
read -r pw1_rps pw1_p50 pw1_p99 < <(wrk_run 1 "$url")
stop_pid "$pw_pid"

ne_port=$(free_port)
prometheus-node-exporter --collector.disable-defaults --web.listen-address="127.0.0.1:$ne_port" \
  >>"$work/node_exporter.log" 2>&1 &
ne_pid=$!
pids+=("$ne_pid")
until curl -fsS -o /dev/null "http://127.0.0.1:$ne_port/metrics" 2>/dev/null; do sleep 0.01; done
ne_body_bytes=$(curl -fsS "http://127.0.0.1:$ne_port/metrics" | wc -c)
read -r ne_rps ne_p50 ne_p99 < <(wrk_run 2 "http://127.0.0.1:$ne_port/metrics")
stop_pid "$ne_pid"

# Soak: 1 kHz, a scrape a second.
port=$(free_port)
start_poolwatchd 1000 "$port"
url="http://127.0.0.1:$port/metrics"
scrape_for() {  # scrape_for SECONDS: a scrape a second
  local i
  for ((i = 0; i < $1; i++)); do curl -fsS -o /dev/null "$url"; sleep 1; done
}
first=$((warmup < 10 ? warmup : 10))
scrape_for "$first"
rss_start_kib=$(kib VmRSS "$pw_pid")
scrape_for $((warmup - first))
curl -fsS "$url" > "$work/soak0"
rss0_kib=$(kib VmRSS "$pw_pid")
anon0_kib=$(kib RssAnon "$pw_pid")
scrape_for "$soak"
curl -fsS "$url" > "$work/soak1"
rss1_kib=$(kib VmRSS "$pw_pid")
anon1_kib=$(kib RssAnon "$pw_pid")
outstanding=$(summed poolwatch_pool_outstanding_buffers "$work/soak1")
soak_frames=$(increase poolwatch_frames_total "$work/soak0" "$work/soak1")
soak_overruns=$(increase poolwatch_frame_overruns_total "$work/soak0" "$work/soak1")
stop_pid "$pw_pid"
floor_us=$(exec_floor_us)

ratio=$(awk -v a="$pw_rps" -v b="$ne_rps" 'BEGIN { printf "%.1f", a / b }')
mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }
ms() { printf '%d.%03d ms' $(($1 / 1000)) $(($1 % 1000)); }

# Every figure is there, or the run failed: a renamed metric must not print an empty cell.
for figure in first_startup_us floor_us pw_rps pw_p50 pw_p99 pw1_rps pw1_p50 pw1_p99 ne_rps \
  ne_p50 ne_p99 idle_p50 idle_p99 idle_overruns load_p50 load_p99 load_overruns rss_kib \
  rss_anon_kib rss_file_kib pooled rss_start_kib rss0_kib rss1_kib anon0_kib anon1_kib \
  outstanding soak_frames soak_overruns; do
  value=${!figure}
  if [[ -z $value || $value == n/a || $value == "> "* ]]; then
    echo "$0: no figure for $figure (got '$value')" >&2
    exit 1
  fi
done
if ((soak_frames <= 0 || pooled <= 0)); then
  echo "$0: the soak counted $soak_frames frames and $pooled pooled bytes: metrics renamed?" >&2
  exit 1
fi

cat <<TABLE
| figure | value |
|---|---|
| start-up: exec to the first 200 from /metrics | $(ms "$first_startup_us") (fork and exec of /bin/true here: $(ms "$floor_us")) |
| /metrics, poolwatchd (wrk -t2 -c16, ${load}s, ${body_bytes} B body) | ${pw_rps} req/s, p50 ${pw_p50}, p99 ${pw_p99} |
| /metrics, poolwatchd (wrk -t1 -c16, ${load}s) | ${pw1_rps} req/s, p50 ${pw1_p50}, p99 ${pw1_p99} |
| /metrics, node_exporter --collector.disable-defaults (${ne_body_bytes} B body) | ${ne_rps} req/s, p50 ${ne_p50}, p99 ${ne_p99} |
| poolwatchd / node_exporter requests/s | ${ratio}× |
| tick lateness at 60 Hz, idle (${load}s) | p50 ${idle_p50}, p99 ${idle_p99}; overruns ${idle_overruns} |
| tick lateness at 60 Hz, under the wrk load | p50 ${load_p50}, p99 ${load_p99}; overruns ${load_overruns} |
| RSS − pooled bytes (steady, 60 Hz) | $(mib $((rss_kib * 1024 - pooled))) (RSS $(mib $((rss_kib * 1024))): private $(mib $((rss_anon_kib * 1024))), file-backed $(mib $((rss_file_kib * 1024))); pooled $(mib "$pooled")) |
| soak at 1 kHz, a scrape a second: RSS at ${first} s → after the ${warmup}s warm-up → ${soak}s later | $(mib $((rss_start_kib * 1024))) → $(mib $((rss0_kib * 1024))) → $(mib $((rss1_kib * 1024))) (private $(mib $((anon0_kib * 1024))) → $(mib $((anon1_kib * 1024)))); outstanding ${outstanding} |
| the soak's ${soak}s: frames, overruns | ${soak_frames}, ${soak_overruns} |
TABLE
