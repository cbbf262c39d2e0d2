//! HiResCAM (Draelos & Carin 2020) as pytorch-grad-cam computes it: the gradient times the
//! activations, element by element, summed over channels (no averaging of the gradient over
//! positions, so the map is faithful to what the head computes from each position).

use super::gradcam::{gradient_stack_output, target_gradients};
use super::registry::{Cost, Method, MethodKind, MethodSpec, Teaching};
use super::{smoothing, MethodInput, MethodOutput, Target};
use crate::error::Result;

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "hirescam",
    display_name: "HiResCAM",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "HiResCAM: Σ_k of the class logit's gradient times the activations, position by position (one backward pass)",
    aliases: &[],
    options: &smoothing::BOTH,
    target: Some(Target::Logit),
    cost: Cost::GRADIENT,
    costly: false,
    teaching: Teaching {
        formula: "L = ReLU(Σ_k ∂y/∂A_k ⊙ A_k)",
        paper: "Draelos, Carin. Use HiResCAM instead of Grad-CAM for faithful explanations of convolutional neural networks. arXiv 2011.08891 (2020)",
        passes: "1 forward + 1 backward through the head",
        versus_scorecam: "Multiplies each position's gradient into its activation from one backward pass, with no masked inputs and no channel weights.",
    },
    build: |o| smoothing::build(o, Method::HiResCam),
};

pub(super) async fn run(input: &MethodInput<'_>) -> Result<MethodOutput> {
    let grads = target_gradients(input).await?;
    Ok(gradient_stack_output(grads.iter().zip(&input.forwarded.maps.data).map(|(g, a)| g * a).collect()))
}
