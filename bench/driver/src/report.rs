//! The table printed at the end of `bench/run.sh`, from the JSON lines it
//! collected (one object per line, `kind` = `meta`, `load`, `process`,
//! `ceiling` or `failed`; see docs/benchmarks.md).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// Scenarios in the order of the table (others follow in the order seen).
const SCENARIOS: &[&str] = &[
    "discovery",
    "jwks",
    "cc_rs256",
    "cc_es256",
    "introspect",
    "userinfo",
    "refresh",
    "signin",
    "storm_signin",
    "userinfo_quiet",
    "storm_userinfo",
];

/// The provider every ratio is taken against.
const BASELINE: &str = "oidc-provider";

fn target_rank(t: &str) -> usize {
    match t {
        "latchkey-embedded" => 0,
        "latchkey-production" => 1,
        "latchkey-embedded-rsa3072" => 2,
        BASELINE => 9,
        _ => 5,
    }
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 })
}

fn fmt_num(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// `median (min–max)`, or just the value when there is one run.
fn spread(v: &[f64]) -> String {
    let Some(m) = median(v) else { return "n/a".to_owned() };
    if v.len() < 2 {
        return fmt_num(m);
    }
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{} ({}–{})", fmt_num(m), fmt_num(lo), fmt_num(hi))
}

fn num(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(0.0)
}

fn text(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn print_rows(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        println!("| {} |", parts.join(" | "));
    };
    line(header.iter().map(|h| (*h).to_owned()).collect());
    println!("|{}|", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("|"));
    for row in rows {
        line(row.clone());
    }
}

pub fn print(path: &Path) -> Result<(), String> {
    let content = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = Vec::new();
    for (n, line) in content.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        lines.push(v);
    }
    let kind = |k: &'static str| lines.iter().filter(move |v| v["kind"] == k);

    for meta in kind("meta") {
        println!("Latchkey benchmark — {}", text(meta, "title"));
        if let Some(obj) = meta.as_object() {
            for (k, v) in obj {
                if k != "kind" && k != "title" {
                    println!("  {k}: {}", v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()));
                }
            }
        }
    }
    println!();

    // scenario -> target -> rep -> measurement
    let mut load: BTreeMap<String, BTreeMap<String, BTreeMap<i64, Value>>> = BTreeMap::new();
    let mut seen_scenarios: Vec<String> = SCENARIOS.iter().map(|s| (*s).to_owned()).collect();
    for v in kind("load") {
        let scenario = text(v, "scenario");
        if !seen_scenarios.contains(&scenario) {
            seen_scenarios.push(scenario.clone());
        }
        load.entry(scenario)
            .or_default()
            .entry(text(v, "target"))
            .or_default()
            .insert(v["rep"].as_i64().unwrap_or(0), v.clone());
    }

    let mut rows = Vec::new();
    for scenario in &seen_scenarios {
        let Some(by_target) = load.get(scenario) else { continue };
        let mut targets: Vec<&String> = by_target.keys().collect();
        targets.sort_by_key(|t| (target_rank(t), (*t).clone()));
        let baseline = by_target.get(BASELINE);
        for target in targets {
            let reps = &by_target[target];
            let col = |k: &str| reps.values().map(|v| num(v, k)).collect::<Vec<_>>();
            let errors: f64 = col("errors").iter().sum();
            let requests: f64 = col("requests").iter().sum();
            let ratio = match baseline {
                Some(base) if target.as_str() != BASELINE => {
                    let r: Vec<f64> = reps
                        .iter()
                        .filter_map(|(rep, v)| {
                            let b = num(base.get(rep)?, "rps");
                            (b > 0.0).then(|| num(v, "rps") / b)
                        })
                        .collect();
                    if r.is_empty() { "n/a".to_owned() } else { format!("{}×", spread(&r)) }
                }
                _ => String::new(),
            };
            rows.push(vec![
                scenario.clone(),
                target.clone(),
                spread(&col("rps")),
                spread(&col("p50_ms")),
                spread(&col("p99_ms")),
                format!("{errors:.0}/{requests:.0}"),
                ratio,
            ]);
        }
    }
    print_rows(
        &["scenario", "target", "req/s", "p50 ms", "p99 ms", "errors/ok", &format!("req/s ÷ {BASELINE}")],
        &rows,
    );

    let mut process: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for v in kind("process") {
        process.entry(text(v, "target")).or_default().push(v);
    }
    if !process.is_empty() {
        println!();
        let mut targets: Vec<&String> = process.keys().collect();
        targets.sort_by_key(|t| (target_rank(t), (*t).clone()));
        let rows: Vec<Vec<String>> = targets
            .into_iter()
            .map(|t| {
                let col = |k: &str, scale: f64| process[t].iter().map(|v| num(v, k) / scale).collect::<Vec<_>>();
                vec![
                    t.clone(),
                    spread(&col("ready_ms", 1.0)),
                    spread(&col("rss_idle_kib", 1024.0)),
                    spread(&col("rss_after_kib", 1024.0)),
                    spread(&col("load1", 1.0)),
                ]
            })
            .collect();
        print_rows(
            &["target", "time to ready ms", "RSS idle MiB", "RSS after load MiB", "load average at start"],
            &rows,
        );
    }

    let ceilings: Vec<&Value> = kind("ceiling").collect();
    if !ceilings.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = ceilings
            .iter()
            .map(|v| {
                vec![
                    text(v, "name"),
                    fmt_num(num(v, "per_core")),
                    format!("{} ({} threads)", fmt_num(num(v, "all_cores")), text(v, "threads")),
                    text(v, "unit"),
                ]
            })
            .collect();
        print_rows(&["ceiling (this machine)", "1 core", "all cores", "unit"], &rows);
    }

    let failed: Vec<&Value> = kind("failed").collect();
    if !failed.is_empty() {
        println!();
        println!("Not measured:");
        for v in failed {
            println!("  rep {} {} {}: {}", text(v, "rep"), text(v, "target"), text(v, "scenario"), text(v, "reason"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_and_median() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0]), Some(2.5));
        assert_eq!(spread(&[1234.4]), "1234");
        assert_eq!(spread(&[3.0, 1.0, 2.0]), "2.00 (1.00–3.00)");
    }
}
