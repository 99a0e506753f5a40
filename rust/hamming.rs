//! The k nearest binary codes of each query by Hamming distance: the first pass of the
//! approximate search (one sign bit a dimension, 64 bytes a 512-d template), as FAISS's
//! `knn_hamming` but with the codes read in place and the rows split across threads.
//!
//! The scan is bound by memory bandwidth at a million rows (64 MB of codes a query, far more
//! than the cache), so the work per row is kept to a few instructions: one AVX-512 register a
//! 64-byte row with VPOPCNTDQ, 8 rows' counts summed in registers and compared with the
//! running k-th distance at once; `popcnt` on 64-bit words where AVX-512 is missing.
//!
//! ```
//! use facedb::hamming;
//! let mut codes = [0u8; 3 * 8]; // three 8-byte codes: 0 bits set, 8 bits set, 1 bit set
//! codes[8] = 0b1111_1111;
//! codes[16] = 0b0000_0001;
//! let found = hamming::knn(&codes, &[0; 8], 8, 2, 1)?;
//! assert_eq!(found.distances, [0, 1]);
//! assert_eq!(found.rows, [0, 2]);
//! # Ok::<(), facedb::Error>(())
//! ```

use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// The distance of a missing neighbour (fewer than k codes), as FAISS pads: `i32::MAX`.
pub const MISSING_DISTANCE: i32 = i32::MAX;

/// Below this many bytes of codes scanned (250,000 64-byte codes for one query, fewer for a
/// batch) a scan runs on the calling thread: such codes are mostly in the cache, scanned at
/// 50-60 GB/s by one thread (0.13 ms for 100,000), and a helper thread costs tens of
/// microseconds to start.
pub const PARALLEL_BYTES: usize = 16_000_000;

/// The most neighbours one call answers (queries times k), so that a mistaken k is an error
/// rather than an allocation of all memory.
pub const MAX_ANSWER: usize = 1 << 28;

/// The answer for q queries: `distances[i * k + j]` and `rows[i * k + j]` are query i's j-th
/// nearest code, sorted by (distance, row); -1 and [`MISSING_DISTANCE`] where there are fewer
/// than k codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbours {
    pub distances: Vec<i32>,
    pub rows: Vec<i64>,
}

