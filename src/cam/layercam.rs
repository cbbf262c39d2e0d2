//! LayerCAM (Jiang et al. 2021) at one layer, as both libraries compute it there: the positive
//! gradient weighs each activation, `ReLU(g) ⊙ A`, summed over channels. (Across several layers
//! pytorch-grad-cam averages the normalised maps and torch-cam takes the maximum after the
//! paper's `tanh(2x)`; one layer is explained here.)

use super::gradcam::{gradient_stack_output, target_gradients};
use super::registry::{Cost, Method, MethodKind, MethodSpec, Teaching};
use super::{smoothing, MethodInput, MethodOutput, Target};
use crate::error::Result;

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "layercam",
    display_name: "LayerCAM",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "LayerCAM: Σ_k ReLU(gradient) ⊙ activation, position by position (one backward pass)",
    aliases: &["layer-cam"],
    options: &smoothing::BOTH,
    target: Some(Target::Logit),
    cost: Cost::GRADIENT,
    costly: false,
    teaching: Teaching {
        formula: "L = ReLU(Σ_k ReLU(∂y/∂A_k) ⊙ A_k)",
        paper: "Jiang, Zhang, Hou, Cheng, Wei. LayerCAM: Exploring Hierarchical Class Activation Maps for Localization. IEEE TIP 30 (2021) 5875-5888",
        passes: "1 forward + 1 backward through the head",
        versus_scorecam: "Weights each position of each channel by its own positive gradient from one backward pass, with no masked inputs.",
    },
    build: |o| smoothing::build(o, Method::LayerCam),
};

pub(super) async fn run(input: &MethodInput<'_>) -> Result<MethodOutput> {
    let grads = target_gradients(input).await?;
    Ok(gradient_stack_output(grads.iter().zip(&input.forwarded.maps.data).map(|(g, a)| g.max(0.0) * a).collect()))
}
