//! The one list of saliency methods. The CLI's `--method` (and its help), the wasm API's
//! `methods()` (and so the page's Method list), share links and the evaluation's tables all read
//! it. A method is its spec here ([`MethodSpec`]: name, display name, kind, options with their
//! defaults) plus its own file, which computes either channel weights (a CAM method) or a map
//! (a pixel method) through the one signature [`Method::run`] dispatches to.

use std::collections::BTreeMap;

use serde::Serialize;

use super::gradients::{IntegratedGradientsOptions, SmoothGradOptions};
use super::perturbation::MeaningfulPerturbationOptions;
use super::rise::RiseOptions;
use super::scorecam::{ScoreCamOptions, ScoreCamVariant};
use super::{gradcam, gradcampp, gradients, perturbation, rise, scorecam, MethodInput, MethodOutput, Reporter};
use crate::error::{Error, Result};

/// Whether a method weights target-layer channels or attributes pixels directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MethodKind {
    /// A weighted sum of the target layer's maps (Score-CAM, Grad-CAM, Grad-CAM++).
    Cam,
    /// A map at input resolution (RISE, gradients, Meaningful Perturbation).
    Pixel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OptionKind {
    Integer,
    Number,
}

/// One tunable option of a method, with its published default.
#[derive(Debug, Clone, Serialize)]
pub struct OptionSpec {
    pub name: &'static str,
    pub kind: OptionKind,
    /// `None`: off unless given (e.g. Faster-Score-CAM's `top_k`).
    pub default: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub help: &'static str,
}

/// Option values by name, as the CLI (`--batch-size`, `--top-k`, `--option k=v`) and the wasm
/// API (`{options: {...}}`) give them.
pub type OptionValues = BTreeMap<String, f64>;

/// Everything the front-ends know about a method.
#[derive(Debug, Serialize)]
pub struct MethodSpec {
    /// The name the CLI, the wasm API, share links and records use.
    pub name: &'static str,
    /// The name tables and the page show.
    pub display_name: &'static str,
    pub kind: MethodKind,
    /// Offered by the page (the pixel baselines take thousands of passes: CLI only).
    pub in_browser: bool,
    pub summary: &'static str,
    #[serde(skip)]
    pub aliases: &'static [&'static str],
    pub options: &'static [OptionSpec],
    #[serde(skip)]
    pub build: fn(&Options<'_>) -> Result<Method>,
}

/// The `batch_size` option every batching method has.
pub(crate) const BATCH_SIZE: OptionSpec = OptionSpec {
    name: "batch_size",
    kind: OptionKind::Integer,
    default: Some(16.0),
    min: Some(1.0),
    max: Some(1024.0),
    help: "inputs per forward pass, at most (capped so no activation exceeds the device's binding limit)",
};

/// Every method, in the order the CLI's help and the page list them.
pub static METHODS: [&MethodSpec; 9] = [
    &scorecam::SPEC,
    &scorecam::LIBRARY_SPEC,
    &gradcam::SPEC,
    &gradcampp::SPEC,
    &rise::SPEC,
    &gradients::GRADIENT_SPEC,
    &gradients::SMOOTHGRAD_SPEC,
    &gradients::INTEGRATED_SPEC,
    &perturbation::SPEC,
];

/// The spec called `name` (or one of its aliases).
pub fn spec(name: &str) -> Result<&'static MethodSpec> {
    METHODS
        .iter()
        .copied()
        .find(|s| s.name == name || s.aliases.contains(&name))
        .ok_or_else(|| Error::Invalid(format!("unknown method {name:?} (one of {})", names().join(", "))))
}

pub fn names() -> Vec<&'static str> {
    METHODS.iter().map(|s| s.name).collect()
}

/// Validated option values of one method: every name known, every value in range.
pub struct Options<'a> {
    spec: &'a MethodSpec,
    values: &'a OptionValues,
}

impl Options<'_> {
    /// The value of `name`, or its default (`None` if it has none).
    pub fn get(&self, name: &str) -> Option<f64> {
        let spec = self.spec.options.iter().find(|o| o.name == name).expect("a method reads only its own options");
        self.values.get(name).copied().or(spec.default)
    }

    pub fn usize(&self, name: &str) -> Option<usize> {
        self.get(name).map(|v| v as usize)
    }

    /// An option that has a default.
    pub fn required_usize(&self, name: &str) -> usize {
        self.usize(name).expect("the option has a default")
    }

    pub fn f32(&self, name: &str) -> f32 {
        self.get(name).expect("the option has a default") as f32
    }
}

impl MethodSpec {
    /// Whether the method takes option `name`.
    pub fn has_option(&self, name: &str) -> bool {
        self.options.iter().any(|o| o.name == name)
    }

    /// The method with `values` for its options (the rest at their defaults). Unknown names and
    /// values out of range are errors that name the method and what it takes.
    pub fn with_options(&'static self, values: &OptionValues) -> Result<Method> {
        for (name, &value) in values {
            let Some(o) = self.options.iter().find(|o| o.name == name) else {
                let known: Vec<_> = self.options.iter().map(|o| o.name).collect();
                let takes = if known.is_empty() { "no options".to_string() } else { format!("only {}", known.join(", ")) };
                return Err(Error::Invalid(format!("{} has no option {name:?} (it takes {takes})", self.name)));
            };
            let whole = o.kind == OptionKind::Number || value.fract() == 0.0;
            if !value.is_finite() || !whole || o.min.is_some_and(|m| value < m) || o.max.is_some_and(|m| value > m) {
                let range = match (o.min, o.max) {
                    (Some(a), Some(b)) => format!(" from {a} to {b}"),
                    (Some(a), None) => format!(" of at least {a}"),
                    _ => String::new(),
                };
                let kind = if o.kind == OptionKind::Integer { "a whole number" } else { "a number" };
                return Err(Error::Invalid(format!("{}'s option {name} must be {kind}{range}, not {value}", self.name)));
            }
        }
        (self.build)(&Options { spec: self, values })
    }

