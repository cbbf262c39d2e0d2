//! `scorecam convert`: a PyTorch state_dict (.pth/.pt as torch.save writes it, or safetensors)
//! to the app's int8 weight file and manifest. The architecture is detected from the keys (its
//! row of `models::ARCHITECTURES`), which maps them to its names and folds batch norm where it
//! has it.

#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;

use crate::error::{Error, Result};
use crate::graph::Program;
use crate::models::{registry, ArchitectureSpec, BuildOptions, Network};
use crate::weights::{encode_int8, sha256_hex, Manifest, NamedTensors, WeightsRef, FORMAT_ID};

/// The 1000 ImageNet class names in torchvision's order.
pub fn imagenet_classes() -> Vec<String> {
    include_str!("../assets/imagenet_classes.txt").lines().map(str::to_string).collect()
}

/// Reads every floating-point tensor of a .pth/.pt or .safetensors file as f32
/// (`scorecam_formats::state_dict`, which the page reads dropped files with too).
#[cfg(not(target_arch = "wasm32"))]
pub fn read_state_dict(path: &Path) -> Result<NamedTensors> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::io(&file, e))?;
    crate::state_dict::read(&bytes, &file)
}

/// Drops wrapper prefixes (`module.` from DataParallel, `state_dict.`/`model.` containers).
fn strip_prefixes(mut t: NamedTensors) -> NamedTensors {
    for prefix in ["state_dict.", "model.", "module."] {
        if !t.tensors.is_empty() && t.tensors.keys().all(|k| k.starts_with(prefix)) {
            t.tensors = std::mem::take(&mut t.tensors).into_iter().map(|(k, v)| (k[prefix.len()..].to_string(), v)).collect();
        }
    }
    t
}

/// Recognises the architecture from the keys.
pub fn detect_architecture(t: &NamedTensors) -> Result<&'static ArchitectureSpec> {
    let t = strip_prefixes(t.clone());
    registry::detect(&t).ok_or_else(|| {
        let sample: Vec<&str> = t.tensors.keys().take(3).map(String::as_str).collect();
        Error::weights(&t.file, format!("unrecognised model (keys such as {sample:?}); expected torchvision VGG16 or EfficientNet-Lite0 (any other network: export it to ONNX)"))
    })
}

/// Source state_dict -> the tensors `arch` is built from (keys mapped, batch norm folded).
pub fn canonical_tensors(source: NamedTensors, arch: &ArchitectureSpec) -> Result<NamedTensors> {
    (arch.canonical)(strip_prefixes(source))
}

/// Builds the network once on the CPU, which proves that every tensor is there with the right
/// shape and none is left over, before anything is written; returns its target's shape.
pub fn check_buildable(arch: &ArchitectureSpec, graph: Option<&Program>, tensors: &NamedTensors) -> Result<[usize; 3]> {
    Ok(Network::load(arch, graph, tensors.clone(), &BuildOptions::cpu())?.target_shape())
}

/// The manifest of a model of `arch` whose target is `target_shape`, for a weight file described
/// by `weights`.
pub fn manifest_for(arch: &ArchitectureSpec, target_shape: [usize; 3], weights: WeightsRef) -> Manifest {
    let classes = arch.classes.unwrap_or(0);
    let class_names = match classes {
        1000 => imagenet_classes(),
        n => (0..n).map(|i| format!("class {i}")).collect(),
    };
    Manifest {
        format: FORMAT_ID.to_string(),
        name: arch.display_name.to_string(),
        arch: arch.name.to_string(),
        input_size: arch.input_size.unwrap_or(0),
        normalisation: arch.normalisation.clone(),
        target_layer: arch.target_layer.unwrap_or_default().to_string(),
        target_shape,
        quantization: QUANTIZATION.to_string(),
        weights,
        class_names,
    }
}

/// What the manifest says of the weights' int8 form.
const QUANTIZATION: &str = "int8 symmetric per output channel (convolution and linear weights); biases f32";

