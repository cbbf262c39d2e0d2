//! The Score-CAM family's passes as a plan of batches ([`ChannelScoring`]): Score-CAM (one masked
//! input per channel), SS-CAM (noisy masks), IS-CAM (scaled masks), Group-CAM (blends of the
//! image and its blur, one per channel group) and AblationCAM (the head on ablated activations).
//! Each input has a slot; a batch is a list of slots, scored by one forward pass into the
//! method's [`Target`] score. One run scores the batches in order ([`ChannelScoring::run`]), natively
//! on the CPU several lanes score them at once, and the page's worker pool scores them anywhere;
//! a batch holds the same slots however it is scored, so all three give the same map. Each method's
//! own part (its inputs, and how the scores become its saliency) is a `Scheme` in its own file.

use burn::tensor::{Int, Tensor, TensorData};

use super::{ablationcam, groupcam, iscam, read_f32, scorecam, sscam, MethodInput, MethodOutput, Partial, Progress, Reporter, Saliency, Stats};
use crate::error::{Error, Result};
use crate::imageops::upsample::bilinear_matrix;
use crate::models::{ConvKernel, Region};
use crate::weights::transpose;

/// Which method's inputs and finish a plan runs.
#[derive(Debug, Clone)]
pub(super) enum Scheme {
    ScoreCam(scorecam::Scheme),
    SsCam(sscam::Scheme),
    IsCam(iscam::Scheme),
    GroupCam(groupcam::Scheme),
    Ablation(ablationcam::Scheme),
}

/// A method's passes as a plan of batches. One run scores them in order ([`Self::run`]); the page's
/// worker pool scores them anywhere, in any order, and hands the scores back to
/// [`Self::partial`] and [`Self::finish`]. Either way a batch holds the same slots and is
/// computed by the same code, so the scores, and the map, are the same.
///
/// Scores travel as one value per slot (`NaN` where not, or not yet, scored). Score-CAM's slots
/// are the target layer's channels; SS-CAM's and IS-CAM's a channel per sample (`sample *
/// channels + channel`); Group-CAM's its groups and then the blurred image; AblationCAM's the
/// channels.
#[derive(Debug, Clone)]
pub struct ChannelScoring {
    scheme: Scheme,
    batches: Vec<Vec<usize>>,
    slots: usize,
    /// On a GPU, every forward runs at the full batch size (the last batch padded), so each
    /// kernel is compiled, and natively autotuned, for one shape only.
    pad_to: Option<usize>,
}

