//! Saliency methods, shaped like torch-cam's `_CAM` and pytorch-grad-cam's `BaseCAM`: this module
//! is the method-independent pipeline (forward pass, weighted sum, ReLU, normalisation, resizing,
//! top-5); a method only computes its [`Saliency`] — channel weights for a CAM method, a map for
//! a pixel method — through one signature ([`Method::run`]).
//!
//! - [`forward`]: the unmasked pass, activations kept on the device, device read-back.
//! - [`registry`]: the one list of methods, their names, kinds and options.
//! - [`progress`]: progress, cancellation and yielding, passed in by the caller.
//! - [`maps`]: the CAM finish, min-max, softmax, top-k.
//! - One file per method: `scorecam`, `gradcam`, `gradcampp`, `rise`, `gradients`,
//!   `perturbation`; their shared numerics (resizing, blur) are in [`crate::imageops`].

mod forward;
mod gradcam;
mod gradcampp;
mod gradients;
mod maps;
mod perturbation;
pub mod progress;
pub mod registry;
mod rise;
mod scorecam;

pub use forward::{class_probabilities, forward_image, input_tensor, masked_on_device, FeatureMaps, Forwarded};
/// Device read-back lives with the models (`models::device`); methods read through it too.
pub use crate::models::read_f32;
pub use gradients::{input_gradients, IntegratedGradientsOptions, SmoothGradOptions};
pub use maps::{saliency_from_weights, softmax, top_k, Finish};
pub(crate) use maps::min_max;
pub use perturbation::MeaningfulPerturbationOptions;
pub use progress::{Partial, Progress, ProgressFn, Reporter, Stats, YieldFn};
pub use registry::{Method, MethodKind, MethodSpec, OptionValues, METHODS};
pub use rise::{MaskGenerator, RiseOptions};
pub use scorecam::{channel_mask, ChannelScoring, ScoreCamOptions, ScoreCamVariant};

use crate::error::{Error, Result};
use crate::models::Model;

/// What every method reads: the model, the forwarded image and the class to explain.
pub struct MethodInput<'a> {
    pub model: &'a Model,
    pub forwarded: &'a Forwarded,
    pub class: usize,
}

/// What a method computes.
#[derive(Debug, Clone)]
pub enum Saliency {
    /// A CAM method's channel weights and how their weighted sum is finished.
    Channels { weights: Vec<f32>, finish: Finish },
    /// A pixel method's raw map at input resolution (normalised by the pipeline).
    Map(Vec<f32>),
}

/// A method's result and what it cost.
#[derive(Debug, Clone)]
pub struct MethodOutput {
    pub saliency: Saliency,
    pub stats: Stats,
    /// Score-CAM's score of each channel's masked input (`NaN`: not scored); empty for other
    /// methods.
    pub channel_scores: Vec<f32>,
}

impl MethodOutput {
    pub fn new(saliency: Saliency, stats: Stats) -> Self {
        Self { saliency, stats, channel_scores: Vec::new() }
    }
}

/// One channel of the target layer in an explanation: what the teaching views and
/// `explain --json` show. `score`: Score-CAM's class score on the input masked by this channel
/// (the softmax probability for the official algorithm, the raw logit for pytorch-grad-cam's),
/// `None` where the method scored no masked input (constant maps, channels left out by top-k,
/// gradient methods); `weight`: the channel's weight in the map.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChannelRecord {
    pub channel: usize,
    pub constant: bool,
    pub score: Option<f32>,
    pub weight: f32,
}

/// The result of explaining one image.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub class: usize,
    /// Softmax probability of `class` on the unmasked image.
    pub class_probability: f32,
    pub top5: Vec<(usize, f32)>,
    pub logits: Vec<f32>,
    /// `size x size` row-major, in [0, 1].
    pub map: Vec<f32>,
    pub size: usize,
    /// Empty for methods that are not a weighted sum of channels.
    pub channel_weights: Vec<f32>,
    /// One record per target-layer channel; empty for methods that are not a weighted sum of
    /// channels.
    pub channels: Vec<ChannelRecord>,
    pub stats: Stats,
}

/// Explains `class` (default: the top class) of a normalised `[3, size, size]` image.
pub async fn explain(model: &Model, image: &[f32], class: Option<usize>, method: &Method, reporter: &mut Reporter<'_>) -> Result<Explanation> {
    let forwarded = forward_image(model, image).await?;
    explain_forwarded(model, &forwarded, class, method, reporter).await
}

/// [`explain`] for an input already forwarded (explaining another class reuses the pass).
pub async fn explain_forwarded(model: &Model, f: &Forwarded, class: Option<usize>, method: &Method, reporter: &mut Reporter<'_>) -> Result<Explanation> {
    let class = resolve_class(f, class)?;
    let output = method.run(&MethodInput { model, forwarded: f, class }, reporter).await?;
    Ok(assemble(model, f, class, output))
}

/// The class to explain: `class`, or the top one; an error if the model has no such class.
pub fn resolve_class(f: &Forwarded, class: Option<usize>) -> Result<usize> {
    let class = class.unwrap_or_else(|| top_k(&f.probabilities, 1)[0].0);
    if class >= f.logits.len() {
        return Err(Error::Invalid(format!("class {class} out of range (the model has {} classes)", f.logits.len())));
    }
    Ok(class)
}

/// The explanation a method's output gives: the CAM finish or the normalised pixel map, with the
/// top-5 of the unmasked pass.
pub fn assemble(model: &Model, f: &Forwarded, class: usize, output: MethodOutput) -> Explanation {
    let size = model.input_size();
    let scores = output.channel_scores;
    let (map, channel_weights) = match output.saliency {
        Saliency::Channels { weights, finish } => (saliency_from_weights(&f.maps, &weights, finish, size), weights),
        Saliency::Map(mut map) => {
            min_max(&mut map, 0.0);
            (map, Vec::new())
        }
    };
    let score = |k: usize| scores.get(k).copied().filter(|v| !v.is_nan());
    let channels = channel_weights.iter().enumerate().map(|(k, &weight)| ChannelRecord { channel: k, constant: f.maps.is_constant(k), score: score(k), weight }).collect();
    Explanation {
        class,
        class_probability: f.probabilities[class],
        top5: top_k(&f.probabilities, 5),
        logits: f.logits.clone(),
        map,
        size,
        channel_weights,
        channels,
        stats: output.stats,
    }
}