/// A state dict converted ([`convert_state_dict`]).
pub struct ConvertedStateDict {
    pub arch: &'static ArchitectureSpec,
    pub manifest: Manifest,
    /// The int8 weight file.
    pub bytes: Vec<u8>,
    /// Weights and biases.
    pub parameters: usize,
}

/// A state dict's `bytes` (`file` names it) as the app's int8 weight file and its manifest,
/// which names it `weights_file`: the architecture detected from the keys unless `arch` is given,
/// built once on the CPU before anything is written.
pub fn convert_state_dict(bytes: &[u8], file: &str, arch: Option<&'static ArchitectureSpec>, weights_file: &str) -> Result<ConvertedStateDict> {
    let source = crate::state_dict::read(bytes, file)?;
    let arch = match arch {
        Some(a) => a,
        None => detect_architecture(&source)?,
    };
    let tensors = canonical_tensors(source, arch)?;
    let target_shape = check_buildable(arch, None, &tensors)?;
    let out = encode_int8(&tensors, arch.name, None)?;
    let manifest = manifest_for(arch, target_shape, WeightsRef { file: weights_file.to_string(), bytes: out.len() as u64, sha256: sha256_hex(&out) });
    let parameters = tensors.tensors.values().map(|t| t.data.len()).sum();
    Ok(ConvertedStateDict { arch, manifest, bytes: out, parameters })
}

/// What `convert` wrote.
#[cfg(not(target_arch = "wasm32"))]
pub struct Converted {
    pub arch: &'static ArchitectureSpec,
    pub weights_path: std::path::PathBuf,
    pub manifest_path: std::path::PathBuf,
    pub manifest: Manifest,
}

/// Converts `input` into `out` (.safetensors) and the manifest beside it (same stem, .json).
#[cfg(not(target_arch = "wasm32"))]
pub fn convert(input: &Path, out: &Path, arch: Option<&'static ArchitectureSpec>) -> Result<Converted> {
    let source = std::fs::read(input).map_err(|e| Error::io(input.display(), e))?;
    let file_name = out.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let ConvertedStateDict { arch, manifest, bytes, .. } = convert_state_dict(&source, &input.display().to_string(), arch, &file_name)?;
    drop(source);
    let manifest_path = out.with_extension("json");
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
    }
    std::fs::write(out, &bytes).map_err(|e| Error::io(out.display(), e))?;
    std::fs::write(&manifest_path, manifest.to_json()).map_err(|e| Error::io(manifest_path.display(), e))?;
    Ok(Converted { arch, weights_path: out.to_path_buf(), manifest_path, manifest })
}

/// The text of `index.json`, the list of models the browser app offers, from a folder's JSON
/// files (`(file stem, text)`, in file-name order): one entry per manifest (`name` is its file
/// stem, used in share links); other JSON files in the folder are not ours to list.
pub fn model_index(files: &[(String, String)]) -> String {
    let entries: Vec<_> = files
        .iter()
        .filter(|(stem, _)| stem != "index")
        .filter_map(|(stem, text)| Manifest::from_json(text, stem).ok().map(|m| (stem, m)))
        .map(|(stem, manifest)| {
            serde_json::json!({
                "name": stem,
                "display_name": manifest.name,
                "arch": manifest.arch,
                "manifest": format!("{stem}.json"),
                "bytes": manifest.weights.bytes,
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({ "models": entries })).expect("JSON of strings and numbers") + "\n"
}

#[cfg(not(target_arch = "wasm32"))]
/// Rewrites `dir/index.json` ([`model_index`] of the manifests in `dir`).
pub fn write_model_index(dir: &Path) -> Result<std::path::PathBuf> {
    let listing = std::fs::read_dir(dir).map_err(|e| Error::io(dir.display(), e))?;
    let mut paths: Vec<_> = listing.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else { continue };
        files.push((stem.to_string(), std::fs::read_to_string(&path).map_err(|e| Error::io(path.display(), e))?));
    }
    let index = dir.join("index.json");
    std::fs::write(&index, model_index(&files)).map_err(|e| Error::io(index.display(), e))?;
    Ok(index)
}
