#!/usr/bin/env bash
# A fleet on loopback, for docs/scaling.md: N poolwatchd processes (K of them leaking), one real
# Prometheus scraping every target every second with the shipped rules (only `for:` shortened),
# one real Alertmanager with the shipped routing. After a warm-up and a measured window it
# checks and prints:
#   - every target is up;
#   - each leaking instance's PoolwatchPoolImbalance reaches Alertmanager with its own instance
#     and pool, and no steady instance has a pool alert;
#   - every recording rule of the shipped rule file has data;
#   - the p99 of scrape_duration_seconds over every scrape of the window, across targets;
#   - RSS and CPU per poolwatchd, and Prometheus's head series and RSS.
# Exits 1 if a check fails. The 100-instance run is a benchmark (see docs/scaling.md); CI runs a
# small fleet through this same script.
#   bench/fleet.sh [--instances N] [--leaking K] [--hz HZ] [--window SECONDS]
#                  [--max-scrape-p99-ms MS] [--poolwatchd PATH]
# Defaults: 100 instances, 5 leaking, 60 Hz, a 60 s window, p99 under 10 ms, the release build.
# Everything listens on 127.0.0.1 and is stopped by pid at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

instances=100
leaking=5
hz=60
window=60
max_p99_ms=10
bin=""
usage="usage: $0 [--instances N] [--leaking K] [--hz HZ] [--window SECONDS] [--max-scrape-p99-ms MS] [--poolwatchd PATH]"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --instances) instances=$2; shift 2 ;;
    --leaking) leaking=$2; shift 2 ;;
    --hz) hz=$2; shift 2 ;;
    --window) window=$2; shift 2 ;;
    --max-scrape-p99-ms) max_p99_ms=$2; shift 2 ;;
    --poolwatchd) bin=$2; shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
if ((leaking > instances || instances < 1)); then
  echo "fleet: --leaking ($leaking) must be at most --instances ($instances), which must be >= 1" >&2
  exit 2
fi

if [[ -z "$bin" ]]; then
  scripts/install-deps.sh bench
  cmake --preset release >/dev/null
  cmake --build --preset release --target poolwatchd >/dev/null
  bin=build/release/daemon/poolwatchd
fi
for tool in prometheus prometheus-alertmanager curl jq; do
  command -v "$tool" >/dev/null || { echo "fleet: $tool is missing (scripts/install-deps.sh bench)" >&2; exit 2; }
done

source bench/lib.sh  # $work, $pids stopped at exit, free_port

# wait_for SECONDS COMMAND...: runs COMMAND every 0.5 s until it succeeds; 1 on timeout.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

failures=0
check() {  # check DESCRIPTION CONDITION_STATUS
  if [[ $2 == 0 ]]; then
    echo "  ok    $1"
  else
    echo "  FAIL  $1"
    failures=$((failures + 1))
  fi
}

# The fleet: instance i listens on a port of its own (from its log); the first K leak.
declare -a targets leak_targets
for ((i = 0; i < instances; i++)); do
  scenario=steady
  ((i < leaking)) && scenario=leak
  cat >"$work/poolwatchd-$i.json" <<EOF
{"http": {"listen": "127.0.0.1:0"},
 "loops": [{"name": "main", "tick_hz": $hz,
            "pools": [{"name": "fleet", "workload": {"scenario": "$scenario"}}]}]}
EOF
  "$bin" --config "$work/poolwatchd-$i.json" >"$work/poolwatchd-$i.log" 2>&1 &
  pids+=($!)
done
for ((i = 0; i < instances; i++)); do
  wait_for 30 grep -q ' listening on ' "$work/poolwatchd-$i.log" || {
    echo "fleet: instance $i did not start:" >&2
    cat "$work/poolwatchd-$i.log" >&2
    exit 1
  }
  port=$(sed -n 's/.* listening on [^ ]*:\([0-9]*\).*/\1/p' "$work/poolwatchd-$i.log" | head -1)
  targets+=("127.0.0.1:$port")
  ((i < leaking)) && leak_targets+=("127.0.0.1:$port")
