//! pytorch-grad-cam's EigenGradCAM (no paper: Eigen-CAM of `g ⊙ A`): the first principal
//! component of the gradient times the activations, "like Eigen-CAM but with class
//! discrimination". Its map is a projection already, so it has no `eigen_smooth`.

use super::gradcam::{gradient_stats, target_gradients};
use super::projection::first_component;
use super::registry::{Cost, Method, MethodKind, MethodSpec, Teaching};
use super::{smoothing, Finish, MethodInput, MethodOutput, Saliency, Target};
use crate::error::Result;

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "eigengradcam",
    display_name: "EigenGrad-CAM",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "pytorch-grad-cam's EigenGradCAM: the first principal component of gradient ⊙ activation (one backward pass)",
    aliases: &["eigen-grad-cam"],
    options: &smoothing::AUG,
    target: Some(Target::Logit),
    cost: Cost::GRADIENT,
    costly: false,
    teaching: Teaching {
        formula: "L = ReLU(first principal component of ∂y/∂A ⊙ A over the positions)",
        paper: "pytorch-grad-cam (Gildenblat et al.), EigenGradCAM: no paper; Eigen-CAM (Bany Muhammad & Yeasin, IJCNN 2020) of the gradient-weighted activations",
        passes: "1 forward + 1 backward through the head",
        versus_scorecam: "Takes the main direction of variation of gradient times activation across positions, with no channel weights and no masked inputs.",
    },
    build: |o| smoothing::build(o, Method::EigenGradCam),
};

pub(super) async fn run(input: &MethodInput<'_>) -> Result<MethodOutput> {
    let grads = target_gradients(input).await?;
    let maps = &input.forwarded.maps;
    let stack: Vec<f32> = grads.iter().zip(&maps.data).map(|(g, a)| g * a).collect();
    let map = first_component(&stack, maps.channels, maps.height * maps.width);
    Ok(MethodOutput::new(Saliency::LowRes { map, finish: Finish::NormaliseThenUpsample }, gradient_stats()))
}