impl ChannelScoring {
    /// A plan of `scheme` scoring `order` (slots, in order) of `slots` in batches of at most
    /// `batch_size` (capped by the model's binding limit).
    pub(super) fn new(scheme: Scheme, order: Vec<usize>, slots: usize, batch_size: usize, input: &MethodInput<'_>) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::Invalid("batch size must be at least 1".into()));
        }
        let batch_size = batch_size.min(input.model.max_batch());
        let pad_to = input.model.binding_limit.map(|_| batch_size.min(order.len()).max(1));
        // Unpadded (on the CPU), the first batch is one input, so the first partial map comes
        // after one forward pass rather than `batch_size` of them: VGG16's first heatmap in the
        // page (docs/benchmarks.md, "The first heatmap after one forward pass").
        let (first, rest) = order.split_at(if pad_to.is_none() { order.len().min(1) } else { 0 });
        let batches = std::iter::once(first).filter(|b| !b.is_empty()).chain(rest.chunks(batch_size)).map(<[usize]>::to_vec).collect();
        Ok(Self { scheme, batches, slots, pad_to })
    }

    pub fn batch_count(&self) -> usize {
        self.batches.len()
    }

    /// Inputs to score in all.
    pub fn total(&self) -> usize {
        self.batches.iter().map(Vec::len).sum()
    }

    /// Score slots (what `channels` means to the page's pool: one score each).
    pub fn channels(&self) -> usize {
        self.slots
    }

    /// The slots of batch `b`.
    pub fn batch(&self, b: usize) -> Result<&[usize]> {
        self.batches.get(b).map(Vec::as_slice).ok_or_else(|| Error::Invalid(format!("batch {b} out of range (the plan has {})", self.batches.len())))
    }

    /// The slots scored in order, batch by batch.
    pub(super) fn order(&self) -> impl Iterator<Item = usize> + '_ {
        self.batches.iter().flatten().copied()
    }

    /// Scores batch `b`: one forward pass of its inputs. Returns a score per slot of
    /// [`Self::batch`], in its order.
    pub async fn score(&self, input: &MethodInput<'_>, b: usize) -> Result<Vec<f32>> {
        let batch = self.batch(b)?;
        let pad = self.pad_to.filter(|&full| full > batch.len()).map_or(0, |full| full - batch.len());
        // The first batch (one input, see `new`) computes every row: the skip copies from the
        // zero image's forward, which a model records at its first masked batch, and that
        // forward would double the wait for the first partial map.
        let skip = b > 0 && input.model.conv_kernels().contains(&ConvKernel::Cpu);
        let logits = match &self.scheme {
            Scheme::ScoreCam(s) => s.logits(input, batch, pad, skip).await?,
            Scheme::SsCam(s) => s.logits(input, batch, pad).await?,
            Scheme::IsCam(s) => s.logits(input, batch, pad, skip).await?,
            Scheme::GroupCam(s) => s.logits(input, batch, pad)?,
            Scheme::Ablation(s) => s.logits(input, batch, pad),
        };
        read_f32(input.target.scores(logits, input.class).slice([0..batch.len(), 0..1])).await
    }

    /// What the scores so far give: the final saliency if the slots not yet scored were left
    /// out (or scored zero, for the official Score-CAM).
    pub fn partial(&self, scores: &[f32]) -> Saliency {
        match &self.scheme {
            Scheme::ScoreCam(s) => s.partial(self, scores),
            Scheme::SsCam(s) => s.partial(scores),
            Scheme::IsCam(s) => s.partial(scores),
            Scheme::GroupCam(s) => s.partial(scores),
            Scheme::Ablation(s) => s.partial(scores),
        }
    }

    /// The method's output once every batch is scored.
    pub async fn finish(&self, input: &MethodInput<'_>, scores: Vec<f32>) -> Result<MethodOutput> {
        if scores.len() != self.slots {
            return Err(Error::Invalid(format!("{} scores for {} slots", scores.len(), self.slots)));
        }
        if let Some(k) = self.order().find(|&k| scores[k].is_nan()) {
            return Err(Error::Invalid(format!("slot {k} was not scored")));
        }
        let stats = Stats { forwards: self.total(), batches: self.batch_count(), ..Stats::default() };
        match &self.scheme {
            Scheme::ScoreCam(s) => s.finish(self, input, scores, stats).await,
            Scheme::SsCam(s) => Ok(s.finish(scores, stats)),
            Scheme::IsCam(s) => Ok(s.finish(scores, stats)),
            Scheme::GroupCam(s) => Ok(s.finish(scores, stats)),
            Scheme::Ablation(s) => Ok(s.finish(scores, stats)),
        }
    }

    /// Scores every batch in order (natively on the CPU in lanes), reporting the partial
    /// saliency after each, then finishes.
    pub async fn run(&self, input: &MethodInput<'_>, reporter: &mut Reporter<'_>) -> Result<MethodOutput> {
        #[cfg(not(target_arch = "wasm32"))]
        if input.model.lanes > 1 && self.batch_count() > 1 {
            return self.score_in_lanes(input, input.model.lanes, reporter);
        }
        let mut tally = Tally::new(self);
        for b in 0..self.batch_count() {
            tally.add(b, self.score(input, b).await?, reporter).await?;
        }
        self.finish(input, tally.scores).await
    }

    /// [`Self::run`] with `lanes` threads each scoring the next batch (natively on the CPU): the
    /// scores, and so the map, are those of one run; progress is reported from the calling
    /// thread as batches come in, and a cancel or an error stops every lane at its next batch.
    #[cfg(not(target_arch = "wasm32"))]
    fn score_in_lanes(&self, input: &MethodInput<'_>, lanes: usize, reporter: &mut Reporter<'_>) -> Result<MethodOutput> {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let mut tally = Tally::new(self);
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<Vec<f32>>)>();
            for _ in 0..lanes.min(self.batch_count()) {
                let (tx, next, stop) = (tx.clone(), &next, &stop);
                s.spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let b = next.fetch_add(1, Ordering::Relaxed);
                        if b >= self.batch_count() || tx.send((b, pollster::block_on(self.score(input, b)))).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            let result = rx.iter().try_for_each(|(b, values)| pollster::block_on(tally.add(b, values?, reporter)));
            stop.store(true, Ordering::Relaxed);
            result
        })?;
        pollster::block_on(self.finish(input, tally.scores))
    }
}

/// The scores as batches come in, in any order, and the progress they make.
struct Tally<'p> {
    plan: &'p ChannelScoring,
    scores: Vec<f32>,
    done: usize,
}

