//! Grad-CAM's channel weights (Selvaraju et al. 2017): the mean gradient of the class logit with
//! respect to each target-layer map, through Burn's autodiff on [`Network::from_target`].
//!
//! [`Network::from_target`]: crate::models::Network::from_target

use super::registry::{Method, MethodKind, MethodSpec};
use super::{read_f32, Finish, MethodInput, MethodOutput, Saliency, Stats};
use crate::error::{Error, Result};

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "gradcam",
    display_name: "Grad-CAM",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "Grad-CAM: each channel weighted by the mean gradient of the class logit (one backward pass)",
    aliases: &[],
    options: &[],
    build: |_| Ok(Method::GradCam),
};

/// d logit_class / d A for the target-layer activations A, `[channels, h, w]` row-major.
pub(super) async fn target_gradients(input: &MethodInput<'_>) -> Result<Vec<f32>> {
    // A fresh autodiff leaf from the activations the forward pass left on the device: only the
    // head after the target layer is differentiated (the layers before it cannot change the
    // gradient).
    let acts = input.forwarded.activations.clone().autodiff().require_grad();
    let logits = input.model.network.from_target(acts.clone());
    let grads = logits.slice([0..1, input.class..input.class + 1]).sum().backward();
    let g = acts.grad(&grads).ok_or_else(|| Error::Device("no gradient reached the target layer".into()))?;
    read_f32(g).await
}

/// The pipeline's finish for the gradient CAMs: pytorch-grad-cam's.
pub(super) fn gradient_cam_output(weights: Vec<f32>) -> MethodOutput {
    MethodOutput::new(Saliency::Channels { weights, finish: Finish::NormaliseThenUpsample }, Stats { forwards: 1, batches: 1, ..Stats::default() })
}

pub(super) async fn run(input: &MethodInput<'_>) -> Result<MethodOutput> {
    let grads = target_gradients(input).await?;
    let n = input.forwarded.maps.height * input.forwarded.maps.width;
    Ok(gradient_cam_output(grads.chunks_exact(n).map(|g| g.iter().sum::<f32>() / n as f32).collect()))
}
