//! `upload-digest`: hashes the request body as it streams in.
//!
//! Answers `200 text/plain` with `sha256=<hex>\nbytes=<n>\n`. Only one chunk
//! (at most 64 KiB) is in memory at a time, whatever the upload's size.

use std::fmt::Write;

use sha2::{Digest, Sha256};
use wsrun_sdk::{Error, Handler, Request, Response};

struct UploadDigest;

impl Handler for UploadDigest {
    fn handle(mut request: Request) -> Result<Response, Error> {
        let mut hasher = Sha256::new();
        let mut total: u64 = 0;
        while let Some(chunk) = request.body().read_chunk()? {
            hasher.update(&chunk);
            total += chunk.len() as u64;
        }
        let mut text = String::from("sha256=");
        for byte in hasher.finalize() {
            write!(text, "{byte:02x}")?;
        }
        write!(text, "\nbytes={total}\n")?;
        Ok(Response::text(200, text))
    }
}

wsrun_sdk::export!(UploadDigest);
