//! The forward pass every method starts from: the target layer's activations (kept on the
//! device, and copied to the host once) and the logits, for one normalised image.

use burn::tensor::activation::softmax as softmax_dim;
use burn::tensor::{Tensor, TensorData};

use super::maps::softmax;
use super::Target;
use crate::error::{Error, Result};
use crate::models::{read_f32, Model};

/// The target layer's maps for one image, on the host.
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

/// A prepared input: the unmasked forward pass done.
pub struct Forwarded {
    /// The normalised `[3, size, size]` image on the host, and as a `[1, 3, size, size]` tensor.
    pub image: Vec<f32>,
    pub input: Tensor<4>,
    /// The target layer's activations `[1, C, h, w]`, still on the device: Score-CAM's masks and
    /// Grad-CAM's gradients start from them without another upload.
    pub activations: Tensor<4>,
    /// The same activations on the host (constancy checks, weighted sums, partial maps).
    pub maps: FeatureMaps,
    pub logits: Vec<f32>,
    pub probabilities: Vec<f32>,
}

/// Runs the unmasked forward pass on a normalised `[3, size, size]` image.
pub async fn forward_image(model: &Model, image: &[f32]) -> Result<Forwarded> {
    let size = model.input_size();
    if image.len() != 3 * size * size {
        return Err(Error::Invalid(format!("input has {} values, expected 3x{size}x{size}", image.len())));
    }
    let input = input_tensor(model, image);
    let (activations, logits) = model.network.forward_with_target(input.clone());
    let [_, channels, height, width] = activations.dims();
    let maps = FeatureMaps { channels, height, width, data: read_f32(activations.clone()).await? };
    let logits = read_f32(logits).await?;
    let probabilities = softmax(&logits);
    Ok(Forwarded { image: image.to_vec(), input, activations, maps, logits, probabilities })
}

/// Softmax probability of `class` for each image of a batch (the score every metric and RISE
/// read).
pub async fn class_probabilities(model: &Model, batch: Tensor<4>, class: usize) -> Result<Vec<f32>> {
    let n = batch.dims()[0];
    read_f32(softmax_dim(model.network.forward(batch), 1).slice([0..n, class..class + 1])).await
}

/// The `target` score of `class` for each image of a batch.
pub async fn target_scores(model: &Model, batch: Tensor<4>, class: usize, target: Target) -> Result<Vec<f32>> {
    read_f32(target.scores(model.network.forward(batch), class)).await
}

/// A normalised `[3, size, size]` host image as a `[1, 3, size, size]` tensor.
pub fn input_tensor(model: &Model, image: &[f32]) -> Tensor<4> {
    let size = model.input_size();
    Tensor::<4>::from_data(TensorData::new(image.to_vec(), [1, 3, size, size]), &model.device)
}

/// `n` host masks `[n, size, size]` applied on the device: `input * mask + substrate * (1 - mask)`
/// for each (a `[1, 3, size, size]` input and substrate, or no substrate for plain masking).
/// Uploading one plane per image instead of three is what "masking on the device" saves.
pub fn masked_on_device(model: &Model, input: &Tensor<4>, substrate: Option<&Tensor<4>>, masks: Vec<f32>, n: usize) -> Tensor<4> {
    let size = model.input_size();
    let m = Tensor::<4>::from_data(TensorData::new(masks, [n, 1, size, size]), &model.device);
    match substrate {
        None => input.clone() * m,
        Some(s) => input.clone() * m.clone() + s.clone() * (m.ones_like() - m),
    }
}
