//! Saliency methods. Everything method-independent lives here (the forward pass that captures
//! the target layer, the weighted sum of maps, ReLU, normalisation and resizing); a CAM method
//! (Score-CAM, Grad-CAM, Grad-CAM++) only decides the channel weights. The pixel-level baselines
//! (RISE, gradients, Meaningful Perturbation) give a map directly. See [`Method`].

mod gradcam;
pub mod filters;
mod gradients;
mod perturbation;
mod rise;
mod scorecam;
pub mod upsample;

use burn::tensor::activation::softmax as softmax_dim;
use burn::tensor::{Tensor, TensorData};

pub use gradients::{input_gradients, IntegratedGradientsOptions, SmoothGradOptions};
pub use perturbation::MeaningfulPerturbationOptions;
pub use rise::RiseOptions;
pub use scorecam::{ScoreCamOptions, ScoreCamVariant};

use crate::error::{Error, Result};
use crate::models::Model;

/// The target layer's maps for one image, copied to the host.
#[derive(Debug, Clone)]
pub struct FeatureMaps {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// [channels, height, width] row-major.
    pub data: Vec<f32>,
}

impl FeatureMaps {
    pub fn channel(&self, k: usize) -> &[f32] {
        let n = self.height * self.width;
        &self.data[k * n..(k + 1) * n]
    }

    /// Whether channel k is one value everywhere (its normalised mask would be 0/0).
    pub fn is_constant(&self, k: usize) -> bool {
        let c = self.channel(k);
        c.iter().all(|v| *v == c[0])
    }

    /// Sum over channels of `weights[k] * map_k`, at feature resolution.
    pub fn weighted_sum(&self, weights: &[f32]) -> Vec<f32> {
        let n = self.height * self.width;
        let mut out = vec![0f32; n];
        for (k, &w) in weights.iter().enumerate().filter(|(_, w)| **w != 0.0) {
            for (o, a) in out.iter_mut().zip(self.channel(k)) {
                *o += w * a;
            }
        }
        out
    }
}

/// How the weighted sum becomes a [0, 1] map at input resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Official Score-CAM: upsample, ReLU, min-max (an all-equal map becomes zeros).
    UpsampleThenNormalise,
    /// pytorch-grad-cam: ReLU, `x - min`, `/ (max + 1e-7)` at feature resolution, upsample, and
    /// the same scaling once more.
    NormaliseThenUpsample,
}

/// Turns channel weights into the final saliency map (`size x size`, values in [0, 1]).
pub fn saliency_from_weights(maps: &FeatureMaps, weights: &[f32], finish: Finish, size: usize) -> Vec<f32> {
    let cam = maps.weighted_sum(weights);
    let (h, w) = (maps.height, maps.width);
    match finish {
        Finish::UpsampleThenNormalise => {
            let mut up = upsample::resize_map(&cam, h, w, size, size);
            up.iter_mut().for_each(|v| *v = v.max(0.0));
            min_max(&mut up, 0.0);
            up
        }
        Finish::NormaliseThenUpsample => {
            let mut low: Vec<f32> = cam.iter().map(|v| v.max(0.0)).collect();
            min_max(&mut low, 1e-7);
            // pytorch-grad-cam scales again after resizing (`aggregate_multi_layers`): bilinear
            // upsampling with half-pixel centres rarely lands on the low-resolution peak.
            let mut up = upsample::resize_map(&low, h, w, size, size);
            min_max(&mut up, 1e-7);
            up
        }
    }
}

/// `(x - min) / (max - min + eps)`; with eps = 0 a constant map becomes all zeros.
pub(crate) fn min_max(values: &mut [f32], eps: f32) {
    let min = values.iter().copied().fold(f32::INFINITY, f32::min);
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let range = max - min + eps;
    if range > 0.0 {
        values.iter_mut().for_each(|v| *v = (*v - min) / range);
    } else {
        values.iter_mut().for_each(|v| *v = 0.0);
    }
}

