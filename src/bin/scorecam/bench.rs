//! `scorecam bench`: load, forward and Score-CAM times.

use std::path::PathBuf;

use anyhow::Result;

/// Forward throughput at batch 1 and 16, and the time of one full Score-CAM.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, short)]
    model: PathBuf,
    /// Image for the Score-CAM run (default: the mean colour, zeros after normalisation).
    #[arg(long)]
    image: Option<PathBuf>,
    #[command(flatten)]
    onnx: crate::args::OnnxArgs,
    #[command(flatten)]
    device: crate::args::DeviceArgs,
    /// Batch for the throughput measurement and Score-CAM (capped by the model's binding limit).
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Timed repetitions of each forward measurement.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Time Faster-Score-CAM with k channels instead of the full Score-CAM (for slow backends).
    #[arg(long)]
    top_k: Option<usize>,
    /// Run the Score-CAM a second time, warm (every kernel compiled, and autotuned natively).
    #[arg(long)]
    warm: bool,
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let image = a.image.as_deref().map(scorecam::image_input::read).transpose()?;
    let t = std::time::Instant::now();
    let (session, _) = a.device.session(&a.model, &a.onnx.options()?)?;
    let b = scorecam::bench::run(session, t.elapsed().as_secs_f64(), image.as_ref(), a.batch_size, a.runs, a.top_k, a.warm)?;
    if a.json {
        println!("{}", serde_json::to_string(&b)?);
    } else {
        println!("{} on {} ({}): load {:.2} s, weights {} on the device ({:.1} MB)", b.model, b.backend, b.adapter, b.load_s, b.device_weights, b.weight_bytes_on_device as f64 / 1e6);
        println!("convolution kernels: {}", b.conv_kernels);
        println!("forward batch 1: {:.3} s ({:.2} img/s)", b.forward_b1_s, 1.0 / b.forward_b1_s);
        println!("forward batch {}: {:.3} s ({:.2} img/s)", b.forward_batch, b.forward_bn_s, b.images_per_s_bn);
        println!("Score-CAM: {:.2} s, {} masked forwards, {} constant channels skipped", b.scorecam_s, b.scorecam_forwards, b.skipped_constant);
        if let Some(w) = b.scorecam_warm_s {
            println!("Score-CAM warm: {w:.2} s");
        }
        println!("{:.2} GMAC per forward: {:.2} TFLOP/s", b.gmacs_per_forward, b.scorecam_tflops);
    }
    Ok(())
}
