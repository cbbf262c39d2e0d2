//! `scorecam convert`: a PyTorch state_dict to the app's int8 weight file, manifest and model list.

use std::path::{Path, PathBuf};

use anyhow::Result;

/// Convert a PyTorch state_dict (.pth/.pt or .safetensors) into the app's int8 weight file + manifest.
#[derive(clap::Args)]
pub struct Args {
    input: PathBuf,
    /// Output .safetensors; the manifest is written beside it as .json.
    #[arg(long, short)]
    out: PathBuf,
    /// vgg16, efficientnet_lite0 or vgg_tiny (default: detected from the keys).
    #[arg(long)]
    arch: Option<String>,
}

pub fn run(a: Args) -> Result<()> {
    let arch = a.arch.map(|n| scorecam::models::architecture(&n)).transpose()?;
    let c = scorecam::convert::convert(&a.input, &a.out, arch)?;
    let dir = a.out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let index = scorecam::convert::write_model_index(dir)?;
    println!(
        "{}: {} -> {} ({:.1} MB) + {}",
        c.arch.display_name,
        a.input.display(),
        c.weights_path.display(),
        c.manifest.weights.bytes as f64 / 1e6,
        c.manifest_path.display()
    );
    println!("model list for the browser app: {}", index.display());
    Ok(())
}