/// The `k` codes nearest to each query. `codes` holds n codes and `queries` q codes, each
/// `width` bytes one after another (any width; 64, 128 and 256 take the AVX-512 path).
/// `threads` 0 chooses: one thread while the codes' bytes times q stay below
/// [`PARALLEL_BYTES`], else the machine's available parallelism, which also caps any other
/// count. Among codes at one distance the lower rows are kept, so the answer is the first k of
/// the (distance, row) order.
pub fn knn(codes: &[u8], queries: &[u8], width: usize, k: usize, threads: usize) -> Result<Neighbours> {
    if width == 0 {
        return Err(config("Hamming codes must be at least 1 byte wide, got 0".into()));
    }
    if !codes.len().is_multiple_of(width) || !queries.len().is_multiple_of(width) {
        return Err(config(format!(
            "Hamming codes of {width} bytes cannot fill {} bytes of codes and {} bytes of queries",
            codes.len(),
            queries.len()
        )));
    }
    let q = queries.len() / width;
    if q.checked_mul(k).is_none_or(|cells| cells > MAX_ANSWER) {
        return Err(config(format!(
            "k = {k} for {q} queries would answer more than {MAX_ANSWER} neighbours"
        )));
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = match threads {
        0 if codes.len().saturating_mul(q) < PARALLEL_BYTES => 1,
        0 => cores,
        t => t.min(cores),
    };
    Ok(knn_with(Kernel::detect(width), codes, queries, width, k, threads))
}

/// [`knn`] with its arguments checked and its kernel chosen.
fn knn_with(
    kernel: Kernel,
    codes: &[u8],
    queries: &[u8],
    width: usize,
    k: usize,
    threads: usize,
) -> Neighbours {
    let q = queries.len() / width;
    let blocks = (codes.len() / width).div_ceil(block_rows(width));
    let parts: Vec<Vec<TopK>> = if threads <= 1 || blocks <= 1 {
        vec![scan_blocks(kernel, codes, queries, width, k, &AtomicUsize::new(0))]
    } else {
        helpers::scan(kernel, codes, queries, width, k, threads.min(blocks) - 1)
    };
    let mut out = Neighbours { distances: Vec::with_capacity(q * k), rows: Vec::with_capacity(q * k) };
    let mut merged = Vec::new();
    for query in 0..q {
        merged.clear();
        for part in &parts {
            merged.extend(part[query].heap.iter().copied());
        }
        merged.sort_unstable();
        merged.truncate(k);
        for &(distance, row) in &merged {
            // A distance is at most 8 * width bits and a row is below the slice's length.
            out.distances.push(i32::try_from(distance).unwrap_or(MISSING_DISTANCE));
            out.rows.push(i64::try_from(row).unwrap_or(-1));
        }
        for _ in merged.len()..k {
            out.distances.push(MISSING_DISTANCE);
            out.rows.push(-1);
        }
    }
    out
}

/// Scans shared with helper threads that never hold up the answer: threads take the next
/// unscanned block until none is left, and a helper that has not started by the time the
/// calling thread has taken the last block (its core busy with another process: two threads
/// on this 2-core machine were often slower than one) finds the scan closed and leaves
/// without touching the codes. The caller then waits only for helpers inside a block.
mod helpers {
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Arc, Condvar, Mutex, PoisonError};

    use super::{scan_blocks, Kernel, TopK};

    #[derive(Default)]
    struct Gate {
        closed: bool,
        inside: usize,
        failed: bool,
        parts: Vec<Vec<TopK>>,
    }

    #[derive(Default)]
    struct Shared {
        gate: Mutex<Gate>,
        left: Condvar,
        next: AtomicUsize,
    }

    /// The caller's slices as raw parts, for threads that may outlive the call.
    #[derive(Clone, Copy)]
    struct Borrowed {
        codes: (*const u8, usize),
        queries: (*const u8, usize),
    }

    // SAFETY: the pointers are only dereferenced by a helper inside the gate (see `scan`),
    // while the caller's shared borrows of both slices are alive; u8 slices are Sync.
    unsafe impl Send for Borrowed {}

    /// Leaves the gate, also when the scan panics (then the caller panics too).
    struct Inside<'a>(&'a Shared);

    impl Drop for Inside<'_> {
        fn drop(&mut self) {
            let mut gate = self.0.gate.lock().unwrap_or_else(PoisonError::into_inner);
            gate.inside -= 1;
            gate.failed |= std::thread::panicking();
            self.0.left.notify_all();
        }
    }

    /// Closes the gate and waits for the helpers inside it: before the caller returns, also
    /// when its own scan unwinds, since the codes may be freed right after.
    struct Closing<'a>(&'a Shared);

    impl Drop for Closing<'_> {
        fn drop(&mut self) {
            let mut gate = self.0.gate.lock().unwrap_or_else(PoisonError::into_inner);
            gate.closed = true;
            while gate.inside > 0 {
                gate = self.0.left.wait(gate).unwrap_or_else(PoisonError::into_inner);
            }
        }
    }

    /// Each query's top k in parts (the caller's, then each helper's that took part).
    pub(super) fn scan(
        kernel: Kernel,
        codes: &[u8],
        queries: &[u8],
        width: usize,
        k: usize,
        helpers: usize,
    ) -> Vec<Vec<TopK>> {
        let shared = Arc::new(Shared::default());
        let borrowed =
            Borrowed { codes: (codes.as_ptr(), codes.len()), queries: (queries.as_ptr(), queries.len()) };
        let closing = Closing(&shared);
        for _ in 0..helpers {
            let shared = Arc::clone(&shared);
            let spawned = std::thread::Builder::new().name("facedb-hamming".into()).spawn(move || {
                let borrowed = borrowed; // the whole (Send) struct, not its pointer fields
                {
                    let mut gate = shared.gate.lock().unwrap_or_else(PoisonError::into_inner);
                    if gate.closed {
                        return;
                    }
                    gate.inside += 1;
                }
                let inside = Inside(&shared);
                // SAFETY: this thread entered the gate before the caller closed it, and the
                // caller does not return or unwind (ending its borrows of `codes` and
                // `queries`) before `Closing` has seen every thread that entered leave
                // (`inside` back to 0, counted under the lock, also when this scan unwinds);
                // the parts are those borrows' pointers and lengths, unchanged.
                let (codes, queries) = unsafe {
                    (
                        std::slice::from_raw_parts(borrowed.codes.0, borrowed.codes.1),
                        std::slice::from_raw_parts(borrowed.queries.0, borrowed.queries.1),
                    )
                };
                let part = scan_blocks(kernel, codes, queries, width, k, &shared.next);
                shared.gate.lock().unwrap_or_else(PoisonError::into_inner).parts.push(part);
                drop(inside);
            });
            // A thread that cannot be started leaves its share to the caller.
            drop(spawned);
        }
        let mine = scan_blocks(kernel, codes, queries, width, k, &shared.next);
        drop(closing);
        let mut gate = shared.gate.lock().unwrap_or_else(PoisonError::into_inner);
        // A helper's panic is a bug; panic here, where the caller's catch_unwind (the Python
        // bindings') turns it into an error, rather than answer without its blocks.
        assert!(!gate.failed, "a Hamming scan thread panicked");
        let mut parts = std::mem::take(&mut gate.parts);
        parts.push(mine);
        parts
    }
}

