//! The one list of saliency methods. The CLI's `--method` (and its help), the wasm API's
//! `methods()` (and so the page's Method list and its teaching text), share links and the
//! evaluation's tables all read it. A method is its spec here ([`MethodSpec`]: name, display
//! name, kind, options with their defaults, the score it explains by default, what it costs and
//! how to teach it) plus its own file, which computes either channel weights (a CAM method) or a
//! map through the one signature [`Method::run`] dispatches to.

use std::collections::BTreeMap;

use serde::Serialize;

use super::ablationcam::AblationCamOptions;
use super::finercam::FinerCamOptions;
use super::gradients::{IntegratedGradientsOptions, SmoothGradOptions};
use super::groupcam::GroupCamOptions;
use super::iscam::IsCamOptions;
use super::kpcacam::KpcaCamOptions;
use super::masked::ChannelScoring;
use super::perturbation::MeaningfulPerturbationOptions;
use super::rise::RiseOptions;
use super::scorecam::{ScoreCamOptions, ScoreCamVariant};
use super::smoothgradcampp::SmoothGradCamPpOptions;
use super::sscam::SsCamOptions;
use super::{
    ablationcam, eigencam, eigengradcam, fc_cam, fem, finercam, fullgrad, gradcam, gradcam_elementwise, gradcampp, gradients, groupcam, hirescam, iscam, kpcacam, layercam, perturbation, rise, scorecam, shapleycam, smoothgradcampp,
    smoothing, sscam, xgradcam, MethodInput, MethodOutput, Reporter, Target,
};
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
    /// One line: what it computes, and the source and defaults it follows.
    pub summary: &'static str,
    #[serde(skip)]
    pub aliases: &'static [&'static str],
    pub options: &'static [OptionSpec],
    /// The score explained by default, the source's own (`ExplainRequest::target` chooses
    /// another); `None`: the method takes none (class-agnostic, or a score of its own).
    pub target: Option<Target>,
    /// The passes it runs, as a function of the target layer's channels and its options.
    pub cost: Cost,
    /// Passes grow with channels x samples: the page shows the expected time and runs it on
    /// request only.
    pub costly: bool,
    /// What the page's teaching text shows.
    pub teaching: Teaching,
    #[serde(skip)]
    pub build: fn(&Options<'_>) -> Result<Method>,
}

/// The teaching text of a method: its formula, the paper, its cost in passes and how it differs
/// from Score-CAM, in one sentence each.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Teaching {
    pub formula: &'static str,
    pub paper: &'static str,
    pub passes: &'static str,
    pub versus_scorecam: &'static str,
}

/// How many passes of one kind a method runs: `fixed`, plus `per_channel` for each channel of
/// the target layer, the variable part multiplied by the option `times` names (samples, groups;
/// `per_channel = 0` with `times`: that option's value itself).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Passes {
    pub fixed: usize,
    pub per_channel: usize,
    pub times: Option<&'static str>,
}

impl Passes {
    pub const NONE: Passes = Passes { fixed: 0, per_channel: 0, times: None };
    pub const ONE: Passes = Passes { fixed: 1, per_channel: 0, times: None };

    pub const fn fixed(n: usize) -> Self {
        Passes { fixed: n, per_channel: 0, times: None }
    }

    /// The count for `channels` channels, with option values from `get` (a default where unset).
    pub fn count(&self, channels: usize, get: impl Fn(&str) -> Option<f64>) -> usize {
        let times = self.times.and_then(&get).map(|v| v.max(0.0) as usize);
        let variable = match (self.per_channel, times) {
            (0, Some(t)) => t,
            (k, Some(t)) => k * channels * t,
            (k, None) => k * channels,
        };
        self.fixed + variable
    }
}

/// What a method costs: forward passes of the whole network (beyond the image's own, which every
/// method shares), passes of the head alone (from the target layer), backward passes, and
/// whether it needs gradients (autodiff). `aug_smooth` multiplies everything by 6.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Cost {
    pub forwards: Passes,
    pub head_forwards: Passes,
    pub backwards: Passes,
    pub gradients: bool,
}

