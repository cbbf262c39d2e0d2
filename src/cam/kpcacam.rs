//! KPCA-CAM (Karmani et al. 2024) as pytorch-grad-cam computes it: the projection of the
//! activations (channels centred over the positions) on the first component of scikit-learn's
//! `KernelPCA` with the sigmoid kernel, `tanh(γ x·y + coef0)`, γ = 1 / channels and coef0 = 1
//! (pytorch-grad-cam's defaults, `kernel='sigmoid', gamma=None`). Class-agnostic. The sign is
//! scikit-learn's (`svd_flip`), so it is deterministic.

use super::projection::kernel_component;
use super::registry::{Cost, Method, MethodKind, MethodSpec, OptionKind, OptionSpec, Teaching};
use super::{smoothing, Finish, MethodInput, MethodOutput, Saliency, Stats};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct KpcaCamOptions {
    /// The kernel's γ (`None`: 1 / channels, scikit-learn's default).
    pub gamma: Option<f32>,
    pub coef0: f32,
}

impl Default for KpcaCamOptions {
    fn default() -> Self {
        Self { gamma: None, coef0: 1.0 }
    }
}

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "kpcacam",
    display_name: "KPCA-CAM",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "KPCA-CAM: the activations' first kernel principal component (sigmoid kernel, γ = 1/channels, coef0 = 1; class-agnostic)",
    aliases: &["kpca-cam"],
    options: &[
        OptionSpec { name: "gamma", kind: OptionKind::Number, default: None, min: Some(0.0), max: None, help: "the sigmoid kernel's γ (default: 1 / channels)" },
        OptionSpec { name: "coef0", kind: OptionKind::Number, default: Some(1.0), min: None, max: None, help: "the sigmoid kernel's offset (scikit-learn's 1)" },
        smoothing::AUG_SMOOTH,
    ],
    target: None,
    cost: Cost::ACTIVATIONS,
    costly: false,
    teaching: Teaching {
        formula: "K_ij = tanh(γ x_i·x_j + 1) over positions i, j (centred); L = ReLU(√λ₁ u₁), u₁ the leading eigenvector of the centred K",
        paper: "Karmani, Sivakaran, Prasad, Ali, Yang, Tang. KPCA-CAM: Visual Explainability of Deep Computer Vision Models using Kernel PCA. arXiv 2410.00267 (2024)",
        passes: "none beyond the image's forward",
        versus_scorecam: "Shows the main non-linear direction of variation of the activations, the same for every class, with no scores at all.",
    },
    build: |o| smoothing::build(o, Method::KpcaCam(KpcaCamOptions { gamma: o.get("gamma").map(|g| g as f32), coef0: o.f32("coef0") })),
};

pub(super) fn run(opts: &KpcaCamOptions, input: &MethodInput<'_>) -> Result<MethodOutput> {
    let maps = &input.forwarded.maps;
    let map = kernel_component(&maps.data, maps.channels, maps.height * maps.width, opts.gamma.map(f64::from), opts.coef0 as f64);
    Ok(MethodOutput::new(Saliency::LowRes { map, finish: Finish::NormaliseThenUpsample }, Stats::default()))
}
