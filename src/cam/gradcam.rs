//! Grad-CAM and Grad-CAM++ channel weights, from the gradient of the class logit with respect to
//! the target-layer activations (Burn's autodiff through [`Network::from_target`]).
//!
//! [`Network::from_target`]: crate::models::Network::from_target

use burn::tensor::{Tensor, TensorData};

use super::{read_f32, Forwarded};
use crate::error::{Error, Result};
use crate::models::Model;

/// d logit_class / d A for the target-layer activations A, `[channels, h, w]` row-major.
pub(super) async fn target_gradients(model: &Model, f: &Forwarded, class: usize) -> Result<Vec<f32>> {
    let m = &f.maps;
    // A fresh autodiff leaf from the activations already on the host: only the head after the
    // target layer is differentiated (the layers before it cannot change the gradient).
    let acts = Tensor::<4>::from_data(TensorData::new(m.data.clone(), [1, m.channels, m.height, m.width]), &model.device)
        .autodiff()
        .require_grad();
    let logits = model.network.from_target(acts.clone());
    let grads = logits.slice([0..1, class..class + 1]).sum().backward();
    let g = acts.grad(&grads).ok_or_else(|| Error::Device("no gradient reached the target layer".into()))?;
    read_f32(g).await
}

pub(super) async fn channel_weights(model: &Model, f: &Forwarded, class: usize, plus_plus: bool) -> Result<Vec<f32>> {
    let grads = target_gradients(model, f, class).await?;
    let n = f.maps.height * f.maps.width;
    Ok((0..f.maps.channels)
        .map(|k| {
            let g = &grads[k * n..(k + 1) * n];
            if plus_plus { grad_cam_pp_weight(g, f.maps.channel(k)) } else { g.iter().sum::<f32>() / n as f32 }
        })
        .collect())
}

/// Grad-CAM++'s weight of one channel, exactly as pytorch-grad-cam computes it (the exponential
/// of the score is dropped, so second and third derivatives are powers of the first):
/// `a_ij = g^2 / (2 g^2 + sum(A) g^3 + 1e-6)` (0 where g = 0), weight = `sum(relu(g) a_ij)`.
fn grad_cam_pp_weight(g: &[f32], a: &[f32]) -> f32 {
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
        let w = grad_cam_pp_weight(&[1.0, -1.0, 0.0], &[1.0, 1.0, 0.0]);
        assert!((w - 0.25).abs() < 1e-6, "{w}");
    }
}
