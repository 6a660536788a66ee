#!/usr/bin/env bash
# QoS 1 throughput with persistence: moat with it off, `sync: interval` and `sync: always`,
# side by side with mosquitto (persistence on), in one run.
#
# Scenario: fan-in, P publishers (QoS 1, each with at most W unacknowledged PUBLISH, as real
# clients keep) to one subscriber with a persistent session (clean session 0), so every message
# is stored on its way. Both brokers get max inflight 100 and a queue of 1,000,000 messages, so
# nothing is dropped and nobody is disconnected as a slow consumer.
#
#   bash bench/persistence.sh [PUBLISHERS=4] [MESSAGES_EACH=100000] [WINDOW=100] [ROUNDS=2]
#
# Needs mosquitto (apt-get install mosquitto) and builds the release `moat` and the fan-in probe.
set -euo pipefail
cd "$(dirname "$0")/.."
P=${1:-4}; N=${2:-100000}; W=${3:-100}; ROUNDS=${4:-2}
MOAT_PORT=${MOAT_PORT:-28990}; MOSQ_PORT=${MOSQ_PORT:-28991}
cargo build --release -q -p moat-mqtt-cli
cargo build --release -q -p moat-mqtt-tests --example fanin
MOAT=target/release/moat; FANIN=target/release/examples/fanin
work=$(mktemp -d); pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.05; done; echo "nothing listens on $1" >&2; exit 1; }
rate() { sed -n 's/.* = \([0-9]*\) msg\/s.*/\1/p'; }

moat_case() { # off | interval | always
  local store="" pid
  [ "$1" = off ] || store=$(printf 'persistence:\n  path: %s\n  sync: %s\n  interval: 1\n' "$work/store-$1-$round" "$1")
  printf 'listeners:\n  default:\n    bind: 127.0.0.1:%s\nsys-interval: 0\nmax-inflight: 100\nmax-queued-messages: 1000000\n%s\n' \
    "$MOAT_PORT" "$store" > "$work/moat.yaml"
  "$MOAT" -q mqtt broker -c "$work/moat.yaml" 2>"$work/moat-$1.log" & pid=$!; pids+=("$pid")
  wait_port "$MOAT_PORT"
  "$FANIN" "127.0.0.1:$MOAT_PORT" "$P" "$N" 1 persistent "$W" | rate
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

mosquitto_case() {
  local pid
  mkdir -p "$work/mq-$round"
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nmax_inflight_messages 100\nmax_queued_messages 1000000\n' \
    "$MOSQ_PORT" "$work/mq-$round" > "$work/mosquitto.conf"
  mosquitto -c "$work/mosquitto.conf" 2>/dev/null & pid=$!; pids+=("$pid")
  wait_port "$MOSQ_PORT"
  "$FANIN" "127.0.0.1:$MOSQ_PORT" "$P" "$N" 1 persistent "$W" | rate
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "| round | mosquitto (persistence on) | moat off | moat interval | moat always | always / off | always / mosquitto |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for round in $(seq "$ROUNDS"); do
  mq=$(mosquitto_case); off=$(moat_case off); iv=$(moat_case interval); al=$(moat_case always)
  awk -v r="$round" -v mq="$mq" -v off="$off" -v iv="$iv" -v al="$al" 'BEGIN {
    printf "| %d | %d | %d | %d | %d | %.2fx slower | %.1fx |\n", r, mq, off, iv, al, off / al, al / mq }'
done
