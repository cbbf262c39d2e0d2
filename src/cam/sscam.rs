//! SS-CAM (Wang, Naidu, Michael, Kundu 2020) as torch-cam computes it: Score-CAM's masks
//! (torch-cam's: min-max at the target layer's resolution, then upsampled) with Gaussian noise
//! added at input resolution, `num_samples` noisy masks per channel; a channel's weight is the
//! softmax across channels of its mean score. torch-cam's defaults: 35 samples, std 2.0 (the
//! paper's experiments smooth with N = 10 samples and sigma between 0.1 and 0.5 of the input
//! range; torch-cam's are the ones implemented, with the noise on the masks as torch-cam adds it).
//!
//! The noise is [`normal_noise`]: a counter-based generator (splitmix64 and Box-Muller), so a
//! slot's noise does not depend on which batch or worker scores it, and the parity fixtures feed
//! torch-cam the same noise (scripts/cam_reference.py replaces its sampler).

use burn::tensor::{Tensor, TensorData};

use super::masked::{channel_masks, masked_logits, softmax_over, ChannelScoring, MaskStyle, Scheme as Plan};
use super::registry::{Cost, Method, MethodKind, MethodSpec, OptionKind, OptionSpec, Passes, Teaching, BATCH_SIZE};
use super::{Finish, MethodInput, MethodOutput, Saliency, Stats, Target};
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct SsCamOptions {
    pub samples: usize,
    /// Standard deviation of the noise added to the masks (values in [0, 1]).
    pub std: f32,
    pub batch_size: usize,
    pub seed: u64,
}

impl Default for SsCamOptions {
    /// torch-cam's `SSCAM(num_samples=35, std=2.0)`.
    fn default() -> Self {
        Self { samples: 35, std: 2.0, batch_size: 16, seed: 0 }
    }
}

pub(super) const SEED: OptionSpec = OptionSpec { name: "seed", kind: OptionKind::Integer, default: Some(0.0), min: Some(0.0), max: None, help: "noise seed (the counter-based generator the parity fixtures share)" };

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "sscam",
    display_name: "SS-CAM",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "SS-CAM (torch-cam): Score-CAM's scores averaged over masks with Gaussian noise, softmax across channels; torch-cam's num_samples=35, std=2.0",
    aliases: &["ss-cam"],
    options: &[
        OptionSpec { name: "num_samples", kind: OptionKind::Integer, default: Some(35.0), min: Some(1.0), max: Some(1000.0), help: "noisy masks per channel (torch-cam: 35)" },
        OptionSpec { name: "std", kind: OptionKind::Number, default: Some(2.0), min: Some(0.0), max: None, help: "noise standard deviation on the [0, 1] masks (torch-cam: 2.0)" },
        BATCH_SIZE,
        SEED,
    ],
    target: Some(Target::Logit),
    cost: Cost { forwards: Passes { fixed: 0, per_channel: 1, times: Some("num_samples") }, ..Cost::ACTIVATIONS },
    costly: true,
    teaching: Teaching {
        formula: "M_k = up(minmax(A_k)); w_k = softmax_k( (1/N) Σ_n f(x ⊙ (M_k + ε_n))_c ), ε_n ~ N(0, σ²); L = ReLU(Σ_k w_k A_k)",
        paper: "Wang, Naidu, Michael, Kundu. SS-CAM: Smoothed Score-CAM for Sharper Visual Feature Localization. arXiv 2006.14255 (2020)",
        passes: "num_samples forwards per channel (35 x 1280 = 44 800 for Lite0)",
        versus_scorecam: "Scores every channel's mask many times with Gaussian noise added and averages, where Score-CAM scores each mask once.",
    },
    build: |o| {
        Ok(Method::SsCam(SsCamOptions { samples: o.required_usize("num_samples"), std: o.f32("std"), batch_size: o.required_usize("batch_size"), seed: o.required_usize("seed") as u64 }))
    },
};

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64's output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Standard normal values `start..start + len` of stream `stream` under `seed`: pair `j`
/// (values `2j`, `2j + 1`) is Box-Muller's `r cos θ`, `r sin θ` from splitmix64's outputs
/// `a`, `b` number `2j + 1` and `2j + 2` after the state `key = mix(seed * φ + stream + 1)`,
/// with `u1 = ((a >> 11) + 1) / 2^53` and `u2 = (b >> 11) / 2^53` (φ = 0x9E3779B97F4A7C15).
/// Any value of any stream is computed alone, whoever asks for it: the same in a batch, a lane,
/// a worker or numpy.
pub fn normal_noise(seed: u64, stream: u64, start: usize, len: usize) -> Vec<f32> {
    let key = mix(seed.wrapping_mul(GOLDEN).wrapping_add(stream).wrapping_add(1));
    let scale = 1.0 / (1u64 << 53) as f64;
    let mut out = Vec::with_capacity(len);
    let end = start + len;
    let mut j = start / 2;
    while 2 * j < end {
        let state = key.wrapping_add((2 * j as u64).wrapping_mul(GOLDEN));
        let a = mix(state.wrapping_add(GOLDEN));
        let b = mix(state.wrapping_add(GOLDEN.wrapping_mul(2)));
        let u1 = ((a >> 11) + 1) as f64 * scale;
        let u2 = (b >> 11) as f64 * scale;
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = std::f64::consts::TAU * u2;
        for (i, v) in [(2 * j, r * theta.cos()), (2 * j + 1, r * theta.sin())] {
            if (start..end).contains(&i) {
                out.push(v as f32);
            }
        }
        j += 1;
    }
    out
}