done

# Alertmanager with the shipped routing; nothing listens at its webhook (Alertmanager only has
# to hold the alerts here).
am_port=$(free_port)
sed -e 's/group_wait: [0-9a-z]*/group_wait: 1s/' -e 's/group_interval: [0-9a-z]*/group_interval: 1s/' \
  config/alertmanager/alertmanager.yml >"$work/alertmanager.yml"
prometheus-alertmanager --config.file="$work/alertmanager.yml" --storage.path="$work/am" \
  --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= --log.level=error \
  >"$work/alertmanager.log" 2>&1 &
pids+=($!)

# Prometheus: the shipped rules with `for:` shortened, every target every second, and itself.
sed -e 's/^        for: [0-9a-z]*$/        for: 2s/' config/prometheus/poolwatch.rules.yml >"$work/rules.yml"
prom_port=$(free_port)
target_list=$(printf '"%s", ' "${targets[@]}")
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["$work/rules.yml"]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:$am_port"]
scrape_configs:
  - job_name: poolwatch
    sample_limit: 1200
    static_configs:
      - targets: [${target_list%, }]
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:$prom_port"]
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=error >"$work/prometheus.log" 2>&1 &
pids+=($!)

query() {  # query PROMQL: the result array of an instant query
  curl -fsS --max-time 10 "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" |
    jq -c '.data.result'
}
value() {  # value PROMQL: the first sample's value, or "none"
  query "$1" | jq -r '.[0].value[1] // "none"'
}
all_up() { [[ $(value 'count(up{job="poolwatch"} == 1)') == "$instances" ]]; }

wait_for 30 curl -fsS "http://127.0.0.1:$prom_port/-/ready" || { cat "$work/prometheus.log" >&2; exit 1; }
wait_for 30 curl -fsS "http://127.0.0.1:$am_port/-/ready" || { cat "$work/alertmanager.log" >&2; exit 1; }
echo "fleet: $instances poolwatchd at $hz Hz ($leaking leaking), Prometheus scraping every 1 s"
wait_for 60 all_up || echo "fleet: not every target came up within 60 s"
start=$SECONDS
sleep "$window"
elapsed=$((SECONDS - start))

echo "fleet: checks after a ${elapsed} s window"
up=$(value 'count(up{job="poolwatch"} == 1)')
check "every target up: $up of $instances" "$([[ $up == "$instances" ]]; echo $?)"

# Alertmanager's imbalance alerts: exactly the leaking instances, each with its pool.
alerted=$(curl -fsS "http://127.0.0.1:$am_port/api/v2/alerts" \
  --data-urlencode 'filter=alertname="PoolwatchPoolImbalance"' --get |
  jq -r '[.[] | select(.labels.pool == "fleet") | .labels.instance] | unique | .[]' | sort)
expected=$(printf '%s\n' "${leak_targets[@]}" | sed '/^$/d' | sort)
check "PoolwatchPoolImbalance in Alertmanager for exactly the $leaking leaking instances, pool fleet ($(echo -n "$alerted" | grep -c . || true) alerted)" \
  "$([[ "$alerted" == "$expected" ]]; echo $?)"
steady_alerts=0
if ((leaking < instances)); then
  steady_regex=$(printf '%s|' "${targets[@]:leaking}")
  steady_alerts=$(query "ALERTS{alertname=~\"PoolwatchPool.*\", instance=~\"${steady_regex%|}\"}" | jq 'length')
fi
check "no pool alert for a steady instance ($steady_alerts)" "$([[ $steady_alerts == 0 ]]; echo $?)"

# Every recording rule has data.
empty_rules=()
records=0
while read -r record; do
  records=$((records + 1))
  [[ $(query "$record" | jq 'length') -gt 0 ]] || empty_rules+=("$record")
