//! Human-readable rendering of a run's JSON report.

use std::fmt::Write;

use serde_json::Value;

fn f(v: &Value, ptr: &str) -> f64 {
    v.pointer(ptr).and_then(Value::as_f64).unwrap_or(0.0)
}

fn u(v: &Value, ptr: &str) -> u64 {
    v.pointer(ptr).and_then(Value::as_u64).unwrap_or(0)
}

/// "cpu0 95/3 cpu1 60/0" (busy % / steal % per CPU over the measured window).
fn cpus(r: &Value) -> String {
    let Some(m) = r.get("machine_cpus").and_then(Value::as_object) else {
        return "–".into();
    };
    let mut parts: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{k} {:.0}/{:.0}", f(v, "/busy_pct"), f(v, "/steal_pct")))
        .collect();
    parts.sort();
    if parts.is_empty() {
        "–".into()
    } else {
        parts.join(", ")
    }
}

fn mib(b: f64) -> String {
    format!("{:.1} MiB", b / (1024.0 * 1024.0))
}

fn errors(out: &mut String, r: &Value) {
    if let Some(list) = r.get("error_kinds").and_then(Value::as_array) {
        for e in list.iter().take(10) {
            let _ = writeln!(
                out,
                "  error x{}: {}\n      e.g. {}",
                u(e, "/count"),
                e.get("error").and_then(Value::as_str).unwrap_or(""),
                e.get("sample").and_then(Value::as_str).unwrap_or("")
            );
        }
    }
}

pub fn cycles(r: &Value) -> String {
    let mut out = String::new();
    let label = r.get("label").and_then(Value::as_str).unwrap_or("");
    let _ = writeln!(
        out,
        "cycles {} {} clients={} url={} window={:.1}s (warm-up {:.1}s)",
        label,
        r["transport"].as_str().unwrap_or(""),
        u(r, "/clients"),
        r["url"].as_str().unwrap_or(""),
        f(r, "/duration_s"),
        f(r, "/warmup_s"),
    );
    let _ = writeln!(
        out,
        "  cycles: {}   cycles/s: {:.1}   errors: {}   (warm-up: {} cycles, {} errors)",
        u(r, "/cycles"),
        f(r, "/cycles_per_s"),
        u(r, "/errors"),
        u(r, "/warmup_cycles"),
        u(r, "/warmup_errors"),
    );
    if r["transport"] == "http" {
        let _ = writeln!(
            out,
            "  long polls: {} (of which keepalive answers: {})",
            u(r, "/long_polls"),
            u(r, "/long_poll_keepalives")
        );
    }
    if let Some(m) = r.get("unsolicited_messages").and_then(Value::as_object) {
        if !m.is_empty() {
            let mut parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}: {}", u(v, "/count")))
                .collect();
            parts.sort();
            let _ = writeln!(
                out,
                "  messages answering no request (whole run): {}",
                parts.join(", ")
            );
        }
    }
    let _ = writeln!(
        out,
        "  {:<9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "latency", "count", "p50 ms", "p90 ms", "p99 ms", "mean ms", "max ms"
    );
    for k in [
        "create", "attach", "message", "event", "detach", "destroy", "overall", "cycle",
    ] {
        let p = format!("/latency_ms/{k}");
        let _ = writeln!(
            out,
            "  {:<9} {:>9} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            k,
            u(r, &format!("{p}/count")),
            f(r, &format!("{p}/p50_ms")),
            f(r, &format!("{p}/p90_ms")),
            f(r, &format!("{p}/p99_ms")),
            f(r, &format!("{p}/mean_ms")),
            f(r, &format!("{p}/max_ms")),
        );
    }
    let s = &r["server"];
    if s.get("cpu_s").is_some() {
        let _ = writeln!(
            out,
            "  server pid {}: CPU {:.2} s ({:.0}% of a core; threads waited {:.2} s for a CPU), \
             {:.4} CPU-s per 1000 cycles; RSS {}, {} threads, {} fds",
            u(s, "/pid"),
            f(s, "/cpu_s"),
            f(s, "/cpu_utilisation") * 100.0,
            f(s, "/runqueue_wait_s"),
            f(s, "/cpu_s_per_1000_cycles"),
            mib(f(s, "/rss_bytes")),
            u(s, "/threads"),
            u(s, "/fds"),
        );
    } else if let Some(e) = s.get("error").and_then(Value::as_str) {
        let _ = writeln!(out, "  server: {e}");
    }
    let _ = writeln!(
        out,
        "  load tool CPU: {:.2} s; machine CPUs busy/steal %: {}",
        f(r, "/load_tool_cpu_s"),
        cpus(r)
    );
    errors(&mut out, r);
    out
}

