//! Flags shared by several subcommands, and the lists they offer (methods, colormaps), read from
//! the library's registries.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::builder::{PossibleValue, PossibleValuesParser};
use indicatif::{ProgressBar, ProgressStyle};

use scorecam::backend::{Backend, Kernels};
use scorecam::cam::{Method, MethodSpec, OptionValues, Target, METHODS};
use scorecam::models::{ConvChoice, ConvProbe, DeviceWeights, Model};
use scorecam::onnx::{ImportOptions, OnnxOptions};
use scorecam::render::COLORMAPS;
use scorecam::session::Session;
use scorecam::weights::NamedTensors;

/// The model and the device it runs on.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// The model: an ONNX file (.onnx), or a converted one's manifest (.json) or weight file
    /// (.safetensors, manifest beside it).
    #[arg(long, short)]
    pub model: PathBuf,
    #[command(flatten)]
    pub onnx: OnnxArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

impl ModelArgs {
    /// A session with the model loaded and its convolution kernels chosen.
    pub fn session(&self) -> Result<(Session, Arc<Model>)> {
        self.device.session(&self.model, &self.onnx.options()?)
    }

    /// The model's weights as f32 tensors under the names it is built from (what the sanity
    /// check randomises): the ONNX file's, or the int8 file's beside the manifest.
    pub fn tensors(&self, model: &Model) -> Result<NamedTensors> {
        if scorecam::session::is_onnx(&self.model) {
            let bytes = std::fs::read(&self.model).with_context(|| format!("reading {}", self.model.display()))?;
            return Ok(scorecam::onnx::import(bytes, &self.model.display().to_string(), &self.onnx.options()?.import)?.tensors);
        }
        let path = scorecam::session::manifest_path(&self.model).with_file_name(&model.manifest.weights.file);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Model::decode(&model.manifest, &bytes)?.tensors)
    }
}

/// How to read a model that is not one of the built-in architectures (docs/onnx.md).
#[derive(clap::Args, Default)]
pub struct OnnxArgs {
    /// The layer to explain, by its value's name in the ONNX graph (default: the last 4-D layer
    /// before the network pools its positions away; `scorecam info` lists them).
    #[arg(long)]
    pub layer: Option<String>,
    /// Class names: a file with one a line, or a JSON list (default: the ONNX file's
    /// `scorecam.labels` metadata, else ImageNet's for a model of 1000 outputs, else "class 0",
    /// "class 1", ...; `imagenet` asks for ImageNet's 1000).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Input side in pixels, for an ONNX model whose file does not fix it (default: its
    /// `scorecam.input_size` metadata, else 224).
    #[arg(long)]
    pub input_size: Option<usize>,
    /// Input normalisation mean, R,G,B of pixels in [0, 1] (default: the ONNX file's
    /// `scorecam.mean` metadata, else ImageNet's 0.485,0.456,0.406).
    #[arg(long, value_parser = parse_three)]
    pub mean: Option<[f32; 3]>,
    /// Input normalisation std (default: the file's `scorecam.std`, else ImageNet's
    /// 0.229,0.224,0.225).
    #[arg(long, value_parser = parse_three)]
    pub std: Option<[f32; 3]>,
}

impl OnnxArgs {
    pub fn options(&self) -> Result<OnnxOptions> {
        let labels = match self.labels.as_deref() {
            None => None,
            Some(p) if p.as_os_str() == "imagenet" => Some(scorecam::convert::imagenet_classes()),
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("reading labels {}", p.display()))?;
                Some(scorecam::labels::parse(&text).with_context(|| format!("labels {}", p.display()))?)
            }
        };
        Ok(OnnxOptions { import: ImportOptions { input_size: self.input_size, layer: self.layer.clone() }, labels, mean: self.mean, std: self.std, name: None })
    }
}

fn parse_three(s: &str) -> std::result::Result<[f32; 3], String> {
    let v: Vec<f32> = s.split(',').map(|x| x.trim().parse::<f32>().map_err(|_| format!("{s:?} is not three numbers, e.g. 0.485,0.456,0.406"))).collect::<std::result::Result<_, _>>()?;
    v.try_into().map_err(|_| format!("{s:?} is not three numbers, e.g. 0.485,0.456,0.406"))
}

