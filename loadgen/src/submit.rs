//! `--report URL`: POSTs the run record as JSON to a results board over HTTP/1.1, with the
//! client of `http1`, and reports the board's status.
//!
//! Owns: the one POST. Must not touch: the record's content, the store.

use std::time::Duration;

use crate::http1::Conn;
use crate::plan::parse_url;
use crate::run::RunRecord;

const SUBMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// POSTs `run`; `Ok(status)` for a 2xx, else an error naming the URL.
pub async fn submit(url: &str, run: &RunRecord) -> Result<u16, String> {
    let target = parse_url(url).map_err(|m| format!("--report: {m}"))?;
    let body = serde_json::to_vec(run).map_err(|e| format!("--report: encoding the run: {e}"))?;
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: wsrun-bench\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        target.path,
        target.authority,
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let exchange = async {
        let mut conn = Conn::connect(target.addr)
            .await
            .map_err(|e| e.to_string())?;
        conn.exchange(&request, false)
            .await
            .map_err(|e| e.to_string())
    };
    let response = tokio::time::timeout(SUBMIT_TIMEOUT, exchange)
        .await
        .map_err(|_| {
            format!(
                "--report {url}: no answer within {}s",
                SUBMIT_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("--report {url}: {e}"))?;
    match response.status {
        200..=299 => Ok(response.status),
        s => Err(format!("--report {url}: the board answered {s}")),
    }
}