pub fn idle(r: &Value) -> String {
    let mut out = String::new();
    let label = r.get("label").and_then(Value::as_str).unwrap_or("");
    let _ = writeln!(
        out,
        "idle {} {} url={}: {} of {} sessions opened in {:.1} s ({} parallel), {} destroyed, \
         {} keepalives, {} errors",
        label,
        r["transport"].as_str().unwrap_or(""),
        r["url"].as_str().unwrap_or(""),
        u(r, "/sessions_opened"),
        u(r, "/sessions_requested"),
        f(r, "/open_time_s"),
        u(r, "/parallel"),
        u(r, "/sessions_destroyed"),
        u(r, "/keepalives_sent"),
        u(r, "/errors"),
    );
    let s = &r["server"];
    for (name, key) in [
        ("before", "before"),
        ("open", "after_open"),
        ("destroyed", "after_destroy"),
    ] {
        if s.get(key).is_some_and(|v| !v.is_null()) {
            let _ = writeln!(
                out,
                "  server {:<9} RSS {:>10}  threads {:>5}  fds {:>6}",
                name,
                mib(f(s, &format!("/{key}/rss_bytes"))),
                u(s, &format!("/{key}/threads")),
                u(s, &format!("/{key}/fds")),
            );
        }
    }
    let _ = writeln!(
        out,
        "  RSS delta {} = {:.0} bytes per idle session = {} per 10,000 sessions",
        mib(f(s, "/rss_delta_bytes")),
        f(s, "/rss_bytes_per_session"),
        mib(f(s, "/rss_bytes_per_10k_sessions")),
    );
    errors(&mut out, r);
    out
}

fn label(r: &Value) -> &str {
    r.get("label").and_then(Value::as_str).unwrap_or("?")
}

/// The run every other is compared against: Janus with `event_loops = 2` (label `janus-el2`,
/// its better configuration) when the file has it, else Janus with its defaults (`janus`).
fn baseline(rows: &[&Value]) -> &'static str {
    if rows.iter().any(|r| label(r) == "janus-el2") {
        "janus-el2"
    } else {
        "janus"
    }
}

fn opt3(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), |x| format!("{x:.3}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "–".to_string(),
    }
}

fn cpu_per_k(r: &Value) -> Option<f64> {
    r.pointer("/server/cpu_s_per_1000_cycles")
        .and_then(Value::as_f64)
}

fn broker_per_k(r: &Value) -> Option<f64> {
    r.pointer("/broker/cpu_s_per_1000_cycles")
        .and_then(Value::as_f64)
}

fn p99(r: &Value) -> Option<f64> {
    r.pointer("/latency_ms/overall/p99_ms")
        .and_then(Value::as_f64)
        .filter(|_| u(r, "/latency_ms/overall/count") > 0)
}

