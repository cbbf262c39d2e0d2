//! The browser's API (wasm-bindgen), called by the page's `www/core.js`. As in Burn's own web
//! examples, one exported struct owns the state ([`WebSession`], `Session` in JavaScript: the
//! backend, the model and the current image, all in the core's [`Session`]) and every result is
//! a serde value of the same types `scorecam explain --json` prints; maps travel as
//! `Float32Array`s beside them. The page hands over RGBA pixels; nothing is decoded here.
//!
//! Every export returns `Result`, so failures reach JavaScript as exceptions carrying a message
//! (`name` is `AbortError` for a cancelled run). The session is never borrowed across an
//! `await`: async calls clone what they need out of it first, so a new image or model never
//! pulls data from under a running explanation and no call can meet a borrowed session. A panic
//! hook records the panic's message so the page can show it ([`last_panic`]).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use burn::tensor::Device;
use burn::tensor::wgpu::wgpu;
use js_sys::{Float32Array, Function, Promise, Reflect};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::backend::Backend;
use crate::cam::{self, Reporter};
use crate::imageops::upsample::try_resize_map;
use crate::error::Error;
use crate::image_input;
use crate::models::{ConvChoice, ConvProbe, MAX_BINDING_BYTES};
use crate::render::{Colormap, COLORMAPS};
use crate::cam::ChannelScoring;
use crate::session::{CurveCache, ExplainRequest, ExplanationSummary, Explainer, MethodRun, ModelInfo, PreparedImage, Session};
use crate::weights::Manifest;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);
    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    fn console_warn(message: &str);
}

thread_local! {
    /// The backend, started once per page (wgpu refuses a second start).
    static STARTED: RefCell<Option<Backend>> = const { RefCell::new(None) };
}

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);
/// WebGPU validation errors seen (see `start_webgpu`).
static VALIDATION_ERRORS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        let message = info.to_string();
        console_error(&message);
        if let Ok(mut slot) = LAST_PANIC.lock() {
            *slot = Some(message);
        }
    }));
}

fn js_error(e: Error) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    if matches!(e, Error::Cancelled) {
        err.set_name("AbortError");
    }
    err.into()
}

/// `on_progress` as the core's progress callback: `{done, total}` after each batch; `false`
/// returned cancels (an `AbortError`).
fn batch_progress(on_progress: &Function) -> impl FnMut(&cam::Progress<'_>) -> bool + '_ {
    move |p| {
        let update = js_sys::Object::new();
        let _ = Reflect::set(&update, &"done".into(), &(p.done as f64).into());
        let _ = Reflect::set(&update, &"total".into(), &(p.total as f64).into());
        on_progress.call1(&JsValue::NULL, &update).is_ok_and(|keep| keep != JsValue::FALSE)
    }
}

fn invalid(message: impl Into<String>) -> JsValue {
    js_error(Error::Invalid(message.into()))
}

/// A JS object as `T`, refusing fields other than `fields` (serde-wasm-bindgen reads only the
/// fields it knows, so `deny_unknown_fields` alone would let a misspelt option pass unnoticed).
fn from_js_object<T: serde::de::DeserializeOwned>(value: JsValue, what: &str, fields: &[&str]) -> Result<T, JsValue> {
    if !value.is_object() {
        return Err(invalid(format!("{what}: not an object")));
    }
    let keys = js_sys::Object::keys(value.unchecked_ref::<js_sys::Object>());
    if let Some(key) = keys.iter().filter_map(|k| k.as_string()).find(|k| !fields.contains(&k.as_str())) {
        return Err(invalid(format!("{what}: unknown field `{key}` ({})", fields.join(", "))));
    }
    serde_wasm_bindgen::from_value(value).map_err(|e| invalid(format!("{what}: {e}")))
}

/// A serde value as a plain JS value (objects, not `Map`s; `None` as `null`).
fn to_js(value: &impl Serialize) -> Result<JsValue, JsValue> {
    value.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| invalid(e.to_string()))
}

/// An explanation for JavaScript: the summary's serde value, with the map and the per-channel
/// records as typed arrays beside it (`map`; `channel_scores` (NaN: not scored), `channel_weights`,
/// `channel_constant` (1: constant), one value per target-layer channel). Serialising the records
/// as objects through serde-wasm-bindgen took seconds for EfficientNet-Lite0's 1280 channels;
/// www/workers.js turns the columns back into the same records `explain --json` prints.
fn explanation_to_js(mut summary: ExplanationSummary, map: &[f32]) -> Result<JsValue, JsValue> {
    let channels = std::mem::take(&mut summary.channels);
    let value = to_js(&summary)?;
    let _ = Reflect::set(&value, &"map".into(), &Float32Array::from(map).into());
    if !channels.is_empty() {
        let scores: Vec<f32> = channels.iter().map(|c| c.score.unwrap_or(f32::NAN)).collect();
        let weights: Vec<f32> = channels.iter().map(|c| c.weight).collect();
        let constant: Vec<u8> = channels.iter().map(|c| u8::from(c.constant)).collect();
        let _ = Reflect::set(&value, &"channel_scores".into(), &Float32Array::from(&scores[..]).into());
        let _ = Reflect::set(&value, &"channel_weights".into(), &Float32Array::from(&weights[..]).into());
        let _ = Reflect::set(&value, &"channel_constant".into(), &js_sys::Uint8Array::from(&constant[..]).into());
    }
    Ok(value)
}

