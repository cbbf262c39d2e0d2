//! One session for both front-ends: a backend, the loaded model and the image being explained,
//! and the serde types both return — `scorecam explain --json` and the wasm API give the same
//! field names because they serialise the same structs.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::cam::{self, ChannelRecord, ChannelScoring, Explanation, Forwarded, Method, MethodInput, OptionValues, Partial, Progress, Reporter, Stats, Target};
use crate::metrics::{self, CausalCurve, CausalMode, ModelScorer, Protocol, Scorer};
use crate::error::{Error, Result};
use crate::image_input;
use crate::graph::Layer;
use crate::models::{ConvChoice, ConvProbe, DeviceWeights, Model, MAX_BINDING_BYTES};
use crate::onnx::OnnxOptions;
use crate::weights::Normalisation;
use crate::weights::{Cascade, Manifest};

/// A backend, at most one model on it, and at most one forwarded image.
pub struct Session {
    backend: Backend,
    model: Option<Arc<Model>>,
    image: Option<Arc<Forwarded>>,
}

/// A class and its softmax probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassScore {
    pub class: usize,
    pub name: String,
    pub probability: f32,
}

/// What a loaded model is.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub arch: String,
    pub display_name: String,
    pub input_size: usize,
    pub class_names: Vec<String>,
    /// The largest forward batch the binding limit allows (`None`: no limit).
    pub max_batch: Option<usize>,
    /// The weights in f32: 4 bytes per parameter.
    pub weight_bytes: usize,
    /// "f32", "int8" or "int8-linear" (`DeviceWeights`), and the bytes the weights take on this
    /// device: what every copy of the model costs (the page sizes its CPU worker pool by it).
    pub device_weights: String,
    pub weight_bytes_on_device: usize,
    /// Each convolution's kernel, summarised ("1 direct, 12 matmul (12 with int8 weights)").
    pub conv_kernels: String,
    pub normalisation: Normalisation,
    /// The layer explained, and every layer that can be (an imported graph's; one for the
    /// built-in architectures), each `{name, shape: [channels, height, width]}`.
    pub target_layer: String,
    pub layers: Vec<Layer>,
    /// Weights and biases.
    pub parameters: usize,
}

/// The unmasked pass of a new image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageSummary {
    pub top5: Vec<ClassScore>,
}

/// What to explain: a class (default: the top one), a method from the registry and its options,
/// and the score of the class to explain (default: the method's own, [`cam::MethodSpec::target`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    #[serde(default)]
    pub class: Option<usize>,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default)]
    pub options: OptionValues,
    #[serde(default)]
    pub target: Option<Target>,
}

fn default_method() -> String {
    "scorecam".into()
}

impl ExplainRequest {
    /// The registry's method with the requested options.
    pub fn method(&self) -> Result<Method> {
        Method::with_options(&self.method, &self.options)
    }
}

/// One explanation, as both front-ends report it (the map travels beside it).
#[derive(Debug, Clone, Serialize)]
pub struct ExplanationSummary {
    pub model: String,
    pub method: String,
    pub options: OptionValues,
    /// The score explained (`null` for a method that takes none).
    pub target: Option<Target>,
    pub explained: ClassScore,
    pub top5: Vec<ClassScore>,
    pub stats: Stats,
    /// The map's side (the model's input size).
    pub size: usize,
    /// One record per target-layer channel (CAM methods; absent for pixel methods): the step by
    /// step view's data.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<ChannelRecord>,
}

/// One channel as Score-CAM uses it: its mask and the masked input the network scores.
#[derive(Debug, Clone)]
pub struct ChannelView {
    /// `size x size`, in [0, 1].
    pub mask: Vec<f32>,
    /// The masked input as the network sees it (normalised image times mask), back in colours:
    /// `size x size` RGB. Masked-out pixels show the normalisation's mean colour, the network's 0.
    pub masked_rgb: Vec<u8>,
}

/// Average Drop and Increase of one map on the current image (see [`metrics::average_drop_increase`]).
#[derive(Debug, Clone, Serialize)]
pub struct DropIncrease {
    /// The class probability on the unmasked and on the masked image.
    pub probability: f32,
    pub masked_probability: f32,
    pub drop: f64,
    pub increase: f64,
}

