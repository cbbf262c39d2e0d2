//! Score-CAM's channel weights: each target-layer map, upsampled and min-max normalised, masks
//! the input; the class score on that masked input is the channel's weight.

use burn::tensor::activation::softmax as softmax_dim;
use burn::tensor::{Int, Tensor, TensorData};

use super::registry::{Method, MethodKind, MethodSpec, OptionKind, OptionSpec, Options, BATCH_SIZE};
use crate::imageops::upsample::bilinear_matrix;
use crate::models::{ConvKernel, Region};
use crate::weights::transpose;
use super::{read_f32, softmax, Finish, Forwarded, MethodInput, MethodOutput, Partial, Progress, Reporter, Saliency, Stats};
use crate::error::{Error, Result};

/// Which published computation to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScoreCamVariant {
    /// haofanwang/Score-CAM: softmax probability of the class per masked input, constant maps
    /// skipped, weighted sum of the upsampled maps, ReLU, min-max.
    #[default]
    Official,
    /// pytorch-grad-cam's ScoreCAM: masks upsampled with aligned corners, raw class logit per
    /// masked input, softmax across channels, no skipping (a constant map masks everything: one zero-input forward serves them all).
    GradCamLibrary,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScoreCamOptions {
    pub variant: ScoreCamVariant,
    /// Masked inputs per forward pass, at most: capped by [`Model::max_batch`] so no activation
    /// exceeds WebGPU's 128 MiB storage-binding limit.
    pub batch_size: usize,
    /// Faster-Score-CAM: score only the `k` channels with the largest activation variance.
    pub top_k: Option<usize>,
}

impl Default for ScoreCamOptions {
    fn default() -> Self {
        Self { variant: ScoreCamVariant::Official, batch_size: 16, top_k: None }
    }
}

const TOP_K: OptionSpec = OptionSpec {
    name: "top_k",
    kind: OptionKind::Integer,
    default: None,
    min: Some(1.0),
    max: None,
    help: "Faster-Score-CAM: score only the k channels of largest activation variance",
};

fn build(o: &Options<'_>, variant: ScoreCamVariant) -> Result<Method> {
    Ok(Method::ScoreCam(ScoreCamOptions { variant, batch_size: o.required_usize("batch_size"), top_k: o.usize("top_k") }))
}

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "scorecam",
    display_name: "Score-CAM",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "Score-CAM as the official code computes it: each channel weighted by the class probability on the input masked with it",
    aliases: &[],
    options: &[BATCH_SIZE, TOP_K],
    build: |o| build(o, ScoreCamVariant::Official),
};

pub(super) static LIBRARY_SPEC: MethodSpec = MethodSpec {
    name: "scorecam-gradcam-lib",
    display_name: "Score-CAM (pytorch-grad-cam)",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "pytorch-grad-cam's ScoreCAM: raw class logits per masked input, softmax across channels",
    aliases: &[],
    options: &[BATCH_SIZE, TOP_K],
    build: |o| build(o, ScoreCamVariant::GradCamLibrary),
};

/// Channels to score (non-constant ones, optionally only the `k` of largest variance) and the
/// constant ones.
fn channels_to_score(f: &Forwarded, opts: &ScoreCamOptions) -> (Vec<usize>, Vec<usize>) {
    let maps = &f.maps;
    let (mut chosen, constant): (Vec<usize>, Vec<usize>) = (0..maps.channels).partition(|&k| !maps.is_constant(k));
    if let Some(k) = opts.top_k {
        let variance = |c: usize| {
            let m = maps.channel(c);
            let mean = m.iter().sum::<f32>() / m.len() as f32;
            m.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>()
        };
        chosen.sort_by(|a, b| variance(*b).total_cmp(&variance(*a)).then(a.cmp(b)));
        chosen.truncate(k);
        chosen.sort_unstable();
    }
    (chosen, constant)
}

