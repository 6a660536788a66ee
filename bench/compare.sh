#!/usr/bin/env bash
# mosquitto and moat (on tokio and on smol) side by side on loopback: the same scenario
# matrix against each, a fresh broker on a fresh port per case, then a markdown table of
# the figures and their ratios (moat / mosquitto) on stdout.
#
#   bench/compare.sh                   # the whole matrix, about 4 minutes
#   DURATION=3 IDLE=2000 bench/compare.sh   # a quick look
#
# The p2p case runs twice: with 20 messages in flight per publisher (the window of the
# latency target) and with 100. A flat-out closed loop holds pairs x window messages in the
# system, so its mean latency is at least that over the rate (Little's law): at window 100,
# 800 messages at 900k msg/s are 0.9 ms on average whatever the broker does.
#
# Settings (environment):
#   MOAT      the moat binary [default: builds target/release/moat with both runtimes:
#             cargo build --release -p moat-mqtt-cli --features runtime-smol]
#   DURATION  seconds of publishing per message case [10]
#   IDLE      idle connections in the memory and connect-rate case [10000]
#   IDLE_RUNS runs of that case per broker, the brokers in turn; the table shows the median [3]
#   IDLE_THREADS  bench threads opening the idle connections [2]; the case also runs once
#             more per broker and run on one thread, shown in rows of its own
#   INFLIGHT  QoS 1/2 messages in flight to one client, for both brokers [100]; both
#             default to 20, which makes the QoS 1 cases measure a 20-message round trip
#   RUNTIMES  moat runtimes to run [tokio smol]
#   PORT      first loopback port; each broker start takes the next [19100]
#   KEEP      directory for the JSON summaries and broker logs [a new temporary one]
#
# Both brokers get the same limits: queues of 1,000,000 messages per client (so that
# neither drops for a subscriber that falls behind a blast), the same inflight window
# (INFLIGHT), no persistence, $SYS off for
# moat, and warnings-only logging. The load tool is `moat mqtt bench` on its default
# runtime (tokio, one thread) for every broker, with --broker-pid, so each case also
# reports the broker's and the tool's CPU time. Each case gets its own port because the
# TIME_WAIT sockets of 10,000 closed connections to one port slow down the next connects
# to it by half.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
IDLE=${IDLE:-10000}
IDLE_RUNS=${IDLE_RUNS:-3}
IDLE_THREADS=${IDLE_THREADS:-2}
INFLIGHT=${INFLIGHT:-100}
RUNTIMES=${RUNTIMES:-tokio smol}
port=${PORT:-19100}
KEEP=${KEEP:-$(mktemp -d -t moat-compare.XXXXXX)}
mkdir -p "$KEEP"

if [ -z "${MOAT:-}" ]; then
  echo "building: cargo build --release -p moat-mqtt-cli --features runtime-smol" >&2
  cargo build --release -q -p moat-mqtt-cli --features runtime-smol
  MOAT=target/release/moat
fi
command -v mosquitto >/dev/null || { echo "error: mosquitto is not installed (apt-get install mosquitto)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "error: python3 is needed for the table" >&2; exit 2; }
if ! ulimit -n 20000 2>/dev/null; then
  if [ "$IDLE" -gt "$(( $(ulimit -n) - 100 ))" ]; then
    echo "error: cannot raise the open-file limit to 20000 (hard limit $(ulimit -Hn)); run as root or set IDLE lower" >&2
    exit 2
  fi
fi

broker_pid=""
stop_broker() {
  if [ -n "$broker_pid" ]; then
    kill "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=""
  fi
}
trap stop_broker EXIT
trap 'stop_broker; exit 130' INT TERM

# start_broker NAME PORT: mosquitto, or moat-tokio / moat-smol; sets broker_pid.
start_broker() {
  local name=$1 p=$2 conf
  case $name in
    mosquitto)
      conf=$KEEP/mosquitto-$p.conf
      printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 1000000\nmax_inflight_messages %s\nlog_type error\nlog_type warning\n' "$p" "$INFLIGHT" >"$conf"
      mosquitto -c "$conf" >"$KEEP/broker-$p.log" 2>&1 &
      ;;
    moat-*)
      conf=$KEEP/moat-$p.yaml
      printf 'listeners:\n  default:\n    bind: 127.0.0.1:%s\nsys_interval: 0\nmax-queued-messages: 1000000\nmax-inflight: %s\n' "$p" "$INFLIGHT" >"$conf"
      "$MOAT" -q mqtt broker -c "$conf" --runtime "${name#moat-}" >"$KEEP/broker-$p.log" 2>&1 &
      ;;
  esac
  broker_pid=$!
  for _ in $(seq 200); do
    # moat says where it listens; mosquitto (logging only warnings) is probed with a
    # connection that sends nothing.
    if case $name in
      moat-*) grep -q "listening on 127.0.0.1:$p" "$KEEP/broker-$p.log" ;;
      *) (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null ;;
    esac; then
      sleep 0.2 # let it settle before its memory is read
      return 0
    fi
    kill -0 "$broker_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "error: $name did not start on port $p; its log:" >&2
  cat "$KEEP/broker-$p.log" >&2
  exit 1
}