/// A stage of the cascading randomisation (`scorecam sanity`): the layer groups from the top down,
/// and how many of them are random in this stage.
#[derive(Debug, Clone, Serialize)]
pub struct SanityStage {
    pub groups: Vec<String>,
    pub stage: usize,
}

impl Session {
    pub fn new(backend: Backend) -> Self {
        Self { backend, model: None, image: None }
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The loaded model, if any.
    pub fn model(&self) -> Option<&Arc<Model>> {
        self.model.as_ref()
    }

    pub fn require_model(&self) -> Result<Arc<Model>> {
        self.model.clone().ok_or_else(|| Error::Invalid("no model loaded".into()))
    }

    /// The forwarded image, if any.
    pub fn image(&self) -> Result<Arc<Forwarded>> {
        self.image.clone().ok_or_else(|| Error::Invalid("no image yet".into()))
    }

    /// Verifies and decodes the weight file first, so a bad file leaves the current model
    /// loaded; then drops the current model and image (on a GPU two VGG16s need not fit at once)
    /// and builds the new one under the backend's binding limit. A failure while building (out
    /// of device memory) leaves no model.
    pub fn load_model(&mut self, manifest: Manifest, bytes: &[u8]) -> Result<Arc<Model>> {
        self.load_model_with(manifest, bytes, None)
    }

    /// [`Self::load_model`] explaining `layer` instead of the manifest's target (an imported
    /// graph's layers: [`crate::graph::Program::layers`]).
    pub fn load_model_with(&mut self, mut manifest: Manifest, bytes: &[u8], layer: Option<&str>) -> Result<Arc<Model>> {
        let mut decoded = Model::decode_for(&manifest, bytes, self.backend.weights)?;
        if let Some(layer) = layer {
            crate::models::retarget(&mut manifest, &mut decoded, layer)?;
        }
        // One weight block of a linear layer is at most 128 MiB (`SplitLinear`), a convolution's
        // weight one block: each must fit one binding.
        if let Some(limit) = self.backend.binding_limit
            && limit < MAX_BINDING_BYTES
        {
            let shapes = decoded.tensors.tensors.values().map(|t| &t.shape).chain(decoded.tensors.int8.values().map(|(shape, _)| shape));
            let block = shapes.map(|s| (4 * s.iter().product::<usize>()).min(MAX_BINDING_BYTES)).max().unwrap_or(0);
            if block > limit {
                return Err(Error::Invalid(format!(
                    "this GPU binds at most {} MiB per buffer and {}'s largest weight block needs {} MiB: use a smaller model, such as EfficientNet-Lite0",
                    limit >> 20,
                    manifest.name,
                    block.div_ceil(1 << 20)
                )));
            }
        }
        self.model = None;
        self.image = None;
        let model = Arc::new(Model::from_decoded(manifest, decoded, &self.backend.build_options())?);
        self.model = Some(model.clone());
        Ok(model)
    }

    /// Takes the current model out of the session to change it (its convolution kernels), which
    /// needs it unshared; [`Self::restore_model`] puts it back. The image goes with it.
    pub fn take_model(&mut self) -> Result<Model> {
        let model = self.model.take().ok_or_else(|| Error::Invalid("no model loaded".into()))?;
        self.image = None;
        Arc::try_unwrap(model).map_err(|shared| {
            self.model = Some(shared);
            Error::Invalid("the model is in use; choose its kernels right after loading it".into())
        })
    }

    pub fn restore_model(&mut self, model: Model) -> Arc<Model> {
        let model = Arc::new(model);
        self.model = Some(model.clone());
        model
    }

    /// Sets the current model's convolution kernels ([`ConvChoice`]), probing at the batch
    /// Score-CAM will use where asked; returns the probe, for the caller to cache.
    pub async fn choose_conv_kernels(&mut self, choice: ConvChoice, batch: usize) -> Result<Option<ConvProbe>> {
        let mut model = self.take_model()?;
        let batch = batch.clamp(1, model.max_batch());
        let result = model.choose_conv_kernels(choice, &self.backend.adapter, self.backend.name, batch).await;
        self.restore_model(model);
        result
    }

    /// The key a probe at `batch` is cached under ([`crate::models::probe::probe_key`]).
    pub fn conv_probe_key(&self, batch: usize) -> Result<String> {
        let model = self.require_model()?;
        Ok(crate::models::probe::probe_key(&self.backend.adapter, self.backend.name, &model, batch.clamp(1, model.max_batch())))
    }

    /// Loads an ONNX model (.onnx, read as it is), or a converted one from its manifest (.json)
    /// or weight file (.safetensors, manifest beside it); `onnx` says how to read the first, and
    /// which layer to explain in either.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_model_file(&mut self, path: &std::path::Path, onnx: &OnnxOptions) -> Result<Arc<Model>> {
        if is_onnx(path) {
            let bytes = std::fs::read(path).map_err(|e| Error::io(path.display(), e))?;
            return self.load_onnx(bytes, &path.display().to_string(), onnx);
        }
        let manifest_path = manifest_path(path);
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| Error::io(format!("manifest {}", manifest_path.display()), e))?;
        let manifest = Manifest::from_json(&text, &manifest_path.display().to_string())?;
        let weights_path = manifest_path.with_file_name(&manifest.weights.file);
        // The manifest names a file beside it, nothing else.
        if !is_plain_file_name(&manifest.weights.file) {
            return Err(Error::weights(manifest_path.display(), format!("the manifest names {:?}: a weight file must be a plain file name beside the manifest", manifest.weights.file)));
        }
        let bytes = std::fs::read(&weights_path).map_err(|e| Error::io(format!("weights {}", weights_path.display()), e))?;
        self.load_model_with(manifest, &bytes, onnx.import.layer.as_deref())
    }

    /// An ONNX model read as it is (f32 weights), with the same checks as a weight file: the
    /// current model stays if it cannot be imported.
    pub fn load_onnx(&mut self, bytes: Vec<u8>, file: &str, onnx: &OnnxOptions) -> Result<Arc<Model>> {
        let model = Arc::new(crate::onnx::load(bytes, file, onnx, &self.backend.build_options())?);
        self.model = Some(model.clone());
        self.image = None;
        Ok(model)
    }

    /// Makes a forwarded image current, unless the model changed while it was forwarded.
    pub fn set_image(&mut self, prepared: PreparedImage) -> Result<ImageSummary> {
        if !self.model.as_ref().is_some_and(|m| Arc::ptr_eq(m, &prepared.model)) {
            return Err(Error::Invalid("the model changed while the image was being forwarded".into()));
        }
        self.image = Some(prepared.forwarded);
        Ok(prepared.summary)
    }

    /// Explains the current image. Everything the call needs is cloned out of the session first,
    /// so a new image or model set meanwhile never pulls data from under it.
    pub fn explainer(&self, request: &ExplainRequest) -> Result<Explainer> {
        let method = request.method()?;
        let target = method.spec().resolve_target(request.target)?;
        Ok(Explainer { model: self.require_model()?, image: self.image()?, method, target, request: request.clone() })
    }
}