impl<'p> Tally<'p> {
    fn new(plan: &'p ChannelScoring) -> Self {
        Self { plan, scores: vec![f32::NAN; plan.channels()], done: 0 }
    }

    /// Records batch `b`'s scores and reports the partial saliency they give.
    async fn add(&mut self, b: usize, values: Vec<f32>, reporter: &mut Reporter<'_>) -> Result<()> {
        let batch = self.plan.batch(b)?;
        for (&k, v) in batch.iter().zip(values) {
            self.scores[k] = v;
        }
        self.done += batch.len();
        let saliency = self.plan.partial(&self.scores);
        let partial = match &saliency {
            Saliency::Channels { .. } | Saliency::LowRes { .. } => saliency.partial(),
            _ => Partial::Nothing,
        };
        reporter.report(Progress { done: self.done, total: self.plan.total(), partial }).await
    }
}

/// How a channel's map becomes a mask in [0, 1] at input resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MaskStyle {
    /// The official Score-CAM's: upsampled (`align_corners=False`), then min-max (no eps).
    Official,
    /// pytorch-grad-cam's ScoreCAM: upsampled with aligned corners, then min-max (eps 1e-8).
    AlignedCorners,
    /// torch-cam's ScoreCAM family: min-max (eps 1e-8) at the target layer's resolution, then
    /// upsampled (`align_corners=False`).
    NormaliseFirst,
}

/// The masks of `channels`, `[B, size, size]` on the device: each activation map upsampled to the
/// input size and min-max normalised, as `style` computes them.
pub(super) fn channel_masks(input: &MethodInput<'_>, channels: &[usize], style: MaskStyle) -> Tensor<3> {
    let (model, f) = (input.model, input.forwarded);
    let device = &model.device;
    let size = model.input_size();
    let (h, w, n) = (f.maps.height, f.maps.width, f.maps.channels);
    let aligned = style == MaskStyle::AlignedCorners;
    // Upsampling as two matmuls: [B*h, w] x [w, size], then [B*size, h] x [h, size].
    let rw_t = Tensor::<2>::from_data(TensorData::new(transpose(&bilinear_matrix(w, size, aligned), size, w), [w, size]), device);
    let rh_t = Tensor::<2>::from_data(TensorData::new(transpose(&bilinear_matrix(h, size, aligned), size, h), [h, size]), device);
    let bsz = channels.len();
    let idx = Tensor::<1, Int>::from_data(TensorData::new(channels.iter().map(|&k| k as i64).collect::<Vec<_>>(), [bsz]), device);
    let mut a = f.activations.clone().reshape([n, h, w]).select(0, idx);
    if style == MaskStyle::NormaliseFirst {
        a = min_max_planes(a, 1e-8);
    }
    let a = a.reshape([bsz * h, w]);
    let up = a.matmul(rw_t).reshape([bsz, h, size]).swap_dims(1, 2).reshape([bsz * size, h]);
    let up = up.matmul(rh_t).reshape([bsz, size, size]).swap_dims(1, 2);
    match style {
        MaskStyle::Official => min_max_planes(up, 0.0),
        MaskStyle::AlignedCorners => min_max_planes(up, 1e-8),
        MaskStyle::NormaliseFirst => up,
    }
}

/// `(x - min) / (max - min + eps)` over each plane of `[B, h, w]`.
fn min_max_planes(x: Tensor<3>, eps: f32) -> Tensor<3> {
    let min = x.clone().min_dims(&[1, 2]);
    let max = x.clone().max_dims(&[1, 2]);
    (x - min.clone()) / (max - min + eps)
}

/// Channel `k`'s mask as Score-CAM (`style`) scores it (`size x size`, in [0, 1]), computed by
/// the same code as the scoring. A constant map gives an all-zero mask (the official code skips
/// it; pytorch-grad-cam's masks everything out).
pub(super) async fn mask_of(input: &MethodInput<'_>, k: usize, style: MaskStyle) -> Result<Vec<f32>> {
    let maps = &input.forwarded.maps;
    if k >= maps.channels {
        return Err(Error::Invalid(format!("channel {k} out of range (the target layer has {})", maps.channels)));
    }
    let size = input.model.input_size();
    if maps.is_constant(k) {
        return Ok(vec![0.0; size * size]);
    }
    read_f32(channel_masks(input, &[k], style).reshape([size * size])).await
}

