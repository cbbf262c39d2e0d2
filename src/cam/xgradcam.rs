//! XGrad-CAM (Fu et al. 2020) as pytorch-grad-cam computes it: each channel weighted by its
//! activation-weighted gradient, `Σ_ij g A / (Σ_ij A + 1e-7)` (the raw sum, no absolute value;
//! torch-cam's is the same with 1e-8).

use super::gradcam::{gradient_cam_output, target_gradients};
use super::registry::{Cost, Method, MethodKind, MethodSpec, Teaching};
use super::{smoothing, MethodInput, MethodOutput, Target};
use crate::error::Result;

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "xgradcam",
    display_name: "XGrad-CAM",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "XGrad-CAM: each channel weighted by Σ gradient·activation / (Σ activation + 1e-7) (one backward pass)",
    aliases: &["xgrad-cam"],
    options: &smoothing::BOTH,
    target: Some(Target::Logit),
    cost: Cost::GRADIENT,
    costly: false,
    teaching: Teaching {
        formula: "w_k = Σ_ij (A_k(i,j) / Σ_ab A_k(a,b)) ∂y/∂A_k(i,j); L = ReLU(Σ_k w_k A_k)",
        paper: "Fu, Hu, Dong, Guo, Gao, Li. Axiom-based Grad-CAM: Towards Accurate Visualization and Explanation of CNNs. BMVC 2020 (arXiv 2008.02312)",
        passes: "1 forward + 1 backward through the head",
        versus_scorecam: "Weights each channel by its gradient averaged where it is active, from one backward pass, with no masked inputs.",
    },
    build: |o| smoothing::build(o, Method::XGradCam),
};

pub(super) async fn run(input: &MethodInput<'_>) -> Result<MethodOutput> {
    let grads = target_gradients(input).await?;
    let maps = &input.forwarded.maps;
    let n = maps.height * maps.width;
    let weights = (0..maps.channels)
        .map(|k| {
            let (g, a) = (&grads[k * n..(k + 1) * n], maps.channel(k));
            let sum: f32 = a.iter().sum();
            g.iter().zip(a).map(|(g, a)| g * a).sum::<f32>() / (sum + 1e-7)
        })
        .collect();
    Ok(gradient_cam_output(weights))
}
