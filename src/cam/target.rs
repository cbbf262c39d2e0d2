//! The score a method explains, chosen apart from the method as pytorch-grad-cam's `targets`
//! are: the class's softmax probability, its logit, or its logit minus the mean of the other
//! logits. Each method has a published default ([`MethodSpec::target`]): the logit for the
//! gradient methods (pytorch-grad-cam's `ClassifierOutputTarget`, torch-cam's class score), the
//! probability for the official Score-CAM, RISE and Group-CAM. The same score is computed on the
//! device (differentiable: the gradient methods backpropagate it) and on the host.
//!
//! [`MethodSpec::target`]: super::MethodSpec::target

use burn::tensor::activation::softmax;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// `softmax(z)[c]` (pytorch-grad-cam's `ClassifierOutputSoftmaxTarget`).
    Softmax,
    /// `z[c]` (pytorch-grad-cam's `ClassifierOutputTarget`).
    Logit,
    /// `z[c] - mean(z[j], j != c)`: the class against the average of the others, which a logit
    /// shared by every class cannot raise.
    LogitMinusMean,
}

impl Target {
    pub const ALL: [Target; 3] = [Target::Softmax, Target::Logit, Target::LogitMinusMean];

    /// The name the CLI (`--target`), the wasm API and records use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Softmax => "softmax",
            Self::Logit => "logit",
            Self::LogitMinusMean => "logit-minus-mean",
        }
    }

    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name).ok_or_else(|| Error::Invalid(format!("unknown target {name:?} (one of softmax, logit, logit-minus-mean)")))
    }

    /// One line for help texts.
    pub fn description(self) -> &'static str {
        match self {
            Self::Softmax => "the class's softmax probability",
            Self::Logit => "the class's logit (pre-softmax score)",
            Self::LogitMinusMean => "the class's logit minus the mean of the other classes' logits",
        }
    }

    /// The score of `class` for each row of `logits` `[N, classes]`: `[N, 1]`, on the device and
    /// differentiable.
    pub fn scores(self, logits: Tensor<2>, class: usize) -> Tensor<2> {
        let [n, k] = logits.dims();
        match self {
            Self::Logit => logits.slice([0..n, class..class + 1]),
            Self::Softmax => softmax(logits, 1).slice([0..n, class..class + 1]),
            Self::LogitMinusMean => {
                let own = logits.clone().slice([0..n, class..class + 1]);
                if k < 2 {
                    return own;
                }
                let others = logits.sum_dim(1) - own.clone();
                own - others / (k - 1) as f32
            }
        }
    }

    /// The score of `class` for one image's logits, on the host.
    pub fn score(self, logits: &[f32], class: usize) -> f32 {
        let k = logits.len();
        match self {
            Self::Logit => logits[class],
            Self::Softmax => super::softmax(logits)[class],
            Self::LogitMinusMean if k < 2 => logits[class],
            Self::LogitMinusMean => {
                let others: f64 = logits.iter().enumerate().filter(|(j, _)| *j != class).map(|(_, v)| *v as f64).sum();
                (logits[class] as f64 - others / (k - 1) as f64) as f32
            }
        }
    }

    /// `H v`, H the Hessian of the score with respect to the logits at `logits` (ShapleyCAM's
    /// second-order term): zero for the two linear scores; for the probability p_c,
    /// `p_c [(e_c - p)·v] (e_c - p) - p_c (p ⊙ v - p (p·v))`.
    pub fn hessian_times(self, logits: &[f32], class: usize, v: &[f32]) -> Vec<f32> {
        match self {
            Self::Logit | Self::LogitMinusMean => vec![0.0; logits.len()],
            Self::Softmax => {
                let p: Vec<f64> = super::softmax(logits).into_iter().map(f64::from).collect();
                let pc = p[class];
                let d = |j: usize| f64::from(u8::from(j == class)) - p[j];
                let dv: f64 = v.iter().enumerate().map(|(j, vj)| d(j) * *vj as f64).sum();
                let pv: f64 = v.iter().zip(&p).map(|(vj, pj)| *vj as f64 * pj).sum();
                (0..logits.len()).map(|j| (pc * dv * d(j) - pc * (p[j] * v[j] as f64 - p[j] * pv)) as f32).collect()
            }
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Target {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::from_name(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_scores_have_their_definitions() {
        let z = [1.0f32, 2.0, 4.0];
        assert_eq!(Target::Logit.score(&z, 1), 2.0);
        assert!((Target::LogitMinusMean.score(&z, 1) - (2.0 - 2.5)).abs() < 1e-6);
        let p = crate::cam::softmax(&z);
        assert!((Target::Softmax.score(&z, 2) - p[2]).abs() < 1e-7);
        for t in Target::ALL {
            assert_eq!(Target::from_name(t.name()).unwrap(), t);
        }
        assert!(Target::from_name("probability").is_err());
    }

    #[test]
    fn the_softmax_hessian_matches_finite_differences() {
        let z = [0.3f32, -1.0, 2.0, 0.5];
        let v = [0.7f32, -0.2, 0.1, 1.3];
        let grad = |z: &[f32]| -> Vec<f64> {
            let p: Vec<f64> = crate::cam::softmax(z).into_iter().map(f64::from).collect();
            (0..z.len()).map(|j| p[1] * (f64::from(u8::from(j == 1)) - p[j])).collect()
        };
        let eps = 1e-3f32;
        let plus: Vec<f32> = z.iter().zip(&v).map(|(a, b)| a + eps * b).collect();
        let minus: Vec<f32> = z.iter().zip(&v).map(|(a, b)| a - eps * b).collect();
        let hv = Target::Softmax.hessian_times(&z, 1, &v);
        for (j, h) in hv.iter().enumerate() {
            let fd = (grad(&plus)[j] - grad(&minus)[j]) / (2.0 * eps as f64);
            assert!((*h as f64 - fd).abs() < 1e-4, "{j}: {h} vs {fd}");
        }
    }
}
