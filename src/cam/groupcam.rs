//! Group-CAM (Zhang, Rao, Yang 2021) as its official code computes it (wofmanaf/Group-CAM,
//! `cam/groupcam.py` since a7290b5): the activations weighted by Grad-CAM's weights (the gradient
//! of the class logit, whatever the target) are cut into `groups` runs of channels
//! (`torch.chunk`), each summed and ReLU'd (`S_g`); each group's upsampled, min-max normalised map
//! blends the image with its blur (`x · N_g + blur(x) · (1 - N_g)`, kornia's 51 x 51 Gaussian, σ
//! 50, reflected edges), and the group's weight is the gain of its score over the blurred image's,
//! ReLU'd; the map is `Σ_g gain_g S_g`, upsampled and min-max normalised. Defaults: 32 groups,
//! the softmax probability (the official code's).
//!
//! The paper's earlier "de-noised" version (cc85ed2: each group's map thresholded at its 70th
//! percentile, no ReLU on the gains) is not what the repository runs today; it is not offered.
//! A constant group map, which the official code turns into NaN, masks nothing here (the blurred
//! image: no gain).

use burn::tensor::{Tensor, TensorData};

use super::gradcam::{gradients_of, mean_gradients};
use super::masked::{ChannelScoring, Scheme as Plan};
use super::registry::{Cost, Method, MethodKind, MethodSpec, OptionKind, OptionSpec, Passes, Teaching, BATCH_SIZE};
use super::{masked_on_device, min_max, Finish, MethodInput, MethodOutput, Saliency, Stats, Target};
use crate::error::{Error, Result};
use crate::imageops::filters::{blur_planes_reflect, gaussian_kernel1d};
use crate::imageops::upsample::resize_map;

#[derive(Debug, Clone, PartialEq)]
pub struct GroupCamOptions {
    pub groups: usize,
    pub batch_size: usize,
}

impl Default for GroupCamOptions {
    /// The official code's 32 groups.
    fn default() -> Self {
        Self { groups: 32, batch_size: 16 }
    }
}

/// The official code's blur: kornia's `gaussian_blur2d(x, (51, 51), (50., 50.))`.
const BLUR_SIZE: usize = 51;
const BLUR_SIGMA: f64 = 50.0;

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "groupcam",
    display_name: "Group-CAM",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "Group-CAM (official code): Grad-CAM-weighted channels in 32 groups, each group's map blending the image with its blur; weight = ReLU(probability gain over the blurred image)",
    aliases: &["group-cam"],
    options: &[OptionSpec { name: "groups", kind: OptionKind::Integer, default: Some(32.0), min: Some(1.0), max: Some(4096.0), help: "channel groups (the official code's 32)" }, BATCH_SIZE],
    target: Some(Target::Softmax),
    cost: Cost { forwards: Passes { fixed: 1, per_channel: 0, times: Some("groups") }, head_forwards: Passes::ONE, backwards: Passes::ONE, gradients: true },
    costly: false,
    teaching: Teaching {
        formula: "S_g = ReLU(Σ_{k∈g} α_k A_k), α = Grad-CAM's; N_g = minmax(up(S_g)); w_g = ReLU(f(x⊙N_g + blur(x)⊙(1−N_g))_c − f(blur(x))_c); L = minmax(Σ_g w_g up(S_g))",
        paper: "Zhang, Rao, Yang. Group-CAM: Group Score-Weighted Visual Explanations for Deep Convolutional Networks. arXiv 2103.13859 (2021)",
        passes: "1 backward + 1 blurred forward + 1 forward per group (34 with 32 groups)",
        versus_scorecam: "Scores 32 groups of Grad-CAM-weighted channels instead of every channel, blending towards a blurred image instead of black and counting only the gain over it.",
    },
    build: |o| Ok(Method::GroupCam(GroupCamOptions { groups: o.required_usize("groups"), batch_size: o.required_usize("batch_size") })),
};

/// Group-CAM's part of a plan: slots `0..groups` the groups, slot `groups` the blurred image
/// (scored first: every gain is measured from it).
#[derive(Debug, Clone)]
pub(super) struct Scheme {
    /// Each group's `S_g` at the target layer's resolution, `[groups, h, w]`.
    group_maps: Vec<f32>,
    groups: usize,
    /// The blurred input, `[3, size, size]`.
    blurred: Vec<f32>,
    /// The target layer's size, `(h, w)`.
    low: (usize, usize),
}

