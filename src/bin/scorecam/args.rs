//! Flags shared by several subcommands, and the lists they offer (methods, colormaps), read from
//! the library's registries.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use clap::builder::{PossibleValue, PossibleValuesParser};
use indicatif::{ProgressBar, ProgressStyle};

use scorecam::backend::Backend;
use scorecam::cam::{Method, MethodSpec, OptionValues, METHODS};
use scorecam::models::Model;
use scorecam::render::COLORMAPS;
use scorecam::session::Session;

/// The model and the device it runs on.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// The model's manifest (.json) or weight file (.safetensors, manifest beside it).
    #[arg(long, short)]
    pub model: PathBuf,
    /// flex (the CPU) or wgpu (Vulkan/Metal/DX12; lavapipe without a GPU).
    #[arg(long, default_value = "flex")]
    pub backend: String,
    /// Score-CAM batches scored at once on the CPU, one thread each (default: one per core; 1:
    /// one after another)
    #[arg(long)]
    pub lanes: Option<usize>,
}

impl ModelArgs {
    /// A session with the model loaded.
    pub fn session(&self) -> Result<(Session, Arc<Model>)> {
        let mut backend = Backend::start(&self.backend)?;
        if let Some(lanes) = self.lanes {
            backend.lanes = lanes.max(1);
        }
        let mut session = Session::new(backend);
        let model = session.load_model_file(&self.model)?;
        Ok((session, model))
    }
}

/// How each method runs: the shared batch size and Faster-Score-CAM's top-k as flags, anything
/// else as `--option name=value`.
#[derive(clap::Args)]
pub struct MethodArgs {
    /// Inputs per forward pass, for the methods that batch (capped by the device's binding limit).
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Faster-Score-CAM: score only the k channels of largest variance (Score-CAM only).
    #[arg(long)]
    pub top_k: Option<usize>,
    /// A method option, e.g. `-o masks=1000` for RISE (see each method's options in the README).
    #[arg(long = "option", short = 'o', value_parser = parse_option)]
    pub options: Vec<(String, f64)>,
}

impl MethodArgs {
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

fn parse_option(s: &str) -> std::result::Result<(String, f64), String> {
    let (name, value) = s.split_once('=').ok_or("an option is NAME=VALUE, e.g. masks=1000")?;
    Ok((name.trim().to_string(), value.trim().parse().map_err(|_| format!("option {name}: {value:?} is not a number"))?))
}

/// A `--method` value: a name (or alias) from the registry, as its canonical name.
pub fn parse_method(name: &str) -> std::result::Result<String, String> {
    scorecam::cam::registry::spec(name.trim()).map(|s| s.name.to_string()).map_err(|e| e.to_string())
}

/// `--help` for the method flags: every method of the registry with its summary and options.
pub fn methods_help() -> String {
    let mut help = String::from("A saliency method:");
    for s in &METHODS {
        let options: Vec<String> = s.options.iter().map(|o| format!("{}={}", o.name, o.default.map_or("off".into(), |d| d.to_string()))).collect();
        let options = if options.is_empty() { String::new() } else { format!(" [options: {}]", options.join(", ")) };
        help.push_str(&format!("\n  {}: {}{options}", s.name, s.summary));
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