/// Whether a model path is an ONNX file (by its extension).
#[cfg(not(target_arch = "wasm32"))]
pub fn is_onnx(path: &std::path::Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// A name with no directory in it (nor `..`): what a manifest may name as its weight file.
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// The manifest a model path names: the path itself (.json) or the .json beside a weight file.
#[cfg(not(target_arch = "wasm32"))]
pub fn manifest_path(path: &std::path::Path) -> std::path::PathBuf {
    if path.extension().is_some_and(|e| e == "json") { path.to_path_buf() } else { path.with_extension("json") }
}

/// An image resized, normalised and forwarded by a model, ready to become a session's current
/// image ([`Session::set_image`]). Made without borrowing the session, so the page's session is
/// never borrowed across an `await`.
pub struct PreparedImage {
    model: Arc<Model>,
    forwarded: Arc<Forwarded>,
    summary: ImageSummary,
}

impl PreparedImage {
    pub async fn new(model: Arc<Model>, img: &image::RgbImage) -> Result<Self> {
        let input = image_input::to_input(img, model.input_size(), &model.manifest.normalisation);
        let forwarded = cam::forward_image(&model, &input).await?;
        let summary = ImageSummary { top5: class_scores(&model, &cam::top_k(&forwarded.probabilities, 5)) };
        Ok(Self { model, forwarded: Arc::new(forwarded), summary })
    }
}

/// A prepared explanation: the model, image, method and score it will use.
pub struct Explainer {
    pub model: Arc<Model>,
    pub image: Arc<Forwarded>,
    pub method: Method,
    /// The score explained (`None`: the method takes none).
    pub target: Option<Target>,
    request: ExplainRequest,
}

impl Explainer {
    pub async fn run(&self, reporter: &mut Reporter<'_>) -> Result<(Explanation, ExplanationSummary)> {
        let e = cam::explain_target(&self.model, &self.image, self.request.class, self.target, &self.method, reporter).await?;
        Ok(self.summarised(e))
    }

    fn summarised(&self, e: Explanation) -> (Explanation, ExplanationSummary) {
        let summary = summarise(&self.model, &self.method, &self.request.options, &e);
        (e, summary)
    }

    fn input(&self) -> Result<MethodInput<'_>> {
        let class = cam::resolve_class(&self.image, self.request.class)?;
        Ok(MethodInput { model: &self.model, forwarded: &self.image, class, target: self.target.unwrap_or(Target::Logit) })
    }

    /// The method's passes as batches to share out (the Score-CAM family: Score-CAM, SS-CAM,
    /// IS-CAM, Group-CAM, Ablation-CAM), or `None`: then only [`Self::run`] computes it.
    pub async fn scoring(&self) -> Result<Option<ChannelScoring>> {
        self.method.channel_scoring(&self.input()?).await.transpose()
    }

    /// What the method costs on this model with the request's options (Score-CAM: at most).
    pub fn passes(&self) -> cam::PassCount {
        let spec = self.method.spec();
        spec.passes(self.image.maps.channels, &self.request.options)
    }

    /// Scores batch `b` of `plan` (the plan [`Self::scoring`] gives for the same request and image).
    pub async fn score_batch(&self, plan: &ChannelScoring, b: usize) -> Result<Vec<f32>> {
        plan.score(&self.input()?, b).await
    }

    /// The map the scores so far give (`NaN`: not scored yet), as [`Self::run`] reports it.
    pub fn partial_map(&self, plan: &ChannelScoring, scores: &[f32]) -> Result<Vec<f32>> {
        if scores.len() != plan.channels() {
            return Err(Error::Invalid(format!("{} scores for {} channels", scores.len(), plan.channels())));
        }
        Ok(plan.partial(scores).map(&self.image.maps, self.model.input_size()))
    }

    /// The explanation from every batch's scores, scored anywhere: equal to [`Self::run`]'s.
    pub async fn finish_scored(&self, plan: &ChannelScoring, scores: Vec<f32>) -> Result<(Explanation, ExplanationSummary)> {
        let input = self.input()?;
        let output = plan.finish(&input, scores).await?;
        Ok(self.summarised(cam::assemble(&self.model, &self.image, input.class, self.target, output)))
    }

    /// Channel `k` as Score-CAM masks with it (the official variant's masks unless the method is
    /// pytorch-grad-cam's, or torch-cam's SS-CAM or IS-CAM).
    pub async fn channel_view(&self, k: usize) -> Result<ChannelView> {
        let mask = cam::channel_mask(&self.input()?, k, &self.method).await?;
        let norm = &self.model.manifest.normalisation;
        let plane = mask.len();
        let image = &self.image.image;
        let mut masked_rgb = vec![0u8; 3 * plane];
        for (i, m) in mask.iter().enumerate() {
            for c in 0..3 {
                let v = image[c * plane + i] * m * norm.std[c] + norm.mean[c];
                masked_rgb[3 * i + c] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
        Ok(ChannelView { mask, masked_rgb })
    }

    fn check_map(&self, map: &[f32]) -> Result<()> {
        let size = self.model.input_size();
        if map.len() != size * size || map.iter().any(|v| !v.is_finite()) {
            return Err(Error::Invalid(format!("the map must be {size}x{size} finite values")));
        }
        Ok(())
    }

    /// The deletion or insertion curve of `map` for the request's class, as `scorecam eval`
    /// computes it (RISE's step of [`metrics::Metric::CAUSAL_STEP`] pixels).
    pub fn causal_curve(&self, map: &[f32], mode: CausalMode) -> Result<CausalCurve> {
        self.check_map(map)?;
        Ok(CausalCurve::new(&self.image.image, self.model.input_size(), map, mode, metrics::Metric::CAUSAL_STEP))
    }

    /// The probabilities at points `range` of `curve` (see [`Self::causal_curve`]).
    pub async fn curve_points(&self, curve: &CausalCurve, range: std::ops::Range<usize>) -> Result<Vec<f32>> {
        let mut scorer = ModelScorer::new(&self.model, self.input()?.class, CURVE_BATCH);
        curve.points(&self.image.image, range, &mut scorer).await
    }

    /// Average Drop and Increase of `map` for the request's class under `protocol`.
    pub async fn drop_increase(&self, map: &[f32], protocol: Protocol) -> Result<DropIncrease> {
        self.check_map(map)?;
        let class = self.input()?.class;
        let mut scorer = ModelScorer::new(&self.model, class, 1);
        let masked = scorer.masked_probabilities(&self.image.image, None, protocol.mask(map), 1).await?[0];
        let probability = self.image.probabilities[class];
        let (drop, increase) = metrics::average_drop_increase(probability, masked);
        Ok(DropIncrease { probability, masked_probability: masked, drop, increase })
    }

    /// One cell of the compare grid: the method run on the current image, then checked as
    /// `scorecam eval` checks a map (the same `metrics` code): deletion and insertion AUC
    /// (RISE's curves, [`metrics::Metric::CAUSAL_STEP`] pixels a step) and Average Drop and
    /// Increase under the libraries' protocol (the input times the map). `reporter` gets the
    /// method's progress, then the metrics' (`done` of `total` forward passes, no partial map),
    /// and cancels either between batches.
    pub async fn compare(&self, reporter: &mut Reporter<'_>) -> Result<(Explanation, Comparison)> {
        self.compare_with(reporter, metrics::Metric::CAUSAL_STEP, &mut CurveCache::default()).await
    }

    /// [`Self::compare`] reusing the curves `cache` holds for maps that order the pixels the same
    /// (the curves depend on the order alone: on Lite0, ShapleyCAM with the logit is Grad-CAM,
    /// LayerCAM is Grad-CAM element-wise), and adding this map's. Keep one cache per image and
    /// class. `step`: pixels deleted or inserted per curve point ([`metrics::Metric::CAUSAL_STEP`]
    /// for `scorecam eval`'s curves; a multiple of it for fewer points, fewer passes and AUCs of
    /// a coarser trapezoid).
    pub async fn compare_with(&self, reporter: &mut Reporter<'_>, step: usize, cache: &mut CurveCache) -> Result<(Explanation, Comparison)> {
        let run = self.compare_method(reporter).await?;
        let comparison = self.compare_metrics(&run, step, cache, reporter).await?;
        Ok((run.explanation, comparison))
    }

    /// The first half of [`Self::compare_with`]: the method alone. The page's workers run the
    /// halves as two calls, so that a worker whose map orders the pixels as another worker's
    /// (the same [`Self::curve_keys`]) waits for those curves instead of scoring them again.
    pub async fn compare_method(&self, reporter: &mut Reporter<'_>) -> Result<MethodRun> {
        let start = web_time::Instant::now();
        let (explanation, summary) = self.run(reporter).await?;
        Ok(MethodRun { explanation, summary, seconds: start.elapsed().as_secs_f64() })
    }

    fn curves(&self, map: &[f32], step: usize) -> Result<[CausalCurve; 2]> {
        let (image, size) = (&self.image.image, self.model.input_size());
        if step == 0 || step > size * size {
            return Err(Error::Invalid(format!("a curve step of {step} pixels: it must be 1 to {} (the image's pixels)", size * size)));
        }
        Ok([CausalMode::Deletion, CausalMode::Insertion].map(|mode| CausalCurve::new(image, size, map, mode, step)))
    }

    /// The [`CurveCache`] keys of `run`'s deletion and insertion curves: the same for two maps
    /// that order the pixels alike, for the same class.
    pub fn curve_keys(&self, run: &MethodRun, step: usize) -> Result<[String; 2]> {
        Ok(self.curves(&run.explanation.map, step)?.map(|c| curve_key(&c, run.explanation.class)))
    }

    /// The second half of [`Self::compare_with`]: `run`'s map checked by the metrics, the curves
    /// `cache` holds for its keys taken from there, the others scored and added to it.
    pub async fn compare_metrics(&self, run: &MethodRun, step: usize, cache: &mut CurveCache, reporter: &mut Reporter<'_>) -> Result<Comparison> {
        let (e, summary) = (&run.explanation, &run.summary);
        let start = web_time::Instant::now();
        let image = &self.image.image;
        let mut scorer = ModelScorer::new(&self.model, e.class, CURVE_BATCH);
        let curves = self.curves(&e.map, step)?;
        let curve_points = curves[0].point_count();
        let total = 1 + curves.iter().map(CausalCurve::point_count).sum::<usize>();
        let mut done = 0;
        let mut aucs = [0f64; 2];
        for (c, auc) in curves.iter().zip(&mut aucs) {
            let key = curve_key(c, e.class);
            if let Some(points) = cache.0.get(&key).filter(|p| p.len() == c.point_count()) {
                *auc = metrics::auc(points);
                done += points.len();
                continue;
            }
            let mut points = Vec::with_capacity(c.point_count());
            for from in (0..c.point_count()).step_by(COMPARE_CHUNK) {
                let values = c.points(image, from..from + COMPARE_CHUNK, &mut scorer).await?;
                done += values.len();
                points.extend(values);
                reporter.report(Progress { done, total, partial: Partial::Nothing }).await?;
            }
            *auc = metrics::auc(&points);
            cache.0.insert(key, points);
        }
        let masked = scorer.masked_probabilities(image, None, metrics::Protocol::InputTimesMap.mask(&e.map), 1).await?[0];
        let (average_drop, average_increase) = metrics::average_drop_increase(e.class_probability, masked);
        Ok(Comparison {
            method: summary.method.clone(),
            display_name: self.method.display_name().to_string(),
            options: summary.options.clone(),
            target: e.target,
            class: e.class,
            probability: e.class_probability,
            seconds: run.seconds,
            forwards: 1 + e.stats.forwards,
            head_forwards: e.stats.head_forwards,
            backwards: e.stats.backwards,
            deletion_auc: aucs[0],
            insertion_auc: aucs[1],
            average_drop,
            average_increase,
            curve_points,
            metric_seconds: start.elapsed().as_secs_f64(),
            metric_forwards: scorer.forwards,
        })
    }

    /// The explanation by the same method and class after `stage` steps of the cascading
    /// randomisation with `seed` (`scorecam sanity`'s weights for the same seed). `weights`: the
    /// model's own int8 file (checked against its manifest). The class stays the one the intact
    /// network is asked about.
    pub async fn randomised(&self, weights: &[u8], stage: usize, seed: u64, reporter: &mut Reporter<'_>) -> Result<(SanityStage, Explanation, ExplanationSummary)> {
        // The linear layers' matrices stay int8 (VGG16's 124 M of its 138 M weights): the cascade
        // turns a layer f32 only once it randomises it, and an intact one is built from its rows
        // (int8 again on the CPU workers, dequantised layer by layer elsewhere), so the lead
        // never holds the whole model in f32.
        let tensors = Model::decode_for(&self.model.manifest, weights, DeviceWeights::Int8Linear)?.tensors;
        let mut cascade = Cascade::new(tensors, seed);
        let groups = cascade.groups().to_vec();
        if stage > groups.len() {
            return Err(Error::Invalid(format!("stage {stage} out of range (the model has {} layer groups)", groups.len())));
        }
        while cascade.stage() < stage {
            cascade.advance();
        }
        let model = self.model.with_tensors(cascade.into_tensors())?;
        let class = self.input()?.class;
        let forwarded = cam::forward_image(&model, &self.image.image).await?;
        let e = cam::explain_target(&model, &forwarded, Some(class), self.target, &self.method, reporter).await?;
        let summary = summarise(&model, &self.method, &self.request.options, &e);
        Ok((SanityStage { groups, stage }, e, summary))
    }
}

/// Masked images per forward pass for the curves (capped by the model's binding limit).
const CURVE_BATCH: usize = 16;
/// Curve points scored between two chances to cancel a comparison.
const COMPARE_CHUNK: usize = 32;

/// Deletion and insertion curves already scored on one image, by the pixel order, mode and class
/// they follow ([`Explainer::curve_keys`]): the points, as [`Explainer::compare_metrics`] scored
/// them.
#[derive(Debug, Default)]
pub struct CurveCache(std::collections::HashMap<String, Vec<f32>>);

impl CurveCache {
    pub fn insert(&mut self, key: String, points: Vec<f32>) {
        self.0.insert(key, points);
    }

    pub fn get(&self, key: &str) -> Option<&[f32]> {
        self.0.get(key).map(Vec::as_slice)
    }
}

fn curve_key(curve: &CausalCurve, class: usize) -> String {
    format!("{:016x}-{class}", curve.key())
}

/// A method run for the compare grid, its metrics still to come ([`Explainer::compare_method`]).
pub struct MethodRun {
    pub explanation: Explanation,
    summary: ExplanationSummary,
    /// The method's time, after the image's forward (which every method shares).
    pub seconds: f64,
}

/// One method's cell of the compare grid ([`Explainer::compare`]); the map travels beside it.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub method: String,
    pub display_name: String,
    pub options: OptionValues,
    /// The score explained (`null` for a class-agnostic method).
    pub target: Option<Target>,
    pub class: usize,
    /// The class's probability on the image.
    pub probability: f32,
    /// The method's time, after the image's forward (which every method shares).
    pub seconds: f64,
    /// Forward passes of the whole network, the image's own included; passes of the head alone
    /// (from the target layer); backward passes.
    pub forwards: usize,
    pub head_forwards: usize,
    pub backwards: usize,
    /// RISE's deletion (lower is better) and insertion (higher is better) AUC.
    pub deletion_auc: f64,
    pub insertion_auc: f64,
    /// Average Drop (%, lower is better) and Increase (% of 100 or 0 for one image, higher is
    /// better) with the input times the map.
    pub average_drop: f64,
    pub average_increase: f64,
    /// Points of each of the two curves (`scorecam eval`'s 225 on a 224 px model; fewer with a
    /// larger curve step).
    pub curve_points: usize,
    /// The metrics' time and forward passes.
    pub metric_seconds: f64,
    pub metric_forwards: usize,
}

/// The serde view of an explanation.
pub fn summarise(model: &Model, method: &Method, options: &OptionValues, e: &Explanation) -> ExplanationSummary {
    ExplanationSummary {
        model: model.manifest.name.clone(),
        method: method.name().to_string(),
        options: options.clone(),
        target: e.target,
        explained: ClassScore { class: e.class, name: model.manifest.class_name(e.class).to_string(), probability: e.class_probability },
        top5: class_scores(model, &e.top5),
        stats: e.stats.clone(),
        size: e.size,
        channels: e.channels.clone(),
    }
}

pub fn class_scores(model: &Model, top: &[(usize, f32)]) -> Vec<ClassScore> {
    top.iter().map(|&(class, probability)| ClassScore { class, name: model.manifest.class_name(class).to_string(), probability }).collect()
}

impl ModelInfo {
    pub fn of(model: &Model) -> Self {
        Self {
            name: model.manifest.name.clone(),
            arch: model.arch.name.to_string(),
            display_name: if model.graph.is_some() { model.manifest.name.clone() } else { model.arch.display_name.to_string() },
            input_size: model.input_size(),
            class_names: model.manifest.class_names.clone(),
            max_batch: model.binding_limit.map(|_| model.max_batch()),
            weight_bytes: model.network.parameters() * 4,
            device_weights: model.weights.name().to_string(),
            weight_bytes_on_device: model.weight_bytes_on_device(),
            conv_kernels: model.conv_kernel_summary(),
            normalisation: model.manifest.normalisation.clone(),
            target_layer: model.manifest.target_layer.clone(),
            layers: model.layers(),
            parameters: model.network.parameters(),
        }
    }
}
