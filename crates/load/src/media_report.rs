//! Rendering of `media` and `media-max` reports: the human summary printed after a run, and
//! the side-by-side markdown tables `report` puts in its media section (one per plugin and
//! group size, Janus as the baseline). Reads only the JSON, so old reports render too.

use std::fmt::Write as _;

use serde_json::Value;

fn f(v: &Value, p: &str) -> Option<f64> {
    v.pointer(p).and_then(Value::as_f64)
}

fn num(x: Option<f64>, digits: usize) -> String {
    x.map_or("–".into(), |x| format!("{x:.digits$}"))
}

/// The plugin a report measured (older reports have only `fanout`).
pub fn plugin_of(r: &Value) -> &str {
    match r["plugin"].as_str() {
        Some(p) => p,
        None if r["fanout"] == true => "fanout",
        None => "echotest",
    }
}

/// Human summary of one report (`media` or `media-max`).
pub fn human(r: &Value) -> String {
    let mut out = String::new();
    if r["mode"] == "media-max" {
        let _ = writeln!(out, "find-max (loss < {} %):", r["max_loss_pct"]);
        for s in r["steps"].as_array().into_iter().flatten() {
            out.push_str(&human(s));
        }
        let _ = writeln!(
            out,
            "max peers kept at < {} % loss: {} (stopped by: {})",
            r["max_loss_pct"],
            r["max_peers_ok"]
                .as_u64()
                .map_or("none".into(), |n| n.to_string()),
            r["stopped_by"].as_str().unwrap_or("")
        );
        return out;
    }
    let plugin = plugin_of(r);
    let fanout = plugin != "echotest";
    let (echoed, rtt) = if plugin == "audiobridge" {
        ("mixed", "mix arrival jitter")
    } else if fanout {
        ("forwarded", "publisher→subscriber latency")
    } else {
        ("echoed", "echo RTT")
    };
    let groups = match (plugin, r["rooms"].as_u64(), r["room_size"].as_u64()) {
        ("videoroom", Some(k), Some(size)) => format!(
            "; VideoRoom: {k} room(s) of up to {size} peers, 1 publisher + subscribers each"
        ),
        ("videoroom", _, None) => "; VideoRoom: 1 publisher, the rest subscribers".into(),
        ("fanout", Some(k), Some(size)) => {
            format!("; fan-out: {k} group(s) of up to {size} peers, 1 publisher + subscribers each")
        }
        ("fanout", _, _) => "; 1 publisher, the rest subscribers".into(),
        ("audiobridge", Some(k), Some(size)) => {
            format!("; AudioBridge: {k} room(s) of up to {size} peers, one talker each")
        }
        ("audiobridge", _, _) => "; AudioBridge: one room, one talker".into(),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "{} peers ({} connected{groups}) on {} — {} s measured after {} s warm-up",
        r["peers"], r["peers_connected"], r["url"], r["duration_s"], r["warmup_s"]
    );
    let _ = writeln!(
        out,
        "  expected {} ({} pps), {echoed} {} ({} pps), loss {} % (audio {} %, video {} %; worst peer {} %)",
        r["sent"],
        num(f(r, "/pps_sent"), 0),
        r["echoed"],
        num(f(r, "/pps_echoed"), 0),
        num(f(r, "/loss_pct"), 3),
        num(f(r, "/audio/loss_pct"), 3),
        num(f(r, "/video/loss_pct"), 3),
        num(f(r, "/worst_peer_loss_pct"), 3),
    );
    let _ = writeln!(
        out,
        "  server CPU {} s ({} % of a core), {} CPU-s per 1,000 {echoed}; load tool {} % of a core",
        num(f(r, "/server/cpu_s"), 2),
        num(f(r, "/server/cpu_utilisation").map(|x| x * 100.0), 0),
        num(f(r, "/server/cpu_s_per_1000_echoed"), 4),
        num(f(r, "/load_tool_cpu_utilisation").map(|x| x * 100.0), 0),
    );
    let per = if fanout { "subscriber" } else { "peer" };
    let _ = writeln!(
        out,
        "  server RSS {} MB ({} KB more per {per}), {} threads ({} more per {per}); VP8 keyframes sent {}, PLI/FIR received {}",
        num(f(r, "/server/rss_bytes").map(|b| b / 1048576.0), 1),
        num(f(r, &format!("/server/rss_kb_per_{per}")), 0),
        r.pointer("/server/threads").unwrap_or(&Value::Null),
        num(f(r, &format!("/server/threads_per_{per}")), 2),
        r["keyframes_sent"],
        r["keyframe_requests"],
    );
    let _ = writeln!(
        out,
        "  offer→webrtcup p50 {} ms, p99 {} ms; {rtt} p50 {} ms, p90 {} ms, p99 {} ms; errors {}",
        num(f(r, "/webrtcup_ms/p50_ms"), 1),
        num(f(r, "/webrtcup_ms/p99_ms"), 1),
        num(f(r, "/echo_rtt_ms/p50_ms"), 2),
        num(f(r, "/echo_rtt_ms/p90_ms"), 2),
        num(f(r, "/echo_rtt_ms/p99_ms"), 2),
        r["errors"]
    );
    for e in r["error_kinds"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "    {} × {} (e.g. {})",
            e["count"],
            e["error"].as_str().unwrap_or(""),
            e["sample"].as_str().unwrap_or("")
        );
    }
    out
}

