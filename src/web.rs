//! The browser's API (wasm-bindgen), called by `www/app.js`. It is a thin layer over the same
//! core the CLI uses: decode nothing itself (the page hands over RGBA pixels), build the model
//! from the int8 file and its manifest, run Score-CAM, colour maps.
//!
//! Every export returns `Result`, so failures reach JavaScript as exceptions carrying a message
//! (`name` is `AbortError` for a cancelled run). A panic hook records the panic's message so the
//! page can show it ([`last_panic`]) instead of a bare "unreachable".
//!
//! State lives in thread-locals (the page has one backend, one model and one current image); the
//! async exports clone `Rc`s out of them, so a new image or model never pulls data from under a
//! running explanation.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Mutex;

use burn::tensor::Device;
use burn::tensor::wgpu::wgpu;
use js_sys::{Array, Float32Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::cam::{self, upsample::resize_map, Forwarded, Method, ScoreCamOptions, ScoreCamVariant};
use crate::error::Error;
use crate::image_input;
use crate::models::{Architecture, Model, MAX_BINDING_BYTES};
use crate::render::Colormap;
use crate::weights::Manifest;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);
    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    fn console_warn(message: &str);
}

struct Backend {
    device: Device,
    /// "webgpu" or "cpu".
    name: &'static str,
    adapter: String,
    binding_limit: Option<usize>,
}

thread_local! {
    static BACKEND: RefCell<Option<Rc<Backend>>> = const { RefCell::new(None) };
    static MODEL: RefCell<Option<Rc<Model>>> = const { RefCell::new(None) };
    static IMAGE: RefCell<Option<Rc<Forwarded>>> = const { RefCell::new(None) };
}

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);
/// WebGPU validation errors seen (see `init_backend`).
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

fn invalid(message: impl Into<String>) -> JsValue {
    js_error(Error::Invalid(message.into()))
}

/// A plain JS object from key/value pairs.
fn object(entries: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in entries {
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o.into()
}

fn backend() -> Result<Rc<Backend>, JsValue> {
    BACKEND.with_borrow(|b| b.clone()).ok_or_else(|| invalid("no backend yet: call initBackend first"))
}

fn model() -> Result<Rc<Model>, JsValue> {
    MODEL.with_borrow(|m| m.clone()).ok_or_else(|| invalid("no model loaded"))
}

fn backend_info(b: &Backend, notice: Option<String>) -> JsValue {
    object(&[
        ("backend", b.name.into()),
        ("adapter", b.adapter.as_str().into()),
        ("maxBindingBytes", b.binding_limit.map_or(JsValue::NULL, |l| (l as f64).into())),
        ("notice", notice.map_or(JsValue::NULL, |n| n.into())),
    ])
}

fn browser_has_webgpu() -> bool {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).unwrap_or(JsValue::UNDEFINED);
    !navigator.is_undefined() && Reflect::get(&navigator, &"gpu".into()).is_ok_and(|g| !g.is_undefined() && !g.is_null())
}

fn cpu_backend() -> Backend {
    Backend { device: Device::flex(), name: "cpu", adapter: "CPU (WebAssembly)".into(), binding_limit: None }
}

/// Starts the backend once per page: `"auto"` tries WebGPU and falls back to the CPU with a
/// notice; `"cpu"` skips WebGPU. Returns `{backend, adapter, maxBindingBytes, notice}`.
#[wasm_bindgen(js_name = initBackend)]
pub async fn init_backend(preference: String) -> Result<JsValue, JsValue> {
    if let Some(b) = BACKEND.with_borrow(|b| b.clone()) {
        return Ok(backend_info(&b, None));
    }
    let (backend, notice) = match preference.as_str() {
        "cpu" => (cpu_backend(), None),
        "auto" | "webgpu" if !browser_has_webgpu() => (
            cpu_backend(),
            Some("This browser has no WebGPU, so the network runs on the CPU: expect minutes, not seconds. The light model (EfficientNet-Lite0) is recommended.".to_string()),
        ),
        "auto" | "webgpu" => match Device::wgpu_options().init_with_setup_async().await {
            Ok((device, setup)) => {
                let limit = setup.device.limits().max_storage_buffer_binding_size as usize;
                // CubeCL's handler panics on any WebGPU validation error, from a callback where
                // nothing can catch it. Log and count them instead (the page shows a notice);
                // results are still checked for NaN when read back, and a lost device is
                // reported through CubeCL's device-lost callback and the page's GPUDevice.lost.
                // (Autotune is off on wasm, see Cargo.toml: it was the source of such errors.)
                setup.device.on_uncaptured_error(std::sync::Arc::new(|error: wgpu::Error| {
                    VALIDATION_ERRORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    console_warn(&format!("WebGPU validation error (ignored if the result checks out): {error}"));
                }));
                let info = setup.adapter.get_info();
                let adapter = if info.name.is_empty() { "WebGPU".to_string() } else { info.name };
                (Backend { device, name: "webgpu", adapter, binding_limit: Some(limit.min(MAX_BINDING_BYTES)) }, None)
            }
            Err(e) => {
                console_warn(&format!("WebGPU could not start: {e}"));
                let notice = "WebGPU could not start here (no usable GPU adapter; details in the console), so the network runs on the CPU: expect minutes, not seconds. The light model (EfficientNet-Lite0) is recommended.";
                (cpu_backend(), Some(notice.to_string()))
            }
        },
        other => return Err(invalid(format!("unknown backend {other:?} (auto, webgpu, cpu)"))),
    };
    let backend = Rc::new(backend);
    BACKEND.with_borrow_mut(|b| *b = Some(backend.clone()));
    Ok(backend_info(&backend, notice))
}

