//! `memory-bomb`: allocates memory 1 MiB at a time, forever.
//!
//! Every 4 KiB page of each block is written so the memory is really used.
//! It never answers: when the host's memory cap refuses to grow linear memory,
//! the allocation fails and the instance aborts (a trap). That is the point.

use std::hint::black_box;

use wsrun_sdk::{Error, Handler, Request, Response};

const BLOCK: usize = 1024 * 1024;
const PAGE: usize = 4096;

struct MemoryBomb;

impl Handler for MemoryBomb {
    fn handle(_request: Request) -> Result<Response, Error> {
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut block = vec![0u8; BLOCK];
            let mark = (blocks.len() % 251) as u8 | 1;
            for page in block.chunks_mut(PAGE) {
                page[0] = mark;
            }
            blocks.push(black_box(block));
        }
    }
}

wsrun_sdk::export!(MemoryBomb);
