//! `scorecam`: convert weights, explain images, evaluate methods, measure accuracy and speed.
//! Each subcommand is a module; the shared flags are in [`args`]; the work is in the library.

mod accuracy;
mod args;
mod bench;
mod compare;
mod convert;
mod eval;
mod explain;
mod info;
mod sanity;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "scorecam", version, about = "Score-CAM explanations for CNNs (VGG16, EfficientNet-Lite0, any CNN exported to ONNX)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Convert(convert::Args),
    Explain(explain::Args),
    Compare(compare::Args),
    Info(info::Args),
    Accuracy(accuracy::Args),
    Eval(eval::Args),
    Sanity(sanity::Args),
    Bench(bench::Args),
}

fn main() {
    keep_freed_memory();
    let result = match Cli::parse().command {
        Command::Convert(a) => convert::run(a),
        Command::Explain(a) => explain::run(a),
        Command::Compare(a) => compare::run(a),
        Command::Info(a) => info::run(a),
        Command::Accuracy(a) => accuracy::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Sanity(a) => sanity::run(a),
        Command::Bench(a) => bench::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// glibc hands out every block above 32 MiB as a fresh `mmap` and unmaps it on free, and flex
/// allocates its large zeroed buffers (im2col, NHWC copies, outputs) anew for every convolution:
/// each forward page-faulted hundreds of MiB in again, a third of a Lite0 Score-CAM's time in the
/// kernel. Freed memory now stays in one heap for the next batch (docs/benchmarks.md: 1.2x). Peak
/// memory is unchanged; the process just keeps it until it exits.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    unsafe extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_MMAP_MAX: i32 = -4;
    const M_ARENA_MAX: i32 = -8;
    // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
    unsafe {
        mallopt(M_MMAP_MAX, 0);
        mallopt(M_TRIM_THRESHOLD, i32::MAX);
        // One arena: Score-CAM's lanes (threads) allocate the same large blocks, which per-thread
        // arenas (64 MiB heaps) could only serve by mapping.
        mallopt(M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}
