//! Meaningful Perturbation (Fong & Vedaldi, ICCV 2017, "Mask"): optimise a coarse mask m so that
//! blending the image towards a blurred copy where m is low deletes the class, with as little
//! deletion and as smooth a mask as possible:
//! `l1 * mean|1 - m| + tv * TV_beta(m) + p_class(x * M + blur(x) * (1 - M))`, M = upsampled m.
//! The saliency is `1 - M`. Adam on the mask, clamped to [0, 1] after every step.

use burn::tensor::{Tensor, TensorData};

use crate::imageops::filters::rise_blur;
use super::registry::{Cost, Method, MethodKind, MethodSpec, OptionKind, OptionSpec, Passes, Teaching};
use crate::imageops::upsample::bilinear_matrix;
use super::{read_f32, Target, MethodInput, MethodOutput, Partial, Progress, Reporter, Saliency, Stats};
use crate::error::{Error, Result};

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "mask",
    display_name: "Mask",
    kind: MethodKind::Pixel,
    in_browser: false,
    summary: "Meaningful Perturbation: an optimised smooth mask whose blurring deletes the class",
    aliases: &["meaningful-perturbation"],
    options: &[
        OptionSpec { name: "iterations", kind: OptionKind::Integer, default: Some(500.0), min: Some(1.0), max: None, help: "Adam steps" },
        OptionSpec { name: "learning_rate", kind: OptionKind::Number, default: Some(0.1), min: Some(0.0), max: None, help: "Adam's step size" },
        OptionSpec { name: "mask_size", kind: OptionKind::Integer, default: Some(28.0), min: Some(2.0), max: None, help: "mask cells per side" },
        OptionSpec { name: "l1_coeff", kind: OptionKind::Number, default: Some(0.01), min: Some(0.0), max: None, help: "weight of the deletion area" },
        OptionSpec { name: "tv_coeff", kind: OptionKind::Number, default: Some(0.2), min: Some(0.0), max: None, help: "weight of the total variation" },
        OptionSpec { name: "tv_beta", kind: OptionKind::Number, default: Some(3.0), min: Some(1.0), max: None, help: "exponent of the total variation" },
    ],
    target: Some(Target::Softmax),
    cost: Cost { forwards: Passes { fixed: 0, per_channel: 0, times: Some("iterations") }, head_forwards: Passes::NONE, backwards: Passes { fixed: 0, per_channel: 0, times: Some("iterations") }, gradients: true },
    costly: true,
    teaching: Teaching {
        formula: "min_m λ₁‖1 − m‖₁ + λ₂ TV(m) + f(x ⊙ M + blur(x) ⊙ (1 − M))_c, M = up(m); S = 1 − M",
        paper: "Fong, Vedaldi. Interpretable Explanations of Black Boxes by Meaningful Perturbation. ICCV 2017 (arXiv 1704.03296)",
        passes: "1 forward + 1 backward per optimisation step (500)",
        versus_scorecam: "Optimises one smooth mask by gradient descent instead of scoring the activation maps as masks.",
    },
    build: |o| {
        Ok(Method::MeaningfulPerturbation(MeaningfulPerturbationOptions {
            iterations: o.required_usize("iterations"),
            learning_rate: o.f32("learning_rate"),
            mask_size: o.required_usize("mask_size"),
            l1_coeff: o.f32("l1_coeff"),
            tv_coeff: o.f32("tv_coeff"),
            tv_beta: o.f32("tv_beta"),
        }))
    },
};

#[derive(Debug, Clone, PartialEq)]
pub struct MeaningfulPerturbationOptions {
    pub iterations: usize,
    pub learning_rate: f32,
    /// Mask cells per side (upsampled bilinearly to the input).
    pub mask_size: usize,
    pub l1_coeff: f32,
    pub tv_coeff: f32,
    pub tv_beta: f32,
}

impl Default for MeaningfulPerturbationOptions {
    /// The defaults of the widely used PyTorch port (jacobgil/pytorch-explain-black-box) of the
    /// authors' code: 500 Adam steps at 0.1, a 28x28 mask, l1 0.01, TV 0.2 with beta 3.
    fn default() -> Self {
        Self { iterations: 500, learning_rate: 0.1, mask_size: 28, l1_coeff: 0.01, tv_coeff: 0.2, tv_beta: 3.0 }
    }
}

pub(super) async fn run(opts: &MeaningfulPerturbationOptions, input: &MethodInput<'_>, reporter: &mut Reporter<'_>) -> Result<MethodOutput> {
    let (model, f, class) = (input.model, input.forwarded, input.class);
    let size = model.input_size();
    let k = opts.mask_size;
    if k < 2 || k > size || opts.iterations == 0 {
        return Err(Error::Invalid(format!("Meaningful Perturbation needs 2 <= mask size <= {size} and at least one iteration")));
    }
    let device = &model.device;
    let up = Tensor::<2>::from_data(TensorData::new(bilinear_matrix(k, size, true), [size, k]), device);
    let up_t = up.clone().transpose();
    let image = f.input.clone();
    let blurred = Tensor::<4>::from_data(TensorData::new(rise_blur(&f.image, size), [1, 3, size, size]), device);
    let upsample = |m: Tensor<2>| up.clone().matmul(m).matmul(up_t.clone()).reshape([1, 1, size, size]);

    let mut mask = vec![1f32; k * k];
    let (mut m1, mut m2) = (vec![0f32; k * k], vec![0f32; k * k]);
    let (beta1, beta2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    let mut stats = Stats::default();
    for step in 1..=opts.iterations {
        let m = Tensor::<2>::from_data(TensorData::new(mask.clone(), [k, k]), device).autodiff().require_grad();
        let big = upsample(m.clone());
        let perturbed = image.clone() * big.clone() + blurred.clone() * (big.ones_like() - big);
        let prob = input.target.scores(model.network.forward(perturbed), class).sum();
        let l1 = (m.ones_like() - m.clone()).abs().mean();
        let dy = (m.clone().slice([0..k - 1, 0..k]) - m.clone().slice([1..k, 0..k])).abs().powf_scalar(opts.tv_beta).mean();
        let dx = (m.clone().slice([0..k, 0..k - 1]) - m.clone().slice([0..k, 1..k])).abs().powf_scalar(opts.tv_beta).mean();
        let loss = l1 * opts.l1_coeff + (dy + dx) * opts.tv_coeff + prob;
        let grads = loss.backward();
        let g = read_f32(m.grad(&grads).ok_or_else(|| Error::Device("no gradient reached the mask".into()))?).await?;
        // Adam, then keep the mask in [0, 1]
        let (c1, c2) = (1.0 - beta1.powi(step as i32), 1.0 - beta2.powi(step as i32));
        for i in 0..k * k {
            m1[i] = beta1 * m1[i] + (1.0 - beta1) * g[i];
            m2[i] = beta2 * m2[i] + (1.0 - beta2) * g[i] * g[i];
            mask[i] = (mask[i] - opts.learning_rate * (m1[i] / c1) / ((m2[i] / c2).sqrt() + eps)).clamp(0.0, 1.0);
        }
        stats.forwards += 1;
        stats.batches += 1;
        reporter.report(Progress { done: step, total: opts.iterations, partial: Partial::Nothing }).await?;
    }
    let upsampled = read_f32(upsample(Tensor::<2>::from_data(TensorData::new(mask, [k, k]), device))).await?;
    Ok(MethodOutput::new(Saliency::Map(upsampled.into_iter().map(|v| 1.0 - v).collect()), stats))
}
