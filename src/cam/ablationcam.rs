//! Ablation-CAM (Desai & Ramaswamy 2020) as pytorch-grad-cam computes it: each channel of the
//! target layer is ablated in turn and the head (the network after the target layer) run on the
//! result; the channel's weight is the score's relative drop, `(y - y_k) / y`. pytorch-grad-cam
//! runs the whole network per ablated channel (the layers before the target give the same
//! activations each time); running the head alone gives the same scores for a fraction of the
//! cost (Lite0: a pooled linear layer; VGG16: its three linear layers). The ablation value is
//! pytorch-grad-cam's: 0 where the layer's minimum is 0 (after a ReLU), else the minimum less
//! `(i + 1) · 1e7`, `i` the channel's place in its batch of 32 (its `AblationLayer` lowers the
//! running minimum row by row). Defaults: every channel ablated (`ratio_channels_to_ablate=1`).

use burn::tensor::{Tensor, TensorData};

use super::masked::{ChannelScoring, Scheme as Plan};
use super::registry::{Cost, Method, MethodKind, MethodSpec, Passes, Teaching, BATCH_SIZE};
use super::{smoothing, Finish, MethodInput, MethodOutput, Saliency, Stats, Target};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct AblationCamOptions {
    pub batch_size: usize,
}

impl Default for AblationCamOptions {
    fn default() -> Self {
        Self { batch_size: 32 }
    }
}

/// pytorch-grad-cam's `AblationCAM(batch_size=32)`: the batch its ablation values follow.
const LIBRARY_BATCH: usize = 32;
const ABLATION_VALUE: f32 = 1e7;

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "ablationcam",
    display_name: "Ablation-CAM",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "Ablation-CAM (pytorch-grad-cam): each channel weighted by the relative drop of the class logit when it is ablated (the head run once per channel)",
    aliases: &["ablation-cam"],
    options: &[BATCH_SIZE, smoothing::EIGEN_SMOOTH, smoothing::AUG_SMOOTH],
    target: Some(Target::Logit),
    cost: Cost { head_forwards: Passes { fixed: 0, per_channel: 1, times: None }, ..Cost::ACTIVATIONS },
    costly: false,
    teaching: Teaching {
        formula: "w_k = (y_c − y_c(A with A_k ablated)) / y_c; L = ReLU(Σ_k w_k A_k)",
        paper: "Desai, Ramaswamy. Ablation-CAM: Visual Explanations for Deep Convolutional Network via Gradient-free Localization. WACV 2020, 972-980",
        passes: "1 pass of the head (the layers after the target) per channel: cheap for Lite0, three linear layers per channel for VGG16",
        versus_scorecam: "Removes one channel inside the network and measures the score's drop, where Score-CAM keeps one channel's region of the input and measures the score.",
    },
    build: |o| smoothing::build(o, Method::AblationCam(AblationCamOptions { batch_size: o.required_usize("batch_size") })),
};

/// Ablation-CAM's part of a plan: slot k ablates channel k.
#[derive(Debug, Clone)]
pub(super) struct Scheme {
    channels: usize,
    /// The layer's minimum over the image's activations.
    minimum: f32,
    /// The score of the intact image.
    original: f32,
}

pub(super) fn plan(opts: &AblationCamOptions, input: &MethodInput<'_>) -> Result<ChannelScoring> {
    let f = input.forwarded;
    let minimum = f.maps.data.iter().copied().fold(f32::INFINITY, f32::min);
    let scheme = Scheme { channels: f.maps.channels, minimum, original: input.target.score(&f.logits, input.class) };
    ChannelScoring::new(Plan::Ablation(scheme), (0..f.maps.channels).collect(), f.maps.channels, opts.batch_size, input)
}

impl Scheme {
    /// The value channel `k` is ablated to.
    pub(super) fn value(&self, k: usize) -> f32 {
        if self.minimum == 0.0 { 0.0 } else { self.minimum - ((k % LIBRARY_BATCH) + 1) as f32 * ABLATION_VALUE }
    }

    /// The head's logits on the activations with each slot's channel ablated (padding rows
    /// intact).
    pub(super) fn logits(&self, input: &MethodInput<'_>, slots: &[usize], pad: usize) -> Tensor<2> {
        let model = input.model;
        let rows = slots.len() + pad;
        let c = self.channels;
        let mut keep = vec![1f32; rows * c];
        let mut value = vec![0f32; rows * c];
        for (i, &k) in slots.iter().enumerate() {
            keep[i * c + k] = 0.0;
            value[i * c + k] = self.value(k);
        }
        let device = &model.device;
        let keep = Tensor::<4>::from_data(TensorData::new(keep, [rows, c, 1, 1]), device);
        let value = Tensor::<4>::from_data(TensorData::new(value, [rows, c, 1, 1]), device);
        let acts = input.forwarded.activations.clone().repeat_dim(0, rows);
        model.network.from_target(acts * keep + value)
    }

    fn weights(&self, scores: &[f32]) -> Vec<f32> {
        scores.iter().map(|s| if s.is_nan() { 0.0 } else { (self.original - s) / self.original }).collect()
    }

    pub(super) fn partial(&self, scores: &[f32]) -> Saliency {
        Saliency::Channels { weights: self.weights(scores), finish: Finish::NormaliseThenUpsample }
    }

    pub(super) fn finish(&self, scores: Vec<f32>, stats: Stats) -> MethodOutput {
        let stats = Stats { forwards: 0, head_forwards: stats.forwards, ..stats };
        MethodOutput { saliency: self.partial(&scores), stats, channel_scores: scores }
    }
}

#[cfg(test)]
mod tests {
    use super::Scheme;

    #[test]
    fn ablation_values_follow_pytorch_grad_cam() {
        let relu = Scheme { channels: 64, minimum: 0.0, original: 1.0 };
        assert_eq!(relu.value(40), 0.0);
        let signed = Scheme { channels: 64, minimum: -2.0, original: 1.0 };
        assert_eq!(signed.value(0), -2.0 - 1e7);
        assert_eq!(signed.value(33), -2.0 - 2e7);
        assert_eq!(signed.value(31), -2.0 - 32e7);
    }
}