/// What `chooseConvKernels` resolves to.
#[derive(serde::Serialize)]
struct ChosenKernels {
    model: ModelInfo,
    probe: Option<ConvProbe>,
    from_cache: bool,
}

fn browser_has_webgpu() -> bool {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).unwrap_or(JsValue::UNDEFINED);
    !navigator.is_undefined() && Reflect::get(&navigator, &"gpu".into()).is_ok_and(|g| !g.is_undefined() && !g.is_null())
}

fn cpu_backend(notice: Option<&str>) -> Backend {
    Backend { notice: notice.map(str::to_string), ..Backend::cpu("CPU (WebAssembly)") }
}

/// Measured on 2 server cores (docs/benchmarks.md): Lite0 6.6 s, VGG16 73 s; a small device has
/// fewer and slower cores, and VGG16 gets fewer workers where memory is short (www/workers.js).
const CPU_ADVICE: &str = "so the network runs on the CPU, in workers on every core: an explanation takes from a few seconds (a recent laptop) to half a minute (an old or small device) with the light model (EfficientNet-Lite0), and from under a minute to several minutes with VGG16.";

async fn start_webgpu() -> Backend {
    match Device::wgpu_options().init_with_setup_async().await {
        Ok((device, setup)) => {
            let limit = setup.device.limits().max_storage_buffer_binding_size as usize;
            // CubeCL's handler panics on any WebGPU validation error, from a callback where
            // nothing can catch it. Log and count them instead (the page shows a notice); results
            // are still checked for NaN when read back, and a lost device is reported through
            // CubeCL's device-lost callback and the page's GPUDevice.lost. (Autotune is off on
            // wasm, see Cargo.toml: it was the source of such errors.)
            setup.device.on_uncaptured_error(std::sync::Arc::new(|error: wgpu::Error| {
                VALIDATION_ERRORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                console_warn(&format!("WebGPU validation error (ignored if the result checks out): {error}"));
            }));
            let info = setup.adapter.get_info();
            let adapter = if info.name.is_empty() { "WebGPU".to_string() } else { info.name };
            Backend { device, name: "webgpu", adapter, binding_limit: Some(limit.min(MAX_BINDING_BYTES)), notice: None, lanes: 1, weights: crate::models::DeviceWeights::Int8 }
        }
        Err(e) => {
            console_warn(&format!("WebGPU could not start: {e}"));
            cpu_backend(Some(&format!("WebGPU could not start here (no usable GPU adapter; details in the console), {CPU_ADVICE}")))
        }
    }
}

