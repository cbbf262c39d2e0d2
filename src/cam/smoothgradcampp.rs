//! Smooth Grad-CAM++ (Omeiza et al. 2019) as torch-cam computes it: Gaussian noise on the
//! (normalised) input, `num_samples` noisy forwards and backwards; the mean squared and cubed
//! gradients make Grad-CAM++'s coefficients, `α = mean g² / (2 mean g² + Σ_ij(mean g³ ⊙ A) + 1e-8)`
//! with the clean activations A; the weights `Σ_ij α ⊙ ReLU(g)` and the map `Σ_k w_k A_k` take the
//! last noisy sample's gradient and activations, as torch-cam's hooks leave them. torch-cam's
//! defaults: 4 samples, std 0.3. The noise is [`normal_noise`] (stream = sample), which the
//! parity fixtures feed torch-cam too.
//!
//! [`normal_noise`]: super::normal_noise

use super::gradcam::target_gradients;
use super::registry::{Cost, Method, MethodKind, MethodSpec, OptionKind, OptionSpec, Passes, Teaching};
use super::sscam::{normal_noise, SEED};
use super::{forward_image, Finish, MethodInput, MethodOutput, Partial, Progress, Reporter, Saliency, Stats, Target};
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct SmoothGradCamPpOptions {
    pub samples: usize,
    /// Standard deviation of the noise on the normalised input.
    pub std: f32,
    pub seed: u64,
}

impl Default for SmoothGradCamPpOptions {
    /// torch-cam's `SmoothGradCAMpp(num_samples=4, std=0.3)`.
    fn default() -> Self {
        Self { samples: 4, std: 0.3, seed: 0 }
    }
}

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "smoothgradcampp",
    display_name: "Smooth Grad-CAM++",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "Smooth Grad-CAM++ (torch-cam): Grad-CAM++ with gradient powers averaged over noisy inputs; torch-cam's num_samples=4, std=0.3",
    aliases: &["smoothgradcam++"],
    options: &[
        OptionSpec { name: "num_samples", kind: OptionKind::Integer, default: Some(4.0), min: Some(1.0), max: Some(1000.0), help: "noisy inputs (torch-cam: 4)" },
        OptionSpec { name: "std", kind: OptionKind::Number, default: Some(0.3), min: Some(0.0), max: None, help: "noise standard deviation on the normalised input (torch-cam: 0.3)" },
        SEED,
    ],
    target: Some(Target::Logit),
    cost: Cost { forwards: Passes { fixed: 0, per_channel: 0, times: Some("num_samples") }, head_forwards: Passes { fixed: 0, per_channel: 0, times: Some("num_samples") }, backwards: Passes { fixed: 0, per_channel: 0, times: Some("num_samples") }, gradients: true },
    costly: false,
    teaching: Teaching {
        formula: "x_n = x + ε_n; α = E[g²] / (2E[g²] + Σ_ij E[g³]·A); w_k = Σ_ij α·ReLU(g); L = ReLU(Σ_k w_k A_k)",
        paper: "Omeiza, Speakman, Cintas, Weldemariam. Smooth Grad-CAM++: An Enhanced Inference Level Visualization Technique for Deep Convolutional Neural Network Models. arXiv 1908.01224 (2019)",
        passes: "num_samples forwards + num_samples backwards through the head (4 + 4)",
        versus_scorecam: "Averages Grad-CAM++'s gradient terms over a few noisy copies of the input, with no masked inputs.",
    },
    build: |o| Ok(Method::SmoothGradCamPlusPlus(SmoothGradCamPpOptions { samples: o.required_usize("num_samples"), std: o.f32("std"), seed: o.required_usize("seed") as u64 })),
};

pub(super) async fn run(opts: &SmoothGradCamPpOptions, input: &MethodInput<'_>, reporter: &mut Reporter<'_>) -> Result<MethodOutput> {
    if opts.samples == 0 {
        return Err(Error::Invalid("Smooth Grad-CAM++ needs at least one sample".into()));
    }
    let (model, f) = (input.model, input.forwarded);
    let maps = &f.maps;
    let n = maps.height * maps.width;
    let mut g2 = vec![0f32; maps.data.len()];
    let mut g3 = vec![0f32; maps.data.len()];
    let mut last = None;
    for s in 0..opts.samples {
        let noise = normal_noise(opts.seed, s as u64, 0, f.image.len());
        let noisy: Vec<f32> = f.image.iter().zip(noise).map(|(x, e)| x + e * opts.std).collect();
        let fs = forward_image(model, &noisy).await?;
        let g = target_gradients(&MethodInput { model, forwarded: &fs, class: input.class, target: input.target }).await?;
        for ((a2, a3), g) in g2.iter_mut().zip(g3.iter_mut()).zip(&g) {
            *a2 += g * g;
            *a3 += g * g * g;
        }
        last = Some((g, fs.maps));
        reporter.report(Progress { done: s + 1, total: opts.samples, partial: Partial::Nothing }).await?;
    }
    let (g, acts) = last.expect("at least one sample");
    let count = opts.samples as f32;
    g2.iter_mut().for_each(|v| *v /= count);
    g3.iter_mut().for_each(|v| *v /= count);
    let weights: Vec<f32> = (0..maps.channels)
        .map(|k| {
            let r = k * n..(k + 1) * n;
            let denominator: f32 = g3[r.clone()].iter().zip(maps.channel(k)).map(|(g3, a)| g3 * a).sum();
            g2[r.clone()].iter().zip(&g[r]).map(|(g2, g)| g2 / (2.0 * g2 + denominator + 1e-8) * g.max(0.0)).sum()
        })
        .collect();
    let stats = Stats { forwards: opts.samples, batches: opts.samples, backwards: opts.samples, head_forwards: opts.samples, ..Stats::default() };
    Ok(MethodOutput::new(Saliency::LowRes { map: acts.weighted_sum(&weights), finish: Finish::NormaliseThenUpsample }, stats))
}