done < <(sed -n 's/^      - record: //p' config/prometheus/poolwatch.rules.yml)
check "every recording rule has data ($records rules${empty_rules[*]:+; empty: ${empty_rules[*]}})" \
  "$([[ ${#empty_rules[@]} == 0 && $records -gt 0 ]]; echo $?)"

# p99 of every scrape's duration in the window, across all targets (the raw samples).
scrapes=$(query "scrape_duration_seconds{job=\"poolwatch\"}[${elapsed}s]" |
  jq '[.[].values[][1] | tonumber] | sort')
count=$(jq 'length' <<<"$scrapes")
p50_ms=$(jq -r '.[(length * 0.50 | floor)] * 1000 | . * 1000 | round / 1000' <<<"$scrapes")
p99_ms=$(jq -r '.[(length * 0.99 | floor)] * 1000 | . * 1000 | round / 1000' <<<"$scrapes")
max_ms=$(jq -r '.[-1] * 1000 | . * 1000 | round / 1000' <<<"$scrapes")
check "scrape_duration_seconds p99 ${p99_ms} ms < ${max_p99_ms} ms (p50 ${p50_ms} ms, max ${max_ms} ms, $count scrapes)" \
  "$(jq -n --argjson p "$p99_ms" --argjson m "$max_p99_ms" '$p < $m' | grep -q true; echo $?)"

# Costs per instance, and Prometheus's.
rss='process_resident_memory_bytes{job="poolwatch"} / 2^20'
cpu="rate(process_cpu_seconds_total{job=\"poolwatch\"}[${elapsed}s]) * 100"
figure() { value "$1" | xargs printf "$2"; }  # figure PROMQL FORMAT
samples=$(value 'avg(scrape_samples_scraped{job="poolwatch"})')
head_series=$(value 'prometheus_tsdb_head_series{job="prometheus"}')
prom_rss=$(value 'process_resident_memory_bytes{job="prometheus"} / 2^20' | xargs printf '%.0f')
prom_cpu=$(value "rate(process_cpu_seconds_total{job=\"prometheus\"}[${elapsed}s]) * 100" | xargs printf '%.1f')
fleet_rules_ms=$(value 'max_over_time(prometheus_rule_group_last_duration_seconds{rule_group=~".*;poolwatch.fleet"}[1m]) * 1000' | xargs printf '%.2f')
alert_rules_ms=$(value 'sum(max_over_time(prometheus_rule_group_last_duration_seconds{rule_group=~".*;poolwatch.(pool|loop|target)"}[1m])) * 1000' | xargs printf '%.2f')
ingested=$(value "rate(prometheus_tsdb_head_samples_appended_total{job=\"prometheus\"}[${elapsed}s])" | xargs printf '%.0f')

cat <<EOF

| figure | value |
|---|---|
| instances (leaking) | $instances ($leaking) at $hz Hz |
| samples per scrape, per instance | $samples |
| scrape_duration_seconds p50 / p99 / max, $count scrapes | $p50_ms / $p99_ms / $max_ms ms |
| poolwatchd RSS median / max | $(figure "quantile(0.5, $rss)" %.1f) / $(figure "max($rss)" %.1f) MiB |
| poolwatchd CPU median / max (one core = 100 %) | $(figure "quantile(0.5, $cpu)" %.2f) / $(figure "max($cpu)" %.2f) % |
| Prometheus head series | $head_series |
| Prometheus samples appended per s | $ingested |
| Prometheus RSS, CPU | $prom_rss MiB, $prom_cpu % |
| rule evaluation, slowest in the last minute: fleet group / alert groups | $fleet_rules_ms / $alert_rules_ms ms |
EOF

if ((failures > 0)); then
  echo "fleet: $failures check(s) failed" >&2
  exit 1
fi
echo "fleet: every check passed"
