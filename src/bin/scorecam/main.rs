//! `scorecam`: convert weights, explain images, evaluate methods, measure accuracy and speed.
//! Each subcommand is a module; the shared flags are in [`args`]; the work is in the library.

mod accuracy;
mod args;
mod bench;
mod convert;
mod eval;
mod explain;
mod sanity;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "scorecam", version, about = "Score-CAM explanations for CNNs (VGG16, EfficientNet-Lite0)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Convert(convert::Args),
    Explain(explain::Args),
    Accuracy(accuracy::Args),
    Eval(eval::Args),
    Sanity(sanity::Args),
    Bench(bench::Args),
}

fn main() {
    let result = match Cli::parse().command {
        Command::Convert(a) => convert::run(a),
        Command::Explain(a) => explain::run(a),
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
