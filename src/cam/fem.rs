//! FEM, the Feature Explanation Method (Fuad et al. 2020), as pytorch-grad-cam computes it: a
//! channel's weight is the share of its positions above its mean plus `k` standard deviations
//! (population std), the map the weighted sum of the activations. Class-agnostic; `k = 2`.

use super::registry::{Cost, Method, MethodKind, MethodSpec, OptionKind, OptionSpec, Teaching};
use super::{smoothing, Finish, MethodInput, MethodOutput, Saliency, Stats};
use crate::error::Result;

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "fem",
    display_name: "FEM",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "FEM: each channel weighted by the share of its positions above mean + k·std (k = 2; class-agnostic)",
    aliases: &[],
    options: &[OptionSpec { name: "k", kind: OptionKind::Number, default: Some(2.0), min: Some(0.0), max: None, help: "the threshold in standard deviations (pytorch-grad-cam: 2)" }, smoothing::AUG_SMOOTH],
    target: None,
    cost: Cost::ACTIVATIONS,
    costly: false,
    teaching: Teaching {
        formula: "w_k = mean_ij [A_k(i,j) > μ_k + 2σ_k]; L = ReLU(Σ_k w_k A_k)",
        paper: "Fuad, Martin, Giot, Bourqui, Benois-Pineau, Zemmari. Features understanding in 3D CNNs for actions recognition in video. IPTA 2020",
        passes: "none beyond the image's forward",
        versus_scorecam: "Weights channels by how sharply they peak (a k-sigma rule on the activations), the same for every class, with no scores at all.",
    },
    build: |o| smoothing::build(o, Method::Fem { k: o.f32("k") }),
};

/// Channel weights: the share of each channel's positions strictly above `mean + k std`.
pub(super) fn weights(maps: &super::FeatureMaps, k: f32) -> Vec<f32> {
    (0..maps.channels)
        .map(|c| {
            let a = maps.channel(c);
            let n = a.len() as f64;
            let mean = a.iter().map(|v| *v as f64).sum::<f64>() / n;
            let std = (a.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
            let threshold = (mean + k as f64 * std) as f32;
            a.iter().filter(|v| **v > threshold).count() as f32 / a.len() as f32
        })
        .collect()
}

pub(super) fn run(k: f32, input: &MethodInput<'_>) -> Result<MethodOutput> {
    Ok(MethodOutput::new(Saliency::Channels { weights: weights(&input.forwarded.maps, k), finish: Finish::NormaliseThenUpsample }, Stats::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cam::FeatureMaps;

    #[test]
    fn weights_count_the_positions_above_k_sigma() {
        // channel 0: one peak among 9 zeros (mean 1, std 3: threshold 7 with k = 2); channel 1: flat
        let mut data = vec![0f32; 20];
        data[3] = 10.0;
        data[10..].fill(1.0);
        let maps = FeatureMaps { channels: 2, height: 2, width: 5, data };
        assert_eq!(weights(&maps, 2.0), vec![0.1, 0.0]);
    }
}
