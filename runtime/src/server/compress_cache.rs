//! A worker's memo of whole bodies it has compressed: a body that comes back byte for byte
//! (the same JSON document or page, served again until its data changes) is compressed once
//! per route and codec, and later responses reuse the result.
//!
//! Why: compressing costs far more than serving. gzip level 1 of a 20 KB JSON body takes
//! 55-60 µs of the worker's one core, where the whole uncompressed request takes ~16 µs
//! (`bench/static.sh`), so an app answering the same document over and over would lose most
//! of its throughput to recompressing it. A lookup costs a sampled hash and one `memcmp`.
//!
//! Owns: `compress_whole`, the per-thread `Memo` (the worker's event loop is one thread), its
//! key, admission (a body is kept the second time it is compressed, so bodies that never come
//! back — a counter or a timestamp in them — cost a set insert, not a copy, and do not push
//! out the ones that do), budget and eviction (oldest first). Rules that keep it safe: an entry is used only
//! when the new body equals its stored identity bytes exactly (the hash only finds the
//! candidate, so a collision can never send another response's bytes); keys carry the route
//! (tenant and prefix), so one tenant's responses never become another's hits and no timing
//! tells a tenant what another served; a body over `MAX_BODY` is never kept; the bytes kept
//! (identity and compressed) never exceed `[server] compression_cache`, 0 turning it off.
//! Must not touch: whether a response is compressed or its headers (`compress`), the codecs
//! and their levels (`compress_stream`).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::io;

use bytes::Bytes;
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};

use super::compress_stream::compress_all;
use crate::accept_encoding::Codec;

/// Bodies larger than this are compressed every time: they are rarer, and one of them would
/// take a large share of the budget.
const MAX_BODY: usize = 256 * 1024;
/// How many 8-byte words of a body the hash reads, spread evenly (plus both ends and the
/// length): enough to tell most different bodies apart; the exact comparison decides.
const SAMPLED_WORDS: usize = 32;
/// How many keys of bodies compressed once (and not kept) are remembered; the set is cleared
/// when full. 4,096 keys: about 200 KiB.
const SEEN_MAX: usize = 4096;

/// The route a body belongs to, as a number: a hash of its tenant and prefix.
pub fn route_scope(tenant: Option<&str>, prefix: &str) -> u64 {
    let mut hasher = FxHasher::default();
    tenant.hash(&mut hasher);
    prefix.hash(&mut hasher);
    hasher.finish()
}

/// `body` compressed with `codec`: from the memo when this route has sent these exact bytes
/// with this codec before and they are still kept, else compressed now (and kept, within
/// `budget` bytes per thread).
pub fn compress_whole(scope: u64, budget: u64, codec: Codec, body: &Bytes) -> io::Result<Bytes> {
    if budget == 0 || body.len() > MAX_BODY {
        return compress_all(codec, body);
    }
    let key = Key::new(scope, codec, body);
    if let Some(packed) = MEMO.with_borrow(|memo| memo.get(&key, body)) {
        return Ok(packed);
    }
    let packed = compress_all(codec, body)?;
    MEMO.with_borrow_mut(|memo| memo.insert(key, body, packed.clone(), budget));
    Ok(packed)
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo::default());
}

/// Which route, codec and (sampled) bytes an entry is for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Key {
    scope: u64,
    codec: Codec,
    len: usize,
    sample: u64,
}

impl Key {
    fn new(scope: u64, codec: Codec, body: &[u8]) -> Key {
        Key {
            scope,
            codec,
            len: body.len(),
            sample: sample_hash(body),
        }
    }
}

/// A hash of the first and last 32 bytes and `SAMPLED_WORDS` words spread over the body.
fn sample_hash(body: &[u8]) -> u64 {
    let mut hasher = FxHasher::default();
    let len = body.len();
    hasher.write(&body[..len.min(32)]);
    hasher.write(&body[len.saturating_sub(32)..]);
    if len > 64 + 8 {
        let stride = (len - 8) / SAMPLED_WORDS;
        for i in 0..SAMPLED_WORDS {
            let at = i * stride;
            hasher.write(&body[at..at + 8]);
        }
    }
    hasher.finish()
}