/// Verifies `bytes` against the manifest (size and SHA-256), builds the model on the backend and
/// makes it current. Returns `{name, arch, inputSize, classNames, maxBatch}`.
#[wasm_bindgen(js_name = loadModel)]
pub fn load_model(manifest_json: &str, bytes: &[u8]) -> Result<JsValue, JsValue> {
    let backend = backend()?;
    let manifest = Manifest::from_json(manifest_json, "manifest").map_err(js_error)?;
    let arch = Architecture::from_name(&manifest.arch).map_err(js_error)?;
    if let Some(limit) = backend.binding_limit
        && limit < MAX_BINDING_BYTES
        && arch == Architecture::Vgg16
    {
        return Err(invalid(format!(
            "this GPU binds at most {} MiB per buffer and VGG16's weight blocks need 128 MiB: use EfficientNet-Lite0",
            limit >> 20
        )));
    }
    // Drop the old model and image first: on a GPU two VGG16s need not fit at once.
    MODEL.with_borrow_mut(|m| *m = None);
    IMAGE.with_borrow_mut(|i| *i = None);
    let mut model = Model::from_bytes(manifest, bytes, &backend.device).map_err(js_error)?;
    model.binding_limit = backend.binding_limit;
    let names = model.manifest.class_names.iter().map(|n| JsValue::from_str(n)).collect::<Array>();
    let info = object(&[
        ("name", model.manifest.name.as_str().into()),
        ("arch", model.arch.name().into()),
        ("inputSize", (model.input_size() as f64).into()),
        ("classNames", names.into()),
        ("maxBatch", (model.max_batch().min(1 << 20) as f64).into()),
    ]);
    MODEL.with_borrow_mut(|m| *m = Some(Rc::new(model)));
    Ok(info)
}

fn top5_array(model: &Model, top5: &[(usize, f32)]) -> JsValue {
    top5.iter()
        .map(|&(index, p)| {
            object(&[
                ("index", (index as f64).into()),
                ("name", model.manifest.class_name(index).into()),
                ("probability", (p as f64).into()),
            ])
        })
        .collect::<Array>()
        .into()
}

/// Makes `rgba` (`width x height`, as a canvas gives it) the current image: resizes and
/// normalises it as the CLI does and runs the unmasked forward pass. Returns `{top5}`.
#[wasm_bindgen(js_name = setImage)]
pub async fn set_image(rgba: Vec<u8>, width: u32, height: u32) -> Result<JsValue, JsValue> {
    let model = model()?;
    let img = image_input::from_rgba(&rgba, width, height).map_err(js_error)?;
    drop(rgba);
    let input = image_input::to_input(&img, model.input_size(), &model.manifest.normalisation);
    let forwarded = cam::forward_image(&model, &input).await.map_err(js_error)?;
    let top5 = cam::top_k(&forwarded.probabilities, 5);
    IMAGE.with_borrow_mut(|i| *i = Some(Rc::new(forwarded)));
    Ok(object(&[("top5", top5_array(&model, &top5))]))
}

fn number_option(options: &JsValue, key: &str) -> Option<f64> {
    Reflect::get(options, &key.into()).ok().and_then(|v| v.as_f64())
}

/// Reads `{variant: "official" | "gradcam-lib", batchSize, topK}` (all optional).
fn score_cam_options(options: &JsValue) -> Result<ScoreCamOptions, JsValue> {
    let mut opts = ScoreCamOptions::default();
    if options.is_undefined() || options.is_null() {
        return Ok(opts);
    }
    match Reflect::get(options, &"variant".into()).ok().and_then(|v| v.as_string()).as_deref() {
        None | Some("official") => {}
        Some("gradcam-lib") => opts.variant = ScoreCamVariant::GradCamLibrary,
        Some(other) => return Err(invalid(format!("unknown Score-CAM variant {other:?} (official, gradcam-lib)"))),
    }
    if let Some(b) = number_option(options, "batchSize") {
        if !(1.0..=1024.0).contains(&b) {
            return Err(invalid("batchSize must be between 1 and 1024"));
        }
        opts.batch_size = b as usize;
    }
    if let Some(k) = number_option(options, "topK") {
        if !(1.0..=1e6).contains(&k) {
            return Err(invalid("topK must be at least 1"));
        }
        opts.top_k = Some(k as usize);
    }
    Ok(opts)
}