/// Channel `k`'s mask as the request's Score-CAM scores with it (the official variant's unless
/// the method is pytorch-grad-cam's; torch-cam's for SS-CAM and IS-CAM).
pub async fn channel_mask(input: &MethodInput<'_>, k: usize, method: &super::Method) -> Result<Vec<f32>> {
    let style = match method {
        super::Method::ScoreCam(o) => scorecam::mask_style(o.variant),
        super::Method::SsCam(_) | super::Method::IsCam(_) => MaskStyle::NormaliseFirst,
        _ => MaskStyle::Official,
    };
    mask_of(input, k, style).await
}

/// The logits of `input * masks` (masks `[B, size, size]`, each input scaled by `scale`), padded
/// with `pad` zero inputs; where `skip`, what each mask leaves at zero is not computed (the CPU's
/// masked forward, which reads the masks back to find their regions).
pub(super) async fn masked_logits(input: &MethodInput<'_>, masks: Tensor<3>, scale: Option<Tensor<1>>, pad: usize, skip: bool) -> Result<Tensor<2>> {
    let model = input.model;
    let mut masks = masks;
    if let Some(scale) = scale {
        let b = scale.dims()[0];
        masks = masks * scale.reshape([b, 1, 1]);
    }
    if pad > 0 {
        let [_, h, w] = masks.dims();
        masks = Tensor::cat(vec![masks, Tensor::zeros([pad, h, w], &model.device)], 0);
    }
    let masked = input.forwarded.input.clone() * masks.clone().unsqueeze_dim::<4>(1);
    if !skip {
        return Ok(model.network.forward(masked));
    }
    // On the CPU what a mask leaves at zero need not be computed (the masks are in host memory
    // already: reading them costs a copy).
    let [_, h, w] = masks.dims();
    let values = read_f32(masks).await?;
    let regions: Vec<Region> = values.chunks_exact(h * w).map(|mask| mask_region(mask, w)).collect();
    Ok(model.network.forward_masked(masked, &regions))
}

/// The rectangle of a mask (`width` wide) from its first non-zero row to its last, and from its
/// first non-zero column to its last (empty if all zero).
pub(super) fn mask_region(mask: &[f32], width: usize) -> Region {
    let mut region: Option<Region> = None;
    for (y, row) in mask.chunks_exact(width).enumerate() {
        if let Some(first) = row.iter().position(|&v| v != 0.0) {
            let end = width - row.iter().rev().position(|&v| v != 0.0).expect("a non-zero value exists");
            region = Some(match region {
                None => Region { rows: y..y + 1, cols: first..end },
                Some(r) => Region { rows: r.rows.start..y + 1, cols: r.cols.start.min(first)..r.cols.end.max(end) },
            });
        }
    }
    region.unwrap_or(Region::EMPTY)
}

/// Softmax across the slots that have a score (the others weigh 0), in `order`: the sum, and so
/// the last bits of the map, depend on the order, which one run has always used.
pub(super) fn softmax_over(order: impl Iterator<Item = usize>, scores: &[f32]) -> Vec<f32> {
    let scored: Vec<usize> = order.filter(|&k| !scores[k].is_nan()).collect();
    let probs = super::softmax(&scored.iter().map(|&k| scores[k]).collect::<Vec<_>>());
    let mut weights = vec![0f32; scores.len()];
    for (&k, p) in scored.iter().zip(probs) {
        weights[k] = p;
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masks_region_runs_from_its_first_non_zero_row_and_column_to_its_last() {
        let region = |rows, cols| Region { rows, cols };
        let mut mask = vec![0f32; 5 * 3];
        assert_eq!(mask_region(&mask, 3), Region::EMPTY);
        mask[3 + 2] = 0.5; // row 1, column 2
        assert_eq!(mask_region(&mask, 3), region(1..2, 2..3));
        mask[3 * 3] = 1.0; // row 3, column 0
        assert_eq!(mask_region(&mask, 3), region(1..4, 0..3));
        mask[3 * 3] = 0.0;
        mask[3 * 3 + 1] = 1.0; // row 3, column 1
        assert_eq!(mask_region(&mask, 3), region(1..4, 1..3));
        mask[0] = -0.0; // a negative zero masks like zero
        assert_eq!(mask_region(&mask, 3), region(1..4, 1..3));
    }

    #[test]
    fn softmax_over_leaves_unscored_slots_at_zero() {
        let w = softmax_over(0..3, &[1.0, f32::NAN, 1.0]);
        assert_eq!(w, vec![0.5, 0.0, 0.5]);
    }
}