# run_case CASE BROKER ARGS...: a fresh broker, one bench run, its JSON kept.
run_case() {
  local case=$1 name=$2
  shift 2
  port=$((port + 1))
  start_broker "$name" "$port"
  echo "== $case on $name (port $port): moat mqtt bench $*" >&2
  "$MOAT" mqtt bench "$@" -h 127.0.0.1 -p "$port" --broker-pid "$broker_pid" --json \
    >"$KEEP/$case.$name.json" 2>"$KEEP/$case.$name.progress" || true
  tail -n 1 "$KEEP/$case.$name.progress" >&2
  stop_broker
}

brokers=(mosquitto)
for runtime in $RUNTIMES; do brokers+=("moat-$runtime"); done

for name in "${brokers[@]}"; do
  run_case fanin-q0 "$name" fanin --publishers 4 --subscribers 1 -q 0 -s 64 --duration "$DURATION"
  run_case fanin-q1 "$name" fanin --publishers 4 --subscribers 1 -q 1 -s 64 --duration "$DURATION"
  run_case fanout-q0 "$name" fanout --publishers 1 --subscribers 16 -q 0 -s 64 --duration "$DURATION"
  run_case p2p-q1 "$name" p2p -c 8 -q 1 -s 64 --inflight 20 --duration "$DURATION"
  run_case p2p-q1-w100 "$name" p2p -c 8 -q 1 -s 64 --inflight 100 --duration "$DURATION"
  run_case latency-q1 "$name" p2p -c 8 -q 1 -s 64 --rate 1000 --duration "$DURATION"
done
# Connect rates of single runs spread by about 15 % here: several runs, the brokers in turn.
# One bench thread is busy all through the connect phase (running or waiting for a core)
# while the broker is not, so its rate is the tool's own limit, about the same for every
# broker; IDLE_THREADS shards offer more than one broker thread takes. Both are shown.
for run in $(seq "$IDLE_RUNS"); do
  for name in "${brokers[@]}"; do
    run_case "idle.$run" "$name" conn -c "$IDLE" --duration 2 --threads "$IDLE_THREADS"
    run_case "idle1.$run" "$name" conn -c "$IDLE" --duration 2 --threads 1
  done
done

echo "JSON summaries and broker logs: $KEEP" >&2
cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
echo "Machine: $(nproc) x $cpu, $(uname -sr); $(mosquitto -h 2>&1 | head -n 1); moat $("$MOAT" version | cut -d" " -f2) ($(git rev-parse --short HEAD 2>/dev/null || echo "?")); $(date -u +%Y-%m-%d)."
echo "Cases: ${DURATION} s of publishing each, 64-byte payloads, inflight window ${INFLIGHT} on both brokers, ${IDLE} idle connections (median of ${IDLE_RUNS} runs, the brokers in turn, opened by ${IDLE_THREADS} bench threads and by 1); bench on tokio, one thread unless said, at most 128 KiB unsent per connection (its --max-unsent default)."
echo
IDLE_THREADS="$IDLE_THREADS" python3 - "$KEEP" "${brokers[@]}" <<'EOF'
import glob, json, os, statistics, sys

keep, brokers = sys.argv[1], sys.argv[2:]

