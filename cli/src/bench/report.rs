//! What the user sees: the progress line on stderr once a second, and the final summary on
//! stdout, as text or (with `--json`) one JSON object.

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::scenario::{Kind, Plan};
use super::stats::{QosCounts, Shared, Totals};
use super::usage::{BrokerUsage, CpuUse};

/// The progress line, redrawn in place on a terminal and one line a second otherwise.
#[derive(Debug)]
pub(crate) struct Progress {
    began: Instant,
    next: Instant,
    last: Instant,
    last_sent: u64,
    last_received: u64,
    connections: usize,
    kind: Kind,
    terminal: bool,
    drawn: bool,
}

impl Progress {
    /// A progress line for `plan`, starting at `now`.
    pub(crate) fn new(now: Instant, plan: &Plan) -> Self {
        Self {
            began: now,
            next: now + Duration::from_secs(1),
            last: now,
            last_sent: 0,
            last_received: 0,
            connections: plan.publishers.len() + plan.subscribers.len() + plan.idle.len(),
            kind: plan.kind,
            terminal: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    /// Publishing (or the timed part of the run) started at `at`.
    pub(crate) fn started(&mut self, at: Instant) {
        self.began = at;
    }

    /// Prints the line if a second has passed since the last one.
    pub(crate) fn tick(&mut self, now: Instant, shared: &Shared) {
        if now < self.next {
            return;
        }
        self.next = (self.next + Duration::from_secs(1)).max(now);
        let line = self.line(now, &shared.lock());
        shared.roll();
        self.draw(&line);
    }

    /// Ends the line (on a terminal, moves below it).
    pub(crate) fn finish(&mut self, _now: Instant, _shared: &Shared) {
        if self.terminal && self.drawn {
            eprintln!();
        }
    }

    fn line(&mut self, now: Instant, t: &Totals) -> String {
        let secs = now.saturating_duration_since(self.last).as_secs_f64().max(1e-9);
        let sent_rate = (t.sent - self.last_sent) as f64 / secs;
        let received_rate = (t.received - self.last_received) as f64 / secs;
        self.last = now;
        self.last_sent = t.sent;
        self.last_received = t.received;
        let elapsed = now.saturating_duration_since(self.began).as_secs();
        let mut line = format!("{} {elapsed:>4}s | conn {}/{}", self.kind.name(), t.connected, self.connections);
        if t.connect_failed > 0 {
            line += &format!(" ({} failed)", t.connect_failed);
        }
        if t.sent > 0 || self.last_sent > 0 {
            line += &format!(" | sent {}/s", si(sent_rate));
        }
        if t.received > 0 {
            line += &format!(" | recv {}/s", si(received_rate));
        }
        if !t.interval_latency.is_empty() {
            let h = &t.interval_latency;
            line += &format!(" | p50 {} p99 {}", ms(h.value_at_quantile(0.5)), ms(h.value_at_quantile(0.99)));
        }
        line + &format!(" | errors {}", t.errors)
    }

    fn draw(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        // A closed stderr is no reason to stop the run.
        let _ = if self.terminal { write!(err, "\r{line}\x1b[K") } else { writeln!(err, "{line}") };
        let _ = err.flush();
        self.drawn = true;
    }
}

/// A rate with a k or M suffix.
fn si(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2}M", rate / 1e6)
    } else if rate >= 1e4 {
        format!("{:.1}k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

/// Nanoseconds as milliseconds for people.
fn ms(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms < 10.0 { format!("{ms:.2} ms") } else { format!("{ms:.1} ms") }
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Debug, Clone, Copy)]
struct Percentiles {
    count: u64,
    min: f64,
    mean: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Option<Self> {
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1e3;
        Some(Self {
            count: h.len(),
            min: us(h.min()),
            mean: h.mean() / 1e3,
            p50: us(h.value_at_quantile(0.5)),
            p90: us(h.value_at_quantile(0.9)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        })
    }

    fn json(&self) -> Value {
        let r = |v: f64| (v * 10.0).round() / 10.0;
        json!({
            "count": self.count, "min": r(self.min), "mean": r(self.mean), "p50": r(self.p50),
            "p90": r(self.p90), "p99": r(self.p99), "p999": r(self.p999), "max": r(self.max),
        })
    }
}

/// The summary of a finished run.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The summary as JSON.
    pub(crate) json: Value,
    /// Failures during the run (connections refused or lost, protocol errors).
    pub(crate) errors: u64,
    /// Connections that came up.
    pub(crate) connected: u64,
}

impl Outcome {
    /// Gathers the summary.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        plan: &Plan,
        t: &Totals,
        run_start: Instant,
        connect_secs: Option<f64>,
        expected: Option<u64>,
        per_qos: [QosCounts; 3],
        tool_cpu: Option<CpuUse>,
        broker: Option<BrokerUsage>,
        stopped: bool,
    ) -> Self {
        let secs_since =
            |at: Option<Instant>, from: Instant| at.map(|a| a.saturating_duration_since(from).as_secs_f64());
        let publish_secs = secs_since(t.last_send, run_start);
        let receive_from = if plan.kind == Kind::Sub { t.first_receive.unwrap_or(run_start) } else { run_start };
        let receive_secs = secs_since(t.last_receive, receive_from);
        let rate = |n: u64, secs: Option<f64>| secs.filter(|s| *s > 0.0).map(|s| (n as f64 / s).round());
        let connections = plan.publishers.len() + plan.subscribers.len() + plan.idle.len();
        let total: QosCounts = per_qos.iter().fold(QosCounts::default(), |mut all, q| {
            all.add(q);
            all
        });
        let mut qos_json = serde_json::Map::new();
        for (q, counts) in per_qos.iter().enumerate() {
            if *counts != QosCounts::default() {
                qos_json.insert(
                    q.to_string(),
                    json!({"received": counts.received, "lost": counts.lost, "duplicates": counts.duplicates, "reordered": counts.reordered}),
                );
            }
        }
        let connect_latency = Percentiles::of(&t.connect_latency);
        let mut url = plan.url.clone();
        url.password = None;
        let broker_json = broker.as_ref().map(|b| {
            let delta = b.rss_loaded_kib.zip(b.rss_before_kib).map(|(after, before)| after as i64 - before as i64);
            // Only idle connections make a memory figure per connection; messages queued in
            // the broker would count too in the other scenarios.
            let per_connection = delta
                .filter(|_| t.connected > 0 && plan.kind == Kind::Conn)
                .map(|d| (d * 1024) as f64 / t.connected as f64);
            json!({
                "pid": b.pid,
                "cpu_seconds": b.cpu.map(|c| round3(c.cpu_secs)),
                "cpu_percent": b.cpu.map(|c| c.percent().round()),
                "rss_kib_before": b.rss_before_kib,
                "rss_kib_loaded": b.rss_loaded_kib,
                "rss_kib_delta": delta,
                "bytes_per_connection": per_connection.map(f64::round),
            })
        });
        let json = json!({
            "scenario": plan.kind.name(),
            "url": url.to_string(),
            "runtime": format!("{:?}", plan.runtime).to_lowercase(),
            "threads": plan.threads,
            "publishers": plan.publishers.len(),
            "subscribers": plan.subscribers.len(),
            "connections": connections,
            "qos": plan.qos as u8,
            "payload_size": plan.size,
            "rate_per_publisher": plan.rate,
            "limit": plan.limit.or(plan.sub_limit),
            "duration_s": plan.duration.map(|d| d.as_secs_f64()),
            "connect": {
                "connected": t.connected,
                "failed": t.connect_failed,
                "seconds": connect_secs.map(round3),
                "rate_per_s": rate(t.connected, connect_secs),
                "latency_ms": connect_latency.map(|p| json!({"p50": round3(p.p50 / 1e3), "p99": round3(p.p99 / 1e3), "max": round3(p.max / 1e3)})),
            },
            "sent": t.sent,
            "acked": t.acked,
            "publish_seconds": publish_secs.map(round3),
            "sent_per_s": rate(t.sent, publish_secs),
            "received": t.received,
            "receive_seconds": receive_secs.map(round3),
            "received_per_s": rate(t.received, receive_secs),
            "expected": expected,
            "lost": total.lost,
            "duplicates": total.duplicates,
            "reordered": total.reordered,
            "per_qos": qos_json,
            "latency_us": Percentiles::of(&t.latency()).map(|p| p.json()),
            "errors": t.errors,
            "error_samples": t.error_samples,
            "tool_cpu_seconds": tool_cpu.map(|c| round3(c.cpu_secs)),
            "tool_cpu_percent": tool_cpu.map(|c| c.percent().round()),
            "broker": broker_json,
            "stopped_early": stopped,
        });
        Self { json, errors: t.errors, connected: t.connected }
    }

    /// The summary for people.
    pub(crate) fn text(&self) -> String {
        let j = &self.json;
        let n = |key: &str| j[key].as_u64().unwrap_or(0);
        let f = |v: &Value| v.as_f64();
        let mut out = String::new();
        let mut line = |label: &str, text: String| out.push_str(&format!("{label:<12}{text}\n"));
        let count = |key: &str, one: &str| {
            let k = n(key);
            format!("{k} {one}{}", if k == 1 { "" } else { "s" })
        };
        let (pubs, subs) = (count("publishers", "publisher"), count("subscribers", "subscriber"));
        let shape = match j["scenario"].as_str().unwrap_or("") {
            "conn" => count("connections", "connection"),
            "sub" => format!("{subs}, QoS {}", n("qos")),
            "pub" => format!("{pubs}, QoS {}, {}-byte payloads", n("qos"), n("payload_size")),
            _ => format!("{pubs} -> {subs}, QoS {}, {}-byte payloads", n("qos"), n("payload_size")),
        };
        let rate = f(&j["rate_per_publisher"]).map_or(String::new(), |r| format!(", {r} msg/s per publisher"));
        line("scenario", format!("{} ({shape}{rate})", j["scenario"].as_str().unwrap_or("?")));
        line(
            "broker",
            format!(
                "{} (bench on {}, {})",
                j["url"].as_str().unwrap_or("?"),
                j["runtime"].as_str().unwrap_or("?"),
                count("threads", "thread")
            ),
        );
        let c = &j["connect"];
        let mut conn = format!("{} of {} up", c["connected"].as_u64().unwrap_or(0), n("connections"));
        if let (Some(secs), Some(rate)) = (f(&c["seconds"]), f(&c["rate_per_s"])) {
            conn += &format!(" in {secs:.3} s ({rate:.0}/s)");
        }
        if let Some(l) = c["latency_ms"].as_object() {
            conn += &format!(
                ", CONNACK p50 {:.2} ms, p99 {:.2} ms",
                l["p50"].as_f64().unwrap_or(0.0),
                l["p99"].as_f64().unwrap_or(0.0)
            );
        }
        if c["failed"].as_u64().unwrap_or(0) > 0 {
            conn += &format!(", {} failed", c["failed"]);
        }
        line("connections", conn);
        if n("publishers") > 0 {
            let mut text = format!("{} messages", thousands(n("sent")));
            if let (Some(secs), Some(rate)) = (f(&j["publish_seconds"]), f(&j["sent_per_s"])) {
                text += &format!(" in {secs:.3} s = {} msg/s", thousands(rate as u64));
            }
            if n("qos") > 0 {
                text += &format!(", {} acknowledged", thousands(n("acked")));
            }
            line("published", text);
        }
        if n("subscribers") > 0 {
            let mut text = format!("{} messages", thousands(n("received")));
            if let (Some(secs), Some(rate)) = (f(&j["receive_seconds"]), f(&j["received_per_s"])) {
                text += &format!(" in {secs:.3} s = {} msg/s", thousands(rate as u64));
            }
            if let Some(expected) = j["expected"].as_u64() {
                text += &format!(" (expected {})", thousands(expected));
            }
            line("received", text);
            for (q, counts) in j["per_qos"].as_object().into_iter().flatten() {
                let c = |k: &str| thousands(counts[k].as_u64().unwrap_or(0));
                line(
                    &format!("  QoS {q}"),
                    format!(
                        "received {}, lost {}, duplicates {}, reordered {}",
                        c("received"),
                        c("lost"),
                        c("duplicates"),
                        c("reordered")
                    ),
                );
            }
            if let Some(l) = j["latency_us"].as_object() {
                let v = |k: &str| ms((l[k].as_f64().unwrap_or(0.0) * 1e3) as u64);
                line(
                    "latency",
                    format!(
                        "p50 {}, p90 {}, p99 {}, p99.9 {}, max {}",
                        v("p50"),
                        v("p90"),
                        v("p99"),
                        v("p999"),
                        v("max")
                    ),
                );
            }
        }
        line("errors", n("errors").to_string());
        for sample in j["error_samples"].as_array().into_iter().flatten() {
            line("", sample.as_str().unwrap_or("").to_owned());
        }
        if let (Some(cpu), Some(pct)) = (f(&j["tool_cpu_seconds"]), f(&j["tool_cpu_percent"])) {
            line("bench cpu", format!("{cpu:.2} s ({pct:.0} % of one core)"));
        }
        if let Some(b) = j["broker"].as_object() {
            let mut text = format!("pid {}", b["pid"]);
            if let (Some(cpu), Some(pct)) = (b["cpu_seconds"].as_f64(), b["cpu_percent"].as_f64()) {
                text += &format!(", cpu {cpu:.2} s ({pct:.0} % of one core)");
            }
            if let (Some(before), Some(loaded)) = (b["rss_kib_before"].as_u64(), b["rss_kib_loaded"].as_u64()) {
                text += &format!(", RSS {} -> {} KiB", thousands(before), thousands(loaded));
            }
            if let Some(per) = b["bytes_per_connection"].as_f64() {
                text += &format!(" = {per:.0} bytes per connection");
            }
            if b["cpu_seconds"].is_null() && b["rss_kib_loaded"].is_null() {
                text += ": no figures (no such process?)";
            }
            line("broker", text);
        }
        if j["stopped_early"].as_bool() == Some(true) {
            line("stopped", "early, by a signal".to_owned());
        }
        out
    }
}

/// `v` rounded to three decimals.
fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// `n` with thousands separators.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{si, thousands};

    #[test]
    fn numbers_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(si(950.0), "950");
        assert_eq!(si(41_234.0), "41.2k");
        assert_eq!(si(1_500_000.0), "1.50M");
    }
}
