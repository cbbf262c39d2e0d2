//! ShapleyCAM (Cai 2025) as pytorch-grad-cam computes it: channel weights from the gradient and
//! a second-order term, `w_k = mean_ij (g - ½ H A)_k`, H the Hessian of the score with respect to
//! the target layer's activations A. pytorch-grad-cam gets `H A` by double backward, which Burn's
//! autodiff (first order only) does not offer. For a head that is piecewise linear (ReLUs,
//! pooling, linear layers: VGG16, Lite0, most CNN heads) the head's own second derivative is
//! zero almost everywhere, so `H A = Jᵀ ∇²τ(z) (J A)`, J the head's Jacobian and ∇²τ the score's
//! Hessian in the logits z (closed form, [`Target::hessian_times`]): one backward pass of
//! `z · u` gives `Jᵀ u`, and `J A`, the head's derivative along A, is a central difference of
//! the head at `(1 ± 1%) A` (exact where the head is linear, as Lite0's pooled linear layer; a
//! ReLU that switches inside ±1% would blur it). A head with another operation is refused. With
//! the logit (pytorch-grad-cam's default target, `ClassifierOutputTarget`) ∇²τ = 0 and ShapleyCAM
//! is Grad-CAM; the paper recommends a score through the softmax (`--target softmax`).

use burn::tensor::{Tensor, TensorData};

use super::gradcam::{gradient_cam_output, gradients_of, mean_gradients, target_gradients};
use super::registry::{Cost, Method, MethodKind, MethodSpec, Passes, Teaching};
use super::{read_f32, smoothing, MethodInput, MethodOutput, Target};
use crate::error::{Error, Result};

/// The relative step of the central difference along the activations.
const STEP: f32 = 0.01;

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "shapleycam",
    display_name: "ShapleyCAM",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "ShapleyCAM: weights mean(gradient - ½ Hessian·activations), the Hessian term from the score's curvature (zero for the logit, pytorch-grad-cam's default: then Grad-CAM; the paper's choice is a softmax score)",
    aliases: &["shapley-cam"],
    options: &smoothing::BOTH,
    target: Some(Target::Logit),
    cost: Cost { forwards: Passes::NONE, head_forwards: Passes::fixed(3), backwards: Passes::fixed(2), gradients: true },
    costly: false,
    teaching: Teaching {
        formula: "w_k = mean_ij (∂y/∂A − ½ ∂²y/∂A² · A)_k; L = ReLU(Σ_k w_k A_k)",
        paper: "Cai. CAMs as Shapley Value-based Explainers. arXiv 2501.06261 (2025)",
        passes: "1 forward + 2 backward passes through the head, and the head at A ± 1% (pytorch-grad-cam: a double backward)",
        versus_scorecam: "Approximates each channel's Shapley value from the gradient and the curvature of the score, from backward passes only, with no masked inputs.",
    },
    build: |o| smoothing::build(o, Method::ShapleyCam),
};

pub(super) async fn run(input: &MethodInput<'_>) -> Result<MethodOutput> {
    let (model, f) = (input.model, input.forwarded);
    let n = f.maps.height * f.maps.width;
    let grads = target_gradients(input).await?;
    let mut stats_extra = 0;
    let hessian_term = if input.target == Target::Logit || input.target == Target::LogitMinusMean {
        None
    } else {
        model.network.head_is_piecewise_linear().map_err(|why| Error::Invalid(format!("ShapleyCAM's Hessian term needs a piecewise-linear head: {why}")))?;
        // J A by a central difference of the head along A.
        let head = |s: f32| model.network.from_target(f.activations.clone() * s);
        let along = read_f32((head(1.0 + STEP) - head(1.0 - STEP)) / (2.0 * STEP)).await?;
        let u = input.target.hessian_times(&f.logits, input.class, &along);
        let u = Tensor::<2>::from_data(TensorData::new(u, [1, f.logits.len()]), &model.device);
        stats_extra = 1;
        Some(gradients_of(model, f.activations.clone(), |z| (z * u).sum_dim(1)).await?)
    };
    let combined: Vec<f32> = match &hessian_term {
        Some(ha) => grads.iter().zip(ha).map(|(g, h)| g - 0.5 * h).collect(),
        None => grads,
    };
    let mut out = gradient_cam_output(mean_gradients(&combined, n));
    out.stats.head_forwards += 2 * stats_extra;
    out.stats.backwards += stats_extra;
    Ok(out)
}
