//! Score-CAM's channel weights: each target-layer map, upsampled and min-max normalised, masks
//! the input; the class score on that masked input is the channel's weight.

use burn::tensor::activation::softmax as softmax_dim;
use burn::tensor::{Int, Tensor, TensorData};

use super::registry::{Method, MethodKind, MethodSpec, OptionKind, OptionSpec, Options, BATCH_SIZE};
use crate::imageops::upsample::bilinear_matrix;
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

pub(super) async fn run(opts: &ScoreCamOptions, input: &MethodInput<'_>, reporter: &mut Reporter<'_>) -> Result<MethodOutput> {
    let (model, f, class) = (input.model, input.forwarded, input.class);
    if opts.batch_size == 0 {
        return Err(Error::Invalid("batch size must be at least 1".into()));
    }
    let device = &model.device;
    let size = model.input_size();
    let batch_size = opts.batch_size.min(model.max_batch());
    let maps = &f.maps;
    let (h, w, n) = (maps.height, maps.width, maps.channels);
    let (chosen, constant) = channels_to_score(f, opts);
    let library = opts.variant == ScoreCamVariant::GradCamLibrary;

    // Upsampling as two matmuls: [B*h, w] x [w, size], then [B*size, h] x [h, size].
    // The official code uses F.interpolate (align_corners=False); pytorch-grad-cam uses
    // nn.UpsamplingBilinear2d, which aligns corners.
    let rw_t = Tensor::<2>::from_data(TensorData::new(transpose(&bilinear_matrix(w, size, library), size, w), [w, size]), device);
    let rh_t = Tensor::<2>::from_data(TensorData::new(transpose(&bilinear_matrix(h, size, library), size, h), [h, size]), device);
    let maps_dev = f.activations.clone().reshape([n, h, w]);

    let mut scores = vec![0f32; n];
    let mut stats = Stats { skipped_constant: if library { 0 } else { constant.len() }, ..Stats::default() };
    let eps = if library { 1e-8 } else { 0.0 };
    let total = chosen.len();
    for (b, batch) in chosen.chunks(batch_size).enumerate() {
        let bsz = batch.len();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(batch.iter().map(|&k| k as i64).collect::<Vec<_>>(), [bsz]), device);
        let a = maps_dev.clone().select(0, idx).reshape([bsz * h, w]);
        let up = a.matmul(rw_t.clone()).reshape([bsz, h, size]).swap_dims(1, 2).reshape([bsz * size, h]);
        let up = up.matmul(rh_t.clone()).reshape([bsz, size, size]).swap_dims(1, 2);
        let min = up.clone().min_dims(&[1, 2]);
        let max = up.clone().max_dims(&[1, 2]);
        let mask = (up - min.clone()) / (max - min + eps);
        let masked = f.input.clone() * mask.unsqueeze_dim::<4>(1);
        let logits = model.network.forward(masked);
        let scored = if library { logits } else { softmax_dim(logits, 1) };
        let values = read_f32(scored.slice([0..bsz, class..class + 1])).await?;
        for (&k, v) in batch.iter().zip(values) {
            scores[k] = v;
        }
        stats.forwards += bsz;
        stats.batches += 1;
        let done = (b * batch_size + bsz).min(total);
        // The partial weights are what the final weights would be if the rest scored zero.
        let library_partial;
        let (partial, finish) = if library {
            library_partial = library_weights(&chosen[..done], &scores, n);
            (&library_partial[..], Finish::NormaliseThenUpsample)
        } else {
            (&scores[..], Finish::UpsampleThenNormalise)
        };
        reporter.report(Progress { done, total, partial: Partial::Weights { weights: partial, finish } }).await?;
    }

    if !library {
        return Ok(MethodOutput { saliency: Saliency::Channels { weights: scores, finish: Finish::UpsampleThenNormalise }, stats });
    }
    // Library variant: constant maps give an all-zero mask, so their score is the zero input's.
    let mut scored: Vec<usize> = chosen.clone();
    if !constant.is_empty() && opts.top_k.is_none() {
        let zero = Tensor::<4>::zeros([1, 3, size, size], device);
        let z = read_f32(model.network.forward(zero).slice([0..1, class..class + 1])).await?[0];
        for &k in &constant {
            scores[k] = z;
        }
        scored.extend(&constant);
        stats.forwards += 1;
        stats.batches += 1;
    }
    Ok(MethodOutput { saliency: Saliency::Channels { weights: library_weights(&scored, &scores, n), finish: Finish::NormaliseThenUpsample }, stats })
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

fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}
