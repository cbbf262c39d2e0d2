//! `scorecam convert`: a PyTorch state_dict (.pth/.pt as torch.save writes it, or safetensors)
//! to the app's int8 weight file and manifest. Keys are mapped to canonical names and, for
//! EfficientNet-Lite0, batch norm is folded into the preceding convolution.

use std::path::Path;

use crate::error::{Error, Result};
use crate::models::{lite0_convs, Architecture, LITE_BN_EPS};
use crate::weights::{encode_int8, sha256_hex, HostTensor, Manifest, NamedTensors, WeightsRef, FORMAT_ID};

/// The 1000 ImageNet class names in torchvision's order.
pub fn imagenet_classes() -> Vec<String> {
    include_str!("../assets/imagenet_classes.txt").lines().map(str::to_string).collect()
}

/// Reads every floating-point tensor of a .pth/.pt or .safetensors file as f32.
pub fn read_state_dict(path: &Path) -> Result<NamedTensors> {
    let file = path.display().to_string();
    let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
    let mut out = NamedTensors::new(&file);
    if is_safetensors {
        let bytes = std::fs::read(path).map_err(|e| Error::io(&file, e))?;
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::weights(&file, format!("not a readable safetensors file ({e})")))?;
        for (name, view) in st.tensors() {
            if let Some(data) = to_f32(&file, &name, format!("{:?}", view.dtype()).as_str(), view.data())? {
                out.insert(name, HostTensor::new(view.shape().to_vec(), data));
            }
        }
    } else {
        let reader = pytorch_reader::PytorchReader::new(path)
            .map_err(|e| Error::weights(&file, format!("not a readable PyTorch checkpoint ({e})")))?;
        for (name, t) in reader.into_tensors() {
            let bytes = t.read().map_err(|e| Error::weights(&file, e))?;
            let dtype = format!("{:?}", t.dtype());
            if let Some(data) = to_f32(&file, &name, &dtype, &bytes)? {
                out.insert(name, HostTensor::new(t.shape().to_vec(), data));
            }
        }
    }
    if out.tensors.is_empty() {
        return Err(Error::weights(&file, "contains no floating-point tensors"));
    }
    Ok(out)
}

/// f32 from raw little-endian bytes; `None` for integer tensors (e.g. num_batches_tracked).
fn to_f32(file: &str, name: &str, dtype: &str, b: &[u8]) -> Result<Option<Vec<f32>>> {
    let data: Vec<f32> = match dtype.to_ascii_uppercase().as_str() {
        "F32" => b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
        "F64" => b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32).collect(),
        "F16" => b.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        "BF16" => b.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        _ => return Ok(None),
    };
    if data.iter().any(|v| !v.is_finite()) {
        return Err(Error::weights(file, format!("tensor `{name}` contains NaN or infinity")));
    }
    Ok(Some(data))
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
pub fn detect_architecture(t: &NamedTensors) -> Result<Architecture> {
    if let Some(first) = t.tensors.get("features.0.weight") {
        return Ok(if first.shape.first() == Some(&8) { Architecture::VggTiny } else { Architecture::Vgg16 });
    }
    if t.contains("_conv_stem.weight") || t.contains("conv_stem.weight") {
        return Ok(Architecture::EfficientNetLite0);
    }
    let sample: Vec<&str> = t.tensors.keys().take(3).map(String::as_str).collect();
    Err(Error::weights(&t.file, format!("unrecognised model (keys such as {sample:?}); expected torchvision VGG16 or EfficientNet-Lite0")))
}

/// Source state_dict -> canonical f32 tensors of `arch` (keys mapped, batch norm folded).
pub fn canonical_tensors(source: NamedTensors, arch: &Architecture) -> Result<NamedTensors> {
    let source = strip_prefixes(source);
    match arch {
        Architecture::Vgg16 | Architecture::VggTiny => Ok(source),
        Architecture::EfficientNetLite0 => fold_lite0(lite_to_timm_keys(source)),
    }
}