impl Cost {
    /// Nothing but the activations the image's forward gave.
    pub const ACTIVATIONS: Cost = Cost { forwards: Passes::NONE, head_forwards: Passes::NONE, backwards: Passes::NONE, gradients: false };
    /// One backward pass through the head.
    pub const GRADIENT: Cost = Cost { forwards: Passes::NONE, head_forwards: Passes::ONE, backwards: Passes::ONE, gradients: true };
    /// A masked input per channel (Score-CAM).
    pub const PER_CHANNEL: Cost = Cost { forwards: Passes { fixed: 0, per_channel: 1, times: None }, head_forwards: Passes::NONE, backwards: Passes::NONE, gradients: false };
}

/// A method's passes for a given target layer and options (at most: Score-CAM skips constant
/// maps).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct PassCount {
    pub forwards: usize,
    pub head_forwards: usize,
    pub backwards: usize,
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

/// Every method, in the order the CLI's help and the page list them: the Score-CAM family, then
/// the gradient CAMs, the activation-only CAMs, and the pixel baselines.
pub static METHODS: [&MethodSpec; 27] = [
    &scorecam::SPEC,
    &scorecam::LIBRARY_SPEC,
    &sscam::SPEC,
    &iscam::SPEC,
    &groupcam::SPEC,
    &ablationcam::SPEC,
    &gradcam::SPEC,
    &gradcampp::SPEC,
    &hirescam::SPEC,
    &gradcam_elementwise::SPEC,
    &xgradcam::SPEC,
    &layercam::SPEC,
    &eigengradcam::SPEC,
    &smoothgradcampp::SPEC,
    &shapleycam::SPEC,
    &finercam::SPEC,
    &finercam::TORCHCAM_SPEC,
    &fullgrad::SPEC,
    &fc_cam::SPEC,
    &eigencam::SPEC,
    &kpcacam::SPEC,
    &fem::SPEC,
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

    /// A 0/1 option (false where the method does not take it).
    pub fn flag(&self, name: &str) -> bool {
        self.spec.has_option(name) && self.get(name).is_some_and(|v| v != 0.0)
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

    /// The score to explain: `requested`, or the method's own; `None` for a method that takes
    /// none, which refuses one.
    pub fn resolve_target(&self, requested: Option<Target>) -> Result<Option<Target>> {
        match (self.target, requested) {
            (None, Some(t)) => Err(Error::Invalid(format!("{} takes no target ({t} asked for): {}", self.name, self.summary))),
            (None, None) => Ok(None),
            (Some(own), requested) => Ok(Some(requested.unwrap_or(own))),
        }
    }

    /// Its passes on a target layer of `channels` channels with `values` for its options (the
    /// rest at their defaults).
    pub fn passes(&self, channels: usize, values: &OptionValues) -> PassCount {
        let get = |name: &str| values.get(name).copied().or_else(|| self.options.iter().find(|o| o.name == name).and_then(|o| o.default));
        let aug = if get("aug_smooth").is_some_and(|v| v != 0.0) { smoothing::AUGMENTATIONS } else { 1 };
        PassCount {
            forwards: aug * self.cost.forwards.count(channels, get) + (aug - 1),
            head_forwards: aug * self.cost.head_forwards.count(channels, get),
            backwards: aug * self.cost.backwards.count(channels, get),
        }
    }
}

/// A saliency method with its options.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    ScoreCam(ScoreCamOptions),
    /// SS-CAM (Wang et al. 2020), as torch-cam computes it.
    SsCam(SsCamOptions),
    /// IS-CAM (Naidu et al. 2020), as torch-cam computes it.
    IsCam(IsCamOptions),
    /// Group-CAM (Zhang et al. 2021), its official code.
    GroupCam(GroupCamOptions),
    /// Ablation-CAM (Desai & Ramaswamy 2020), as pytorch-grad-cam computes it.
    AblationCam(AblationCamOptions),
    /// Grad-CAM (Selvaraju et al. 2017).
    GradCam,
    /// Grad-CAM++ (Chattopadhay et al. 2018).
    GradCamPlusPlus,
    /// HiResCAM (Draelos & Carin 2020).
    HiResCam,
    /// pytorch-grad-cam's GradCAMElementWise.
    GradCamElementWise,
    /// XGrad-CAM (Fu et al. 2020).
    XGradCam,
    /// LayerCAM (Jiang et al. 2021).
    LayerCam,
    /// pytorch-grad-cam's EigenGradCAM.
    EigenGradCam,
    /// Smooth Grad-CAM++ (Omeiza et al. 2019), as torch-cam computes it.
    SmoothGradCamPlusPlus(SmoothGradCamPpOptions),
    /// ShapleyCAM (Cai 2025).
    ShapleyCam,
    /// Finer-CAM (Zhang et al. 2025), pytorch-grad-cam's or torch-cam's.
    FinerCam(FinerCamOptions),
    /// FullGrad (Srinivas & Fleuret 2019), as pytorch-grad-cam computes it.
    FullGrad,
    /// CAM (Zhou et al. 2016): the classifier's weights.
    Cam,
    /// Eigen-CAM (Bany Muhammad & Yeasin 2020).
    EigenCam,
    /// KPCA-CAM (Karmani et al. 2024).
    KpcaCam(KpcaCamOptions),
    /// FEM (Fuad et al. 2020).
    Fem { k: f32 },
    /// A pytorch-grad-cam method with `eigen_smooth` (its map projected on the first principal
    /// component instead of summed over channels) and/or `aug_smooth` (the mean map over six
    /// flipped and scaled copies of the input).
    Smoothed { method: Box<Method>, eigen: bool, aug: bool },
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
            Self::SsCam(_) => &sscam::SPEC,
            Self::IsCam(_) => &iscam::SPEC,
            Self::GroupCam(_) => &groupcam::SPEC,
            Self::AblationCam(_) => &ablationcam::SPEC,
            Self::GradCam => &gradcam::SPEC,
            Self::GradCamPlusPlus => &gradcampp::SPEC,
            Self::HiResCam => &hirescam::SPEC,
            Self::GradCamElementWise => &gradcam_elementwise::SPEC,
            Self::XGradCam => &xgradcam::SPEC,
            Self::LayerCam => &layercam::SPEC,
            Self::EigenGradCam => &eigengradcam::SPEC,
            Self::SmoothGradCamPlusPlus(_) => &smoothgradcampp::SPEC,
            Self::ShapleyCam => &shapleycam::SPEC,
            Self::FinerCam(o) => finercam::spec(o),
            Self::FullGrad => &fullgrad::SPEC,
            Self::Cam => &fc_cam::SPEC,
            Self::EigenCam => &eigencam::SPEC,
            Self::KpcaCam(_) => &kpcacam::SPEC,
            Self::Fem { .. } => &fem::SPEC,
            Self::Smoothed { method, .. } => method.spec(),
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

    /// The masked forwards of the Score-CAM family as batches that a pool of workers (or native
    /// lanes) can share; `None` for the methods that are not split that way.
    pub async fn channel_scoring(&self, input: &MethodInput<'_>) -> Option<Result<ChannelScoring>> {
        Some(match self {
            Self::ScoreCam(o) => scorecam::plan(o, input),
            Self::SsCam(o) => sscam::plan(o, input),
            Self::IsCam(o) => iscam::plan(o, input),
            Self::GroupCam(o) => groupcam::plan(o, input).await,
            Self::AblationCam(o) => ablationcam::plan(o, input),
            _ => return None,
        })
    }

    /// Runs the method: channel weights for a CAM method, a map for a pixel method.
    pub async fn run(&self, input: &MethodInput<'_>, reporter: &mut Reporter<'_>) -> Result<MethodOutput> {
        match self {
            Self::ScoreCam(_) | Self::SsCam(_) | Self::IsCam(_) | Self::GroupCam(_) | Self::AblationCam(_) => {
                let plan = self.channel_scoring(input).await.expect("a method of the Score-CAM family has a plan")?;
                plan.run(input, reporter).await
            }
            Self::GradCam => gradcam::run(input).await,
            Self::GradCamPlusPlus => gradcampp::run(input).await,
            Self::HiResCam => hirescam::run(input).await,
            Self::GradCamElementWise => gradcam_elementwise::run(input).await,
            Self::XGradCam => xgradcam::run(input).await,
            Self::LayerCam => layercam::run(input).await,
            Self::EigenGradCam => eigengradcam::run(input).await,
            Self::SmoothGradCamPlusPlus(o) => smoothgradcampp::run(o, input, reporter).await,
            Self::ShapleyCam => shapleycam::run(input).await,
            Self::FinerCam(o) => finercam::run(o, input).await,
            Self::FullGrad => fullgrad::run(input).await,
            Self::Cam => fc_cam::run(input).await,
            Self::EigenCam => eigencam::run(input),
            Self::KpcaCam(o) => kpcacam::run(o, input),
            Self::Fem { k } => fem::run(*k, input),
            Self::Smoothed { method, eigen, aug } => Box::pin(smoothing::run(method, *eigen, *aug, input, reporter)).await,
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
        let e = Method::with_options("cam", &top(8.0)).unwrap_err().to_string();
        assert!(e.contains("cam has no option \"top_k\"") && e.contains("no options"), "{e}");
        let e = Method::with_options("gradcam", &top(8.0)).unwrap_err().to_string();
        assert!(e.contains("only eigen_smooth, aug_smooth"), "{e}");
        let e = Method::with_options("scorecam", &top(0.5)).unwrap_err().to_string();
        assert!(e.contains("whole number"), "{e}");
        let e = Method::with_options("rise", &OptionValues::from([("p".to_string(), 2.0)])).unwrap_err().to_string();
        assert!(e.contains("from 0") && e.contains("to 1"), "{e}");
        assert!(Method::from_name("lime").unwrap_err().to_string().contains("scorecam, scorecam-gradcam-lib"));
    }

    #[test]
    fn smoothing_wraps_the_method_and_keeps_its_name() {
        let on = |name: &str| OptionValues::from([(name.to_string(), 1.0)]);
        let m = Method::with_options("hirescam", &on("eigen_smooth")).unwrap();
        assert_eq!(m, Method::Smoothed { method: Box::new(Method::HiResCam), eigen: true, aug: false });
        assert_eq!(m.name(), "hirescam");
        assert!(Method::with_options("eigencam", &on("eigen_smooth")).is_err(), "a projection has no eigen_smooth");
        assert!(Method::with_options("scorecam", &on("aug_smooth")).is_err(), "the official Score-CAM is no pytorch-grad-cam method");
        assert_eq!(Method::with_options("eigencam", &on("aug_smooth")).unwrap().name(), "eigencam");
    }

    #[test]
    fn targets_default_to_each_sources_and_class_agnostic_methods_refuse_one() {
        assert_eq!(spec("scorecam").unwrap().resolve_target(None).unwrap(), Some(Target::Softmax));
        assert_eq!(spec("scorecam-gradcam-lib").unwrap().resolve_target(None).unwrap(), Some(Target::Logit));
        assert_eq!(spec("gradcam").unwrap().resolve_target(Some(Target::Softmax)).unwrap(), Some(Target::Softmax));
        assert_eq!(spec("eigencam").unwrap().resolve_target(None).unwrap(), None);
        let e = spec("eigencam").unwrap().resolve_target(Some(Target::Logit)).unwrap_err().to_string();
        assert!(e.contains("eigencam takes no target"), "{e}");
        // the names are all in the registry
        for name in ["cam", "hirescam", "gradcamelementwise", "xgradcam", "layercam", "eigencam", "eigengradcam", "kpcacam", "ablationcam", "sscam", "iscam", "groupcam", "smoothgradcampp", "fem", "shapleycam", "finercam", "fullgrad"] {
            assert_eq!(spec(name).unwrap().name, name);
        }
    }

    #[test]
    fn passes_follow_channels_and_options() {
        let values = OptionValues::new();
        assert_eq!(spec("sscam").unwrap().passes(1280, &values).forwards, 35 * 1280);
        assert_eq!(spec("iscam").unwrap().passes(512, &OptionValues::from([("num_samples".to_string(), 2.0)])).forwards, 1024);
        assert_eq!(spec("groupcam").unwrap().passes(1280, &values), PassCount { forwards: 33, head_forwards: 1, backwards: 1 });
        assert_eq!(spec("ablationcam").unwrap().passes(1280, &values).head_forwards, 1280);
        assert_eq!(spec("scorecam").unwrap().passes(512, &values).forwards, 512);
        let aug = spec("gradcam").unwrap().passes(512, &OptionValues::from([("aug_smooth".to_string(), 1.0)]));
        assert_eq!(aug, PassCount { forwards: 5, head_forwards: 6, backwards: 6 });
    }
}
