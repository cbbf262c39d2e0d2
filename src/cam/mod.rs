//! Class activation maps. Everything method-independent lives here (the forward pass that
//! captures the target layer, the weighted sum of maps, ReLU, normalisation and resizing);
//! a method only decides the channel weights (see [`Method`]).

mod scorecam;
pub mod upsample;

use burn::tensor::{Tensor, TensorData};

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
    /// pytorch-grad-cam: ReLU, `x - min`, `/ (max + 1e-7)` at feature resolution, then upsample.
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
            upsample::resize_map(&low, h, w, size, size)
        }
    }
}

/// `(x - min) / (max - min + eps)`; with eps = 0 a constant map becomes all zeros.
fn min_max(values: &mut [f32], eps: f32) {
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

/// A CAM method: what decides the channel weights. Grad-CAM and friends join here.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    ScoreCam(ScoreCamOptions),
}

impl Default for Method {
    fn default() -> Self {
        Method::ScoreCam(ScoreCamOptions::default())
    }
}

/// Progress of a running explanation, reported between batches.
#[derive(Debug)]
pub struct Progress<'a> {
    pub done: usize,
    pub total: usize,
    /// Channel weights known so far (0 for channels not yet scored): with `finish`, enough to
    /// draw a partial map ([`Progress::partial_map`]).
    pub partial_weights: &'a [f32],
    pub finish: Finish,
}

impl Progress<'_> {
    /// The map the weights known so far give (`size x size`, in [0, 1]).
    pub fn partial_map(&self, maps: &FeatureMaps, size: usize) -> Vec<f32> {
        saliency_from_weights(maps, self.partial_weights, self.finish, size)
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
    pub channel_weights: Vec<f32>,
    pub finish: Finish,
    pub stats: Stats,
}

/// A prepared input: the unmasked forward pass done, target-layer maps on the host.
pub struct Forwarded {
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
    let input = Tensor::<4>::from_data(TensorData::new(image.to_vec(), [1, 3, size, size]), &model.device);
    let (acts, logits) = model.network.forward_with_target(input.clone());
    let [_, channels, height, width] = acts.dims();
    let maps = FeatureMaps { channels, height, width, data: read_f32(acts).await? };
    let logits = read_f32(logits).await?;
    let probabilities = softmax(&logits);
    Ok(Forwarded { input, maps, logits, probabilities })
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
    let (weights, finish, stats) = match method {
        Method::ScoreCam(opts) => scorecam::channel_weights(model, f, class, opts, progress).await?,
    };
    let size = model.input_size();
    Ok(Explanation {
        class,
        class_probability: f.probabilities[class],
        top5,
        logits: f.logits.clone(),
        map: saliency_from_weights(&f.maps, &weights, finish, size),
        size,
        channel_weights: weights,
        finish,
        stats,
    })
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
