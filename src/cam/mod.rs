//! Saliency methods, shaped like torch-cam's `_CAM` and pytorch-grad-cam's `BaseCAM`: this module
//! is the method-independent pipeline (forward pass, weighted sum, ReLU, normalisation, resizing,
//! top-5); a method only computes its [`Saliency`] — channel weights for a CAM method, a map for
//! a pixel method — through one signature ([`Method::run`]), for the score [`Target`] names.
//!
//! - [`forward`]: the unmasked pass, activations kept on the device, device read-back.
//! - [`registry`]: the one list of methods, their names, kinds, options, costs and teaching text.
//! - [`target`]: the score a method explains (probability, logit, logit minus the others' mean).
//! - [`progress`]: progress, cancellation and yielding, passed in by the caller.
//! - [`maps`]: the CAM finish, min-max, softmax, top-k; `projection`: principal components
//!   (EigenCAM, KPCA-CAM, `eigen_smooth`); `smoothing`: `aug_smooth` and `eigen_smooth`.
//! - `masked`: the plan of masked forwards the Score-CAM family shares (Score-CAM, SS-CAM, IS-CAM,
//!   Group-CAM, AblationCAM), scored in order, in lanes, or by the page's workers.
//! - One file per method: `scorecam`, `sscam`, `iscam`, `groupcam`, `ablationcam`, `gradcam`,
//!   `gradcampp`, `hirescam`, `gradcam_elementwise`, `xgradcam`, `layercam`, `eigencam`,
//!   `eigengradcam`, `kpcacam`, `fem`, `shapleycam`, `finercam`, `fullgrad`, `smoothgradcampp`,
//!   `fc_cam` (CAM), `rise`, `gradients`, `perturbation`; their shared numerics (resizing, blur)
//!   are in [`crate::imageops`].

mod ablationcam;
mod eigencam;
mod eigengradcam;
mod fc_cam;
mod fem;
mod finercam;
mod forward;
mod fullgrad;
mod gradcam;
mod gradcam_elementwise;
mod gradcampp;
mod gradients;
mod groupcam;
mod hirescam;
mod iscam;
mod kpcacam;
mod layercam;
mod maps;
mod masked;
mod perturbation;
pub mod progress;
mod projection;
pub mod registry;
mod rise;
mod scorecam;
mod shapleycam;
mod smoothgradcampp;
mod smoothing;
mod sscam;
pub mod target;
mod xgradcam;

pub use forward::{class_probabilities, forward_image, input_tensor, masked_on_device, target_scores, FeatureMaps, Forwarded};
/// Device read-back lives with the models (`models::device`); methods read through it too.
pub use crate::models::read_f32;
pub use ablationcam::AblationCamOptions;
pub use finercam::{FinerCamOptions, FinerCamVariant};
pub use gradients::{input_gradients, IntegratedGradientsOptions, SmoothGradOptions};
pub use groupcam::GroupCamOptions;
pub use iscam::IsCamOptions;
pub use kpcacam::KpcaCamOptions;
pub use maps::{finish_map, saliency_from_weights, softmax, top_k, Finish};
pub(crate) use maps::min_max;
pub use masked::{channel_mask, ChannelScoring};
pub use perturbation::MeaningfulPerturbationOptions;
pub use progress::{Partial, Progress, ProgressFn, Reporter, Stats, YieldFn};
pub use projection::{first_component, kernel_component};
pub use registry::{Cost, Method, MethodKind, MethodSpec, OptionValues, PassCount, Passes, Teaching, METHODS};
pub use rise::{MaskGenerator, RiseOptions};
pub use scorecam::{ScoreCamOptions, ScoreCamVariant};
pub use smoothgradcampp::SmoothGradCamPpOptions;
pub use sscam::{normal_noise, SsCamOptions};
pub use target::Target;

use crate::error::{Error, Result};
use crate::models::Model;

/// What every method reads: the model, the forwarded image, the class to explain and the score
/// of it to explain (ignored by the methods that take none: [`MethodSpec::target`]).
pub struct MethodInput<'a> {
    pub model: &'a Model,
    pub forwarded: &'a Forwarded,
    pub class: usize,
    pub target: Target,
}

