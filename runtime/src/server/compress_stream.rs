//! The codecs at work: a whole body compressed at once, or a body compressed as it streams.
//!
//! Owns: the encoders (`flate2` with zlib-rs for gzip, `brotli`, `zstd`), their levels, and
//! `CompressedBody`, which wraps a `ResponseBody` and sends each of its chunks compressed and
//! flushed at once (a WSGI generator or a WASM body written in pieces reaches the client piece
//! by piece, never buffered whole). Must not touch: whether a response is compressed
//! (`compress`), its headers, or the connection.

use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Body;

use crate::accept_encoding::Codec;
use crate::body::{BoxError, ChunkSource, ResponseBody};

/// Levels chosen for speed: compression runs on the worker's event loop, once per response,
/// so its CPU comes straight out of the worker's request rate. gzip 1 is nginx's default
/// `gzip_comp_level`; Brotli quality 1 and zstd level 1 are those codecs' fast settings (the
/// ones meant for on-the-fly use; their high levels are for precompressing, which
/// `precompressed = true` serves). `bench/static.sh` measures the gzip cost on a 20 KB JSON
/// body.
const GZIP_LEVEL: u32 = 1;
const BROTLI_QUALITY: u32 = 1;
/// 2^18 = 256 KiB window: responses are small, and the default 4 MiB would be allocated per
/// response.
const BROTLI_WINDOW_BITS: u32 = 18;
const ZSTD_LEVEL: i32 = 1;

/// One encoder writing into its own buffer, which is taken after each write.
enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Br(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Encoder {
    /// An encoder for `codec`; `size` is the body's exact length when known (zstd sizes its
    /// tables to it).
    fn new(codec: Codec, size: Option<u64>) -> io::Result<Encoder> {
        Ok(match codec {
            Codec::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(GZIP_LEVEL),
            )),
            Codec::Br => Encoder::Br(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                4096,
                BROTLI_QUALITY,
                BROTLI_WINDOW_BITS,
            ))),
            Codec::Zstd => {
                let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL)?;
                encoder.set_pledged_src_size(size)?;
                encoder.include_contentsize(size.is_some())?;
                Encoder::Zstd(encoder)
            }
        })
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.write_all(data),
            Encoder::Br(e) => e.write_all(data),
            Encoder::Zstd(e) => e.write_all(data),
        }
    }

    /// Everything written so far, compressed and flushed so the client can decode it now.
    fn flush(&mut self) -> io::Result<Vec<u8>> {
        let out = match self {
            Encoder::Gzip(e) => {
                e.flush()?;
                e.get_mut()
            }
            Encoder::Br(e) => {
                e.flush()?;
                e.get_mut()
            }
            Encoder::Zstd(e) => {
                e.flush()?;
                e.get_mut()
            }
        };
        Ok(std::mem::take(out))
    }

    /// The rest of the stream, its end marker and trailer included.
    fn finish(self) -> io::Result<Vec<u8>> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Br(e) => Ok(e.into_inner()),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

/// `data` compressed whole.
pub fn compress_all(codec: Codec, data: &[u8]) -> io::Result<Bytes> {
    let mut encoder = Encoder::new(codec, Some(data.len() as u64))?;
    encoder.write_all(data)?;
    Ok(Bytes::from(encoder.finish()?))
}

/// A body compressed chunk by chunk as the inner body yields them.
pub struct CompressedBody {
    inner: ResponseBody,
    encoder: Option<Encoder>,
}

impl CompressedBody {
    pub fn new(inner: ResponseBody, codec: Codec) -> io::Result<CompressedBody> {
        let size = inner.size_hint().exact();
        Ok(CompressedBody {
            inner,
            encoder: Some(Encoder::new(codec, size)?),
        })
    }
}

impl ChunkSource for CompressedBody {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        loop {
            let Some(encoder) = self.encoder.as_mut() else {
                return Poll::Ready(None);
            };
            let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(frame) => frame,
            };
            let out = match frame {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers: none of wsrun's bodies send them
                    };
                    if let Err(err) = encoder.write_all(&data) {
                        self.encoder = None;
                        return Poll::Ready(Some(Err(Box::new(err))));
                    }
                    if self.inner.is_end_stream() {
                        self.encoder.take().map(Encoder::finish)
                    } else {
                        Some(encoder.flush())
                    }
                }
                Some(Err(err)) => {
                    self.encoder = None;
                    return Poll::Ready(Some(Err(err)));
                }
                None => self.encoder.take().map(Encoder::finish),
            };
            match out {
                Some(Ok(bytes)) if bytes.is_empty() => continue,
                Some(Ok(bytes)) => return Poll::Ready(Some(Ok(Bytes::from(bytes)))),
                Some(Err(err)) => {
                    self.encoder = None;
                    return Poll::Ready(Some(Err(Box::new(err))));
                }
                None => return Poll::Ready(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn decode(codec: Codec, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match codec {
            Codec::Gzip => {
                flate2::read::GzDecoder::new(data)
                    .read_to_end(&mut out)
                    .expect("gzip");
            }
            Codec::Br => {
                brotli::Decompressor::new(data, 4096)
                    .read_to_end(&mut out)
                    .expect("br");
            }
            Codec::Zstd => out = zstd::stream::decode_all(data).expect("zstd"),
        }
        out
    }

    struct Pieces(Vec<Bytes>);

    impl ChunkSource for Pieces {
        fn poll_chunk(&mut self, _: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
            Poll::Ready((!self.0.is_empty()).then(|| Ok(self.0.remove(0))))
        }
    }

    #[test]
    fn whole_bodies_round_trip() {
        let data = br#"{"items": [1, 2, 3], "name": "wsrun"}"#.repeat(100);
        for codec in Codec::ALL {
            let packed = compress_all(codec, &data).expect("compressed");
            assert!(packed.len() < data.len() / 4, "{codec}");
            assert_eq!(decode(codec, &packed), data, "{codec}");
        }
    }

    #[test]
    fn each_streamed_chunk_is_decodable_when_it_is_sent() {
        for codec in Codec::ALL {
            let pieces = vec![
                Bytes::from_static(b"first piece "),
                Bytes::from_static(b"second"),
            ];
            let inner = ResponseBody::Stream(Box::new(Pieces(pieces)));
            let mut body = CompressedBody::new(inner, codec).expect("encoder");
            let waker = std::task::Waker::noop();
            let mut cx = Context::from_waker(waker);
            let mut sent = Vec::new();
            let mut chunks = 0;
            while let Poll::Ready(Some(chunk)) = body.poll_chunk(&mut cx) {
                sent.extend_from_slice(&chunk.expect("a chunk"));
                chunks += 1;
                if chunks == 1 {
                    // The first piece alone, flushed: a streaming decoder yields it already.
                    let partial = partial_decode(codec, &sent);
                    assert_eq!(partial, b"first piece ", "{codec}");
                }
            }
            assert!(chunks >= 2, "{codec}");
            assert_eq!(decode(codec, &sent), b"first piece second", "{codec}");
        }
    }

    /// What a streaming decoder yields from an unfinished stream.
    fn partial_decode(codec: Codec, data: &[u8]) -> Vec<u8> {
        let mut out = vec![0; 64];
        let n = match codec {
            Codec::Gzip => flate2::read::GzDecoder::new(data).read(&mut out),
            Codec::Br => brotli::Decompressor::new(data, 4096).read(&mut out),
            Codec::Zstd => zstd::stream::read::Decoder::new(data)
                .expect("decoder")
                .read(&mut out),
        }
        .expect("a partial read");
        out.truncate(n);
        out
    }
}