    /// The method at its published defaults.
    pub fn default_method(&'static self) -> Method {
        self.with_options(&OptionValues::new()).expect("defaults are valid")
    }
}

/// A saliency method with its options.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    ScoreCam(ScoreCamOptions),
    /// Grad-CAM (Selvaraju et al. 2017).
    GradCam,
    /// Grad-CAM++ (Chattopadhay et al. 2018).
    GradCamPlusPlus,
    /// RISE (Petsiuk et al. 2018).
    Rise(RiseOptions),
    /// Vanilla gradient (Simonyan et al. 2014).
    Gradient,
    SmoothGrad(SmoothGradOptions),
    IntegratedGradients(IntegratedGradientsOptions),
    /// Meaningful Perturbation (Fong & Vedaldi 2017).
    MeaningfulPerturbation(MeaningfulPerturbationOptions),
}

impl Default for Method {
    fn default() -> Self {
        Method::ScoreCam(ScoreCamOptions::default())
    }
}

impl Method {
    /// The method called `name` at its published defaults.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(spec(name)?.default_method())
    }

    /// The method called `name` with `values` for its options.
    pub fn with_options(name: &str, values: &OptionValues) -> Result<Self> {
        spec(name)?.with_options(values)
    }

    /// This method's entry in [`METHODS`].
    pub fn spec(&self) -> &'static MethodSpec {
        match self {
            Self::ScoreCam(o) if o.variant == ScoreCamVariant::GradCamLibrary => &scorecam::LIBRARY_SPEC,
            Self::ScoreCam(_) => &scorecam::SPEC,
            Self::GradCam => &gradcam::SPEC,
            Self::GradCamPlusPlus => &gradcampp::SPEC,
            Self::Rise(_) => &rise::SPEC,
            Self::Gradient => &gradients::GRADIENT_SPEC,
            Self::SmoothGrad(_) => &gradients::SMOOTHGRAD_SPEC,
            Self::IntegratedGradients(_) => &gradients::INTEGRATED_SPEC,
            Self::MeaningfulPerturbation(_) => &perturbation::SPEC,
        }
    }

    pub fn name(&self) -> &'static str {
        self.spec().name
    }

    pub fn display_name(&self) -> &'static str {
        self.spec().display_name
    }

    /// Whether the map is a weighted sum of target-layer channels.
    pub fn is_cam(&self) -> bool {
        self.spec().kind == MethodKind::Cam
    }

    /// Runs the method: channel weights for a CAM method, a map for a pixel method.
    /// Score-CAM's masked forwards as batches that a pool of workers can share; `None` for the
    /// methods that are not split that way.
    pub fn channel_scoring(&self, input: &MethodInput<'_>) -> Option<Result<scorecam::ChannelScoring>> {
        match self {
            Self::ScoreCam(o) => Some(scorecam::ChannelScoring::plan(o, input)),
            _ => None,
        }
    }

    pub async fn run(&self, input: &MethodInput<'_>, reporter: &mut Reporter<'_>) -> Result<MethodOutput> {
        match self {
            Self::ScoreCam(o) => scorecam::run(o, input, reporter).await,
            Self::GradCam => gradcam::run(input).await,
            Self::GradCamPlusPlus => gradcampp::run(input).await,
            Self::Rise(o) => rise::run(o, input, reporter).await,
            Self::Gradient => gradients::run_vanilla(input).await,
            Self::SmoothGrad(o) => gradients::run_smoothgrad(o, input, reporter).await,
            Self::IntegratedGradients(o) => gradients::run_integrated(o, input, reporter).await,
            Self::MeaningfulPerturbation(o) => perturbation::run(o, input, reporter).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips_and_defaults_are_valid() {
        for s in METHODS {
            let m = s.default_method();
            assert_eq!(m.name(), s.name);
            assert_eq!(Method::from_name(s.name).unwrap(), m);
            for o in s.options {
                if let Some(d) = o.default {
                    assert!(o.min.is_none_or(|m| d >= m) && o.max.is_none_or(|m| d <= m), "{} {}", s.name, o.name);
                }
            }
        }
        assert_eq!(Method::from_name("gradcam++").unwrap(), Method::GradCamPlusPlus);
    }

    #[test]
    fn options_are_checked_by_name_and_range() {
        let top = |k: f64| OptionValues::from([("top_k".to_string(), k)]);
        let m = Method::with_options("scorecam", &top(8.0)).unwrap();
        assert!(matches!(m, Method::ScoreCam(ScoreCamOptions { top_k: Some(8), .. })));
        let e = Method::with_options("gradcam", &top(8.0)).unwrap_err().to_string();
        assert!(e.contains("gradcam has no option \"top_k\"") && e.contains("no options"), "{e}");
        let e = Method::with_options("scorecam", &top(0.5)).unwrap_err().to_string();
        assert!(e.contains("whole number"), "{e}");
        let e = Method::with_options("rise", &OptionValues::from([("p".to_string(), 2.0)])).unwrap_err().to_string();
        assert!(e.contains("from 0") && e.contains("to 1"), "{e}");
        assert!(Method::from_name("lime").unwrap_err().to_string().contains("scorecam, scorecam-gradcam-lib"));
    }
}