/// Resolves on the next macrotask (`setTimeout(0)`), so the page can paint and take input.
async fn next_task() {
    let promise = Promise::new(&mut |resolve, _reject| {
        let global = js_sys::global();
        match Reflect::get(&global, &"setTimeout".into()).map(|f| f.dyn_into::<Function>()) {
            Ok(Ok(set_timeout)) => {
                let _ = set_timeout.call2(&global, &resolve, &JsValue::from(0));
            }
            _ => {
                let _ = resolve.call0(&JsValue::NULL);
            }
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// The core's yield: the CPU backend computes synchronously, so without it a long explanation
/// would freeze the page.
fn yield_to_browser() -> Pin<Box<dyn Future<Output = ()>>> {
    Box::pin(next_task())
}

/// The page's session: a backend, a model and the current image.
#[wasm_bindgen(js_name = Session)]
pub struct WebSession {
    session: Rc<RefCell<Session>>,
    /// The compare grid's method run awaiting its metrics (`compareMethod`, then
    /// `compareMetrics`).
    /// With the curves' step and keys.
    compared: RefCell<Option<(Explainer, MethodRun, usize, [String; 2])>>,
}

#[wasm_bindgen(js_class = Session)]
impl WebSession {
    /// Starts the backend (once per page; later calls share it): `"auto"` tries WebGPU and falls
    /// back to the CPU with a notice; `"cpu"` skips WebGPU.
    pub async fn start(preference: String) -> Result<WebSession, JsValue> {
        let backend = match STARTED.with_borrow(|b| b.clone()) {
            Some(b) => b,
            None => {
                let backend = match preference.as_str() {
                    "cpu" => cpu_backend(None),
                    "auto" | "webgpu" if !browser_has_webgpu() => cpu_backend(Some(&format!("This browser has no WebGPU, {CPU_ADVICE}"))),
                    "auto" | "webgpu" => start_webgpu().await,
                    other => return Err(invalid(format!("unknown backend {other:?} (auto, webgpu, cpu)"))),
                };
                STARTED.with_borrow_mut(|b| b.get_or_insert(backend).clone())
            }
        };
        Ok(WebSession { session: Rc::new(RefCell::new(Session::new(backend))), compared: RefCell::default() })
    }

    /// `{name, adapter, binding_limit, notice}`.
    pub fn backend(&self) -> Result<JsValue, JsValue> {
        to_js(&self.session.borrow().backend().info())
    }

    /// Verifies `bytes` against the manifest (size and SHA-256), builds the model on the backend
    /// and makes it current, explaining `layer` (an imported graph's; null: the manifest's). A
    /// file that fails its checks leaves the current model loaded. Returns the model's info
    /// (`ModelInfo`: name, arch, input size, class names, layers, ...).
    #[wasm_bindgen(js_name = loadModel)]
    pub fn load_model(&self, manifest_json: &str, bytes: &[u8], layer: Option<String>) -> Result<JsValue, JsValue> {
        let manifest = Manifest::from_json(manifest_json, "manifest").map_err(js_error)?;
        let model = self.session.borrow_mut().load_model_with(manifest, bytes, layer.as_deref()).map_err(js_error)?;
        to_js(&ModelInfo::of(&model))
    }

    /// Chooses the loaded model's convolution kernels. On WebGPU each layer shape with a choice is
    /// timed both ways at the Score-CAM batch (`batch`, capped by the binding limit), unless one
    /// of `cached` (a JSON array of earlier probes, or null) was made for this adapter, model and
    /// batch; on the CPU, our own CPU convolutions (`cpu`). Resolves to
    /// `{model, probe, from_cache}`: `probe` is what to cache (null on the CPU), `model` the
    /// model's info with its kernels. Call right after `loadModel`.
    #[wasm_bindgen(js_name = chooseConvKernels)]
    pub async fn choose_conv_kernels(&self, cached: Option<String>, batch: usize) -> Result<JsValue, JsValue> {
        let gpu = self.session.borrow().backend().name != "cpu";
        let cached: Vec<ConvProbe> = match cached {
            Some(text) => serde_json::from_str(&text).map_err(|e| js_error(Error::Invalid(format!("the cached probes are not valid JSON: {e}"))))?,
            None => Vec::new(),
        };
        let key = self.session.borrow().conv_probe_key(batch).map_err(js_error)?;
        let found = cached.into_iter().find(|p| p.key == key);
        let choice = if gpu { ConvChoice::Probe { cached: found.clone() } } else { ConvChoice::Cpu };
        // The model leaves the session while it is probed (awaits must not hold the RefCell).
        let mut model = self.session.borrow_mut().take_model().map_err(js_error)?;
        let (adapter, name) = { let s = self.session.borrow(); (s.backend().adapter.clone(), s.backend().name) };
        let batch = batch.clamp(1, model.max_batch());
        let result = model.choose_conv_kernels(choice, &adapter, name, batch).await;
        let model = self.session.borrow_mut().restore_model(model);
        let probe = result.map_err(js_error)?;
        let from_cache = probe.is_some() && probe == found;
        to_js(&ChosenKernels { model: ModelInfo::of(&model), probe, from_cache })
    }

    /// The loaded model's info, or `null`.
    pub fn model(&self) -> Result<JsValue, JsValue> {
        match self.session.borrow().model() {
            Some(m) => to_js(&ModelInfo::of(m)),
            None => Ok(JsValue::NULL),
        }
    }

    /// Makes `rgba` (`width x height`, as a canvas gives it) the current image: resized and
    /// normalised as the CLI does, and forwarded. Returns `{top5: [{class, name, probability}]}`.
    #[wasm_bindgen(js_name = setImage)]
    pub async fn set_image(&self, rgba: Vec<u8>, width: u32, height: u32) -> Result<JsValue, JsValue> {
        let model = self.session.borrow().require_model().map_err(js_error)?;
        let img = image_input::from_rgba(&rgba, width, height).map_err(js_error)?;
        drop(rgba);
        let prepared = PreparedImage::new(model, &img).await.map_err(js_error)?;
        let summary = self.session.borrow_mut().set_image(prepared).map_err(js_error)?;
        to_js(&summary)
    }

    /// Explains the current image: `request` is `{class, method, options}` (all optional; class
    /// null: the top class; method: a name from `methods()`; options: that method's). `on_progress`
    /// gets `{done, total, map}` after every batch (`map`: the partial saliency, or null) and
    /// cancels the run by returning `false` (the promise then rejects with an `AbortError`).
    /// Resolves to `{model, method, options, explained, top5, stats, size, map}`, plus
    /// `channel_scores`, `channel_weights` and `channel_constant` for CAM methods (see
    /// [`explanation_to_js`]).
    pub async fn explain(&self, request: JsValue, on_progress: Function) -> Result<JsValue, JsValue> {
        let explainer = self.explainer(request)?;
        let size = explainer.model.input_size();
        let maps = &explainer.image.maps;
        let mut callback = |p: &cam::Progress<'_>| {
            let map = p.partial_map(maps, size).map_or(JsValue::NULL, |m| Float32Array::from(&m[..]).into());
            let update = js_sys::Object::new();
            let _ = Reflect::set(&update, &"done".into(), &(p.done as f64).into());
            let _ = Reflect::set(&update, &"total".into(), &(p.total as f64).into());
            let _ = Reflect::set(&update, &"map".into(), &map);
            // An exception in the callback cancels too: the page is in no state to continue.
            on_progress.call1(&JsValue::NULL, &update).is_ok_and(|keep| keep != JsValue::FALSE)
        };
        let mut reporter = Reporter::new(&mut callback).yielding(Some(yield_to_browser));
        let (e, summary) = explainer.run(&mut reporter).await.map_err(js_error)?;
        explanation_to_js(summary, &e.map)
    }

    // Sharing an explanation out (the page's worker pool, www/workers.js): every worker holds the
    // same model and image; each scores the batches it is handed (`scoreBatch`), and one of them
    // turns all the scores into the map (`finishScores`). A batch holds the same channels
    // wherever it is scored, so the map equals `explain`'s. Scores are one value per channel of
    // the target layer, NaN where not scored yet.

    /// The request's masked forwards as batches: `{batches, total, channels}` (Score-CAM), or
    /// `null` for a method only `explain` computes.
    #[wasm_bindgen(js_name = scoringPlan)]
    pub async fn scoring_plan(&self, request: JsValue) -> Result<JsValue, JsValue> {
        match self.explainer(request)?.scoring().await.map_err(js_error)? {
            Some(plan) => to_js(&ScoringPlan { batches: plan.batch_count(), total: plan.total(), channels: plan.channels() }),
            None => Ok(JsValue::NULL),
        }
    }

    /// Scores batch `b` of the request's plan: `{channels: Uint32Array, scores: Float32Array}`.
    #[wasm_bindgen(js_name = scoreBatch)]
    pub async fn score_batch(&self, request: JsValue, b: usize) -> Result<JsValue, JsValue> {
        let explainer = self.explainer(request)?;
        let plan = Self::plan(&explainer).await?;
        let scores = explainer.score_batch(&plan, b).await.map_err(js_error)?;
        let channels: Vec<u32> = plan.batch(b).map_err(js_error)?.iter().map(|&k| k as u32).collect();
        let out = js_sys::Object::new();
        let _ = Reflect::set(&out, &"channels".into(), &js_sys::Uint32Array::from(&channels[..]).into());
        let _ = Reflect::set(&out, &"scores".into(), &Float32Array::from(&scores[..]).into());
        Ok(out.into())
    }

    /// The map the scores so far give (`size x size`, in [0, 1]), as `explain` reports it.
    #[wasm_bindgen(js_name = partialMap)]
    pub async fn partial_map(&self, request: JsValue, scores: Vec<f32>) -> Result<Vec<f32>, JsValue> {
        let explainer = self.explainer(request)?;
        explainer.partial_map(&Self::plan(&explainer).await?, &scores).map_err(js_error)
    }

    /// The explanation once every batch is scored: what `explain` resolves to, stats included.
    #[wasm_bindgen(js_name = finishScores)]
    pub async fn finish_scores(&self, request: JsValue, scores: Vec<f32>) -> Result<JsValue, JsValue> {
        let explainer = self.explainer(request)?;
        let (e, summary) = explainer.finish_scored(&Self::plan(&explainer).await?, scores).await.map_err(js_error)?;
        explanation_to_js(summary, &e.map)
    }

    // The teaching views (docs/web.md, "Teaching views"): what Score-CAM computes on the way, and
    // the checks of a map, from the same core code as `explain` and `scorecam eval`.

    /// The current image's target-layer activations: `{channels, height, width, data:
    /// Float32Array [channels, height, width], constant: Uint8Array}` (1: a constant map,
    /// which Score-CAM skips).
    pub fn activations(&self) -> Result<JsValue, JsValue> {
        let image = self.session.borrow().image().map_err(js_error)?;
        let maps = &image.maps;
        let constant: Vec<u8> = (0..maps.channels).map(|k| u8::from(maps.is_constant(k))).collect();
        let out = js_sys::Object::new();
        let _ = Reflect::set(&out, &"channels".into(), &(maps.channels as f64).into());
        let _ = Reflect::set(&out, &"height".into(), &(maps.height as f64).into());
        let _ = Reflect::set(&out, &"width".into(), &(maps.width as f64).into());
        let _ = Reflect::set(&out, &"data".into(), &Float32Array::from(&maps.data[..]).into());
        let _ = Reflect::set(&out, &"constant".into(), &js_sys::Uint8Array::from(&constant[..]).into());
        Ok(out.into())
    }

    /// Channel `k` as the request's Score-CAM masks with it: `{mask: Float32Array (size x size),
    /// masked: Uint8Array (RGBA, size x size, the masked input the network scores), size}`.
    #[wasm_bindgen(js_name = channelView)]
    pub async fn channel_view(&self, request: JsValue, k: usize) -> Result<JsValue, JsValue> {
        let explainer = self.explainer(request)?;
        let size = explainer.model.input_size();
        let view = explainer.channel_view(k).await.map_err(js_error)?;
        let rgba: Vec<u8> = view.masked_rgb.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
        let out = js_sys::Object::new();
        let _ = Reflect::set(&out, &"mask".into(), &Float32Array::from(&view.mask[..]).into());
        let _ = Reflect::set(&out, &"masked".into(), &js_sys::Uint8Array::from(&rgba[..]).into());
        let _ = Reflect::set(&out, &"size".into(), &(size as f64).into());
        Ok(out.into())
    }

    /// How many points the deletion and insertion curves of a map have (`scorecam eval`'s step).
    #[wasm_bindgen(js_name = curveLength)]
    pub fn curve_length(&self) -> Result<usize, JsValue> {
        let model = self.session.borrow().require_model().map_err(js_error)?;
        let n = model.input_size() * model.input_size();
        Ok(n.div_ceil(crate::metrics::Metric::CAUSAL_STEP) + 1)
    }

    /// Points `from..to` of `map`'s `"deletion"` or `"insertion"` curve for the request's class:
    /// the class probability after each step, as `scorecam eval` computes them.
    #[wasm_bindgen(js_name = curvePoints)]
    pub async fn curve_points(&self, request: JsValue, map: Vec<f32>, kind: String, from: usize, to: usize) -> Result<Vec<f32>, JsValue> {
        let mode = match kind.as_str() {
            "deletion" => crate::metrics::CausalMode::Deletion,
            "insertion" => crate::metrics::CausalMode::Insertion,
            other => return Err(invalid(format!("unknown curve {other:?} (deletion, insertion)"))),
        };
        let explainer = self.explainer(request)?;
        let curve = explainer.causal_curve(&map, mode).map_err(js_error)?;
        drop(map);
        explainer.curve_points(&curve, from..to).await.map_err(js_error)
    }

    /// Average Drop and Increase of `map` for the request's class: `{probability,
    /// masked_probability, drop, increase}`; `protocol` is `"library"` (input times map) or
    /// `"paper"` (the top half kept).
    #[wasm_bindgen(js_name = dropIncrease)]
    pub async fn drop_increase(&self, request: JsValue, map: Vec<f32>, protocol: String) -> Result<JsValue, JsValue> {
        let protocol = match protocol.as_str() {
            "library" => crate::metrics::Protocol::InputTimesMap,
            "paper" => crate::metrics::Protocol::KeepTopHalf,
            other => return Err(invalid(format!("unknown protocol {other:?} (library, paper)"))),
        };
        let explainer = self.explainer(request)?;
        to_js(&explainer.drop_increase(&map, protocol).await.map_err(js_error)?)
    }

    /// The request's explanation after `stage` steps of the cascading randomisation (`scorecam
    /// sanity --seed`): `{groups, stage, ...explain's result}`. `weights`: the model's int8 file.
    pub async fn randomised(&self, request: JsValue, weights: Vec<u8>, stage: usize, seed: u32, on_progress: Function) -> Result<JsValue, JsValue> {
        let explainer = self.explainer(request)?;
        let mut callback = batch_progress(&on_progress);
        let mut reporter = Reporter::new(&mut callback).yielding(Some(yield_to_browser));
        let (stage, e, summary) = explainer.randomised(&weights, stage, seed as u64, &mut reporter).await.map_err(js_error)?;
        drop(weights);
        let value = explanation_to_js(summary, &e.map)?;
        let _ = Reflect::set(&value, &"groups".into(), &to_js(&stage.groups)?);
        let _ = Reflect::set(&value, &"stage".into(), &(stage.stage as f64).into());
        Ok(value)
    }

    // The compare view (docs/web.md, "Compare"): one method at a time, so the page fills the grid
    // as each finishes and cancels between them (or inside one, through `on_progress`). A cell is
    // two calls, the method and then its metrics, so that the page can hand a worker the curves
    // another worker has scored (or is scoring) for a map that orders the pixels the same.

    /// Runs the request's method on the current image (`Explainer::compare_method`, the first
    /// half of the CLI's `scorecam compare`) and keeps it for `compareMetrics`, whose curves
    /// will take `curve_step` pixels a point (`scorecam eval`'s 224, or a multiple for fewer
    /// passes: the CLI's `--curve-step`); resolves to `{keys}`, the keys of its deletion and
    /// insertion curves. `on_progress` gets `{done, total}` after every batch and cancels by
    /// returning `false` (an `AbortError`).
    #[wasm_bindgen(js_name = compareMethod)]
    pub async fn compare_method(&self, request: JsValue, curve_step: u32, on_progress: Function) -> Result<JsValue, JsValue> {
        self.compared.replace(None);
        let explainer = self.explainer(request)?;
        let step = curve_step as usize;
        let mut callback = batch_progress(&on_progress);
        let mut reporter = Reporter::new(&mut callback).yielding(Some(yield_to_browser));
        let run = explainer.compare_method(&mut reporter).await.map_err(js_error)?;
        let keys = explainer.curve_keys(&run, step).map_err(js_error)?;
        let value = to_js(&serde_json::json!({ "keys": keys }));
        self.compared.replace(Some((explainer, run, step, keys)));
        value
    }

    /// Checks the map of the last `compareMethod` as `scorecam eval` does (`Explainer::
    /// compare_metrics`): `known`, curves scored before (`[{key, points}]`, or `null`), are used
    /// where their key is the map's. Resolves to `{method, display_name, options, target, class,
    /// probability, seconds, forwards, head_forwards, backwards, deletion_auc, insertion_auc,
    /// average_drop, average_increase, curve_points, metric_seconds, metric_forwards, curves:
    /// [{key, points}], map: Float32Array}`; `on_progress` as `compareMethod`'s.
    #[wasm_bindgen(js_name = compareMetrics)]
    pub async fn compare_metrics(&self, known: JsValue, on_progress: Function) -> Result<JsValue, JsValue> {
        let Some((explainer, run, step, keys)) = self.compared.take() else {
            return Err(invalid("compareMetrics: no method run to check (call compareMethod first)"));
        };
        let session = self.session.borrow();
        let current = session.require_model().is_ok_and(|m| Arc::ptr_eq(&m, &explainer.model)) && session.image().is_ok_and(|i| Arc::ptr_eq(&i, &explainer.image));
        drop(session);
        if !current {
            return Err(invalid("compareMetrics: the model or image changed since compareMethod"));
        }
        let mut cache = CurveCache::default();
        if !known.is_undefined() && !known.is_null() {
            let curves: Vec<KnownCurve> = serde_wasm_bindgen::from_value(known).map_err(|e| invalid(format!("compareMetrics: known curves: {e}")))?;
            for c in curves {
                cache.insert(c.key, c.points);
            }
        }
        let mut callback = batch_progress(&on_progress);
        let mut reporter = Reporter::new(&mut callback).yielding(Some(yield_to_browser));
        let comparison = explainer.compare_metrics(&run, step, &mut cache, &mut reporter).await.map_err(js_error)?;
        let curves: Vec<KnownCurve> = keys.into_iter().filter_map(|key| Some(KnownCurve { points: cache.get(&key)?.to_vec(), key })).collect();
        let value = to_js(&comparison)?;
        let _ = Reflect::set(&value, &"curves".into(), &to_js(&curves)?);
        let _ = Reflect::set(&value, &"map".into(), &Float32Array::from(&run.explanation.map[..]).into());
        Ok(value)
    }

    /// What the request's method costs on the current model and image: `{forwards,
    /// head_forwards, backwards}` (at most: Score-CAM skips constant maps). With the seconds a
    /// forward pass took, the expected time of a costly method before it runs.
    pub fn passes(&self, request: JsValue) -> Result<JsValue, JsValue> {
        to_js(&self.explainer(request)?.passes())
    }
}

/// A curve scored in another worker, as `compareMetrics` takes and gives it.
#[derive(serde::Serialize, serde::Deserialize)]
struct KnownCurve {
    key: String,
    points: Vec<f32>,
}

impl WebSession {
    /// The request checked (see `explain`) and bound to the current model and image.
    fn explainer(&self, request: JsValue) -> Result<Explainer, JsValue> {
        let request: ExplainRequest = if request.is_undefined() || request.is_null() {
            ExplainRequest { method: "scorecam".into(), ..ExplainRequest::default() }
        } else {
            from_js_object(request, "explain request", &["class", "method", "options", "target"])?
        };
        let spec = cam::registry::spec(&request.method).map_err(js_error)?;
        if !spec.in_browser {
            return Err(invalid(format!("{} takes thousands of forward passes and is not offered in the browser: use the command line (scorecam explain --method {})", spec.display_name, spec.name)));
        }
        self.session.borrow().explainer(&request).map_err(js_error)
    }

    async fn plan(explainer: &Explainer) -> Result<ChannelScoring, JsValue> {
        explainer.scoring().await.map_err(js_error)?.ok_or_else(|| invalid(format!("{} is not split into batches: use explain", explainer.method.display_name())))
    }
}

#[derive(Serialize)]
struct ScoringPlan {
    batches: usize,
    total: usize,
    channels: usize,
}

/// What the visitor's own model is, once imported ([`import_model`]).
#[derive(Serialize)]
struct ImportedInfo {
    /// The manifest's fields the page shows (name, input size and normalisation, classes).
    name: String,
    input_size: usize,
    normalisation: crate::weights::Normalisation,
    classes: usize,
    /// Where the class names came from: "labels" (the caller's), "file" (its metadata),
    /// "imagenet" (1000 outputs and no names: ImageNet's) or "numbered" ("class N").
    class_names: &'static str,
    parameters: usize,
    /// The layers Score-CAM can explain, and the one chosen.
    layers: Vec<crate::graph::Layer>,
    target_layer: String,
    /// The source file's SHA-256 (what share links name it by), and the int8 file's size.
    source_sha256: String,
    weight_bytes: usize,
    /// Whether the file fixes its input size (else `input_size` is what the options or 224 gave).
    fixed_size: bool,
}

/// Imports a model the visitor brings, into the app's form: an ONNX file (any CNN classifier),
/// or torchvision's VGG16 as a PyTorch state dict (.pth, .safetensors: `vgg16-397923af.pth`, the
/// paper's model, as torchvision distributes it). `options` is
/// `{labels, layer, input_size, mean, std, name}` (all optional; see `onnx::OnnxOptions`).
/// Returns `{manifest (JSON text), weights (Uint8Array: the int8 file, carrying an ONNX model's
/// graph), info}`; the page stores both and loads them with `loadModel`, in every worker. Runs
/// in a worker of its own (www/ownmodel.js), which is then ended: the f32 weights it held go with
/// it.
#[wasm_bindgen(js_name = importModel)]
pub fn import_model(bytes: Vec<u8>, file_name: &str, options: JsValue) -> Result<JsValue, JsValue> {
    #[derive(serde::Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Options {
        labels: Option<Vec<String>>,
        layer: Option<String>,
        input_size: Option<usize>,
        mean: Option<[f32; 3]>,
        std: Option<[f32; 3]>,
        name: Option<String>,
    }
    let o: Options = if options.is_undefined() || options.is_null() {
        Options::default()
    } else {
        from_js_object(options, "import options", &["labels", "layer", "input_size", "mean", "std", "name"])?
    };
    let source_sha256 = crate::weights::sha256_hex(&bytes);
    // By its name first: an .onnx that does not parse is refused as ONNX, not as a checkpoint.
    let onnx = file_name.to_ascii_lowercase().ends_with(".onnx") || crate::onnx::looks_like_onnx(&bytes);
    let (manifest, weights, info) = if onnx {
        let options = crate::onnx::OnnxOptions { import: crate::onnx::ImportOptions { input_size: o.input_size, layer: o.layer }, labels: o.labels, mean: o.mean, std: o.std, name: o.name };
        let imported = crate::onnx::import(bytes, file_name, &options.import).map_err(js_error)?;
        let fixed_size = options.import.input_size.is_none() || imported.metadata.input_size.is_some();
        let class_names = crate::onnx::class_names_source(&imported, &options);
        let layers = imported.program.layers();
        let parameters = imported.tensors.tensors.values().map(|t| t.data.len()).sum();
        let (manifest, weights) = crate::onnx::convert_imported(imported, file_name, &options, "model.safetensors").map_err(js_error)?;
        let info = ImportedInfo {
            name: manifest.name.clone(),
            input_size: manifest.input_size,
            normalisation: manifest.normalisation.clone(),
            classes: manifest.class_names.len(),
            class_names,
            parameters,
            layers,
            target_layer: manifest.target_layer.clone(),
            source_sha256,
            weight_bytes: weights.len(),
            fixed_size,
        };
        (manifest, weights, info)
    } else {
        // A state dict: torchvision's VGG16 (the paper's model) is the one architecture the page
        // takes this way; any other network comes as ONNX.
        let converted = crate::convert::convert_state_dict(&bytes, file_name, None, "model.safetensors").map_err(|e| match e {
            Error::Weights { file, message } if message.contains("unrecognised model") => js_error(Error::model(file, "is not torchvision's VGG16: the page takes VGG16's .pth, and any other network exported to ONNX (docs/onnx.md)")),
            other => js_error(other),
        })?;
        let (arch, mut manifest, weights, parameters) = (converted.arch, converted.manifest, converted.bytes, converted.parameters);
        if arch.name != "vgg16" {
            return Err(js_error(Error::model(file_name, format!("holds {}: the page takes torchvision's VGG16 as a .pth, and any other network exported to ONNX (docs/onnx.md)", arch.display_name))));
        }
        if o.layer.as_ref().is_some_and(|l| *l != manifest.target_layer) || o.input_size.is_some_and(|s| s != manifest.input_size) {
            return Err(js_error(Error::model(file_name, "VGG16 explains features.29 at 224 pixels; to choose another layer, export it to ONNX (docs/onnx.md)")));
        }
        let o_labels_given = o.labels.is_some();
        if let Some(labels) = o.labels {
            if labels.len() != manifest.class_names.len() {
                return Err(js_error(Error::model(file_name, format!("the labels name {} classes, the model has {}", labels.len(), manifest.class_names.len()))));
            }
            manifest.class_names = labels;
        }
        manifest.name = o.name.unwrap_or(manifest.name);
        manifest.normalisation.mean = o.mean.unwrap_or(manifest.normalisation.mean);
        manifest.normalisation.std = o.std.unwrap_or(manifest.normalisation.std);
        let target = manifest.target_shape;
        let info = ImportedInfo {
            name: manifest.name.clone(),
            input_size: manifest.input_size,
            normalisation: manifest.normalisation.clone(),
            classes: manifest.class_names.len(),
            class_names: if o_labels_given { "labels" } else { "imagenet" },
            parameters,
            layers: vec![crate::graph::Layer { name: manifest.target_layer.clone(), shape: target }],
            target_layer: manifest.target_layer.clone(),
            source_sha256,
            weight_bytes: weights.len(),
            fixed_size: true,
        };
        (manifest, weights, info)
    };
    let out = js_sys::Object::new();
    let _ = Reflect::set(&out, &"manifest".into(), &manifest.to_json().into());
    let _ = Reflect::set(&out, &"weights".into(), &js_sys::Uint8Array::from(&weights[..]).into());
    let _ = Reflect::set(&out, &"info".into(), &to_js(&info)?);
    Ok(out.into())
}

/// `scorecam convert` of a state dict, for scripts that have the wasm build but not the native
/// CLI (`scripts/convert_web.mjs`, which the README's first command converts Lite0's weights
/// with): the same core function, so the same bytes. Returns `{arch, manifest (JSON text), weights
/// (Uint8Array)}`; the manifest names the weight file `weights_file`.
#[wasm_bindgen(js_name = convertStateDict)]
pub fn convert_state_dict(bytes: &[u8], file_name: &str, weights_file: &str) -> Result<JsValue, JsValue> {
    let converted = crate::convert::convert_state_dict(bytes, file_name, None, weights_file).map_err(js_error)?;
    let out = js_sys::Object::new();
    let _ = Reflect::set(&out, &"arch".into(), &converted.arch.name.into());
    let _ = Reflect::set(&out, &"manifest".into(), &converted.manifest.to_json().into());
    let _ = Reflect::set(&out, &"weights".into(), &js_sys::Uint8Array::from(&converted.bytes[..]).into());
    Ok(out.into())
}

/// `index.json`'s text for a models folder's JSON files, given as `[[stem, text], ...]` in file
/// name order (`convert::model_index`, which the CLI writes it with).
#[wasm_bindgen(js_name = modelIndex)]
pub fn model_index(files: JsValue) -> Result<String, JsValue> {
    let files: Vec<(String, String)> = serde_wasm_bindgen::from_value(files).map_err(|e| invalid(format!("model index: {e}")))?;
    Ok(crate::convert::model_index(&files))
}

/// Lower-case hex SHA-256 of `bytes` (the page's fallback where `crypto.subtle` is missing: a
/// page served over plain HTTP from another host).
#[wasm_bindgen(js_name = sha256Hex)]
pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::weights::sha256_hex(bytes)
}

/// The method registry, the one list the CLI reads too: `[{name, display_name, kind, in_browser,
/// summary, options: [{name, kind, default, min, max, help}], target (the default score, or null
/// for a method that takes none), cost: {forwards, head_forwards, backwards: {fixed,
/// per_channel, times}, gradients}, costly, teaching: {formula, paper, passes,
/// versus_scorecam}}]`.
#[wasm_bindgen]
pub fn methods() -> Result<JsValue, JsValue> {
    to_js(&cam::METHODS)
}

/// The colormaps: `[{name, display_name}]`.
#[wasm_bindgen]
pub fn colormaps() -> Result<JsValue, JsValue> {
    to_js(&COLORMAPS)
}

/// The `size x size` map resized (bilinear) to `width x height` and coloured: RGBA bytes.
#[wasm_bindgen(js_name = renderHeatmap)]
pub fn render_heatmap(map: &[f32], size: usize, width: u32, height: u32, colormap: &str) -> Result<Vec<u8>, JsValue> {
    let cmap = Colormap::from_name(colormap).map_err(js_error)?;
    // Every size product checked (65536^2 wraps to 0 in wasm32's usize): render.rs's tests.
    crate::render::heatmap_canvas(map, size, width, height, cmap).map_err(|e| invalid(format!("renderHeatmap: {e}")))
}

/// `n` colours from 0 to 1 as RGBA bytes (the legend).
#[wasm_bindgen(js_name = colormapStrip)]
pub fn colormap_strip(colormap: &str, n: usize) -> Result<Vec<u8>, JsValue> {
    let cmap = Colormap::from_name(colormap).map_err(js_error)?;
    let n = n.clamp(2, 4096);
    let ramp: Vec<f32> = (0..n).map(|i| i as f32 / (n - 1) as f32).collect();
    Ok(crate::render::heatmap_rgba(&ramp, cmap))
}

/// A `size x size` map resampled to `out x out` (bilinear), e.g. to 224x224 for scripts.
#[wasm_bindgen(js_name = resizeMap)]
pub fn resize_square_map(map: &[f32], size: usize, out: usize) -> Result<Vec<f32>, JsValue> {
    if out > 8192 {
        return Err(invalid("resizeMap: an output above 8192 pixels"));
    }
    try_resize_map(map, size, size, out, out).map_err(|e| invalid(format!("resizeMap: {e}")))
}

/// RISE's area under a curve, as `scorecam eval` reports it.
#[wasm_bindgen]
pub fn auc(curve: &[f32]) -> f64 {
    crate::metrics::auc(curve)
}

/// Spearman's rank correlation of two maps of the same size (the sanity check's measure).
#[wasm_bindgen]
pub fn spearman(a: &[f32], b: &[f32]) -> Result<f64, JsValue> {
    if a.len() != b.len() || a.is_empty() {
        return Err(invalid("spearman: the maps differ in size"));
    }
    Ok(crate::metrics::spearman(a, b))
}

/// How many WebGPU validation errors the adapter raised so far. Non-zero means some kernel did not
/// compile there; if autotune chose it, results can be wrong (the page says so).
#[wasm_bindgen(js_name = validationErrors)]
pub fn validation_errors() -> usize {
    VALIDATION_ERRORS.load(std::sync::atomic::Ordering::Relaxed)
}

/// The message of the last panic, if any (after one, the module must be reloaded).
#[wasm_bindgen(js_name = lastPanic)]
pub fn last_panic() -> Option<String> {
    LAST_PANIC.lock().ok().and_then(|s| s.clone())
}

/// The compiled `WebAssembly.Module` of this instance: the page posts it to its workers, which
/// instantiate it without a second download or compile.
#[wasm_bindgen(js_name = compiledModule)]
pub fn wasm_module() -> JsValue {
    wasm_bindgen::module()
}

#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