struct Entry {
    identity: Bytes,
    packed: Bytes,
}

impl Entry {
    fn size(&self) -> u64 {
        (self.identity.len() + self.packed.len()) as u64
    }
}

/// The kept entries, oldest first in `order`; `kept` is the bytes they hold; `seen` the keys
/// of bodies compressed once and not kept yet.
#[derive(Default)]
struct Memo {
    entries: FxHashMap<Key, Entry>,
    order: VecDeque<Key>,
    kept: u64,
    seen: FxHashSet<Key>,
}

impl Memo {
    fn get(&self, key: &Key, body: &[u8]) -> Option<Bytes> {
        let entry = self.entries.get(key)?;
        (entry.identity.as_ref() == body).then(|| entry.packed.clone())
    }

    /// Keeps `packed` for `body` if its key was seen before (replacing another body that had
    /// the same key), then drops the oldest entries until at most `budget` bytes are kept.
    /// A key seen for the first time is only remembered.
    fn insert(&mut self, key: Key, body: &[u8], packed: Bytes, budget: u64) {
        if !self.entries.contains_key(&key) && !self.seen.remove(&key) {
            if self.seen.len() >= SEEN_MAX {
                self.seen.clear();
            }
            self.seen.insert(key);
            return;
        }
        let entry = Entry {
            // A copy: the response's own bytes may belong to a Python object.
            identity: Bytes::copy_from_slice(body),
            packed,
        };
        if entry.size() > budget {
            return;
        }
        self.kept += entry.size();
        match self.entries.insert(key, entry) {
            Some(replaced) => self.kept -= replaced.size(),
            None => self.order.push_back(key),
        }
        while self.kept > budget {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(evicted) = self.entries.remove(&oldest) {
                self.kept -= evicted.size();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .expect("gunzip");
        out
    }

    fn json(filler: u8, len: usize) -> Bytes {
        let mut body = b"{\"a\": \"".to_vec();
        body.resize(len - 2, filler);
        body.extend_from_slice(b"\"}");
        Bytes::from(body)
    }

    #[test]
    fn a_repeated_body_is_compressed_once() {
        let mut memo = Memo::default();
        let body = json(b'x', 20_000);
        let key = Key::new(1, Codec::Gzip, &body);
        assert!(memo.get(&key, &body).is_none());
        let packed = compress_all(Codec::Gzip, &body).expect("gzip");
        memo.insert(key, &body, packed.clone(), 1 << 20);
        assert!(
            memo.get(&key, &body).is_none(),
            "seen once: remembered, not kept"
        );
        assert_eq!(memo.kept, 0);
        memo.insert(key, &body, packed.clone(), 1 << 20);
        let again = Bytes::copy_from_slice(&body);
        assert_eq!(memo.get(&key, &again), Some(packed));
    }

    #[test]
    fn bodies_that_never_come_back_are_not_kept_and_the_seen_set_stays_bounded() {
        let mut memo = Memo::default();
        for n in 0..(SEEN_MAX + 10) {
            let body = Bytes::from(format!(
                "{{\"n\": {n:08}, \"pad\": \"{}\"}}",
                "p".repeat(2000)
            ));
            memo.insert(
                Key::new(1, Codec::Gzip, &body),
                &body,
                Bytes::new(),
                1 << 20,
            );
            assert!(memo.seen.len() <= SEEN_MAX);
        }
        assert_eq!(memo.kept, 0);
        assert!(memo.entries.is_empty());
    }

    #[test]
    fn a_body_with_the_same_sample_but_other_bytes_is_never_served_the_kept_one() {
        let body = json(b'x', 20_000);
        let mut other = body.to_vec();
        other[1001] = b'y'; // between two sampled words
        let other = Bytes::from(other);
        assert_eq!(
            Key::new(1, Codec::Gzip, &body),
            Key::new(1, Codec::Gzip, &other)
        );
        let first = compress_whole(7, 1 << 20, Codec::Gzip, &body).expect("first");
        let kept = compress_whole(7, 1 << 20, Codec::Gzip, &body).expect("kept");
        assert_eq!(first, kept);
        let key = Key::new(7, Codec::Gzip, &body);
        assert!(
            MEMO.with_borrow(|m| m.get(&key, &body)).is_some(),
            "kept on the second"
        );
        let second = compress_whole(7, 1 << 20, Codec::Gzip, &other).expect("second");
        assert_eq!(gunzip(&first), body.as_ref());
        assert_eq!(gunzip(&second), other.as_ref());
        assert!(
            MEMO.with_borrow(|m| m.get(&key, &other)).is_some(),
            "replaced"
        );
        let again = compress_whole(7, 1 << 20, Codec::Gzip, &other).expect("again");
        assert_eq!(again, second, "the replacing body is kept");
    }

    #[test]
    fn routes_and_codecs_do_not_share_entries() {
        let mut memo = Memo::default();
        let body = json(b'x', 4_000);
        let packed = compress_all(Codec::Gzip, &body).expect("gzip");
        for _ in 0..2 {
            memo.insert(
                Key::new(1, Codec::Gzip, &body),
                &body,
                packed.clone(),
                1 << 20,
            );
        }
        assert!(memo.get(&Key::new(1, Codec::Gzip, &body), &body).is_some());
        assert!(memo.get(&Key::new(2, Codec::Gzip, &body), &body).is_none());
        assert!(memo.get(&Key::new(1, Codec::Zstd, &body), &body).is_none());
    }

    #[test]
    fn the_budget_bounds_what_is_kept_and_the_oldest_go_first() {
        let mut memo = Memo::default();
        let budget = 64 * 1024;
        let bodies: Vec<Bytes> = (0..40u8)
            .map(|i| json(b'a' + i % 26, 8_000 + usize::from(i)))
            .collect();
        for body in &bodies {
            let packed = compress_all(Codec::Gzip, body).expect("gzip");
            for _ in 0..2 {
                memo.insert(Key::new(1, Codec::Gzip, body), body, packed.clone(), budget);
            }
            assert!(memo.kept <= budget, "kept {} > {budget}", memo.kept);
        }
        let newest = bodies.last().expect("bodies");
        assert!(memo
            .get(&Key::new(1, Codec::Gzip, newest), newest)
            .is_some());
        let oldest = &bodies[0];
        assert!(memo
            .get(&Key::new(1, Codec::Gzip, oldest), oldest)
            .is_none());
        assert_eq!(memo.entries.len(), memo.order.len());
    }

    #[test]
    fn large_bodies_and_a_zero_budget_are_not_kept() {
        let big = json(b'z', MAX_BODY + 1);
        compress_whole(3, 1 << 30, Codec::Gzip, &big).expect("big");
        let packed = compress_whole(3, 1 << 30, Codec::Gzip, &big).expect("big");
        assert_eq!(gunzip(&packed), big.as_ref());
        let key = Key::new(3, Codec::Gzip, &big);
        assert!(MEMO.with_borrow(|m| m.get(&key, &big)).is_none());
        let small = json(b'q', 4_000);
        compress_whole(4, 0, Codec::Gzip, &small).expect("off");
        compress_whole(4, 0, Codec::Gzip, &small).expect("off");
        let key = Key::new(4, Codec::Gzip, &small);
        assert!(MEMO.with_borrow(|m| m.get(&key, &small)).is_none());
    }

    #[test]
    fn short_bodies_hash_without_sampling() {
        for len in [0, 1, 31, 64, 72, 73, 200] {
            let body = vec![b'k'; len];
            let _ = sample_hash(&body); // no slice out of bounds
        }
    }
}
