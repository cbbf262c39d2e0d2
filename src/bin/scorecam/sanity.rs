//! `scorecam sanity`: cascading randomisation (Adebayo et al. 2018).

use std::path::PathBuf;

use anyhow::Result;
use scorecam::{eval, image_input};

use crate::args::{parse_method, methods_help, progress_bar, MethodArgs, ModelArgs};

/// Sanity check (Adebayo et al. 2018): cascading randomisation of the layers from the top;
/// per stage, the Spearman rank correlation of each method's map with the original one, and
/// a grid image of the maps.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Images to average over (the first is drawn in the grid).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[arg(long, value_delimiter = ',', default_value = "gradcam,gradcampp,scorecam", value_parser = parse_method, long_help = methods_help())]
    methods: Vec<String>,
    #[arg(long, short, default_value = "sanity-out")]
    out: PathBuf,
    #[command(flatten)]
    method_args: MethodArgs,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(a: Args) -> Result<()> {
    let methods = a.methods.iter().map(|m| a.method_args.method(m)).collect::<Result<Vec<_>>>()?;
    let (_session, model) = a.model.session()?;
    let tensors = a.model.tensors(&model)?;
    let inputs = a
        .images
        .iter()
        .map(|p| Ok(image_input::to_input(&image_input::read(p)?, model.input_size(), &model.manifest.normalisation)))
        .collect::<Result<Vec<_>>>()?;
    let bar = progress_bar("stages");
    let result = pollster::block_on(eval::sanity::cascading_randomisation(&model, tensors, &inputs, &methods, a.seed, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    }))?;
    bar.finish_and_clear();
    for p in eval::sanity::write(&a.out, &result, &image_input::read(&a.images[0])?)? {
        println!("-> {}", p.display());
    }
    Ok(())
}
