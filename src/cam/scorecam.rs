//! Score-CAM's channel weights (Wang et al. 2020): each target-layer map, upsampled and min-max
//! normalised, masks the input; the class score on that masked input weighs the channel. Two
//! published computations differ in their masks, their score and what they make of the scores;
//! the score is the request's [`Target`] (each variant defaults to its source's), the rest is
//! the variant's [`Recipe`].

use burn::tensor::Tensor;

use super::masked::{channel_masks, masked_logits, softmax_over, ChannelScoring, MaskStyle, Scheme as Plan};
use super::registry::{Cost, Method, MethodKind, MethodSpec, OptionKind, OptionSpec, Options, Teaching, BATCH_SIZE};
use super::{read_f32, Finish, Forwarded, MethodInput, MethodOutput, Saliency, Stats, Target};
use crate::error::Result;

/// Which published computation to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScoreCamVariant {
    /// haofanwang/Score-CAM: softmax probability of the class per masked input, constant maps
    /// skipped, weighted sum of the upsampled maps, ReLU, min-max.
    #[default]
    Official,
    /// pytorch-grad-cam's ScoreCAM: masks upsampled with aligned corners, raw class logit per
    /// masked input, softmax across channels, no skipping (a constant map masks everything: one
    /// zero-input forward serves them all).
    GradCamLibrary,
}

/// What a variant does besides its score: its masks, what the channel weights are, whether
/// constant maps are scored, and the finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Recipe {
    masks: MaskStyle,
    /// The weights are the softmax of the scores across channels (else the scores themselves).
    softmax_across_channels: bool,
    /// Constant maps give an all-zero mask that is scored once (else they are skipped).
    score_constant: bool,
    finish: Finish,
}

impl ScoreCamVariant {
    pub(super) fn recipe(self) -> Recipe {
        match self {
            Self::Official => Recipe { masks: MaskStyle::Official, softmax_across_channels: false, score_constant: false, finish: Finish::UpsampleThenNormalise },
            Self::GradCamLibrary => Recipe { masks: MaskStyle::AlignedCorners, softmax_across_channels: true, score_constant: true, finish: Finish::NormaliseThenUpsample },
        }
    }
}

/// The masks a variant scores with (the teaching views show them).
pub(super) fn mask_style(variant: ScoreCamVariant) -> MaskStyle {
    variant.recipe().masks
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScoreCamOptions {
    pub variant: ScoreCamVariant,
    /// Masked inputs per forward pass, at most: capped by [`Model::max_batch`] so no activation
    /// exceeds WebGPU's 128 MiB storage-binding limit.
    ///
    /// [`Model::max_batch`]: crate::models::Model::max_batch
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
    let method = Method::ScoreCam(ScoreCamOptions { variant, batch_size: o.required_usize("batch_size"), top_k: o.usize("top_k") });
    if variant == ScoreCamVariant::GradCamLibrary {
        return super::smoothing::build(o, method);
    }
    Ok(method)
}

const PAPER: &str = "Wang, Wang, Du, Yang, Zhang, Ding, Mardziel, Hu. Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural Networks. CVPR Workshops 2020 (arXiv 1910.01279)";

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "scorecam",
    display_name: "Score-CAM",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "Score-CAM as the official code computes it (haofanwang/Score-CAM): each channel weighted by the class probability on the input masked with it; constant maps skipped",
    aliases: &[],
    options: &[BATCH_SIZE, TOP_K],
    target: Some(Target::Softmax),
    cost: Cost::PER_CHANNEL,
    costly: false,
    teaching: Teaching {
        formula: "M_k = minmax(up(A_k)); w_k = softmax(f(x ⊙ M_k))_c; L = minmax(ReLU(Σ_k w_k up(A_k)))",
        paper: PAPER,
        passes: "1 forward per non-constant channel (Lite0: about 520 of 1280; VGG16: 512)",
        versus_scorecam: "This is Score-CAM, as its authors' code computes it.",
    },
    build: |o| build(o, ScoreCamVariant::Official),
};

pub(super) static LIBRARY_SPEC: MethodSpec = MethodSpec {
    name: "scorecam-gradcam-lib",
    display_name: "Score-CAM (pytorch-grad-cam)",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "pytorch-grad-cam's ScoreCAM: masks upsampled with aligned corners, raw class logits per masked input, softmax across channels, constant maps scored",
    aliases: &[],
    options: &[BATCH_SIZE, TOP_K, super::smoothing::EIGEN_SMOOTH, super::smoothing::AUG_SMOOTH],
    target: Some(Target::Logit),
    cost: Cost::PER_CHANNEL,
    costly: false,
    teaching: Teaching {
        formula: "M_k = minmax(up_aligned(A_k)); s_k = f(x ⊙ M_k)_c; w = softmax_k(s); L = ReLU(Σ_k w_k A_k), normalised, upsampled",
        paper: PAPER,
        passes: "1 forward per channel (constant maps share one zero-input forward)",
        versus_scorecam: "Scores each masked input by its raw logit and turns the scores into weights with a softmax across channels, where the official code uses each masked input's softmax probability as it is.",
    },
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

/// Score-CAM's part of a plan: a masked input per chosen channel.
#[derive(Debug, Clone)]
pub(super) struct Scheme {
    recipe: Recipe,
    constant: Vec<usize>,
    top_k: bool,
}

pub(super) fn plan(opts: &ScoreCamOptions, input: &MethodInput<'_>) -> Result<ChannelScoring> {
    let (chosen, constant) = channels_to_score(input.forwarded, opts);
    let scheme = Scheme { recipe: opts.variant.recipe(), constant, top_k: opts.top_k.is_some() };
    ChannelScoring::new(Plan::ScoreCam(scheme), chosen, input.forwarded.maps.channels, opts.batch_size, input)
}

impl Scheme {
    pub(super) async fn logits(&self, input: &MethodInput<'_>, channels: &[usize], pad: usize, skip: bool) -> Result<Tensor<2>> {
        masked_logits(input, channel_masks(input, channels, self.recipe.masks), None, pad, skip).await
    }

    /// The weights the scores so far give: the final weights if the channels not yet scored
    /// scored zero (the scores as weights), or were left out of the softmax.
    pub(super) fn partial(&self, plan: &ChannelScoring, scores: &[f32]) -> Saliency {
        let weights = if self.recipe.softmax_across_channels {
            // In the order one run has always used (scored channels, then constant ones).
            softmax_over(plan.order().chain(self.constant.iter().copied()), scores)
        } else {
            scores.iter().map(|v| if v.is_nan() { 0.0 } else { *v }).collect()
        };
        Saliency::Channels { weights, finish: self.recipe.finish }
    }

    /// With constant maps scored, they are scored here: they give an all-zero mask, so their
    /// score is the zero input's.
    pub(super) async fn finish(&self, plan: &ChannelScoring, input: &MethodInput<'_>, mut scores: Vec<f32>, mut stats: Stats) -> Result<MethodOutput> {
        if !self.recipe.score_constant {
            stats.skipped_constant = self.constant.len();
        } else if !self.constant.is_empty() && !self.top_k {
            let model = input.model;
            let size = model.input_size();
            let zero = Tensor::<4>::zeros([1, 3, size, size], &model.device);
            let z = read_f32(input.target.scores(model.network.forward(zero), input.class)).await?[0];
            for &k in &self.constant {
                scores[k] = z;
            }
            stats.forwards += 1;
            stats.batches += 1;
        }
        Ok(MethodOutput { saliency: self.partial(plan, &scores), stats, channel_scores: scores })
    }
}
