//! `scorecam info`: what a model is: its input, classes, size, and the layers it can explain.

use anyhow::Result;
use scorecam::session::ModelInfo;

use crate::args::ModelArgs;

/// Show a model: input size and normalisation, classes, parameters, the layer explained and
/// every layer that can be (`--layer`).
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Print one JSON object (the wasm API's `model()`).
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let (_session, model) = a.model.session()?;
    let info = ModelInfo::of(&model);
    if a.json {
        println!("{}", serde_json::to_string(&info)?);
        return Ok(());
    }
    println!("{} ({}): {} classes, {}x{} input, mean {:?} std {:?}", info.display_name, info.arch, info.class_names.len(), info.input_size, info.input_size, info.normalisation.mean, info.normalisation.std);
    println!("{:.2} M parameters; on {}: {} ({:.1} MB), convolutions {}", info.parameters as f64 / 1e6, a.model.device.backend, info.device_weights, info.weight_bytes_on_device as f64 / 1e6, info.conv_kernels);
    println!("layers Score-CAM can explain (--layer), * the one it does:");
    for l in &info.layers {
        let mark = if l.name == info.target_layer { "*" } else { " " };
        println!(" {mark} {} ({}x{}x{})", l.name, l.shape[0], l.shape[1], l.shape[2]);
    }
    Ok(())
}
