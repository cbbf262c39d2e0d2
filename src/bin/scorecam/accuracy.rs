//! `scorecam accuracy`: top-1 of the int8 file, and of the f32 source with `--source`.

use std::path::PathBuf;

use anyhow::Result;
use scorecam::eval::{accuracy, dataset};

use crate::args::{progress_bar, ModelArgs};

/// Top-1 accuracy on a labelled folder (labels.csv with file,class_index), int8 and optionally f32.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    #[arg(long)]
    data: PathBuf,
    /// The original state_dict: also measure the unquantised (f32) model.
    #[arg(long)]
    source: Option<PathBuf>,
    #[arg(long)]
    limit: Option<usize>,
}

pub fn run(a: Args) -> Result<()> {
    let (_session, model) = a.model.session()?;
    let f32_model = a.source.map(|s| scorecam::eval::f32_model(&model, &s)).transpose()?;
    let samples = dataset::select(dataset::read_labels(&a.data)?, a.limit, None);
    let bar = progress_bar("images");
    bar.set_length(samples.len() as u64);
    let r = pollster::block_on(accuracy::measure(&model, f32_model.as_ref(), &samples, &mut || bar.inc(1)))?;
    bar.finish_and_clear();
    println!("{} images, {}", r.images, r.model);
    println!("int8 top-1: {:.2}%", 100.0 * r.int8_top1);
    println!(
        "constant target-layer maps (masked forwards the official Score-CAM skips): {:.1} of {} per image ({:.1}%)",
        r.constant_maps_per_image,
        r.channels,
        100.0 * r.constant_maps_per_image / r.channels as f64
    );
    if let (Some(top1), Some(agree), Some(diff), Some(rel)) = (r.f32_top1, r.agreement, r.max_logit_diff, r.max_logit_rel_diff) {
        println!("f32  top-1: {:.2}%", 100.0 * top1);
        println!("int8/f32 top-1 agreement: {:.2}%", 100.0 * agree);
        println!("max |logit int8 - f32|: {diff:.4} ({:.2}% of the largest |logit|)", 100.0 * rel);
    }
    Ok(())
}