fn config(message: String) -> Error {
    Error::Config { message }
}

/// The k smallest (distance, row) pairs seen so far, the largest on top.
struct TopK {
    heap: BinaryHeap<(u32, usize)>,
    k: usize,
}

impl TopK {
    /// The best k of at most `rows` rows.
    fn new(k: usize, rows: usize) -> Self {
        TopK { heap: BinaryHeap::with_capacity(k.min(rows) + 1), k }
    }

    /// A row at this distance is kept only below it. Rows come in increasing order, so a row
    /// at the k-th distance would come after every kept one and is not better.
    #[inline(always)]
    fn bound(&self) -> u32 {
        match self.heap.peek() {
            Some(&(d, _)) if self.heap.len() == self.k => d,
            _ if self.k == 0 => 0,
            _ => u32::MAX,
        }
    }

    #[inline(always)]
    fn offer(&mut self, distance: u32, row: usize) {
        if self.heap.len() < self.k {
            self.heap.push((distance, row));
        } else if let Some(mut top) = self.heap.peek_mut() {
            if (distance, row) < *top {
                *top = (distance, row);
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// One AVX-512 register per 64 bytes, VPOPCNTDQ (widths of 64, 128 and 256 bytes).
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// 64-bit words counted with the `popcnt` instruction.
    #[cfg(target_arch = "x86_64")]
    Popcnt,
    /// 64-bit words counted by whatever the target has.
    Portable,
}

impl Kernel {
    fn detect(width: usize) -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if matches!(width, 64 | 128 | 256)
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
            {
                return Kernel::Avx512;
            }
            if std::arch::is_x86_feature_detected!("popcnt") {
                return Kernel::Popcnt;
            }
        }
        let _ = width;
        Kernel::Portable
    }

    /// Every kernel this machine can run for codes of this width (for the tests).
    #[cfg(test)]
    fn all(width: usize) -> Vec<Kernel> {
        let mut all = vec![Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("popcnt") {
                all.push(Kernel::Popcnt);
            }
            if Kernel::detect(width) == Kernel::Avx512 {
                all.push(Kernel::Avx512);
            }
        }
        all
    }
}

/// Rows per block: each block (128 KB, in L2) is scanned for every query before the next, so
/// that a batch of queries reads the codes from memory once; it is also what a thread takes
/// at a time.
fn block_rows(width: usize) -> usize {
    ((128 * 1024 / width).max(8) / 8) * 8
}

/// The top k of each query among the blocks of `codes` this thread takes from `next`, in
/// increasing order (what [`TopK::bound`] relies on).
fn scan_blocks(
    kernel: Kernel,
    codes: &[u8],
    queries: &[u8],
    width: usize,
    k: usize,
    next: &AtomicUsize,
) -> Vec<TopK> {
    let rows = block_rows(width);
    let mut tops: Vec<TopK> =
        queries.chunks_exact(width).map(|_| TopK::new(k, codes.len() / width)).collect();
    if k == 0 {
        return tops;
    }
    let words: Vec<Vec<u64>> = queries.chunks_exact(width).map(words_of).collect();
    let blocks: Vec<&[u8]> = codes.chunks(rows * width).collect();
    loop {
        let b = next.fetch_add(1, Ordering::Relaxed);
        let Some(block) = blocks.get(b) else { break };
        let start = b * rows;
        for ((query, words), top) in queries.chunks_exact(width).zip(&words).zip(&mut tops) {
            match kernel {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: Kernel::detect chose Avx512 only after is_x86_feature_detected! found
                // avx512f and avx512vpopcntdq on this CPU, and only for widths of 64, 128 or
                // 256 bytes (the function's requirement on `query`).
                Kernel::Avx512 => unsafe { x86::scan_avx512(block, query, start, top) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: Kernel::detect chose Popcnt only after is_x86_feature_detected! found
                // popcnt on this CPU.
                Kernel::Popcnt => unsafe { x86::scan_popcnt(block, words, width, start, top) },
                Kernel::Portable => scan_words(block, words, width, start, top),
            }
        }
    }
    tops
}

/// A code as native-endian 64-bit words, the last one padded with zero bytes when the width
/// is not a multiple of 8. Both sides of a distance are read the same way, so the byte order
/// does not change the count.
fn words_of(code: &[u8]) -> Vec<u64> {
    code.chunks(8).map(word).collect()
}

/// Up to 8 bytes as a word, zero-padded.
#[inline(always)]
fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w[..bytes.len()].copy_from_slice(bytes);
    u64::from_ne_bytes(w)
}

/// The word-at-a-time scan of codes `width` bytes wide (`query` is [`words_of`] a code);
/// inlined into callers compiled with `popcnt` it uses that.
#[inline(always)]
fn scan_words(codes: &[u8], query: &[u64], width: usize, first: usize, top: &mut TopK) {
    let whole = width / 8;
    let mut bound = top.bound();
    for (i, row) in codes.chunks_exact(width).enumerate() {
        let (words, tail) = row.split_at(whole * 8);
        let mut distance: u32 =
            words.chunks_exact(8).zip(query).map(|(w, q)| (word(w) ^ q).count_ones()).sum();
        if let Some(q) = query.get(whole) {
            distance += (word(tail) ^ q).count_ones();
        }
        if distance < bound {
            top.offer(distance, first + i);
            bound = top.bound();
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{scan_words, TopK};

    /// # Safety
    /// The CPU must have `popcnt`.
    #[target_feature(enable = "popcnt")]
    pub(super) unsafe fn scan_popcnt(
        codes: &[u8],
        query: &[u64],
        width: usize,
        first: usize,
        top: &mut TopK,
    ) {
        scan_words(codes, query, width, first, top);
    }

    /// The popcounts of `row ^ query` summed over the row's P 64-byte parts, as 8 lane counts.
    ///
    /// # Safety
    /// `row` points to `P * 64` readable bytes; the CPU has avx512f and avx512vpopcntdq.
    #[inline(always)]
    unsafe fn lane_counts<const P: usize>(row: *const u8, query: &[__m512i; P]) -> __m512i {
        let mut sum = _mm512_setzero_si512();
        for (j, q) in query.iter().enumerate() {
            // SAFETY: part j of the row is in bounds (the caller's promise); loadu has no
            // alignment requirement.
            let r = unsafe { _mm512_loadu_si512(row.add(j * 64).cast()) };
            sum = _mm512_add_epi64(sum, _mm512_popcnt_epi64(_mm512_xor_si512(r, *q)));
        }
        sum
    }

    /// The first step of an 8x8 transpose-and-add: 128-bit lane i of the result holds
    /// [a[2i] + a[2i+1], b[2i] + b[2i+1]].
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn pair64(a: __m512i, b: __m512i) -> __m512i {
        _mm512_add_epi64(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b))
    }

    /// The next steps: lanes [a0+a1, a2+a3, b0+b1, b2+b3] of 128 bits each.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn pair128(a: __m512i, b: __m512i) -> __m512i {
        // 0x88 takes 128-bit lanes [a0, a2, b0, b2], 0xDD [a1, a3, b1, b3].
        _mm512_add_epi64(_mm512_shuffle_i64x2::<0x88>(a, b), _mm512_shuffle_i64x2::<0xDD>(a, b))
    }

    /// # Safety
    /// The CPU must have avx512f and avx512vpopcntdq; `query.len()` is 64, 128 or 256.
    pub(super) unsafe fn scan_avx512(codes: &[u8], query: &[u8], first: usize, top: &mut TopK) {
        // SAFETY: the caller's promises, passed on (P * 64 == query.len()).
        unsafe {
            match query.len() {
                64 => scan_parts::<1>(codes, query, first, top),
                128 => scan_parts::<2>(codes, query, first, top),
                _ => scan_parts::<4>(codes, query, first, top),
            }
        }
    }

    /// # Safety
    /// The CPU must have avx512f and avx512vpopcntdq; `query.len() == P * 64`.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    unsafe fn scan_parts<const P: usize>(codes: &[u8], query: &[u8], first: usize, top: &mut TopK) {
        let width = P * 64;
        debug_assert_eq!(query.len(), width);
        // SAFETY: part j is 64 bytes of `query`, whose length is P * 64.
        let q: [__m512i; P] =
            std::array::from_fn(|j| unsafe { _mm512_loadu_si512(query.as_ptr().add(j * 64).cast()) });
        let n = codes.len() / width;
        let base = codes.as_ptr();
        let mut bound = top.bound();
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: rows i..i+8 are within `codes` (i + 8 <= n rows of `width` bytes).
            let c: [__m512i; 8] =
                std::array::from_fn(|r| unsafe { lane_counts(base.add((i + r) * width), &q) });
            // An 8x8 transpose-and-add: lane r of `d` is row i + r's distance.
            let d = pair128(
                pair128(pair64(c[0], c[1]), pair64(c[2], c[3])),
                pair128(pair64(c[4], c[5]), pair64(c[6], c[7])),
            );
            let mut below = _mm512_cmplt_epu64_mask(d, _mm512_set1_epi64(i64::from(bound)));
            if below != 0 {
                let mut lanes = [0u64; 8];
                // SAFETY: `lanes` is 64 writable bytes.
                unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().cast(), d) };
                while below != 0 {
                    let r = below.trailing_zeros() as usize;
                    below &= below - 1;
                    // A distance is at most 8 * width bits, far below u32::MAX.
                    let distance = lanes[r] as u32;
                    if distance < bound {
                        top.offer(distance, first + i + r);
                        bound = top.bound();
                    }
                }
            }
            i += 8;
        }
        scan_words(&codes[i * width..], &super::words_of(query), width, first + i, top);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random byte stream (xorshift), so the tests need no crate.
    fn bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 24) as u8
            })
            .collect()
    }

    /// The answer by sorting every (distance, row) pair.
    fn brute(codes: &[u8], queries: &[u8], width: usize, k: usize) -> Neighbours {
        let mut out = Neighbours { distances: vec![], rows: vec![] };
        for q in queries.chunks_exact(width) {
            let mut all: Vec<(i32, i64)> = codes
                .chunks_exact(width)
                .enumerate()
                .map(|(r, c)| (c.iter().zip(q).map(|(a, b)| (a ^ b).count_ones() as i32).sum(), r as i64))
                .collect();
            all.sort_unstable();
            all.resize(k.max(all.len()), (MISSING_DISTANCE, -1));
            out.distances.extend(all[..k].iter().map(|p| p.0));
            out.rows.extend(all[..k].iter().map(|p| p.1));
        }
        out
    }

    #[test]
    fn every_kernel_matches_sorting_every_distance() {
        for width in [1, 2, 7, 8, 12, 16, 32, 64, 128, 256] {
            for n in [0, 1, 7, 8, 9, 63, 500, 5000, 40_000] {
                let codes = bytes(n * width, n as u64 + width as u64);
                // Duplicated rows make ties: the lower row must come first.
                let codes: Vec<u8> = codes.iter().chain(&codes[..(n / 2) * width]).copied().collect();
                let queries = bytes(3 * width, 99);
                for k in [0, 1, 5, 64, n + 3] {
                    let want = brute(&codes, &queries, width, k);
                    for kernel in Kernel::all(width) {
                        for threads in [1, 3] {
                            let got = knn_with(kernel, &codes, &queries, width, k, threads);
                            assert_eq!(got, want, "{kernel:?} width {width} n {n} k {k} threads {threads}");
                        }
                    }
                    assert_eq!(knn(&codes, &queries, width, k, 0).unwrap(), want);
                    assert_eq!(knn(&codes, &queries, width, k, 2).unwrap(), want);
                }
            }
        }
    }

    #[test]
    fn known_distances() {
        // Query all zeros; rows with 0, 64, 1 and 512 bits set.
        let mut codes = vec![0u8; 4 * 64];
        codes[64..72].fill(0xFF);
        codes[128] = 0x80;
        codes[192..256].fill(0xFF);
        for kernel in Kernel::all(64) {
            let got = knn_with(kernel, &codes, &[0; 64], 64, 4, 1);
            assert_eq!(got.distances, [0, 1, 64, 512], "{kernel:?}");
            assert_eq!(got.rows, [0, 2, 1, 3], "{kernel:?}");
        }
    }

    #[test]
    fn pads_when_there_are_fewer_codes_than_k() {
        let got = knn(&[], &[0; 16], 16, 2, 0).unwrap();
        assert_eq!(got.distances, [MISSING_DISTANCE; 2]);
        assert_eq!(got.rows, [-1, -1]);
        assert_eq!(knn(&[0; 16], &[], 16, 2, 0).unwrap().rows, Vec::<i64>::new());
    }

    #[test]
    fn refuses_sizes_that_are_not_whole_codes() {
        for (codes, width) in [(vec![0u8; 12], 0), (vec![0u8; 12], 8), (vec![0u8; 8], 3)] {
            assert!(matches!(knn(&codes, &[0; 8], width, 1, 0), Err(Error::Config { .. })));
        }
    }
}
