//! A user's own network, exported to ONNX: imported (`scorecam_formats::onnx`, parsed and
//! planned without Burn), explained as it is, or converted into the project's form, an int8
//! weight file that carries the planned graph and a manifest (what `scorecam convert model.onnx`
//! writes and the page stores). The same functions serve the CLI and the page.

use crate::error::{Error, Result};
use crate::models::{BuildOptions, Model};
use crate::weights::{encode_int8, sha256_hex, Manifest, Normalisation, WeightsRef, FORMAT_ID};

pub use scorecam_formats::onnx::{import, looks_like_onnx, ImportOptions, Imported, Metadata};

/// How to read an ONNX model: what its file may not say (input size, labels, preprocessing) and
/// which layer to explain.
#[derive(Debug, Clone, Default)]
pub struct OnnxOptions {
    pub import: ImportOptions,
    /// Class names (a labels file's), else the file's metadata's, else ImageNet's for a model of
    /// 1000 classes, else "class 0", "class 1", ...
    pub labels: Option<Vec<String>>,
    /// Input normalisation, else the file's metadata's, else ImageNet's.
    pub mean: Option<[f32; 3]>,
    pub std: Option<[f32; 3]>,
    /// The name the page and reports show (default: the file's name without `.onnx`).
    pub name: Option<String>,
}

/// Where an imported model's class names come from (what the page's dialog says).
pub fn class_names_source(imported: &Imported, options: &OnnxOptions) -> &'static str {
    if options.labels.is_some() {
        "labels"
    } else if imported.metadata.labels.is_some() {
        "file"
    } else if imported.program.classes() == 1000 {
        "imagenet"
    } else {
        "numbered"
    }
}

/// The name a file's stem gives a model.
fn stem(file: &str) -> String {
    let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
    base.strip_suffix(".onnx").unwrap_or(base).to_string()
}

/// The manifest of an imported model whose weights `weights` describes.
pub fn manifest(imported: &Imported, file: &str, options: &OnnxOptions, weights: WeightsRef) -> Result<Manifest> {
    let p = &imported.program;
    let classes = p.classes();
    let class_names = match options.labels.clone().or_else(|| imported.metadata.labels.clone()) {
        Some(names) if names.len() == classes => names,
        Some(names) => return Err(Error::model(file, format!("the labels name {} classes, the model has {classes}", names.len()))),
        None if classes == 1000 => crate::convert::imagenet_classes(),
        None => (0..classes).map(|i| format!("class {i}")).collect(),
    };
    let imagenet = Normalisation::IMAGENET;
    let normalisation = Normalisation {
        mean: options.mean.or(imported.metadata.mean).unwrap_or(imagenet.mean),
        std: options.std.or(imported.metadata.std).unwrap_or(imagenet.std),
    };
    if normalisation.std.iter().any(|s| !(*s > 0.0 && s.is_finite())) || normalisation.mean.iter().any(|m| !m.is_finite()) {
        return Err(Error::model(file, format!("mean {:?} and std {:?}: each must be finite, and each std above 0", normalisation.mean, normalisation.std)));
    }
    let target = &p.values[p.target];
    let d = &target.shape.dims;
    Ok(Manifest {
        format: FORMAT_ID.to_string(),
        name: options.name.clone().unwrap_or_else(|| stem(file)),
        arch: "onnx".to_string(),
        input_size: p.input_size(),
        normalisation,
        target_layer: target.name.clone(),
        target_shape: [d[1], d[2], d[3]],
        quantization: "int8 symmetric per output channel (convolution and linear weights); biases and other tensors f32".to_string(),
        weights,
        class_names,
    })
}

/// The ONNX model in `bytes`, run as it is (f32 weights), under `build`.
pub fn load(bytes: Vec<u8>, file: &str, options: &OnnxOptions, build: &BuildOptions) -> Result<Model> {
    let weights = WeightsRef { file: file.to_string(), bytes: bytes.len() as u64, sha256: sha256_hex(&bytes) };
    let imported = import(bytes, file, &options.import)?;
    let manifest = manifest(&imported, file, options, weights)?;
    Model::from_tensors(manifest, Some(imported.program), imported.tensors, build)
}

/// The ONNX model in `bytes` in the project's form: the int8 weight file (carrying the graph)
/// and its manifest, which names it `weights_file`. Built once on the CPU first, so a file that
/// does not build is never written.
pub fn convert(bytes: Vec<u8>, file: &str, options: &OnnxOptions, weights_file: &str) -> Result<(Manifest, Vec<u8>)> {
    convert_imported(import(bytes, file, &options.import)?, file, options, weights_file)
}

/// [`convert`] of a model already imported.
pub fn convert_imported(imported: Imported, file: &str, options: &OnnxOptions, weights_file: &str) -> Result<(Manifest, Vec<u8>)> {
    // Checks the labels and preprocessing before the build.
    manifest(&imported, file, options, WeightsRef { file: weights_file.to_string(), bytes: 0, sha256: String::new() })?;
    let Imported { program, tensors, .. } = &imported;
    crate::models::Network::load(crate::models::architecture("onnx")?, Some(program), tensors.clone(), &BuildOptions::cpu())?;
    let out = encode_int8(tensors, "onnx", Some(program))?;
    let weights = WeightsRef { file: weights_file.to_string(), bytes: out.len() as u64, sha256: sha256_hex(&out) };
    Ok((manifest(&imported, file, options, weights)?, out))
}
