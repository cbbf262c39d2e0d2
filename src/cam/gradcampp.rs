//! Grad-CAM++'s channel weights (Chattopadhay et al. 2018), exactly as pytorch-grad-cam computes
//! them, from the same target-layer gradients as Grad-CAM.

use super::gradcam::{gradient_cam_output, target_gradients};
use super::registry::{Cost, Method, MethodKind, MethodSpec, Teaching};
use super::{smoothing, MethodInput, MethodOutput, Target};
use crate::error::Result;

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "gradcampp",
    display_name: "Grad-CAM++",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "Grad-CAM++: positive gradients weighted per pixel by second-order terms (one backward pass; pytorch-grad-cam's formula, eps 1e-6)",
    aliases: &["gradcam++"],
    options: &smoothing::BOTH,
    target: Some(Target::Logit),
    cost: Cost::GRADIENT,
    costly: false,
    teaching: Teaching {
        formula: "α_ij = g² / (2g² + Σ_ab A(a,b)·g³ + 1e-6); w_k = Σ_ij ReLU(g_ij)·α_ij; L = ReLU(Σ_k w_k A_k)",
        paper: "Chattopadhay, Sarkar, Howlader, Balasubramanian. Grad-CAM++: Generalized Gradient-based Visual Explanations for Deep Convolutional Networks. WACV 2018 (arXiv 1710.11063)",
        passes: "1 forward + 1 backward through the head",
        versus_scorecam: "Weights each channel by its positive gradients, each pixel's weighted by higher-order terms, from one backward pass, with no masked inputs.",
    },
    build: |o| smoothing::build(o, Method::GradCamPlusPlus),
};

pub(super) async fn run(input: &MethodInput<'_>) -> Result<MethodOutput> {
    let grads = target_gradients(input).await?;
    let maps = &input.forwarded.maps;
    let n = maps.height * maps.width;
    Ok(gradient_cam_output((0..maps.channels).map(|k| channel_weight(&grads[k * n..(k + 1) * n], maps.channel(k))).collect()))
}

/// One channel's weight (the exponential of the score is dropped, so second and third
/// derivatives are powers of the first): `a_ij = g^2 / (2 g^2 + sum(A) g^3 + 1e-6)` (0 where
/// g = 0), weight = `sum(relu(g) a_ij)`.
fn channel_weight(g: &[f32], a: &[f32]) -> f32 {
    let sum_a: f32 = a.iter().sum();
    g.iter()
        .filter(|g| **g != 0.0)
        .map(|&g| {
            let g2 = g * g;
            let alpha = g2 / (2.0 * g2 + sum_a * g2 * g + 1e-6);
            g.max(0.0) * alpha
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grad_cam_pp_weight_matches_the_formula() {
        // g = [1, -1, 0], sum(A) = 2: alpha_0 = 1 / (2 + 2 + 1e-6), negative and zero gradients add nothing
        let w = channel_weight(&[1.0, -1.0, 0.0], &[1.0, 1.0, 0.0]);
        assert!((w - 0.25).abs() < 1e-6, "{w}");
    }
}