/// The device, and how models run on it.
#[derive(clap::Args)]
pub struct DeviceArgs {
    /// flex (the CPU) or wgpu (Vulkan/Metal/DX12; lavapipe without a GPU).
    #[arg(long, default_value = "flex")]
    pub backend: String,
    /// Score-CAM batches scored at once on the CPU, one thread each (default: one per core; 1:
    /// one after another)
    #[arg(long)]
    pub lanes: Option<usize>,
    /// Convolution kernels: auto (on a GPU, each layer shape timed both ways once per adapter and
    /// cached in ~/.cache/scorecam/conv-probes.json; on the CPU ours, `cpu`), direct (Burn's
    /// conv2d), matmul (im2col + matmul) or cpu (ours on the CPU backend: GEMMs on NCHW with the
    /// bias and activation fused)
    #[arg(long, default_value = "auto", value_parser = ["auto", "direct", "matmul", "cpu"])]
    pub conv: String,
    /// Where the weights live on the device: int8 (wgpu's default: dequantised inside the
    /// matmul) or f32 (the CPU's only choice)
    #[arg(long, value_parser = ["int8", "f32"])]
    pub device_weights: Option<String>,
    /// GPU kernel set: native (all the adapter offers, autotuned) or browser (the page's: WGSL,
    /// no subgroups, 128 MiB bindings; needs a build without autotune, see docs/gpu.md)
    #[arg(long, default_value = "native", value_parser = ["native", "browser"])]
    pub kernels: String,
}

impl DeviceArgs {
    pub fn backend(&self) -> Result<Backend> {
        let mut backend = Backend::start_with(&self.backend, Kernels::from_name(&self.kernels)?)?;
        if let Some(lanes) = self.lanes {
            backend.lanes = lanes.max(1);
        }
        match self.device_weights.as_deref() {
            Some("int8") if backend.name == "cpu" => anyhow::bail!("--device-weights int8 needs a GPU backend (--backend wgpu): on the CPU the weights are f32"),
            Some("int8") => backend.weights = DeviceWeights::Int8,
            Some(_) => backend.weights = DeviceWeights::F32,
            None => {}
        }
        Ok(backend)
    }

    /// A session with `model` loaded and its convolution kernels chosen (see `--conv`).
    pub fn session(&self, model: &std::path::Path, onnx: &OnnxOptions) -> Result<(Session, Arc<Model>)> {
        let mut session = Session::new(self.backend()?);
        session.load_model_file(model, onnx)?;
        self.choose_conv_kernels(&mut session)?;
        let model = session.require_model()?;
        Ok((session, model))
    }

    /// Applies `--conv` to the session's model; `auto` on a GPU reuses or writes the probe cache.
    pub fn choose_conv_kernels(&self, session: &mut Session) -> Result<()> {
        let batch = MethodArgs::DEFAULT_BATCH;
        let choice = match self.conv.as_str() {
            "auto" if session.backend().name == "cpu" => ConvChoice::Cpu,
            "cpu" if session.backend().name != "cpu" => anyhow::bail!("--conv cpu runs on the CPU backend only (--backend flex)"),
            "auto" => ConvChoice::Probe { cached: None },
            other => ConvChoice::from_name(other)?,
        };
        let ConvChoice::Probe { .. } = choice else {
            pollster::block_on(session.choose_conv_kernels(choice, batch))?;
            return Ok(());
        };
        let cache = probe_cache_path();
        let mut probes: Vec<ConvProbe> = cache.as_ref().and_then(|p| std::fs::read_to_string(p).ok()).and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
        let key = session.conv_probe_key(batch)?;
        let cached = probes.iter().find(|p| p.key == key).cloned();
        let probe = pollster::block_on(session.choose_conv_kernels(ConvChoice::Probe { cached: cached.clone() }, batch))?.expect("a probe was asked for");
        if cached.as_ref() == Some(&probe) {
            eprintln!("convolution kernels from the probe cache ({key})");
            return Ok(());
        }
        eprintln!("convolution kernels probed: {}", probe.layers.iter().map(|l| format!("{}x{} {}->{} at {}: direct {:.2} ms, matmul {:.2} ms", l.shape.kernel, l.shape.kernel, l.shape.cin, l.shape.cout, l.shape.input[0], l.direct_ms, l.matmul_ms)).collect::<Vec<_>>().join("; "));
        if let Some(path) = cache {
            probes.retain(|p| p.key != probe.key);
            probes.push(probe);
            let written = path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|_| std::fs::write(&path, serde_json::to_string_pretty(&probes).unwrap_or_default()));
            if let Err(e) = written {
                eprintln!("warning: could not write the probe cache {}: {e}", path.display());
            }
        }
        Ok(())
    }
}

/// `$SCORECAM_CACHE_DIR`, `$XDG_CACHE_HOME/scorecam` or `~/.cache/scorecam`, + conv-probes.json.
fn probe_cache_path() -> Option<PathBuf> {
    let dir = std::env::var_os("SCORECAM_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("scorecam")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/scorecam")))?;
    Some(dir.join("conv-probes.json"))
}