/// One transport: every run, then each server against the `janus` run with the same N.
fn cycles_section(out: &mut String, transport: &str, rows: &[&Value]) {
    let with_broker = rows.iter().any(|r| broker_per_k(r).is_some());
    let _ = writeln!(out, "#### {transport}\n");
    let _ = writeln!(
        out,
        "| server | N | cycles/s | server CPU-s per 1,000 cycles | server CPU (% of a core) \
         | p50 ms | p99 ms | event p99 ms | cycle p50 ms | errors |{} load-tool CPU (% of a core) \
         | machine CPUs busy/steal % |",
        if with_broker {
            " broker CPU-s per 1,000 cycles |"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|{}---:|---|",
        if with_broker { "---:|" } else { "" }
    );
    for r in rows {
        let secs = f(r, "/duration_s").max(1e-9);
        let broker = if with_broker {
            format!(" {} |", opt3(broker_per_k(r)))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {} |{} {:.0} | {} |",
            label(r),
            u(r, "/clients"),
            f(r, "/cycles_per_s"),
            opt3(cpu_per_k(r)),
            f(r, "/server/cpu_utilisation") * 100.0,
            f(r, "/latency_ms/overall/p50_ms"),
            f(r, "/latency_ms/overall/p99_ms"),
            f(r, "/latency_ms/event/p99_ms"),
            f(r, "/latency_ms/cycle/p50_ms"),
            u(r, "/errors"),
            broker,
            f(r, "/load_tool_cpu_s") / secs * 100.0,
            cpus(r),
        );
    }
    let bl = baseline(rows);
    let base: Vec<&&Value> = rows.iter().filter(|r| label(r) == bl).collect();
    let others: Vec<&&Value> = rows.iter().filter(|r| label(r) != bl).collect();
    if !base.is_empty() && !others.is_empty() {
        let _ = writeln!(
            out,
            "\n| N | server | CPU-s per 1,000 cycles | {bl} CPU-s per 1,000 cycles \
             | **ratio CPU per cycle (server / {bl})** | p99 ms | {bl} p99 ms \
             | **ratio p99 (server / {bl})** | cycles/s | {bl} cycles/s |"
        );
        let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for o in others {
            let Some(b) = base.iter().find(|b| b["clients"] == o["clients"]) else {
                continue;
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | **{}** | {} | {} | **{}** | {:.1} | {:.1} |",
                u(o, "/clients"),
                label(o),
                opt3(cpu_per_k(o)),
                opt3(cpu_per_k(b)),
                ratio(cpu_per_k(o), cpu_per_k(b)),
                opt3(p99(o)),
                opt3(p99(b)),
                ratio(p99(o), p99(b)),
                f(o, "/cycles_per_s"),
                f(b, "/cycles_per_s"),
            );
        }
    }
    out.push('\n');
}

/// Markdown tables from a file of JSON reports (one per line, as printed with `--json`).
/// Rows labelled `janus-el2` (or, without those, `janus`) are the baseline every other label is
/// compared against.
pub fn markdown(text: &str) -> Result<String, String> {
    let mut runs: Vec<Value> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| format!("line {}: not a JSON report: {e}", i + 1))?;
        runs.push(v);
    }
    let cyc: Vec<&Value> = runs.iter().filter(|r| r["mode"] == "cycles").collect();
    let idl: Vec<&Value> = runs.iter().filter(|r| r["mode"] == "idle").collect();
    let med: Vec<&Value> = runs
        .iter()
        .filter(|r| r["mode"] == "media" || r["mode"] == "media-max")
        .collect();
    let mut out = String::new();

    if !med.is_empty() {
        let echo_only = med
            .iter()
            .all(|r| crate::media_report::plugin_of(r) == "echotest");
        let _ = writeln!(
            out,
            "### Media: WebRTC peers {}(Opus + VP8 RTP)\n",
            if echo_only { "on the EchoTest " } else { "" }
        );
        out.push_str(&crate::media_report::markdown(&med));
        out.push('\n');
    }

    if !cyc.is_empty() {
        let _ = writeln!(
            out,
            "### Cycles: create → attach echotest → message (ack + event) → detach → destroy\n"
        );
        // One section per transport, in the order they first appear.
        let mut transports: Vec<&str> = Vec::new();
        for r in &cyc {
            let t = r["transport"].as_str().unwrap_or("");
            if !transports.contains(&t) {
                transports.push(t);
            }
        }
        for t in transports {
            let rows: Vec<&Value> = cyc
                .iter()
                .copied()
                .filter(|r| r["transport"].as_str().unwrap_or("") == t)
                .collect();
            cycles_section(&mut out, t, &rows);
        }
    }

    if !idl.is_empty() {
        let _ = writeln!(out, "### Idle sessions (one echotest handle each)\n");
        let _ = writeln!(
            out,
            "| server | transport | sessions | RSS before | RSS with sessions | RSS per 10,000 sessions \
             | bytes per session | threads | fds | open time s | errors | RSS after destroy |"
        );
        let _ = writeln!(
            out,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for r in &idl {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {:.1} | {} | {} |",
                label(r),
                r["transport"].as_str().unwrap_or(""),
                u(r, "/sessions_opened"),
                mib(f(r, "/server/before/rss_bytes")),
                mib(f(r, "/server/after_open/rss_bytes")),
                mib(f(r, "/server/rss_bytes_per_10k_sessions")),
                f(r, "/server/rss_bytes_per_session"),
                u(r, "/server/after_open/threads"),
                u(r, "/server/after_open/fds"),
                f(r, "/open_time_s"),
                u(r, "/errors"),
                mib(f(r, "/server/after_destroy/rss_bytes")),
            );
        }
        let bl = baseline(&idl);
        let base: Vec<&&Value> = idl.iter().filter(|r| label(r) == bl).collect();
        let others: Vec<&&Value> = idl.iter().filter(|r| label(r) != bl).collect();
        if !base.is_empty() && !others.is_empty() {
            let _ = writeln!(
                out,
                "\n| transport | server | RSS per 10,000 sessions | Janus RSS per 10,000 sessions \
                 | **ratio (server / Janus)** |"
            );
            let _ = writeln!(out, "|---|---|---:|---:|---:|");
            for o in others {
                let Some(b) = base.iter().find(|b| b["transport"] == o["transport"]) else {
                    continue;
                };
                let per = |r: &Value| {
                    r.pointer("/server/rss_bytes_per_10k_sessions")
                        .and_then(Value::as_f64)
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | **{}** |",
                    o["transport"].as_str().unwrap_or(""),
                    label(o),
                    mib(per(o).unwrap_or(0.0)),
                    mib(per(b).unwrap_or(0.0)),
                    ratio(per(o), per(b)),
                );
            }
        }
        out.push('\n');
    }

    // Errors, if any, so nobody reads numbers from a broken run without noticing.
    let failed: Vec<&Value> = runs.iter().filter(|r| u(r, "/errors") > 0).collect();
    if !failed.is_empty() {
        let _ = writeln!(out, "### Errors\n");
        for r in failed {
            let _ = writeln!(
                out,
                "* {} {} {} N={}: {} errors",
                label(r),
                r["mode"].as_str().unwrap_or(""),
                r["transport"].as_str().unwrap_or(""),
                u(r, "/clients").max(u(r, "/sessions_requested")),
                u(r, "/errors")
            );
            if let Some(list) = r.get("error_kinds").and_then(Value::as_array) {
                for e in list.iter().take(5) {
                    let _ = writeln!(
                        out,
                        "  * {} × {} — e.g. `{}`",
                        u(e, "/count"),
                        e.get("error").and_then(Value::as_str).unwrap_or(""),
                        e.get("sample")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .replace('`', "'")
                    );
                }
            }
        }
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_compares_against_janus() {
        let lines = [
            r#"{"mode":"cycles","label":"janus","transport":"ws","clients":1,"duration_s":10,"cycles_per_s":800,"errors":0,"server":{"cpu_s_per_1000_cycles":0.8,"cpu_utilisation":0.6},"latency_ms":{},"load_tool_cpu_s":3}"#,
            r#"{"mode":"cycles","label":"janus","transport":"mqtt","clients":16,"duration_s":10,"cycles_per_s":500,"errors":0,"server":{"cpu_s_per_1000_cycles":1.0},"broker":{"cpu_s_per_1000_cycles":0.5},"latency_ms":{"overall":{"count":10,"p99_ms":4.0}},"load_tool_cpu_s":3}"#,
            r#"{"mode":"cycles","label":"jano","transport":"mqtt","clients":16,"duration_s":10,"cycles_per_s":900,"errors":0,"server":{"cpu_s_per_1000_cycles":0.3},"broker":{"cpu_s_per_1000_cycles":0.6},"latency_ms":{"overall":{"count":10,"p99_ms":2.0}},"load_tool_cpu_s":3}"#,
            r#"{"mode":"cycles","label":"jano","transport":"ws","clients":1,"duration_s":10,"cycles_per_s":2000,"errors":0,"server":{"cpu_s_per_1000_cycles":0.2,"cpu_utilisation":0.4},"latency_ms":{},"load_tool_cpu_s":5}"#,
            r#"{"mode":"idle","label":"janus","transport":"ws","sessions_opened":10,"errors":0,"server":{"rss_bytes_per_10k_sessions":80000000}}"#,
            r#"{"mode":"idle","label":"jano","transport":"ws","sessions_opened":10,"errors":1,"error_kinds":[{"error":"create: timeout","count":1,"sample":"x"}],"server":{"rss_bytes_per_10k_sessions":20000000}}"#,
        ];
        let md = markdown(&lines.join("\n")).unwrap();
        assert!(md.contains("#### ws\n"), "{md}");
        assert!(
            md.contains("| 1 | jano | 0.200 | 0.800 | **0.25** | – | – | **–** | 2000.0 | 800.0 |"),
            "{md}"
        );
        assert!(md.contains("**0.25** |\n"), "{md}");
        assert!(md.contains("create: timeout"), "{md}");
        assert!(md.contains("#### mqtt\n"), "{md}");
        assert!(
            md.contains("| 16 | jano | 0.300 | 1.000 | **0.30** | 2.000 | 4.000 | **0.50** | 900.0 | 500.0 |"),
            "{md}"
        );
        assert!(md.contains("broker CPU-s per 1,000 cycles"), "{md}");
        assert!(markdown("nope").is_err());
    }
}