/// Side-by-side markdown tables of `media` and `media-max` reports, one per plugin and group
/// size (EchoTest; fan-out / VideoRoom 1 → N or rooms of K); `janus` is the baseline.
pub fn markdown(runs: &[&Value]) -> String {
    let mut out = String::new();
    let kind = |r: &Value| (plugin_of(r).to_string(), r["room_size"].as_u64());
    let mut kinds: Vec<(String, Option<u64>)> = Vec::new();
    for r in runs {
        let k = kind(r);
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    let several = kinds.len() > 1;
    for k in &kinds {
        let group: Vec<&Value> = runs.iter().copied().filter(|r| &kind(r) == k).collect();
        if k.0 != "echotest" || several {
            let what = match (k.0.as_str(), k.1) {
                ("videoroom", Some(s)) => format!(
                    "VideoRoom, rooms of {s} (1 publisher + {} subscribers each)",
                    s.saturating_sub(1)
                ),
                ("videoroom", None) => {
                    "VideoRoom, one room: 1 publisher → N − 1 subscribers".into()
                }
                ("fanout", Some(s)) => format!(
                    "jano.plugin.fanout, groups of {s} (1 publisher + {} subscribers each)",
                    s.saturating_sub(1)
                ),
                ("fanout", None) => "jano.plugin.fanout: 1 publisher → N − 1 subscribers".into(),
                ("audiobridge", Some(s)) => format!(
                    "AudioBridge, rooms of {s}, one talker each (forwarded = mixed packets \
                     received, latency = their arrival jitter)"
                ),
                ("audiobridge", None) => "AudioBridge, one room, one talker (forwarded = \
                    mixed packets received, latency = their arrival jitter)"
                    .into(),
                (p, _) => p.to_string(),
            };
            if !out.is_empty() {
                out.push('\n');
            }
            let _ = writeln!(out, "**{what}**\n");
        }
        if k.0 == "echotest" {
            table_echo(&mut out, &group);
        } else {
            table_forward(&mut out, &group);
        }
    }
    out
}

fn label(r: &Value) -> String {
    r["label"].as_str().unwrap_or("?").to_string()
}

/// Labels in the order they first appear.
fn labels(runs: &[&Value]) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for r in runs {
        let l = label(r);
        if !labels.contains(&l) {
            labels.push(l);
        }
    }
    labels
}