/// `options.method`: "scorecam" (default, with [`score_cam_options`]), "gradcam" or "gradcampp"
/// (the CAM family; the pixel-level baselines are CLI-only, they are too slow for a page).
fn method_option(options: &JsValue) -> Result<Method, JsValue> {
    let name = if options.is_object() { Reflect::get(options, &"method".into()).ok().and_then(|v| v.as_string()) } else { None };
    match name.as_deref() {
        None | Some("scorecam") => Ok(Method::ScoreCam(score_cam_options(options)?)),
        Some("gradcam") => Ok(Method::GradCam),
        Some("gradcampp") => Ok(Method::GradCamPlusPlus),
        Some(other) => Err(invalid(format!("unknown method {other:?} (scorecam, gradcam, gradcampp)"))),
    }
}

/// Explains `class` (negative: the top class) of the current image. `on_progress` gets
/// `{done, total, map}` after every batch (`map`: the partial saliency, inputSize squared, or null) and
/// cancels the run by returning `false`. Resolves to `{class, name, probability, map, size,
/// top5, stats}`; a cancelled run rejects with an `AbortError`.
#[wasm_bindgen]
pub async fn explain(class: i32, options: JsValue, on_progress: Function) -> Result<JsValue, JsValue> {
    let model = model()?;
    let image = IMAGE.with_borrow(|i| i.clone()).ok_or_else(|| invalid("no image yet"))?;
    let method = method_option(&options)?;
    let class = usize::try_from(class).ok();
    let size = model.input_size();
    let mut progress = |p: &cam::Progress<'_>| {
        let map = p.partial_map(&image.maps, size).map_or(JsValue::NULL, |m| Float32Array::from(&m[..]).into());
        let update = object(&[("done", (p.done as f64).into()), ("total", (p.total as f64).into()), ("map", map)]);
        // An exception in the callback cancels too: the page is in no state to continue.
        on_progress.call1(&JsValue::NULL, &update).is_ok_and(|keep| keep != JsValue::FALSE)
    };
    let e = cam::explain_forwarded(&model, &image, class, &method, &mut progress).await.map_err(js_error)?;
    let stats = object(&[
        ("forwards", (e.stats.forwards as f64).into()),
        ("batches", (e.stats.batches as f64).into()),
        ("skippedConstant", (e.stats.skipped_constant as f64).into()),
    ]);
    Ok(object(&[
        ("class", (e.class as f64).into()),
        ("name", model.manifest.class_name(e.class).into()),
        ("probability", (e.class_probability as f64).into()),
        ("map", Float32Array::from(&e.map[..]).into()),
        ("size", (e.size as f64).into()),
        ("top5", top5_array(&model, &e.top5)),
        ("stats", stats),
    ]))
}

/// The `size x size` map resized (bilinear) to `width x height` and coloured: RGBA bytes.
#[wasm_bindgen(js_name = renderHeatmap)]
pub fn render_heatmap(map: &[f32], size: usize, width: u32, height: u32, colormap: &str) -> Result<Vec<u8>, JsValue> {
    let cmap = colormap_named(colormap)?;
    if size == 0 || map.len() != size * size || width == 0 || height == 0 || width as u64 * height as u64 > 1 << 26 {
        return Err(invalid("renderHeatmap: bad map or canvas size"));
    }
    let resized = crate::render::map_to_image_size(map, size, width, height);
    Ok(opaque_rgba(&crate::render::heatmap(&resized, width, height, cmap)))
}

/// `n` colours from 0 to 1 as RGBA bytes (the legend).
#[wasm_bindgen(js_name = colormapStrip)]
pub fn colormap_strip(colormap: &str, n: usize) -> Result<Vec<u8>, JsValue> {
    let cmap = colormap_named(colormap)?;
    let n = n.clamp(2, 4096);
    let ramp: Vec<f32> = (0..n).map(|i| i as f32 / (n - 1) as f32).collect();
    Ok(opaque_rgba(&crate::render::heatmap(&ramp, n as u32, 1, cmap)))
}

fn colormap_named(name: &str) -> Result<Colormap, JsValue> {
    Colormap::from_name(name).ok_or_else(|| invalid(format!("unknown colormap {name:?} (jet, turbo, viridis)")))
}

/// RGB pixels as the RGBA bytes a canvas `ImageData` takes.
fn opaque_rgba(img: &image::RgbImage) -> Vec<u8> {
    img.pixels().flat_map(|p| [p[0], p[1], p[2], 255]).collect()
}

/// A `size x size` map resampled to `out x out` (bilinear), e.g. to 224x224 for scripts.
#[wasm_bindgen(js_name = resizeMap)]
pub fn resize_square_map(map: &[f32], size: usize, out: usize) -> Result<Vec<f32>, JsValue> {
    if size == 0 || map.len() != size * size || out == 0 || out > 8192 {
        return Err(invalid("resizeMap: bad sizes"));
    }
    Ok(resize_map(map, size, size, out, out))
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

#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Resolves on the next macrotask (`setTimeout(0)`), so the page can paint and take input.
pub(crate) async fn next_task() {
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