/// Softmax on the host (numerically stable).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// The k most probable classes as (index, probability), best first.
pub fn top_k(probabilities: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut idx: Vec<usize> = (0..probabilities.len()).collect();
    idx.sort_by(|a, b| probabilities[*b].total_cmp(&probabilities[*a]).then(a.cmp(b)));
    idx.into_iter().take(k).map(|i| (i, probabilities[i])).collect()
}

/// A saliency method and its options.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    ScoreCam(ScoreCamOptions),
    /// Grad-CAM (Selvaraju et al. 2017): channel weight = mean gradient of the class logit.
    GradCam,
    /// Grad-CAM++ (Chattopadhay et al. 2018), as pytorch-grad-cam computes it.
    GradCamPlusPlus,
    /// RISE (Petsiuk et al. 2018): random masks weighted by the class probability.
    Rise(RiseOptions),
    /// Vanilla gradient (Simonyan et al. 2014).
    Gradient,
    SmoothGrad(SmoothGradOptions),
    IntegratedGradients(IntegratedGradientsOptions),
    /// Meaningful Perturbation (Fong & Vedaldi 2017): an optimised deletion mask.
    MeaningfulPerturbation(MeaningfulPerturbationOptions),
}

impl Default for Method {
    fn default() -> Self {
        Method::ScoreCam(ScoreCamOptions::default())
    }
}

impl Method {
    /// The names the CLI and the browser take, with each method's published defaults.
    pub const NAMES: [&'static str; 9] = ["scorecam", "scorecam-gradcam-lib", "gradcam", "gradcampp", "rise", "gradient", "smoothgrad", "integrated-gradients", "mask"];

    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "scorecam" => Self::ScoreCam(ScoreCamOptions::default()),
            "scorecam-gradcam-lib" => Self::ScoreCam(ScoreCamOptions { variant: ScoreCamVariant::GradCamLibrary, ..ScoreCamOptions::default() }),
            "gradcam" => Self::GradCam,
            "gradcampp" | "gradcam++" => Self::GradCamPlusPlus,
            "rise" => Self::Rise(RiseOptions::default()),
            "gradient" | "vanilla-gradient" => Self::Gradient,
            "smoothgrad" => Self::SmoothGrad(SmoothGradOptions::default()),
            "integrated-gradients" | "ig" => Self::IntegratedGradients(IntegratedGradientsOptions::default()),
            "mask" | "meaningful-perturbation" => Self::MeaningfulPerturbation(MeaningfulPerturbationOptions::default()),
            other => return Err(Error::Invalid(format!("unknown method {other:?} (one of {})", Self::NAMES.join(", ")))),
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::ScoreCam(o) if o.variant == ScoreCamVariant::GradCamLibrary => "scorecam-gradcam-lib",
            Self::ScoreCam(_) => "scorecam",
            Self::GradCam => "gradcam",
            Self::GradCamPlusPlus => "gradcampp",
            Self::Rise(_) => "rise",
            Self::Gradient => "gradient",
            Self::SmoothGrad(_) => "smoothgrad",
            Self::IntegratedGradients(_) => "integrated-gradients",
            Self::MeaningfulPerturbation(_) => "mask",
        }
    }

    /// The name tables use.
    pub fn display_name(&self) -> &'static str {
        match self {
            Self::ScoreCam(o) if o.variant == ScoreCamVariant::GradCamLibrary => "Score-CAM (pytorch-grad-cam)",
            Self::ScoreCam(_) => "Score-CAM",
            Self::GradCam => "Grad-CAM",
            Self::GradCamPlusPlus => "Grad-CAM++",
            Self::Rise(_) => "RISE",
            Self::Gradient => "Gradient",
            Self::SmoothGrad(_) => "SmoothGrad",
            Self::IntegratedGradients(_) => "IntegratedGrads",
            Self::MeaningfulPerturbation(_) => "Mask",
        }
    }

    /// The same method with its forward batch size set (for the methods that batch).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        match &mut self {
            Self::ScoreCam(o) => o.batch_size = batch_size,
            Self::Rise(o) => o.batch_size = batch_size,
            Self::SmoothGrad(o) => o.batch_size = batch_size,
            Self::IntegratedGradients(o) => o.batch_size = batch_size,
            Self::GradCam | Self::GradCamPlusPlus | Self::Gradient | Self::MeaningfulPerturbation(_) => {}
        }
        self
    }

    /// Whether the map is a weighted sum of target-layer channels.
    pub fn is_cam(&self) -> bool {
        matches!(self, Self::ScoreCam(_) | Self::GradCam | Self::GradCamPlusPlus)
    }
}