/// The `--find-max` result of a label.
fn max_of(runs: &[&Value], l: &str) -> String {
    runs.iter()
        .filter(|r| r["mode"] == "media-max" && label(r) == l)
        .map(|r| {
            r["max_peers_ok"]
                .as_u64()
                .map_or("none".to_string(), |n| n.to_string())
        })
        .next()
        .unwrap_or_else(|| "–".into())
}

/// jano / Janus of CPU-s per 1k (the Janus run with the same peers is the baseline).
fn ratio(media: &[&Value], r: &Value) -> String {
    if label(r) == "janus" {
        return "1.00 (baseline)".to_string();
    }
    let base = media
        .iter()
        .find(|b| label(b) == "janus" && b["peers"] == r["peers"])
        .and_then(|b| f(b, "/server/cpu_s_per_1000_echoed"));
    match (f(r, "/server/cpu_s_per_1000_echoed"), base) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "–".into(),
    }
}

fn table_echo(out: &mut String, runs: &[&Value]) {
    let media: Vec<&Value> = runs
        .iter()
        .copied()
        .filter(|r| r["mode"] == "media")
        .collect();
    let _ = writeln!(
        out,
        "| server | peers | pps sent | echoed | loss % | CPU-s per 1k echoed | ratio jano/Janus | webrtcup p50/p99 ms | max peers < 0.5 % loss |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for l in &labels(runs) {
        let rows: Vec<&&Value> = media.iter().filter(|r| &label(r) == l).collect();
        if rows.is_empty() {
            let _ = writeln!(
                out,
                "| {l} | – | – | – | – | – | – | – | {} |",
                max_of(runs, l)
            );
        }
        for r in rows {
            let _ = writeln!(
                out,
                "| {l} | {} | {} | {} | {} | {} | {} | {} / {} | {} |",
                r["peers"],
                num(f(r, "/pps_sent"), 0),
                r["echoed"],
                num(f(r, "/loss_pct"), 3),
                num(f(r, "/server/cpu_s_per_1000_echoed"), 4),
                ratio(&media, r),
                num(f(r, "/webrtcup_ms/p50_ms"), 0),
                num(f(r, "/webrtcup_ms/p99_ms"), 0),
                max_of(runs, l),
            );
        }
    }
}

