//! `wsrun migrate report` and `wsrun migrate show ID`: reading the store back.
//!
//! Owns: the per-route summary (counts, match rate, both sides' p50/p99 from the latency
//! histogram, the top differences grouped by path, rollbacks), shown as text or JSON, and one
//! difference in full. Exit codes: 0 shown, 1 no such difference or a store error, 2 a bad
//! `-c` file. Must not touch: writing the store (`store`).

use std::path::Path;
use std::process::ExitCode;

use rusqlite::{params, Connection};
use serde_json::{json, Value};

use super::latency::quantile;
use super::mirror::SkipReason;
use super::store::{self, FILE};
use crate::config::{MigrateAction, MigrateArgs};

/// Differences listed per route in a report.
const TOP_PATHS: i64 = 5;

pub fn main(args: &MigrateArgs) -> ExitCode {
    let dir = match args.state_dir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("wsrun: error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = open(&dir.join(FILE)).and_then(|conn| match &args.action {
        MigrateAction::Report { json } => report(&conn).map(|r| print_report(&r, *json)),
        MigrateAction::Show { id } => show(&conn, *id).map(|d| println!("{d}")),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsrun: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn open(path: &Path) -> Result<Connection, String> {
    if !path.is_file() {
        return Err(format!(
            "{}: no migration store (no shadow or canary has run with this state directory)",
            path.display()
        ));
    }
    // The schema too: a store a worker has only just created may not have its tables yet.
    store::open(path)
}

/// The whole report as JSON (the text form is printed from it).
pub fn report(conn: &Connection) -> Result<Value, String> {
    let sql = "SELECT route, compared, matched, differed, shadow_failed, skipped, canary, rollbacks
               FROM counts ORDER BY route";
    let mut stmt = conn.prepare(sql).map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map([], |r| {
            let n = |i| r.get::<_, i64>(i);
            Ok((
                r.get::<_, String>(0)?,
                [n(1)?, n(2)?, n(3)?, n(4)?, n(5)?, n(6)?, n(7)?],
            ))
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| e.to_string())?;
    let mut routes = Vec::new();
    for (route, [compared, matched, differed, failed, skipped, canary, rollbacks]) in rows {
        let rate = (compared > 0).then(|| matched as f64 / compared as f64);
        routes.push(json!({
            "route": route,
            "compared": compared, "matched": matched, "differed": differed,
            "shadow_failed": failed, "skipped": skipped,
            "skipped_by_reason": skip_reasons(conn, &route)?,
            "match_rate": rate,
            "primary_ms": side_latency(conn, &route, "primary")?,
            "shadow_ms": side_latency(conn, &route, "shadow")?,
            "top_differences": top_paths(conn, &route)?,
            "canary_requests": canary, "rollbacks": rollbacks,
        }));
    }
    Ok(json!({ "routes": routes }))
}

/// A route's skips per reason, every reason present (0 when none).
fn skip_reasons(conn: &Connection, route: &str) -> Result<Value, String> {
    let mut stmt = conn
        .prepare("SELECT reason, n FROM skips WHERE route = ?1")
        .map_err(|e| e.to_string())?;
    let rows: Vec<(String, i64)> = stmt
        .query_map([route], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .map_err(|e| e.to_string())?;
    let mut reasons = serde_json::Map::new();
    for reason in SkipReason::ALL {
        let n = rows
            .iter()
            .find(|(r, _)| r == reason.as_str())
            .map_or(0, |(_, n)| *n);
        reasons.insert(reason.as_str().to_string(), json!(n));
    }
    Ok(Value::Object(reasons))
}

fn side_latency(conn: &Connection, route: &str, side: &str) -> Result<Value, String> {
    let mut stmt = conn
        .prepare("SELECT bucket, n FROM latency WHERE route = ?1 AND side = ?2 ORDER BY bucket")
        .map_err(|e| e.to_string())?;
    let rows: Vec<(i64, i64)> = stmt
        .query_map(params![route, side], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .map_err(|e| e.to_string())?;
    let ms = |q| quantile(&rows, q).map(|us| (us / 10.0).round() / 100.0);
    Ok(json!({ "p50": ms(0.5), "p99": ms(0.99) }))
}

fn top_paths(conn: &Connection, route: &str) -> Result<Value, String> {
    let mut stmt = conn
        .prepare(
            "SELECT path, n, last_id FROM diff_paths WHERE route = ?1
             ORDER BY n DESC, path LIMIT ?2",
        )
        .map_err(|e| e.to_string())?;
    let rows: Vec<Value> = stmt
        .query_map(params![route, TOP_PATHS], |r| {
            let (path, n, id): (String, i64, Option<i64>) = (r.get(0)?, r.get(1)?, r.get(2)?);
            Ok(json!({ "path": path, "count": n, "example_id": id }))
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| e.to_string())?;
    Ok(Value::Array(rows))
}

fn print_report(report: &Value, as_json: bool) {
    if as_json {
        println!("{report:#}");
        return;
    }
    let routes = report["routes"].as_array().cloned().unwrap_or_default();
    if routes.is_empty() {
        println!("no shadow or canary results yet");
    }
    for r in routes {
        let rate = r["match_rate"]
            .as_f64()
            .map_or("-".to_string(), |x| format!("{:.1}%", x * 100.0));
        println!("route {}", r["route"].as_str().unwrap_or("?"));
        println!(
            "  compared {}  matched {}  differed {}  shadow failed {}  skipped {}  match rate {rate}",
            r["compared"], r["matched"], r["differed"], r["shadow_failed"], r["skipped"]
        );
        let reasons: Vec<String> = SkipReason::ALL
            .iter()
            .filter_map(|reason| {
                let n = r["skipped_by_reason"][reason.as_str()].as_i64()?;
                (n > 0).then(|| format!("{} {n}", reason.describe()))
            })
            .collect();
        if !reasons.is_empty() {
            println!("  skipped: {}", reasons.join(", "));
        }
        for side in ["primary", "shadow"] {
            let l = &r[format!("{side}_ms")];
            println!("  {side:<8} p50 {} ms  p99 {} ms", l["p50"], l["p99"]);
        }
        for d in r["top_differences"].as_array().into_iter().flatten() {
            println!(
                "  differs at {}: {} time(s) (e.g. wsrun migrate show {})",
                d["path"].as_str().unwrap_or("?"),
                d["count"],
                d["example_id"]
            );
        }
        if r["canary_requests"].as_i64().unwrap_or(0) > 0
            || r["rollbacks"].as_i64().unwrap_or(0) > 0
        {
            println!(
                "  canary served {}  rollbacks {}",
                r["canary_requests"], r["rollbacks"]
            );
        }
    }
}

/// One difference in full.
fn show(conn: &Connection, id: i64) -> Result<String, String> {
    let sql = "SELECT route, at, path, request, primary_response, shadow_response
               FROM diffs WHERE id = ?1";
    let row = conn
        .query_row(sql, [id], |r| {
            Ok(format!(
                "difference {id} on route {} at {} (unix time)\nfirst difference: {}\n\n\
                 --- request ---\n{}\n\n--- primary response ---\n{}\n\n--- shadow response ---\n{}",
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?
            ))
        })
        .map_err(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => {
                format!("no difference {id} (only the newest are kept per route)")
            }
            e => e.to_string(),
        })?;
    Ok(row)
}
