//! pytorch-grad-cam's GradCAMElementWise (no paper: its README's "like Grad-CAM but element-wise
//! multiply the activations with the gradients; provably guaranteed faithfulness for certain
//! models"): `ReLU(g ⊙ A)` element by element, summed over channels.

use super::gradcam::{gradient_stack_output, target_gradients};
use super::registry::{Cost, Method, MethodKind, MethodSpec, Teaching};
use super::{smoothing, MethodInput, MethodOutput, Target};
use crate::error::Result;

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "gradcamelementwise",
    display_name: "Grad-CAM element-wise",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "pytorch-grad-cam's GradCAMElementWise: Σ_k ReLU(gradient ⊙ activation), the ReLU before the channel sum (one backward pass)",
    aliases: &["gradcam-elementwise"],
    options: &smoothing::BOTH,
    target: Some(Target::Logit),
    cost: Cost::GRADIENT,
    costly: false,
    teaching: Teaching {
        formula: "L = Σ_k ReLU(∂y/∂A_k ⊙ A_k)",
        paper: "pytorch-grad-cam (Gildenblat et al.), GradCAMElementWise: no paper; HiResCAM with the ReLU inside the sum",
        passes: "1 forward + 1 backward through the head",
        versus_scorecam: "Keeps only the positions where gradient times activation is positive, from one backward pass, with no masked inputs.",
    },
    build: |o| smoothing::build(o, Method::GradCamElementWise),
};

pub(super) async fn run(input: &MethodInput<'_>) -> Result<MethodOutput> {
    let grads = target_gradients(input).await?;
    Ok(gradient_stack_output(grads.iter().zip(&input.forwarded.maps.data).map(|(g, a)| (g * a).max(0.0)).collect()))
}