/// What a method knows part-way through.
#[derive(Debug)]
pub enum Partial<'a> {
    /// Channel weights known so far (0 for channels not yet scored).
    Weights { weights: &'a [f32], finish: Finish },
    /// A map at input resolution (unnormalised).
    Map(&'a [f32]),
    /// Nothing drawable yet.
    Nothing,
}

/// Progress of a running explanation, reported between batches.
#[derive(Debug)]
pub struct Progress<'a> {
    pub done: usize,
    pub total: usize,
    pub partial: Partial<'a>,
}

impl Progress<'_> {
    /// The map known so far (`size x size`, in [0, 1]), if the method has one.
    pub fn partial_map(&self, maps: &FeatureMaps, size: usize) -> Option<Vec<f32>> {
        match &self.partial {
            Partial::Weights { weights, finish } => Some(saliency_from_weights(maps, weights, *finish, size)),
            Partial::Map(map) => {
                let mut m = map.to_vec();
                min_max(&mut m, 0.0);
                Some(m)
            }
            Partial::Nothing => None,
        }
    }
}

/// Gives the browser's event loop a turn (a macrotask, so it can paint and take input): the CPU
/// backend computes synchronously, so without this a long explanation would freeze the page.
/// Natively it does nothing.
pub async fn yield_to_host() {
    #[cfg(target_arch = "wasm32")]
    crate::web::next_task().await;
}

/// Return `false` from the callback to cancel between batches.
pub type ProgressFn<'a> = dyn FnMut(&Progress<'_>) -> bool + 'a;

/// Counts that show what the method cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Masked forwards run (images, not batches).
    pub forwards: usize,
    /// Channels skipped because their map is constant (official Score-CAM).
    pub skipped_constant: usize,
    pub batches: usize,
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
    pub stats: Stats,
}

/// A prepared input: the unmasked forward pass done, target-layer maps on the host.
pub struct Forwarded {
    /// The normalised `[3, size, size]` image on the host, and as a `[1, 3, size, size]` tensor.
    pub image: Vec<f32>,
    pub input: Tensor<4>,
    pub maps: FeatureMaps,
    pub logits: Vec<f32>,
    pub probabilities: Vec<f32>,
}

/// Reads a float tensor back (async: the browser cannot block on the GPU).
pub async fn read_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    let data = t.into_data_async().await.map_err(|e| Error::Device(format!("{e:?}")))?;
    let values = data.try_into_vec::<f32>().map_err(|e| Error::Device(format!("{e:?}")))?;
    if values.iter().any(|v| !v.is_finite()) {
        return Err(Error::Device("the network produced NaN or infinity (device lost or out of memory?)".into()));
    }
    Ok(values)
}

/// Runs the unmasked forward pass on a normalised `[3, size, size]` image.
pub async fn forward_image(model: &Model, image: &[f32]) -> Result<Forwarded> {
    let size = model.input_size();
    if image.len() != 3 * size * size {
        return Err(Error::Invalid(format!("input has {} values, expected 3x{size}x{size}", image.len())));
    }
    let input = input_tensor(model, image);
    let (acts, logits) = model.network.forward_with_target(input.clone());
    let [_, channels, height, width] = acts.dims();
    let maps = FeatureMaps { channels, height, width, data: read_f32(acts).await? };
    let logits = read_f32(logits).await?;
    let probabilities = softmax(&logits);
    Ok(Forwarded { image: image.to_vec(), input, maps, logits, probabilities })
}

/// Explains `class` (default: the top class) of a normalised `[3, size, size]` image.
pub async fn explain(
    model: &Model,
    image: &[f32],
    class: Option<usize>,
    method: &Method,
    progress: &mut ProgressFn<'_>,
) -> Result<Explanation> {
    let forwarded = forward_image(model, image).await?;
    explain_forwarded(model, &forwarded, class, method, progress).await
}