/// How each method runs: the shared batch size and Faster-Score-CAM's top-k as flags, anything
/// else as `--option name=value`.
#[derive(clap::Args)]
pub struct MethodArgs {
    /// Inputs per forward pass, for the methods that batch (capped by the device's binding limit).
    #[arg(long, default_value_t = MethodArgs::DEFAULT_BATCH)]
    pub batch_size: usize,
    /// Faster-Score-CAM: score only the k channels of largest variance (Score-CAM only).
    #[arg(long)]
    pub top_k: Option<usize>,
    /// A method option, e.g. `-o masks=1000` for RISE, `-o eigen_smooth=1` (see each method's
    /// options in the README).
    #[arg(long = "option", short = 'o', value_parser = parse_option)]
    pub options: Vec<(String, f64)>,
    /// The score to explain: softmax (the class's probability), logit, or logit-minus-mean (the
    /// class's logit minus the mean of the others) [default: each method's own: the logit for
    /// the gradient methods, the probability for the official Score-CAM, RISE and Group-CAM].
    #[arg(long, value_parser = parse_target)]
    pub target: Option<Target>,
}

impl MethodArgs {
    pub const DEFAULT_BATCH: usize = 16;

    /// The method called `name` with these flags; a flag the method does not take is an error.
    pub fn method(&self, name: &str) -> Result<Method> {
        let spec = scorecam::cam::registry::spec(name)?;
        Ok(spec.with_options(&self.values(spec))?)
    }

    /// The option values these flags give `spec`: the batch size where it batches.
    pub fn values(&self, spec: &MethodSpec) -> OptionValues {
        let mut values = OptionValues::new();
        if spec.has_option("batch_size") {
            values.insert("batch_size".into(), self.batch_size as f64);
        }
        if let Some(k) = self.top_k {
            values.insert("top_k".into(), k as f64);
        }
        values.extend(self.options.iter().cloned());
        values
    }
}

fn parse_target(s: &str) -> std::result::Result<Target, String> {
    Target::from_name(s.trim()).map_err(|e| e.to_string())
}

fn parse_option(s: &str) -> std::result::Result<(String, f64), String> {
    let (name, value) = s.split_once('=').ok_or("an option is NAME=VALUE, e.g. masks=1000")?;
    Ok((name.trim().to_string(), value.trim().parse().map_err(|_| format!("option {name}: {value:?} is not a number"))?))
}

/// A `--method` value: a name (or alias) from the registry, as its canonical name.
pub fn parse_method(name: &str) -> std::result::Result<String, String> {
    scorecam::cam::registry::spec(name.trim()).map(|s| s.name.to_string()).map_err(|e| e.to_string())
}

/// Named sets of methods `--methods` takes besides names: `cam-family` (every CAM method that
/// is not costly: what `scorecam compare` runs by default and docs/evaluation.md tabulates) and
/// `all` (every CAM method, SS-CAM and IS-CAM included; not the pixel baselines).
pub const METHOD_SETS: [&str; 2] = ["cam-family", "all"];

/// A `--methods` value: a method's name or one of [`METHOD_SETS`].
pub fn parse_method_or_set(name: &str) -> std::result::Result<String, String> {
    let name = name.trim();
    if METHOD_SETS.contains(&name) { Ok(name.to_string()) } else { parse_method(name) }
}

/// Method names with the sets expanded, in the registry's order, each once.
pub fn expand_sets(names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let members: Vec<String> = match name.as_str() {
            "cam-family" => METHODS.iter().filter(|s| s.kind == scorecam::cam::MethodKind::Cam && !s.costly).map(|s| s.name.to_string()).collect(),
            "all" => METHODS.iter().filter(|s| s.kind == scorecam::cam::MethodKind::Cam).map(|s| s.name.to_string()).collect(),
            other => vec![other.to_string()],
        };
        for m in members {
            if !out.contains(&m) {
                out.push(m);
            }
        }
    }
    out
}

/// `--help` for the method flags: every method of the registry with its summary and options.
pub fn methods_help() -> String {
    let mut help = String::from("A saliency method:");
    for s in &METHODS {
        let options: Vec<String> = s.options.iter().map(|o| format!("{}={}", o.name, o.default.map_or("off".into(), |d| d.to_string()))).collect();
        let options = if options.is_empty() { String::new() } else { format!(" [options: {}]", options.join(", ")) };
        let target = s.target.map_or("no target".to_string(), |t| format!("target {t}"));
        help.push_str(&format!("\n  {}: {} ({target}){options}", s.name, s.summary));
    }
    help
}

/// `--colormap` values.
pub fn colormap_names() -> PossibleValuesParser {
    PossibleValuesParser::new(COLORMAPS.iter().map(|c| PossibleValue::new(c.name)))
}

pub fn progress_bar(unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(&format!("{{bar:40}} {{pos}}/{{len}} {unit} [{{elapsed_precise}} < {{eta}}]")).expect("valid template"),
    );
    bar
}
