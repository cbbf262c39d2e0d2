//! Finer-CAM (Zhang et al. 2025): Grad-CAM of a contrastive score, the class against the classes
//! whose logits are closest to it, so the map shows what tells them apart. Two libraries, two
//! scores:
//! - pytorch-grad-cam (`finercam`): `Σ_j p_j (z_c - α z_j) / (Σ_j p_j + 1e-9)` over the 3 closest
//!   classes (`comparison_categories=[1, 2, 3]`), p the softmax probabilities (differentiated
//!   too), α = 1 (`FinerWeightedTarget`);
//! - torch-cam (`finercam-torchcam`): `z_c - γ mean_j z_j` over the 3 closest, γ = 0.6.
//!
//! Both on Grad-CAM, the base method both default to. The score is the method's own: it takes no
//! target.

use burn::tensor::activation::softmax;
use burn::tensor::Tensor;

use super::gradcam::{gradient_cam_output, gradients_of, mean_gradients};
use super::registry::{Cost, Method, MethodKind, MethodSpec, OptionKind, OptionSpec, Options, Teaching};
use super::{smoothing, MethodInput, MethodOutput};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinerCamVariant {
    /// pytorch-grad-cam's `FinerCAM` with `FinerWeightedTarget`.
    GradCamLibrary,
    /// torch-cam's `FinerCAM`.
    TorchCam,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FinerCamOptions {
    pub variant: FinerCamVariant,
    /// How much of the closest classes' logits is subtracted: pytorch-grad-cam's α (1), torch-cam's
    /// γ (0.6).
    pub strength: f32,
    /// Closest classes compared with (3).
    pub references: usize,
}

const PAPER: &str = "Zhang, Gu, Chowdhury, Mai, Carlyn, Berger-Wolf, Su, Chao. Finer-CAM: Spotting the Difference Reveals Finer Details for Visual Explanation. CVPR 2025 (arXiv 2501.11309)";
const VERSUS: &str = "Explains the class against its closest rivals (the difference of their logits) from one backward pass, where Score-CAM explains the class's own score from masked inputs.";
const REFERENCES: OptionSpec = OptionSpec { name: "references", kind: OptionKind::Integer, default: Some(3.0), min: Some(1.0), max: Some(100.0), help: "the closest classes compared with (both libraries: 3)" };

fn build(o: &Options<'_>, variant: FinerCamVariant, strength: &str) -> Result<Method> {
    let method = Method::FinerCam(FinerCamOptions { variant, strength: o.f32(strength), references: o.required_usize("references") });
    smoothing::build(o, method)
}

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "finercam",
    display_name: "Finer-CAM",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "Finer-CAM (pytorch-grad-cam): Grad-CAM of the class logit against the 3 closest classes', weighted by their probabilities (α = 1)",
    aliases: &["finer-cam"],
    options: &[
        OptionSpec { name: "alpha", kind: OptionKind::Number, default: Some(1.0), min: Some(0.0), max: None, help: "how much of the closest classes' logits is subtracted (pytorch-grad-cam: 1)" },
        REFERENCES,
        smoothing::EIGEN_SMOOTH,
    ],
    target: None,
    cost: Cost::GRADIENT,
    costly: false,
    teaching: Teaching {
        formula: "y = Σ_j p_j (z_c − α z_j) / Σ_j p_j over the 3 classes j closest to z_c; w_k = mean ∂y/∂A_k; L = ReLU(Σ_k w_k A_k)",
        paper: PAPER,
        passes: "1 forward + 1 backward through the head",
        versus_scorecam: VERSUS,
    },
    build: |o| build(o, FinerCamVariant::GradCamLibrary, "alpha"),
};

pub(super) static TORCHCAM_SPEC: MethodSpec = MethodSpec {
    name: "finercam-torchcam",
    display_name: "Finer-CAM (torch-cam)",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "Finer-CAM (torch-cam): Grad-CAM of the class logit minus γ = 0.6 times the mean logit of the 3 closest classes",
    aliases: &[],
    options: &[OptionSpec { name: "gamma", kind: OptionKind::Number, default: Some(0.6), min: Some(0.0), max: None, help: "how much of the closest classes' mean logit is subtracted (torch-cam: 0.6)" }, REFERENCES],
    target: None,
    cost: Cost::GRADIENT,
    costly: false,
    teaching: Teaching {
        formula: "y = z_c − γ mean_j z_j over the 3 classes j closest to z_c (γ = 0.6); w_k = mean ∂y/∂A_k; L = ReLU(Σ_k w_k A_k)",
        paper: PAPER,
        passes: "1 forward + 1 backward through the head",
        versus_scorecam: VERSUS,
    },
    build: |o| build(o, FinerCamVariant::TorchCam, "gamma"),
};

pub(super) fn spec(o: &FinerCamOptions) -> &'static MethodSpec {
    match o.variant {
        FinerCamVariant::GradCamLibrary => &SPEC,
        FinerCamVariant::TorchCam => &TORCHCAM_SPEC,
    }
}

/// The `n` classes whose logits are closest to `class`'s (ties by index).
pub(super) fn closest(logits: &[f32], class: usize, n: usize) -> Vec<usize> {
    let z = logits[class];
    let mut others: Vec<usize> = (0..logits.len()).filter(|&j| j != class).collect();
    others.sort_by(|&a, &b| (logits[a] - z).abs().total_cmp(&(logits[b] - z).abs()).then(a.cmp(&b)));
    others.truncate(n);
    others
}

pub(super) async fn run(opts: &FinerCamOptions, input: &MethodInput<'_>) -> Result<MethodOutput> {
    let f = input.forwarded;
    let refs = closest(&f.logits, input.class, opts.references);
    if refs.is_empty() {
        return Err(Error::Invalid("Finer-CAM needs a model with at least two classes".into()));
    }
    let (c, strength, variant) = (input.class, opts.strength, opts.variant);
    let column = |z: &Tensor<2>, j: usize| z.clone().slice([0..1, j..j + 1]);
    let score = |z: Tensor<2>| -> Tensor<2> {
        let own = column(&z, c);
        match variant {
            FinerCamVariant::TorchCam => {
                let sum = refs.iter().map(|&j| column(&z, j)).reduce(|a, b| a + b).expect("at least one reference");
                own - sum * (strength / refs.len() as f32)
            }
            FinerCamVariant::GradCamLibrary => {
                let p = softmax(z.clone(), 1);
                let weights: Vec<Tensor<2>> = refs.iter().map(|&j| column(&p, j)).collect();
                let numerator = refs.iter().zip(&weights).map(|(&j, w)| w.clone() * (own.clone() - column(&z, j) * strength)).reduce(|a, b| a + b).expect("at least one reference");
                let denominator = weights.into_iter().reduce(|a, b| a + b).expect("at least one reference");
                numerator / (denominator + 1e-9)
            }
        }
    };
    let grads = gradients_of(input.model, f.activations.clone(), score).await?;
    Ok(gradient_cam_output(mean_gradients(&grads, f.maps.height * f.maps.width)))
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn the_closest_classes_are_by_logit_distance() {
        assert_eq!(closest(&[0.0, 5.0, 4.5, 9.0, 5.6, 5.0], 1, 3), vec![5, 2, 4]);
    }
}