/// [`explain`] for an input already forwarded (explaining another class reuses the pass).
pub async fn explain_forwarded(
    model: &Model,
    f: &Forwarded,
    class: Option<usize>,
    method: &Method,
    progress: &mut ProgressFn<'_>,
) -> Result<Explanation> {
    let top5 = top_k(&f.probabilities, 5);
    let class = class.unwrap_or(top5[0].0);
    if class >= f.logits.len() {
        return Err(Error::Invalid(format!("class {class} out of range (the model has {} classes)", f.logits.len())));
    }
    let size = model.input_size();
    let (map, channel_weights, stats) = match method {
        Method::ScoreCam(opts) => {
            let (w, finish, stats) = scorecam::channel_weights(model, f, class, opts, progress).await?;
            (saliency_from_weights(&f.maps, &w, finish, size), w, stats)
        }
        Method::GradCam | Method::GradCamPlusPlus => {
            let w = gradcam::channel_weights(model, f, class, *method == Method::GradCamPlusPlus).await?;
            let stats = Stats { forwards: 1, batches: 1, ..Stats::default() };
            (saliency_from_weights(&f.maps, &w, Finish::NormaliseThenUpsample, size), w, stats)
        }
        Method::Rise(opts) => finish_pixel_map(rise::saliency(model, f, class, opts, progress).await?),
        Method::Gradient => finish_pixel_map(gradients::vanilla(model, f, class).await?),
        Method::SmoothGrad(opts) => finish_pixel_map(gradients::smoothgrad(model, f, class, opts, progress).await?),
        Method::IntegratedGradients(opts) => finish_pixel_map(gradients::integrated(model, f, class, opts, progress).await?),
        Method::MeaningfulPerturbation(opts) => finish_pixel_map(perturbation::saliency(model, f, class, opts, progress).await?),
    };
    Ok(Explanation {
        class,
        class_probability: f.probabilities[class],
        top5,
        logits: f.logits.clone(),
        map,
        size,
        channel_weights,
        stats,
    })
}

/// A pixel-level method's raw map, min-max normalised to [0, 1].
fn finish_pixel_map((mut map, stats): (Vec<f32>, Stats)) -> (Vec<f32>, Vec<f32>, Stats) {
    min_max(&mut map, 0.0);
    (map, Vec::new(), stats)
}

/// Softmax probability of `class` for each image of a batch (the score every metric and RISE
/// read).
pub async fn class_probabilities(model: &Model, batch: Tensor<4>, class: usize) -> Result<Vec<f32>> {
    let n = batch.dims()[0];
    read_f32(softmax_dim(model.network.forward(batch), 1).slice([0..n, class..class + 1])).await
}

/// A normalised `[3, size, size]` host image as a `[1, 3, size, size]` tensor.
pub fn input_tensor(model: &Model, image: &[f32]) -> Tensor<4> {
    let size = model.input_size();
    Tensor::<4>::from_data(TensorData::new(image.to_vec(), [1, 3, size, size]), &model.device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_by_probability() {
        assert_eq!(top_k(&[0.1, 0.5, 0.2, 0.2], 3), vec![(1, 0.5), (2, 0.2), (3, 0.2)]);
    }

    #[test]
    fn official_finish_relus_and_scales_to_unit_range() {
        let maps = FeatureMaps { channels: 2, height: 2, width: 2, data: vec![1., 2., 3., 4., 4., 3., 2., 1.] };
        let map = saliency_from_weights(&maps, &[1.0, -0.5], Finish::UpsampleThenNormalise, 4);
        let max = map.iter().copied().fold(0f32, f32::max);
        let min = map.iter().copied().fold(1f32, f32::min);
        assert!((max - 1.0).abs() < 1e-6 && min == 0.0);
        // all-negative evidence: ReLU leaves a constant map, which normalises to zeros
        let zero = saliency_from_weights(&maps, &[-1.0, -1.0], Finish::UpsampleThenNormalise, 4);
        assert!(zero.iter().all(|v| *v == 0.0));
    }
}
