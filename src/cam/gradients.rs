//! Input-gradient baselines: vanilla gradient, SmoothGrad and Integrated Gradients. Each
//! differentiates the class logit with respect to the input (Burn's autodiff) and reduces the
//! three colour channels with `max |.|` (Simonyan et al. 2014), the same for all three so they
//! differ only in how the gradients are gathered.

use burn::tensor::{Tensor, TensorData};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

use super::registry::{Cost, Method, MethodKind, MethodSpec, OptionKind, OptionSpec, Passes, Teaching, BATCH_SIZE};
use super::{read_f32, Target, MethodInput, MethodOutput, Partial, Progress, Reporter, Saliency, Stats};
use crate::error::{Error, Result};
use crate::models::Model;

pub(super) static GRADIENT_SPEC: MethodSpec = MethodSpec {
    name: "gradient",
    display_name: "Gradient",
    kind: MethodKind::Pixel,
    in_browser: false,
    summary: "vanilla gradient of the class logit with respect to the input, max |.| over colours",
    aliases: &["vanilla-gradient"],
    options: &[],
    target: Some(Target::Logit),
    cost: Cost { forwards: Passes::ONE, head_forwards: Passes::NONE, backwards: Passes::ONE, gradients: true },
    costly: false,
    teaching: Teaching {
        formula: "S = max_colour |∂y/∂x|",
        paper: "Simonyan, Vedaldi, Zisserman. Deep Inside Convolutional Networks: Visualising Image Classification Models and Saliency Maps. ICLR Workshop 2014 (arXiv 1312.6034)",
        passes: "1 forward + 1 backward through the whole network",
        versus_scorecam: "Differentiates the score with respect to the pixels, with no layer's activations and no masked inputs.",
    },
    build: |_| Ok(Method::Gradient),
};

pub(super) static SMOOTHGRAD_SPEC: MethodSpec = MethodSpec {
    name: "smoothgrad",
    display_name: "SmoothGrad",
    kind: MethodKind::Pixel,
    in_browser: false,
    summary: "SmoothGrad: the gradient averaged over noisy copies of the input (50 samples, noise 15% of the input's range)",
    aliases: &[],
    options: &[
        OptionSpec { name: "samples", kind: OptionKind::Integer, default: Some(50.0), min: Some(1.0), max: None, help: "noisy copies" },
        OptionSpec { name: "noise", kind: OptionKind::Number, default: Some(0.15), min: Some(0.0), max: None, help: "noise standard deviation as a share of the input's range" },
        BATCH_SIZE,
        OptionSpec { name: "seed", kind: OptionKind::Integer, default: Some(0.0), min: Some(0.0), max: None, help: "random seed" },
    ],
    target: Some(Target::Logit),
    cost: Cost { forwards: Passes { fixed: 0, per_channel: 0, times: Some("samples") }, head_forwards: Passes::NONE, backwards: Passes { fixed: 0, per_channel: 0, times: Some("samples") }, gradients: true },
    costly: true,
    teaching: Teaching {
        formula: "S = max_colour |(1/N) Σ_n ∂y/∂x (x + ε_n)|",
        paper: "Smilkov, Thorat, Kim, Viégas, Wattenberg. SmoothGrad: removing noise by adding noise. arXiv 1706.03825 (2017)",
        passes: "1 forward + 1 backward per sample (50)",
        versus_scorecam: "Averages pixel gradients over noisy copies of the input, with no layer's activations and no masked inputs.",
    },
    build: |o| {
        Ok(Method::SmoothGrad(SmoothGradOptions { samples: o.required_usize("samples"), noise: o.f32("noise"), batch_size: o.required_usize("batch_size"), seed: o.required_usize("seed") as u64 }))
    },
};

pub(super) static INTEGRATED_SPEC: MethodSpec = MethodSpec {
    name: "integrated-gradients",
    display_name: "IntegratedGrads",
    kind: MethodKind::Pixel,
    in_browser: false,
    summary: "Integrated Gradients from a black image (Riemann right sums)",
    aliases: &["ig"],
    options: &[
        OptionSpec { name: "steps", kind: OptionKind::Integer, default: Some(50.0), min: Some(1.0), max: None, help: "Riemann steps" },
        BATCH_SIZE,
    ],
    target: Some(Target::Logit),
    cost: Cost { forwards: Passes { fixed: 0, per_channel: 0, times: Some("steps") }, head_forwards: Passes::NONE, backwards: Passes { fixed: 0, per_channel: 0, times: Some("steps") }, gradients: true },
    costly: true,
    teaching: Teaching {
        formula: "S = max_colour |(x − x₀) ⊙ (1/N) Σ_i ∂y/∂x (x₀ + (i/N)(x − x₀))|, x₀ black",
        paper: "Sundararajan, Taly, Yan. Axiomatic Attribution for Deep Networks. ICML 2017 (arXiv 1703.01365)",
        passes: "1 forward + 1 backward per step (50)",
        versus_scorecam: "Integrates pixel gradients along a path from a black image, with no layer's activations and no masked inputs.",
    },
    build: |o| Ok(Method::IntegratedGradients(IntegratedGradientsOptions { steps: o.required_usize("steps"), batch_size: o.required_usize("batch_size") })),
};

#[derive(Debug, Clone, PartialEq)]
pub struct SmoothGradOptions {
    pub samples: usize,
    /// Noise standard deviation as a share of the input's range (max - min).
    pub noise: f32,
    pub batch_size: usize,
    pub seed: u64,
}