/// efficientnet-lite-pytorch names (`_blocks.N._expand_conv`) -> timm's (`blocks.S.J.conv_pw`).
fn lite_to_timm_keys(t: NamedTensors) -> NamedTensors {
    if !t.contains("_conv_stem.weight") {
        return t;
    }
    let mut flat = Vec::new();
    for (s, &(repeats, ..)) in crate::models::LITE0_STAGES.iter().enumerate() {
        flat.extend((0..repeats).map(|j| (s, j)));
    }
    let mut out = NamedTensors::new(&t.file);
    for (k, v) in t.tensors {
        let nk = if let Some(rest) = k.strip_prefix("_blocks.") {
            let (n, rest) = rest.split_once('.').unwrap_or((rest, ""));
            match n.parse::<usize>().ok().and_then(|n| flat.get(n)) {
                Some(&(s, j)) => {
                    let renames: &[(&str, &str)] = if s == 0 {
                        &[("_depthwise_conv.", "conv_dw."), ("_bn1.", "bn1."), ("_project_conv.", "conv_pw."), ("_bn2.", "bn2.")]
                    } else {
                        &[("_expand_conv.", "conv_pw."), ("_bn0.", "bn1."), ("_depthwise_conv.", "conv_dw."), ("_bn1.", "bn2."), ("_project_conv.", "conv_pwl."), ("_bn2.", "bn3.")]
                    };
                    let mut r = rest.to_string();
                    if let Some((from, to)) = renames.iter().find(|(from, _)| r.starts_with(from)) {
                        r = format!("{to}{}", &r[from.len()..]);
                    }
                    format!("blocks.{s}.{j}.{r}")
                }
                None => k,
            }
        } else {
            [("_conv_stem.", "conv_stem."), ("_bn0.", "bn1."), ("_conv_head.", "conv_head."), ("_bn1.", "bn2."), ("_fc.", "classifier.")]
                .iter()
                .find(|(from, _)| k.starts_with(from))
                .map(|(from, to)| format!("{to}{}", &k[from.len()..]))
                .unwrap_or(k)
        };
        out.insert(nk, v);
    }
    out
}

/// The batch norm that follows a timm conv of Lite0.
fn lite0_bn_of(conv: &str) -> String {
    let (block, layer) = conv.rsplit_once('.').unwrap_or(("", conv));
    let bn = match layer {
        "conv_stem" => "bn1",
        "conv_head" => "bn2",
        "conv_dw" if block.starts_with("blocks.0.") => "bn1",
        "conv_pw" if block.starts_with("blocks.0.") => "bn2",
        "conv_pw" => "bn1",
        "conv_dw" => "bn2",
        _ => "bn3",
    };
    if block.is_empty() { bn.to_string() } else { format!("{block}.{bn}") }
}

/// Folds every batch norm into its conv: w' = w * g / sqrt(v + eps), b' = (b - m) * g / sqrt(v + eps) + beta.
fn fold_lite0(mut t: NamedTensors) -> Result<NamedTensors> {
    let mut out = NamedTensors::new(&t.file);
    for (conv, _cin, cout, ..) in lite0_convs() {
        let w = t.tensors.remove(&format!("{conv}.weight")).ok_or_else(|| Error::weights(&t.file, format!("missing tensor `{conv}.weight`")))?;
        let bias = t.tensors.remove(&format!("{conv}.bias"));
        let bn = lite0_bn_of(&conv);
        let mut take = |p: &str| t.take(&format!("{bn}.{p}"), &[cout]).map(|x| x.data);
        let (gamma, beta, mean, var) = (take("weight")?, take("bias")?, take("running_mean")?, take("running_var")?);
        if w.shape.first() != Some(&cout) {
            return Err(Error::weights(&t.file, format!("tensor `{conv}.weight` has shape {:?}, expected {cout} output channels", w.shape)));
        }
        let per_out = w.data.len() / cout;
        let mut wf = w.data;
        let mut bf = vec![0f32; cout];
        for o in 0..cout {
            let s = gamma[o] / (var[o] + LITE_BN_EPS).sqrt();
            wf[o * per_out..(o + 1) * per_out].iter_mut().for_each(|v| *v *= s);
            let b = bias.as_ref().map_or(0.0, |b| b.data[o]);
            bf[o] = (b - mean[o]) * s + beta[o];
        }
        out.insert(format!("{conv}.weight"), HostTensor::new(w.shape, wf));
        out.insert(format!("{conv}.bias"), HostTensor::new(vec![cout], bf));
    }
    for p in ["weight", "bias"] {
        let name = format!("classifier.{p}");
        let v = t.tensors.remove(&name).ok_or_else(|| Error::weights(&t.file, format!("missing tensor `{name}`")))?;
        out.insert(name, v);
    }
    t.expect_consumed()?;
    Ok(out)
}