/// Score-CAM's masked forward passes as a plan of batches. One run scores them in order
/// ([`run`]); the page's worker pool scores them anywhere, in any order, and hands the scores back
/// to [`ChannelScoring::weights`] and [`ChannelScoring::finish`]. Either way a batch holds the
/// same channels and is computed by the same code, so the scores, and the map, are the same.
///
/// Scores travel as one value per channel of the target layer, `NaN` where not (yet) scored.
#[derive(Debug, Clone)]
pub struct ChannelScoring {
    variant: ScoreCamVariant,
    /// The channels to score (see [`channels_to_score`]), cut into batches.
    batches: Vec<Vec<usize>>,
    constant: Vec<usize>,
    top_k: bool,
    channels: usize,
    /// On a GPU, every forward runs at the full batch size (the last batch padded with zero
    /// masks), so each kernel is compiled, and natively autotuned, for one shape only.
    pad_to: Option<usize>,
}

impl ChannelScoring {
    pub fn plan(opts: &ScoreCamOptions, input: &MethodInput<'_>) -> Result<Self> {
        if opts.batch_size == 0 {
            return Err(Error::Invalid("batch size must be at least 1".into()));
        }
        let batch_size = opts.batch_size.min(input.model.max_batch());
        let (chosen, constant) = channels_to_score(input.forwarded, opts);
        let pad_to = input.model.binding_limit.map(|_| batch_size.min(chosen.len()).max(1));
        // Unpadded (on the CPU), the first batch is one masked input, so the first partial map
        // comes after one forward pass rather than `batch_size` of them: VGG16's first heatmap in
        // the page (docs/benchmarks.md, "The first heatmap after one forward pass").
        let (first, rest) = chosen.split_at(if pad_to.is_none() { chosen.len().min(1) } else { 0 });
        let batches = std::iter::once(first).filter(|b| !b.is_empty()).chain(rest.chunks(batch_size)).map(<[usize]>::to_vec).collect();
        Ok(Self { variant: opts.variant, batches, constant, top_k: opts.top_k.is_some(), channels: input.forwarded.maps.channels, pad_to })
    }

    pub fn batch_count(&self) -> usize {
        self.batches.len()
    }

    /// Masked inputs to score in all.
    pub fn total(&self) -> usize {
        self.batches.iter().map(Vec::len).sum()
    }

    /// Channels of the target layer.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The channels of batch `b`.
    pub fn batch(&self, b: usize) -> Result<&[usize]> {
        self.batches.get(b).map(Vec::as_slice).ok_or_else(|| Error::Invalid(format!("batch {b} out of range (the plan has {})", self.batches.len())))
    }

    fn library(&self) -> bool {
        self.variant == ScoreCamVariant::GradCamLibrary
    }

    /// Scores batch `b`: one forward pass of its masked inputs. Returns a score per channel of
    /// [`Self::batch`], in its order.
    pub async fn score(&self, input: &MethodInput<'_>, b: usize) -> Result<Vec<f32>> {
        let batch = self.batch(b)?;
        let (model, f, class) = (input.model, input.forwarded, input.class);
        let mut masks = channel_masks(input, batch, self.variant);
        if let Some(full) = self.pad_to.filter(|&full| full > batch.len()) {
            let [_, h, w] = masks.dims();
            masks = Tensor::cat(vec![masks, Tensor::zeros([full - batch.len(), h, w], &model.device)], 0);
        }
        let masked = f.input.clone() * masks.clone().unsqueeze_dim::<4>(1);
        // The first batch (one masked input, see `plan`) computes every row: the skip copies
        // from the zero image's forward, which a model records at its first masked batch, and
        // that forward would double the wait for the first partial map.
        let logits = if b > 0 && model.conv_kernels().contains(&ConvKernel::Cpu) {
            // On the CPU what a mask leaves at zero need not be computed (the masks are in host
            // memory already: reading them costs a copy).
            let [n, h, w] = masks.dims();
            let values = read_f32(masks).await?;
            let regions: Vec<Region> = values.chunks_exact(h * w).map(|mask| mask_region(mask, w)).collect();
            debug_assert_eq!(regions.len(), n);
            model.network.forward_masked(masked, &regions)
        } else {
            model.network.forward(masked)
        };
        let scored = if self.library() { logits } else { softmax_dim(logits, 1) };
        read_f32(scored.slice([0..batch.len(), class..class + 1])).await
    }