/// SS-CAM's part of a plan: slot `sample * channels + channel`.
#[derive(Debug, Clone)]
pub(super) struct Scheme {
    channels: usize,
    samples: usize,
    std: f32,
    seed: u64,
}

pub(super) fn plan(opts: &SsCamOptions, input: &MethodInput<'_>) -> Result<ChannelScoring> {
    if opts.samples == 0 {
        return Err(Error::Invalid("SS-CAM needs at least one sample".into()));
    }
    let channels = input.forwarded.maps.channels;
    let slots = channels * opts.samples;
    let scheme = Scheme { channels, samples: opts.samples, std: opts.std, seed: opts.seed };
    ChannelScoring::new(Plan::SsCam(scheme), (0..slots).collect(), slots, opts.batch_size, input)
}

impl Scheme {
    pub(super) async fn logits(&self, input: &MethodInput<'_>, slots: &[usize], pad: usize) -> Result<Tensor<2>> {
        let size = input.model.input_size();
        let plane = size * size;
        let channels: Vec<usize> = slots.iter().map(|s| s % self.channels).collect();
        let mut noise = Vec::with_capacity(slots.len() * plane);
        for &s in slots {
            let (sample, channel) = (s / self.channels, s % self.channels);
            noise.extend(normal_noise(self.seed, sample as u64, channel * plane, plane).into_iter().map(|v| v * self.std));
        }
        let noise = Tensor::<3>::from_data(TensorData::new(noise, [slots.len(), size, size]), &input.model.device);
        let masks = channel_masks(input, &channels, MaskStyle::NormaliseFirst) + noise;
        // Noise leaves no pixel at zero: nothing to skip.
        masked_logits(input, masks, None, pad, false).await
    }

    /// Each channel's mean score over the samples scored so far.
    fn means(&self, scores: &[f32]) -> Vec<f32> {
        mean_per_channel(scores, self.channels, self.samples)
    }

    pub(super) fn partial(&self, scores: &[f32]) -> Saliency {
        let means = self.means(scores);
        Saliency::Channels { weights: softmax_over(0..self.channels, &means), finish: Finish::NormaliseThenUpsample }
    }

    pub(super) fn finish(&self, scores: Vec<f32>, stats: Stats) -> MethodOutput {
        MethodOutput { saliency: self.partial(&scores), stats, channel_scores: self.means(&scores) }
    }
}

/// The mean of each channel's scored samples (slot `sample * channels + channel`); `NaN` where
/// none is scored yet.
pub(super) fn mean_per_channel(scores: &[f32], channels: usize, samples: usize) -> Vec<f32> {
    (0..channels)
        .map(|k| {
            let seen: Vec<f32> = (0..samples).map(|s| scores[s * channels + k]).filter(|v| !v.is_nan()).collect();
            if seen.is_empty() { f32::NAN } else { seen.iter().sum::<f32>() / seen.len() as f32 }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_standard_normal_and_the_same_in_any_split() {
        let whole = normal_noise(7, 3, 0, 20_001);
        let mean = whole.iter().map(|v| *v as f64).sum::<f64>() / whole.len() as f64;
        let var = whole.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / whole.len() as f64;
        assert!(mean.abs() < 0.03 && (var - 1.0).abs() < 0.05, "mean {mean} var {var}");
        assert_eq!(normal_noise(7, 3, 101, 50), whole[101..151]);
        assert_eq!(normal_noise(7, 3, 100, 1), whole[100..101]);
        assert_ne!(normal_noise(7, 4, 0, 10), whole[..10]);
        assert_ne!(normal_noise(8, 3, 0, 10), whole[..10]);
    }

    #[test]
    fn means_leave_out_unscored_samples() {
        // 2 channels x 2 samples: slots (0,0) (0,1) (1,0) (1,1)
        let m = mean_per_channel(&[1.0, f32::NAN, 3.0, f32::NAN], 2, 2);
        assert_eq!(m[0], 2.0);
        assert!(m[1].is_nan());
    }
}
