//! IS-CAM (Naidu, Ghosh, Maurya, Nayak K, Kundu 2020) as torch-cam computes it: Score-CAM's
//! masks (torch-cam's: min-max at the target layer's resolution, then upsampled) integrated
//! along a path of scaled copies, `c_i * mask * x` with the cumulative `c_i = Σ_{j<=i} j / N`
//! (0.1, 0.3, 0.6, ... 5.5 for N = 10: torch-cam's code sums from 1, its docstring from 0);
//! a channel's weight is the softmax across channels of its mean score. torch-cam's default
//! N = 10.

use burn::tensor::{Tensor, TensorData};

use super::masked::{channel_masks, masked_logits, softmax_over, ChannelScoring, MaskStyle, Scheme as Plan};
use super::registry::{Cost, Method, MethodKind, MethodSpec, OptionKind, OptionSpec, Passes, Teaching, BATCH_SIZE};
use super::sscam::mean_per_channel;
use super::{Finish, MethodInput, MethodOutput, Saliency, Stats, Target};
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct IsCamOptions {
    pub samples: usize,
    pub batch_size: usize,
}

impl Default for IsCamOptions {
    /// torch-cam's `ISCAM(num_samples=10)`.
    fn default() -> Self {
        Self { samples: 10, batch_size: 16 }
    }
}

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "iscam",
    display_name: "IS-CAM",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "IS-CAM (torch-cam): Score-CAM's scores integrated over scaled masks (cumulative coefficients i(i+1)/2N), softmax across channels; torch-cam's num_samples=10",
    aliases: &["is-cam"],
    options: &[
        OptionSpec { name: "num_samples", kind: OptionKind::Integer, default: Some(10.0), min: Some(1.0), max: Some(1000.0), help: "integration steps per channel (torch-cam: 10)" },
        BATCH_SIZE,
    ],
    target: Some(Target::Logit),
    cost: Cost { forwards: Passes { fixed: 0, per_channel: 1, times: Some("num_samples") }, ..Cost::ACTIVATIONS },
    costly: true,
    teaching: Teaching {
        formula: "M_k = up(minmax(A_k)); c_i = Σ_{j=1..i} j/N; w_k = softmax_k( (1/N) Σ_i f(c_i · x ⊙ M_k)_c ); L = ReLU(Σ_k w_k A_k)",
        paper: "Naidu, Ghosh, Maurya, Nayak K, Kundu. IS-CAM: Integrated Score-CAM for axiomatic-based explanations. arXiv 2010.03023 (2020)",
        passes: "num_samples forwards per channel (10 x 1280 = 12 800 for Lite0)",
        versus_scorecam: "Scores every channel's masked input at several scales and averages (an integral along the path), where Score-CAM scores it once.",
    },
    build: |o| Ok(Method::IsCam(IsCamOptions { samples: o.required_usize("num_samples"), batch_size: o.required_usize("batch_size") })),
};

/// IS-CAM's part of a plan: slot `sample * channels + channel`.
#[derive(Debug, Clone)]
pub(super) struct Scheme {
    channels: usize,
    samples: usize,
}

/// torch-cam's coefficient of sample `i` (from 0) of `n`: `Σ_{j=1..i+1} j / n`, summed as it
/// sums it (in f64, Python's floats).
pub(super) fn coefficient(i: usize, n: usize) -> f32 {
    (0..=i).map(|j| (j + 1) as f64 / n as f64).sum::<f64>() as f32
}

pub(super) fn plan(opts: &IsCamOptions, input: &MethodInput<'_>) -> Result<ChannelScoring> {
    if opts.samples == 0 {
        return Err(Error::Invalid("IS-CAM needs at least one sample".into()));
    }
    let channels = input.forwarded.maps.channels;
    let slots = channels * opts.samples;
    ChannelScoring::new(Plan::IsCam(Scheme { channels, samples: opts.samples }), (0..slots).collect(), slots, opts.batch_size, input)
}

impl Scheme {
    pub(super) async fn logits(&self, input: &MethodInput<'_>, slots: &[usize], pad: usize, skip: bool) -> Result<Tensor<2>> {
        let channels: Vec<usize> = slots.iter().map(|s| s % self.channels).collect();
        let scale: Vec<f32> = slots.iter().map(|s| coefficient(s / self.channels, self.samples)).collect();
        let scale = Tensor::<1>::from_data(TensorData::new(scale, [slots.len()]), &input.model.device);
        masked_logits(input, channel_masks(input, &channels, MaskStyle::NormaliseFirst), Some(scale), pad, skip).await
    }

    pub(super) fn partial(&self, scores: &[f32]) -> Saliency {
        let means = mean_per_channel(scores, self.channels, self.samples);
        Saliency::Channels { weights: softmax_over(0..self.channels, &means), finish: Finish::NormaliseThenUpsample }
    }

    pub(super) fn finish(&self, scores: Vec<f32>, stats: Stats) -> MethodOutput {
        MethodOutput { saliency: self.partial(&scores), stats, channel_scores: mean_per_channel(&scores, self.channels, self.samples) }
    }
}

#[cfg(test)]
mod tests {
    use super::coefficient;

    #[test]
    fn coefficients_are_torch_cams_cumulative_sums() {
        let c: Vec<f32> = (0..10).map(|i| coefficient(i, 10)).collect();
        let want = [0.1, 0.3, 0.6, 1.0, 1.5, 2.1, 2.8, 3.6, 4.5, 5.5];
        assert!(c.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6), "{c:?}");
    }
}