impl Default for SmoothGradOptions {
    /// Smilkov et al. 2017: 50 samples, noise 15% of the input range.
    fn default() -> Self {
        Self { samples: 50, noise: 0.15, batch_size: 16, seed: 0 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct IntegratedGradientsOptions {
    /// Riemann steps (right sums) from the baseline to the image.
    pub steps: usize,
    pub batch_size: usize,
}

impl Default for IntegratedGradientsOptions {
    /// Sundararajan et al. 2017: 50 steps from a black image.
    fn default() -> Self {
        Self { steps: 50, batch_size: 16 }
    }
}

/// d logit_class / d x for every image of `batch` ([B, 3, H, W] as one flat vector).
pub async fn input_gradients(model: &Model, batch: Vec<f32>, class: usize) -> Result<Vec<f32>> {
    target_input_gradients(model, batch, class, Target::Logit).await
}

/// d score / d x for every image of `batch`, the score `target`'s.
pub async fn target_input_gradients(model: &Model, batch: Vec<f32>, class: usize, target: Target) -> Result<Vec<f32>> {
    let size = model.input_size();
    let b = batch.len() / (3 * size * size);
    let x = Tensor::<4>::from_data(TensorData::new(batch, [b, 3, size, size]), &model.device).autodiff().require_grad();
    let logits = model.network.forward(x.clone());
    // Images are independent, so the gradient of the sum is each image's own gradient.
    let grads = target.scores(logits, class).sum().backward();
    let g = x.grad(&grads).ok_or_else(|| Error::Device("no gradient reached the input".into()))?;
    read_f32(g).await
}

/// `max_c |v_c|` of a `[3, size, size]` attribution: a `size x size` map.
fn channel_abs_max(v: &[f32]) -> Vec<f32> {
    let n = v.len() / 3;
    (0..n).map(|i| v[i].abs().max(v[n + i].abs()).max(v[2 * n + i].abs())).collect()
}

fn pixel_output((map, stats): (Vec<f32>, Stats)) -> MethodOutput {
    MethodOutput::new(Saliency::Map(map), stats)
}

pub(super) async fn run_vanilla(input: &MethodInput<'_>) -> Result<MethodOutput> {
    let g = target_input_gradients(input.model, input.forwarded.image.clone(), input.class, input.target).await?;
    Ok(pixel_output((channel_abs_max(&g), Stats { forwards: 1, batches: 1, backwards: 1, ..Stats::default() })))
}

/// Mean gradient over `inputs(i)` for i in 0..n, in batches; reports progress.
async fn mean_gradient(
    model: &Model,
    class: usize,
    target: Target,
    n: usize,
    batch_size: usize,
    mut inputs: impl FnMut(usize) -> Vec<f32>,
    reporter: &mut Reporter<'_>,
) -> Result<(Vec<f32>, Stats)> {
    if n == 0 || batch_size == 0 {
        return Err(Error::Invalid("samples/steps and batch size must be at least 1".into()));
    }
    let batch_size = batch_size.min(model.max_batch());
    let per = 3 * model.input_size() * model.input_size();
    let mut mean = vec![0f32; per];
    let mut stats = Stats::default();
    for start in (0..n).step_by(batch_size) {
        let end = (start + batch_size).min(n);
        let batch: Vec<f32> = (start..end).flat_map(&mut inputs).collect();
        let g = target_input_gradients(model, batch, class, target).await?;
        for chunk in g.chunks_exact(per) {
            mean.iter_mut().zip(chunk).for_each(|(m, v)| *m += v / n as f32);
        }
        stats.forwards += end - start;
        stats.backwards += end - start;
        stats.batches += 1;
        reporter.report(Progress { done: end, total: n, partial: Partial::Nothing }).await?;
    }
    Ok((mean, stats))
}

pub(super) async fn run_smoothgrad(opts: &SmoothGradOptions, input: &MethodInput<'_>, reporter: &mut Reporter<'_>) -> Result<MethodOutput> {
    let x = &input.forwarded.image;
    let (lo, hi) = x.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let sigma = opts.noise * (hi - lo);
    let normal = Normal::new(0.0, sigma.max(f32::MIN_POSITIVE)).map_err(|e| Error::Invalid(format!("SmoothGrad noise: {e}")))?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);
    let noisy = |_| x.iter().map(|v| v + normal.sample(&mut rng)).collect();
    let (mean, stats) = mean_gradient(input.model, input.class, input.target, opts.samples, opts.batch_size, noisy, reporter).await?;
    Ok(pixel_output((channel_abs_max(&mean), stats)))
}

pub(super) async fn run_integrated(opts: &IntegratedGradientsOptions, input: &MethodInput<'_>, reporter: &mut Reporter<'_>) -> Result<MethodOutput> {
    let (model, x) = (input.model, &input.forwarded.image);
    let n = x.len() / 3;
    // A black image (pixel value 0) in the network's normalised space.
    let norm = &model.manifest.normalisation;
    let baseline: Vec<f32> = (0..x.len()).map(|i| -norm.mean[i / n] / norm.std[i / n]).collect();
    let steps = opts.steps;
    let path = |k: usize| {
        let t = (k + 1) as f32 / steps as f32;
        x.iter().zip(&baseline).map(|(v, b)| b + t * (v - b)).collect()
    };
    let (mean, stats) = mean_gradient(model, input.class, input.target, steps, opts.batch_size, path, reporter).await?;
    let attribution: Vec<f32> = mean.iter().zip(x.iter().zip(&baseline)).map(|(g, (v, b))| g * (v - b)).collect();
    Ok(pixel_output((channel_abs_max(&attribution), stats)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_reduction_takes_the_largest_magnitude() {
        assert_eq!(channel_abs_max(&[1.0, -2.0, -3.0, 0.5, 0.0, 4.0]), vec![3.0, 4.0]);
    }
}
