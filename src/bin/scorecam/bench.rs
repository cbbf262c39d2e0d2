//! `scorecam bench`: load, forward and Score-CAM times.

use std::path::PathBuf;

use anyhow::Result;
use scorecam::backend::Backend;

/// Forward throughput at batch 1 and 16, and the time of one full Score-CAM.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, short)]
    model: PathBuf,
    /// Image for the Score-CAM run (default: the mean colour, zeros after normalisation).
    #[arg(long)]
    image: Option<PathBuf>,
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Batch for the throughput measurement and Score-CAM (capped by the model's binding limit).
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Timed repetitions of each forward measurement.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Time Faster-Score-CAM with k channels instead of the full Score-CAM (for slow backends).
    #[arg(long)]
    top_k: Option<usize>,
    /// Score-CAM batches scored at once on the CPU (default: one per core).
    #[arg(long)]
    lanes: Option<usize>,
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let image = a.image.as_deref().map(scorecam::image_input::read).transpose()?;
    let mut backend = Backend::start(&a.backend)?;
    if let Some(lanes) = a.lanes {
        backend.lanes = lanes.max(1);
    }
    let b = scorecam::bench::run(&a.model, backend, image.as_ref(), a.batch_size, a.runs, a.top_k)?;
    if a.json {
        println!("{}", serde_json::to_string(&b)?);
    } else {
        println!("{} on {}: load {:.2} s", b.model, b.backend, b.load_s);
        println!("forward batch 1: {:.3} s ({:.2} img/s)", b.forward_b1_s, 1.0 / b.forward_b1_s);
        println!("forward batch {}: {:.3} s ({:.2} img/s)", b.forward_batch, b.forward_bn_s, b.images_per_s_bn);
        println!("Score-CAM: {:.2} s, {} masked forwards, {} constant channels skipped", b.scorecam_s, b.scorecam_forwards, b.skipped_constant);
    }
    Ok(())
}