/// `torch.chunk(channels, groups)`: runs of `ceil(channels / groups)` channels (fewer runs where
/// that size leaves some empty).
pub(super) fn chunks(channels: usize, groups: usize) -> Vec<std::ops::Range<usize>> {
    let size = channels.div_ceil(groups.max(1)).max(1);
    (0..channels).step_by(size).map(|a| a..(a + size).min(channels)).collect()
}

pub(super) async fn plan(opts: &GroupCamOptions, input: &MethodInput<'_>) -> Result<ChannelScoring> {
    if opts.groups == 0 {
        return Err(Error::Invalid("Group-CAM needs at least one group".into()));
    }
    let maps = &input.forwarded.maps;
    let n = maps.height * maps.width;
    // The official code backpropagates the logit, whatever the score the groups are weighed by.
    let grads = gradients_of(input.model, input.forwarded.activations.clone(), |z| Target::Logit.scores(z, input.class)).await?;
    let alpha = mean_gradients(&grads, n);
    let ranges = chunks(maps.channels, opts.groups);
    let mut group_maps = vec![0f32; ranges.len() * n];
    for (g, range) in ranges.iter().enumerate() {
        let dst = &mut group_maps[g * n..(g + 1) * n];
        for k in range.clone() {
            dst.iter_mut().zip(maps.channel(k)).for_each(|(d, a)| *d += alpha[k] * a);
        }
        dst.iter_mut().for_each(|v| *v = v.max(0.0));
    }
    let size = input.model.input_size();
    let blurred = blur_planes_reflect(&input.forwarded.image, size, &gaussian_kernel1d(BLUR_SIZE, BLUR_SIGMA));
    let groups = ranges.len();
    let scheme = Scheme { group_maps, groups, blurred, low: (maps.height, maps.width) };
    let order = std::iter::once(groups).chain(0..groups).collect();
    ChannelScoring::new(Plan::GroupCam(scheme), order, groups + 1, opts.batch_size, input)
}

impl Scheme {
    /// Group `g`'s mask `N_g` at input resolution; the blurred image's slot masks nothing.
    fn mask(&self, slot: usize, size: usize) -> Vec<f32> {
        let (h, w) = self.low;
        if slot >= self.groups {
            return vec![0.0; size * size];
        }
        let mut up = resize_map(&self.group_maps[slot * h * w..(slot + 1) * h * w], h, w, size, size);
        min_max(&mut up, 0.0);
        up
    }

    pub(super) fn logits(&self, input: &MethodInput<'_>, slots: &[usize], pad: usize) -> Result<Tensor<2>> {
        let model = input.model;
        let size = model.input_size();
        let masks: Vec<f32> = slots.iter().chain(std::iter::repeat_n(&self.groups, pad)).flat_map(|&s| self.mask(s, size)).collect();
        let blurred = Tensor::<4>::from_data(TensorData::new(self.blurred.clone(), [1, 3, size, size]), &model.device);
        let blends = masked_on_device(model, &input.forwarded.input, Some(&blurred), masks, slots.len() + pad);
        Ok(model.network.forward(blends))
    }

    /// `Σ_g ReLU(score_g - base) S_g` over the groups scored so far (the blurred image's score
    /// taken as 0 until it is in).
    pub(super) fn partial(&self, scores: &[f32]) -> Saliency {
        let (h, w) = self.low;
        let n = h * w;
        let base = scores[self.groups];
        let base = if base.is_nan() { 0.0 } else { base };
        let mut map = vec![0f32; n];
        for (g, score) in scores[..self.groups].iter().enumerate() {
            let gain = (score - base).max(0.0);
            if gain > 0.0 {
                map.iter_mut().zip(&self.group_maps[g * n..(g + 1) * n]).for_each(|(m, s)| *m += gain * s);
            }
        }
        Saliency::LowRes { map, finish: Finish::UpsampleThenNormalise }
    }

    pub(super) fn finish(&self, scores: Vec<f32>, mut stats: Stats) -> MethodOutput {
        stats.head_forwards = 1;
        stats.backwards = 1;
        MethodOutput::new(self.partial(&scores), stats)
    }
}

#[cfg(test)]
mod tests {
    use super::chunks;

    #[test]
    fn groups_are_torch_chunks() {
        assert_eq!(chunks(1280, 32).len(), 32);
        assert_eq!(chunks(512, 32)[1], 16..32);
        // torch.chunk(100 channels, 32): runs of 4, so 25 of them
        assert_eq!(chunks(100, 32).len(), 25);
        assert_eq!(chunks(5, 32).len(), 5);
    }
}