/// Fan-out / VideoRoom: forwarded packets, one-way latency, server memory and threads per
/// subscriber.
fn table_forward(out: &mut String, runs: &[&Value]) {
    let media: Vec<&Value> = runs
        .iter()
        .copied()
        .filter(|r| r["mode"] == "media")
        .collect();
    let _ = writeln!(
        out,
        "| server | peers (rooms) | expected pps | forwarded | loss % | CPU-s per 1k forwarded | ratio jano/Janus | latency p50/p99 ms | webrtcup p50/p99 ms | RSS MB (KB per subscriber) | threads (per subscriber) | max peers < 0.5 % loss |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for l in &labels(runs) {
        let rows: Vec<&&Value> = media.iter().filter(|r| &label(r) == l).collect();
        if rows.is_empty() {
            let _ = writeln!(
                out,
                "| {l} | – | – | – | – | – | – | – | – | – | – | {} |",
                max_of(runs, l)
            );
        }
        for r in rows {
            let _ = writeln!(
                out,
                "| {l} | {} ({}) | {} | {} | {} | {} | {} | {} / {} | {} / {} | {} ({}) | {} ({}) | {} |",
                r["peers"],
                r["rooms"].as_u64().unwrap_or(1),
                num(f(r, "/pps_sent"), 0),
                r["echoed"],
                num(f(r, "/loss_pct"), 3),
                num(f(r, "/server/cpu_s_per_1000_echoed"), 4),
                ratio(&media, r),
                num(f(r, "/echo_rtt_ms/p50_ms"), 2),
                num(f(r, "/echo_rtt_ms/p99_ms"), 2),
                num(f(r, "/webrtcup_ms/p50_ms"), 0),
                num(f(r, "/webrtcup_ms/p99_ms"), 0),
                num(f(r, "/server/rss_bytes").map(|b| b / 1048576.0), 1),
                num(f(r, "/server/rss_kb_per_subscriber"), 0),
                r.pointer("/server/threads").unwrap_or(&Value::Null),
                num(f(r, "/server/threads_per_subscriber"), 2),
                max_of(runs, l),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_compares_against_janus() {
        let j: Value = serde_json::from_str(r#"{"mode":"media","label":"janus","peers":10,"pps_sent":1500,"echoed":29000,"loss_pct":0.1,"server":{"cpu_s_per_1000_echoed":0.02},"webrtcup_ms":{"p50_ms":40,"p99_ms":90}}"#).unwrap();
        let k: Value = serde_json::from_str(r#"{"mode":"media","label":"jano","peers":10,"pps_sent":1500,"echoed":29900,"loss_pct":0.0,"server":{"cpu_s_per_1000_echoed":0.01},"webrtcup_ms":{"p50_ms":20,"p99_ms":30}}"#).unwrap();
        let m: Value =
            serde_json::from_str(r#"{"mode":"media-max","label":"janus","max_peers_ok":100}"#)
                .unwrap();
        let t = markdown(&[&j, &k, &m]);
        assert!(
            t.contains(
                "| janus | 10 | 1500 | 29000 | 0.100 | 0.0200 | 1.00 (baseline) | 40 / 90 | 100 |"
            ),
            "{t}"
        );
        assert!(
            t.contains("| jano | 10 | 1500 | 29900 | 0.000 | 0.0100 | 0.50 | 20 / 30 | – |"),
            "{t}"
        );
    }

    #[test]
    fn forwarding_tables_per_room_size() {
        let j: Value = serde_json::from_str(r#"{"mode":"media","label":"janus","plugin":"videoroom","room_size":11,"rooms":2,"peers":22,"pps_sent":3000,"echoed":30000,"loss_pct":0.0,"server":{"cpu_s_per_1000_echoed":0.02,"rss_bytes":52428800,"rss_kb_per_subscriber":800,"threads":40,"threads_per_subscriber":1.0},"echo_rtt_ms":{"p50_ms":0.5,"p99_ms":2},"webrtcup_ms":{"p50_ms":40,"p99_ms":90}}"#).unwrap();
        let k: Value = serde_json::from_str(r#"{"mode":"media","label":"jano","plugin":"videoroom","room_size":11,"rooms":2,"peers":22,"pps_sent":3000,"echoed":30000,"loss_pct":0.0,"server":{"cpu_s_per_1000_echoed":0.01,"rss_bytes":10485760,"rss_kb_per_subscriber":100,"threads":5,"threads_per_subscriber":0.0},"echo_rtt_ms":{"p50_ms":0.25,"p99_ms":1},"webrtcup_ms":{"p50_ms":20,"p99_ms":30}}"#).unwrap();
        let one: Value = serde_json::from_str(
            r#"{"mode":"media-max","label":"jano","plugin":"videoroom","max_peers_ok":300}"#,
        )
        .unwrap();
        let t = markdown(&[&j, &k, &one]);
        assert!(
            t.contains("**VideoRoom, rooms of 11 (1 publisher + 10 subscribers each)**"),
            "{t}"
        );
        assert!(
            t.contains("**VideoRoom, one room: 1 publisher → N − 1 subscribers**"),
            "{t}"
        );
        assert!(
            t.contains("| jano | 22 (2) | 3000 | 30000 | 0.000 | 0.0100 | 0.50 | 0.25 / 1.00 | 20 / 30 | 10.0 (100) | 5 (0.00) | – |"),
            "{t}"
        );
        assert!(
            t.contains("| jano | – | – | – | – | – | – | – | – | – | – | 300 |"),
            "{t}"
        );
        let h = human(&k);
        assert!(h.contains("VideoRoom: 2 room(s) of up to 11 peers"), "{h}");
        assert!(h.contains("forwarded 30000"), "{h}");
        assert!(h.contains("100 KB more per subscriber"), "{h}");
    }
}
