//! The floor for the benchmark: inflate + untar + write of a tarball already in memory, through
//! the same extractor (same buffers, same durable writes) with no network, hashing or store
//! bookkeeping. Prints the median wall time in ms as JSON.
//!
//! Usage: cargo run --release --no-default-features --features floor --example floor -- <tgz> <work-dir> [runs]

use runtime_stager_core::{extract_tgz, ExtractLimits};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (tgz, work) = (&args[1], std::path::Path::new(&args[2]));
    let runs: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(7);
    let data = std::fs::read(tgz).expect("read tarball");
    let limits = ExtractLimits {
        max_bytes: 1 << 30,
        max_entries: 100_000,
    };
    let mut times = Vec::new();
    for i in 0..runs {
        let dest = work.join(format!("floor-{i}"));
        let _ = std::fs::remove_dir_all(&dest);
        let t = Instant::now();
        extract_tgz(&data[..], &dest, limits, &[], tgz, &AtomicBool::new(false)).expect("extract");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        std::fs::remove_dir_all(&dest).expect("clean up");
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{{\"medianMs\":{:.1},\"minMs\":{:.1},\"maxMs\":{:.1}}}",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
}