def load(case, broker):
    try:
        with open(os.path.join(keep, f"{case}.{broker}.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def load_all(case, broker):
    """Every run of a case: `case.N.broker.json` when it ran several times, else the one."""
    names = sorted(glob.glob(os.path.join(keep, f"{case}.*.{broker}.json")))
    if not names:
        return [load(case, broker)]
    runs = []
    for name in names:
        try:
            with open(name) as f:
                runs.append(json.load(f))
        except (OSError, ValueError):
            runs.append(None)
    return runs

def median_of(runs, get):
    got = [v for v in (get(j) for j in runs if j) if v is not None]
    return statistics.median(got) if got else None

def fmt(v, unit):
    if v is None:
        return "n/a"
    if unit == "ms":
        return f"{v / 1000:.2f} ms"
    if unit == "B":
        return f"{v:,.0f} B"
    if unit == "MiB":
        return f"{v / 1048576:.1f} MiB"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e4:
        return f"{v / 1e3:.0f}k"
    return f"{v:,.0f}"

def lat(q):
    return lambda j: (j.get("latency_us") or {}).get(q)

rows = [
    ("fan-in 4→1, QoS 0: received msg/s", "fanin-q0", lambda j: j.get("received_per_s"), "/s", True),
    ("fan-in 4→1, QoS 0: p99 latency", "fanin-q0", lat("p99"), "ms", False),
    ("fan-in 4→1, QoS 0: broker memory growth", "fanin-q0", lambda j: (j.get("broker") or {}).get("rss_kib_delta", 0) * 1024 if (j.get("broker") or {}).get("rss_kib_delta") is not None else None, "MiB", None),
    ("fan-in 4→1, QoS 1: received msg/s", "fanin-q1", lambda j: j.get("received_per_s"), "/s", True),
    ("fan-out 1→16, QoS 0: deliveries/s", "fanout-q0", lambda j: j.get("received_per_s"), "/s", True),
    ("p2p 8 pairs, QoS 1, window 20: received msg/s", "p2p-q1", lambda j: j.get("received_per_s"), "/s", True),
    ("p2p 8 pairs, QoS 1, window 20: p99 latency", "p2p-q1", lat("p99"), "ms", False),
    ("p2p 8 pairs, QoS 1, window 100: received msg/s", "p2p-q1-w100", lambda j: j.get("received_per_s"), "/s", True),
    ("p2p 8 pairs, QoS 1, window 100: p99 latency", "p2p-q1-w100", lat("p99"), "ms", False),
    ("QoS 1 at 8,000 msg/s: p50 latency", "latency-q1", lat("p50"), "ms", False),
    ("QoS 1 at 8,000 msg/s: p99 latency", "latency-q1", lat("p99"), "ms", False),
    ("10k idle: memory per connection", "idle", lambda j: (j.get("broker") or {}).get("bytes_per_connection"), "B", False),
    ("10k idle: connect rate (conn/s), bench threads: " + os.environ.get("IDLE_THREADS", "2"), "idle", lambda j: (j.get("connect") or {}).get("rate_per_s"), "/s", True),
    ("10k idle: connect rate (conn/s), 1 bench thread", "idle1", lambda j: (j.get("connect") or {}).get("rate_per_s"), "/s", True),
]
notes = []
def note(case, broker, j):
    if j is None:
        return " ‡"
    flags = []
    if j.get("lost"):
        flags.append(f"{j['lost']:,} lost")
    if j.get("errors"):
        flags.append(f"{j['errors']} errors ({'; '.join(j.get('error_samples', [])[:1])})")
    if (j.get("connect") or {}).get("failed"):
        flags.append(f"{j['connect']['failed']} connections failed")
    if not flags:
        return ""
    text = f"{case} on {broker}: " + ", ".join(flags)
    if text not in notes:
        notes.append(text)
    return f" [{notes.index(text) + 1}]"

head = ["case"] + brokers + [f"{b} / mosquitto" for b in brokers[1:]]
print("| " + " | ".join(head) + " |")
print("|---|" + "---:|" * (len(head) - 1))
for label, case, get, unit, higher in rows:
    cells, values = [], []
    for b in brokers:
        runs = load_all(case, b)
        v = median_of(runs, get)
        values.append(v)
        marks = "".join(dict.fromkeys(note(case, b, j) for j in runs))
        cells.append(fmt(v, unit) + marks)
    base = values[0]
    for v in values[1:]:
        if higher is None:
            cells.append("—")  # an absolute figure: a ratio to a near-zero growth says nothing
        elif base and v is not None:
            cells.append(f"**{v / base:.2f}**")
        else:
            cells.append("n/a")
    print(f"| {label} | " + " | ".join(cells) + " |")
print()
print("Ratios are moat / mosquitto: higher is better for rates, lower for latency and memory.")
for i, n in enumerate(notes, 1):
    print(f"[{i}] {n}")

# Who was busy: the broker's and the load tool's CPU, in % of one core, per case.
print()
print("CPU during each case, % of one core (broker / bench tool):")
print()
print("| case | " + " | ".join(brokers) + " |")
print("|---|" + "---:|" * len(brokers))
for case in ["fanin-q0", "fanin-q1", "fanout-q0", "p2p-q1", "p2p-q1-w100", "latency-q1", "idle", "idle1"]:
    cells = []
    for b in brokers:
        runs = [j for j in load_all(case, b) if j]
        if not runs:
            cells.append("n/a")
            continue
        broker = median_of(runs, lambda j: (j.get("broker") or {}).get("cpu_percent"))
        tool = median_of(runs, lambda j: j.get("tool_cpu_percent"))
        cells.append(f"{broker:.0f} / {tool:.0f}" if broker is not None and tool is not None else "n/a")
    print(f"| {case} | " + " | ".join(cells) + " |")
EOF