/// What a method computes.
#[derive(Debug, Clone)]
pub enum Saliency {
    /// A CAM method's channel weights and how their weighted sum is finished.
    Channels { weights: Vec<f32>, finish: Finish },
    /// Per-channel maps `[channels, h, w]` at the target layer's resolution, summed over the
    /// channels (or projected on their first principal component, `eigen_smooth`) and finished:
    /// HiResCAM's `g ⊙ A`, LayerCAM's `relu(g) ⊙ A`, ...
    Stack { maps: Vec<f32>, finish: Finish },
    /// A map at the target layer's resolution and how it is finished.
    LowRes { map: Vec<f32>, finish: Finish },
    /// A pixel method's raw map at input resolution (normalised by the pipeline).
    Map(Vec<f32>),
}

impl Saliency {
    /// The final `size x size` map in [0, 1] (`maps`: the target layer's, for the weighted sum).
    pub fn map(&self, maps: &FeatureMaps, size: usize) -> Vec<f32> {
        match self {
            Saliency::Channels { weights, finish } => saliency_from_weights(maps, weights, *finish, size),
            Saliency::Stack { maps: stack, finish } => finish_map(sum_channels(stack, maps.height * maps.width), maps.height, maps.width, *finish, size),
            Saliency::LowRes { map, finish } => finish_map(map.clone(), maps.height, maps.width, *finish, size),
            Saliency::Map(map) => {
                let mut map = map.clone();
                min_max(&mut map, 0.0);
                map
            }
        }
    }

    /// What a progress report draws for it.
    pub fn partial(&self) -> Partial<'_> {
        match self {
            Saliency::Channels { weights, finish } => Partial::Weights { weights, finish: *finish },
            Saliency::LowRes { map, finish } => Partial::LowRes { map, finish: *finish },
            Saliency::Map(map) => Partial::Map(map),
            Saliency::Stack { .. } => Partial::Nothing,
        }
    }
}

/// The sum over channels of a channel-major stack of `n`-position maps.
pub(crate) fn sum_channels(stack: &[f32], n: usize) -> Vec<f32> {
    let mut out = vec![0f32; n];
    for map in stack.chunks_exact(n) {
        out.iter_mut().zip(map).for_each(|(o, v)| *o += v);
    }
    out
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
    /// The score explained (`None`: the method takes none, as the class-agnostic ones).
    pub target: Option<Target>,
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

/// Explains `class` (default: the top class) of a normalised `[3, size, size]` image, for the
/// method's own score.
pub async fn explain(model: &Model, image: &[f32], class: Option<usize>, method: &Method, reporter: &mut Reporter<'_>) -> Result<Explanation> {
    let forwarded = forward_image(model, image).await?;
    explain_forwarded(model, &forwarded, class, method, reporter).await
}

/// [`explain`] for an input already forwarded (explaining another class reuses the pass).
pub async fn explain_forwarded(model: &Model, f: &Forwarded, class: Option<usize>, method: &Method, reporter: &mut Reporter<'_>) -> Result<Explanation> {
    explain_target(model, f, class, None, method, reporter).await
}

/// [`explain_forwarded`] for `target` (`None`: the method's published default); a method that
/// takes no target refuses one.
pub async fn explain_target(model: &Model, f: &Forwarded, class: Option<usize>, target: Option<Target>, method: &Method, reporter: &mut Reporter<'_>) -> Result<Explanation> {
    let class = resolve_class(f, class)?;
    let target = method.spec().resolve_target(target)?;
    let input = MethodInput { model, forwarded: f, class, target: target.unwrap_or(Target::Logit) };
    let output = method.run(&input, reporter).await?;
    Ok(assemble(model, f, class, target, output))
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
pub fn assemble(model: &Model, f: &Forwarded, class: usize, target: Option<Target>, output: MethodOutput) -> Explanation {
    let size = model.input_size();
    let scores = output.channel_scores;
    let map = output.saliency.map(&f.maps, size);
    let channel_weights = match output.saliency {
        Saliency::Channels { weights, .. } => weights,
        _ => Vec::new(),
    };
    let score = |k: usize| scores.get(k).copied().filter(|v| !v.is_nan());
    let channels = channel_weights.iter().enumerate().map(|(k, &weight)| ChannelRecord { channel: k, constant: f.maps.is_constant(k), score: score(k), weight }).collect();
    Explanation {
        class,
        target,
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