    /// The channel weights the scores so far give, and how to finish them: what the final weights
    /// would be if the channels not yet scored scored zero (official), or were left out of the
    /// softmax (pytorch-grad-cam).
    pub fn weights(&self, scores: &[f32]) -> (Vec<f32>, Finish) {
        if self.library() {
            // In the order one run has always used (scored channels, then constant ones): the
            // softmax's sum, and so the last bits of the map, depend on it.
            let scored: Vec<usize> = self.batches.iter().flatten().chain(&self.constant).copied().filter(|&k| !scores[k].is_nan()).collect();
            (library_weights(&scored, scores, scores.len()), Finish::NormaliseThenUpsample)
        } else {
            (scores.iter().map(|v| if v.is_nan() { 0.0 } else { *v }).collect(), Finish::UpsampleThenNormalise)
        }
    }

    /// The method's output once every batch is scored. pytorch-grad-cam's variant scores the
    /// constant maps here: they give an all-zero mask, so their score is the zero input's.
    pub async fn finish(&self, input: &MethodInput<'_>, mut scores: Vec<f32>) -> Result<MethodOutput> {
        if scores.len() != self.channels {
            return Err(Error::Invalid(format!("{} scores for {} channels", scores.len(), self.channels)));
        }
        if let Some(k) = self.batches.iter().flatten().find(|&&k| scores[k].is_nan()) {
            return Err(Error::Invalid(format!("channel {k} was not scored")));
        }
        let mut stats = Stats { forwards: self.total(), batches: self.batch_count(), skipped_constant: 0 };
        if !self.library() {
            stats.skipped_constant = self.constant.len();
            let saliency = Saliency::Channels { weights: self.weights(&scores).0, finish: Finish::UpsampleThenNormalise };
            return Ok(MethodOutput { saliency, stats, channel_scores: scores });
        }
        if !self.constant.is_empty() && !self.top_k {
            let (model, class) = (input.model, input.class);
            let size = model.input_size();
            let zero = Tensor::<4>::zeros([1, 3, size, size], &model.device);
            let z = read_f32(model.network.forward(zero).slice([0..1, class..class + 1])).await?[0];
            for &k in &self.constant {
                scores[k] = z;
            }
            stats.forwards += 1;
            stats.batches += 1;
        }
        let saliency = Saliency::Channels { weights: self.weights(&scores).0, finish: Finish::NormaliseThenUpsample };
        Ok(MethodOutput { saliency, stats, channel_scores: scores })
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

    /// Records batch `b`'s scores and reports the partial weights they give.
    async fn add(&mut self, b: usize, values: Vec<f32>, reporter: &mut Reporter<'_>) -> Result<()> {
        let batch = self.plan.batch(b)?;
        for (&k, v) in batch.iter().zip(values) {
            self.scores[k] = v;
        }
        self.done += batch.len();
        let (weights, finish) = self.plan.weights(&self.scores);
        reporter.report(Progress { done: self.done, total: self.plan.total(), partial: Partial::Weights { weights: &weights, finish } }).await
    }
}

/// Scores every batch in order, reporting the partial weights after each.
pub(super) async fn run(opts: &ScoreCamOptions, input: &MethodInput<'_>, reporter: &mut Reporter<'_>) -> Result<MethodOutput> {
    let plan = ChannelScoring::plan(opts, input)?;
    #[cfg(not(target_arch = "wasm32"))]
    if input.model.lanes > 1 && plan.batch_count() > 1 {
        return score_in_lanes(&plan, input, input.model.lanes, reporter);
    }
    let mut tally = Tally::new(&plan);
    for b in 0..plan.batch_count() {
        tally.add(b, plan.score(input, b).await?, reporter).await?;
    }
    plan.finish(input, tally.scores).await
}

/// [`run`] with `lanes` threads each scoring the next batch (natively on the CPU): the scores,
/// and so the map, are those of one run; progress is reported from the calling thread as batches
/// come in, and a cancel or an error stops every lane at its next batch.
#[cfg(not(target_arch = "wasm32"))]
fn score_in_lanes(plan: &ChannelScoring, input: &MethodInput<'_>, lanes: usize, reporter: &mut Reporter<'_>) -> Result<MethodOutput> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let mut tally = Tally::new(plan);
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<Vec<f32>>)>();
        for _ in 0..lanes.min(plan.batch_count()) {
            let (tx, next, stop) = (tx.clone(), &next, &stop);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    if b >= plan.batch_count() || tx.send((b, pollster::block_on(plan.score(input, b)))).is_err() {
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
    pollster::block_on(plan.finish(input, tally.scores))
}

/// The rectangle of a mask (`width` wide) from its first non-zero row to its last, and from its
/// first non-zero column to its last (empty if all zero).
fn mask_region(mask: &[f32], width: usize) -> Region {
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

/// The masks of `channels`, `[B, size, size]` on the device: each activation map upsampled to the
/// input size and min-max normalised, as `variant` computes them.
fn channel_masks(input: &MethodInput<'_>, channels: &[usize], variant: ScoreCamVariant) -> Tensor<3> {
    let (model, f) = (input.model, input.forwarded);
    let device = &model.device;
    let size = model.input_size();
    let (h, w, n) = (f.maps.height, f.maps.width, f.maps.channels);
    let library = variant == ScoreCamVariant::GradCamLibrary;
    // Upsampling as two matmuls: [B*h, w] x [w, size], then [B*size, h] x [h, size].
    // The official code uses F.interpolate (align_corners=False); pytorch-grad-cam uses
    // nn.UpsamplingBilinear2d, which aligns corners.
    let rw_t = Tensor::<2>::from_data(TensorData::new(transpose(&bilinear_matrix(w, size, library), size, w), [w, size]), device);
    let rh_t = Tensor::<2>::from_data(TensorData::new(transpose(&bilinear_matrix(h, size, library), size, h), [h, size]), device);
    let eps = if library { 1e-8 } else { 0.0 };
    let bsz = channels.len();
    let idx = Tensor::<1, Int>::from_data(TensorData::new(channels.iter().map(|&k| k as i64).collect::<Vec<_>>(), [bsz]), device);
    let a = f.activations.clone().reshape([n, h, w]).select(0, idx).reshape([bsz * h, w]);
    let up = a.matmul(rw_t).reshape([bsz, h, size]).swap_dims(1, 2).reshape([bsz * size, h]);
    let up = up.matmul(rh_t).reshape([bsz, size, size]).swap_dims(1, 2);
    let min = up.clone().min_dims(&[1, 2]);
    let max = up.clone().max_dims(&[1, 2]);
    (up - min.clone()) / (max - min + eps)
}

/// Channel `k`'s mask (`size x size`, in [0, 1]): what Score-CAM multiplies the input by to score
/// the channel, computed by the same code as the scoring. A constant map gives an all-zero mask
/// (the official code skips it; pytorch-grad-cam's masks everything out).
pub async fn channel_mask(input: &MethodInput<'_>, k: usize, variant: ScoreCamVariant) -> Result<Vec<f32>> {
    let maps = &input.forwarded.maps;
    if k >= maps.channels {
        return Err(Error::Invalid(format!("channel {k} out of range (the target layer has {})", maps.channels)));
    }
    let size = input.model.input_size();
    if maps.is_constant(k) {
        return Ok(vec![0.0; size * size]);
    }
    read_f32(channel_masks(input, &[k], variant).reshape([size * size])).await
}

/// pytorch-grad-cam's weights: softmax of the class logits across the scored channels.
fn library_weights(scored: &[usize], logits: &[f32], n: usize) -> Vec<f32> {
    let probs = softmax(&scored.iter().map(|&k| logits[k]).collect::<Vec<_>>());
    let mut weights = vec![0f32; n];
    for (&k, p) in scored.iter().zip(probs) {
        weights[k] = p;
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::mask_region;
    use crate::models::Region;

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
}
