#!/usr/bin/env bash
# Connect rates of several brokers, the brokers in turn for ROUNDS rounds, a fresh broker on a
# fresh loopback port per run (`moat mqtt bench conn -c N --duration 1`), then the medians and
# their ratios to mosquitto's. Single runs spread by about 15 % on a shared machine.
#
#   bench/connect-rate.sh PORT ROUNDS VARIANT...
#   bench/connect-rate.sh 31000 6 mosquitto tokio=,target/release/moat,tokio \
#       one=TOKIO_WORKER_THREADS=1,target/release/moat,tokio
#
# VARIANT is `mosquitto`, or NAME=ENV,BINARY,RUNTIME for a moat broker (ENV: VAR=value
# settings for its environment, or empty). Settings (environment): N connections [10000];
# TOOLARGS more `bench conn` arguments (e.g. "--threads 2"); TOOL the bench binary
# [target/release/moat].
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { sed -n 2,13p "$0" >&2; exit 2; }
port=$1 rounds=$2
shift 2
N=${N:-10000}
TOOL=${TOOL:-target/release/moat}
TOOLARGS=${TOOLARGS:-}
ulimit -n 20000
work=$(mktemp -d -t moat-connect-rate.XXXXXX)
results=$work/results
: >"$results"
for _ in $(seq "$rounds"); do
  for variant in "$@"; do
    port=$((port + 1))
    if [ "$variant" = mosquitto ]; then
      name=mosquitto
      printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_type error\n' "$port" >"$work/m-$port.conf"
      mosquitto -c "$work/m-$port.conf" >/dev/null 2>&1 &
    else
      name=${variant%%=*} rest=${variant#*=}
      envs=${rest%%,*} rest=${rest#*,}
      binary=${rest%%,*} runtime=${rest#*,}
      printf 'listeners:\n  default:\n    bind: 127.0.0.1:%s\nsys_interval: 0\n' "$port" >"$work/moat-$port.yaml"
      # shellcheck disable=SC2086 # ENV is a list of settings
      env $envs "$binary" -q mqtt broker -c "$work/moat-$port.yaml" --runtime "$runtime" >/dev/null 2>&1 &
    fi
    pid=$!
    sleep 0.4
    # shellcheck disable=SC2086 # TOOLARGS is a list of arguments
    "$TOOL" mqtt bench conn -c "$N" --duration 1 -h 127.0.0.1 -p "$port" --broker-pid "$pid" $TOOLARGS --json \
      >"$work/run.json" 2>/dev/null || true
    python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
print(sys.argv[2], j["connect"]["rate_per_s"], (j.get("broker") or {}).get("cpu_seconds"))' "$work/run.json" "$name" >>"$results"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
done
python3 - "$results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, rate, cpu = line.split()
    runs.setdefault(name, []).append((float(rate), None if cpu == "None" else float(cpu)))
base = statistics.median(r for r, _ in runs["mosquitto"]) if "mosquitto" in runs else None
for name, got in runs.items():
    rates = [r for r, _ in got]
    median = statistics.median(rates)
    cpus = [c for _, c in got if c is not None]
    ratio = f" ({median / base:.2f}x)" if base else ""
    cpu = f"  broker cpu {statistics.median(cpus):.3f} s" if cpus else ""
    print(f"{name:12} median {median:8.0f}/s{ratio}{cpu}  runs {' '.join(f'{r:.0f}' for r in rates)}")
PY
rm -rf "$work"
