//! Grad-CAM's channel weights (Selvaraju et al. 2017): the mean gradient of the class score (the
//! logit, pytorch-grad-cam's `ClassifierOutputTarget`, unless another [`Target`] is asked for)
//! with respect to each target-layer map, through Burn's autodiff on
//! [`Network::from_target`]. The gradient methods share [`target_gradients`].
//!
//! [`Network::from_target`]: crate::models::Network::from_target

use burn::tensor::Tensor;

use super::registry::{Cost, Method, MethodKind, MethodSpec, Teaching};
use super::{read_f32, smoothing, Finish, MethodInput, MethodOutput, Saliency, Stats, Target};
use crate::error::{Error, Result};
use crate::models::Model;

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "gradcam",
    display_name: "Grad-CAM",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "Grad-CAM: each channel weighted by the mean gradient of the class logit (one backward pass)",
    aliases: &[],
    options: &smoothing::BOTH,
    target: Some(Target::Logit),
    cost: Cost::GRADIENT,
    costly: false,
    teaching: Teaching {
        formula: "w_k = mean_ij ∂y/∂A_k(i,j); L = ReLU(Σ_k w_k A_k)",
        paper: "Selvaraju, Cogswell, Das, Vedantam, Parikh, Batra. Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization. ICCV 2017 (arXiv 1610.02391)",
        passes: "1 forward + 1 backward through the head",
        versus_scorecam: "Weights each channel by its average gradient from one backward pass instead of by the score of the input masked with it.",
    },
    build: |o| smoothing::build(o, Method::GradCam),
};

/// d score / d A for target-layer activations `activations` (`[1, C, h, w]`, on the device),
/// `[C, h, w]` row-major; `score` turns the logits `[1, classes]` into the `[1, 1]` score. A
/// fresh autodiff leaf from the activations: only the head after the target layer is
/// differentiated (the layers before it cannot change the gradient).
pub(super) async fn gradients_of(model: &Model, activations: Tensor<4>, score: impl FnOnce(Tensor<2>) -> Tensor<2>) -> Result<Vec<f32>> {
    let acts = activations.autodiff().require_grad();
    let logits = model.network.from_target(acts.clone());
    let grads = score(logits).sum().backward();
    let g = acts.grad(&grads).ok_or_else(|| Error::Device("no gradient reached the target layer".into()))?;
    read_f32(g).await
}

/// d score / d A for the input's target-layer activations and its target score of its class.
pub(super) async fn target_gradients(input: &MethodInput<'_>) -> Result<Vec<f32>> {
    gradients_of(input.model, input.forwarded.activations.clone(), |z| input.target.scores(z, input.class)).await
}

/// The cost of one gradient: the head's forward and backward from the forwarded activations.
pub(super) fn gradient_stats() -> Stats {
    Stats { head_forwards: 1, batches: 1, backwards: 1, ..Stats::default() }
}

/// The pipeline's finish for the gradient CAMs: pytorch-grad-cam's.
pub(super) fn gradient_cam_output(weights: Vec<f32>) -> MethodOutput {
    MethodOutput::new(Saliency::Channels { weights, finish: Finish::NormaliseThenUpsample }, gradient_stats())
}

/// A map made per channel from the gradients (`[C, h, w]`), summed (or projected) and finished
/// as pytorch-grad-cam does.
pub(super) fn gradient_stack_output(maps: Vec<f32>) -> MethodOutput {
    MethodOutput::new(Saliency::Stack { maps, finish: Finish::NormaliseThenUpsample }, gradient_stats())
}

/// Grad-CAM's weights from the gradients: their mean over each channel's positions.
pub(super) fn mean_gradients(grads: &[f32], n: usize) -> Vec<f32> {
    grads.chunks_exact(n).map(|g| g.iter().sum::<f32>() / n as f32).collect()
}

pub(super) async fn run(input: &MethodInput<'_>) -> Result<MethodOutput> {
    let grads = target_gradients(input).await?;
    let n = input.forwarded.maps.height * input.forwarded.maps.width;
    Ok(gradient_cam_output(mean_gradients(&grads, n)))
}
