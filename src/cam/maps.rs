//! Map helpers shared by every method: the CAM weighted sum's finish (ReLU, normalisation,
//! resizing), min-max scaling, softmax and top-k on the host.

use crate::imageops::upsample;
use super::FeatureMaps;

/// How the weighted sum of channels becomes a [0, 1] map at input resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Official Score-CAM: upsample, ReLU, min-max (an all-equal map becomes zeros).
    UpsampleThenNormalise,
    /// pytorch-grad-cam: ReLU, `x - min`, `/ (max + 1e-7)` at feature resolution, upsample, and
    /// the same scaling once more. (torch-cam scales with 1e-8 and stops at feature resolution:
    /// the same map up to the upsampling, which its users add.)
    NormaliseThenUpsample,
    /// torch-cam's CAM: the same without the ReLU (the classifier's negative evidence stays).
    SignedNormaliseThenUpsample,
}

/// Turns channel weights into the final saliency map (`size x size`, values in [0, 1]).
pub fn saliency_from_weights(maps: &FeatureMaps, weights: &[f32], finish: Finish, size: usize) -> Vec<f32> {
    finish_map(maps.weighted_sum(weights), maps.height, maps.width, finish, size)
}

/// Turns a map at the target layer's resolution (`h x w`) into the final saliency map (`size x
/// size`, values in [0, 1]).
pub fn finish_map(cam: Vec<f32>, h: usize, w: usize, finish: Finish, size: usize) -> Vec<f32> {
    match finish {
        Finish::UpsampleThenNormalise => {
            let mut up = upsample::resize_map(&cam, h, w, size, size);
            up.iter_mut().for_each(|v| *v = v.max(0.0));
            min_max(&mut up, 0.0);
            up
        }
        Finish::NormaliseThenUpsample | Finish::SignedNormaliseThenUpsample => {
            let relu = finish == Finish::NormaliseThenUpsample;
            let mut low: Vec<f32> = cam.iter().map(|v| if relu { v.max(0.0) } else { *v }).collect();
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
