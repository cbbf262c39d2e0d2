//! `scorecam convert`: a PyTorch state_dict of a built-in architecture, or any CNN exported to
//! ONNX, to the app's int8 weight file, manifest and model list.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::args::OnnxArgs;

/// Convert a model into the app's int8 weight file + manifest: a PyTorch state_dict (.pth/.pt or
/// .safetensors) of VGG16 or EfficientNet-Lite0, or an ONNX file (.onnx: the file then carries
/// its graph; see docs/onnx.md).
#[derive(clap::Args)]
pub struct Args {
    input: PathBuf,
    /// Output .safetensors; the manifest is written beside it as .json.
    #[arg(long, short)]
    out: PathBuf,
    /// vgg16, efficientnet_lite0 or vgg_tiny (default: detected from the keys; not for ONNX).
    #[arg(long)]
    arch: Option<String>,
    /// The name the page shows (ONNX; default: the file's name).
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    onnx: OnnxArgs,
}

pub fn run(a: Args) -> Result<()> {
    let dir = a.out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if scorecam::session::is_onnx(&a.input) {
        let bytes = std::fs::read(&a.input).with_context(|| format!("reading {}", a.input.display()))?;
        let mut options = a.onnx.options()?;
        options.name = a.name.clone();
        let file = a.out.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let (manifest, int8) = scorecam::onnx::convert(bytes, &a.input.display().to_string(), &options, &file)?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(&a.out, &int8).with_context(|| format!("writing {}", a.out.display()))?;
        let manifest_path = a.out.with_extension("json");
        std::fs::write(&manifest_path, manifest.to_json()).with_context(|| format!("writing {}", manifest_path.display()))?;
        let index = scorecam::convert::write_model_index(dir)?;
        println!("{}: {} -> {} ({:.1} MB) + {}", manifest.name, a.input.display(), a.out.display(), int8.len() as f64 / 1e6, manifest_path.display());
        let [c, h, w] = manifest.target_shape;
        println!("explains {} ({c}x{h}x{w}), {} classes, input {}x{}", manifest.target_layer, manifest.class_names.len(), manifest.input_size, manifest.input_size);
        println!("model list for the browser app: {}", index.display());
        return Ok(());
    }
    anyhow::ensure!(a.onnx.layer.is_none() && a.onnx.labels.is_none() && a.name.is_none(), "--layer, --labels and --name are for ONNX models; VGG16 and EfficientNet-Lite0 explain their own target with ImageNet's classes");
    let arch = a.arch.map(|n| scorecam::models::architecture(&n)).transpose()?;
    let c = scorecam::convert::convert(&a.input, &a.out, arch)?;
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