/// The manifest of `arch` for a weight file described by `weights`.
pub fn manifest_for(arch: &Architecture, weights: WeightsRef) -> Manifest {
    let class_names = match arch.num_classes() {
        1000 => imagenet_classes(),
        n => (0..n).map(|i| format!("class {i}")).collect(),
    };
    Manifest {
        format: FORMAT_ID.to_string(),
        name: arch.display_name().to_string(),
        arch: arch.name().to_string(),
        input_size: arch.input_size(),
        normalisation: arch.normalisation(),
        target_layer: arch.target_layer(),
        target_shape: arch.target_shape(),
        quantization: "int8 symmetric per output channel (weights of rank >= 2); biases f32".to_string(),
        weights,
        class_names,
    }
}

/// What `convert` wrote.
pub struct Converted {
    pub arch: Architecture,
    pub weights_path: std::path::PathBuf,
    pub manifest_path: std::path::PathBuf,
    pub manifest: Manifest,
}

/// Converts `input` into `out` (.safetensors) and the manifest beside it (same stem, .json).
pub fn convert(input: &Path, out: &Path, arch: Option<Architecture>) -> Result<Converted> {
    let source = read_state_dict(input)?;
    let arch = match arch {
        Some(a) => a,
        None => detect_architecture(&strip_prefixes(source.clone()))?,
    };
    let tensors = canonical_tensors(source, &arch)?;
    // Build once on the CPU: proves every tensor is present with the right shape before writing.
    crate::models::Network::load(&arch, tensors.clone(), Default::default(), &burn::tensor::Device::flex())?;
    let bytes = encode_int8(&tensors, arch.name())?;
    let file_name = out.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let manifest = manifest_for(&arch, WeightsRef { file: file_name, bytes: bytes.len() as u64, sha256: sha256_hex(&bytes) });
    let manifest_path = out.with_extension("json");
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
    }
    std::fs::write(out, &bytes).map_err(|e| Error::io(out.display(), e))?;
    std::fs::write(&manifest_path, manifest.to_json()).map_err(|e| Error::io(manifest_path.display(), e))?;
    Ok(Converted { arch, weights_path: out.to_path_buf(), manifest_path, manifest })
}

/// Rewrites `dir/index.json`, the list of models the browser app offers: one entry per manifest
/// in `dir` (`name` is the manifest's file stem, used in share links).
pub fn write_model_index(dir: &Path) -> Result<std::path::PathBuf> {
    let mut entries = Vec::new();
    let listing = std::fs::read_dir(dir).map_err(|e| Error::io(dir.display(), e))?;
    let mut paths: Vec<_> = listing.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else { continue };
        if path.extension().is_none_or(|e| e != "json") || stem == "index" {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(path.display(), e))?;
        // Other JSON files in the folder are not ours to list.
        let Ok(manifest) = Manifest::from_json(&text, &path.display().to_string()) else { continue };
        entries.push(serde_json::json!({
            "name": stem,
            "display_name": manifest.name,
            "arch": manifest.arch,
            "manifest": format!("{stem}.json"),
            "bytes": manifest.weights.bytes,
        }));
    }
    let index = dir.join("index.json");
    let text = serde_json::to_string_pretty(&serde_json::json!({ "models": entries })).expect("JSON of strings and numbers");
    std::fs::write(&index, text + "\n").map_err(|e| Error::io(index.display(), e))?;
    Ok(index)
}
