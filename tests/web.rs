//! The browser API (src/web.rs) in headless Chromium: `scripts/test.sh` runs
//! `cargo test --target wasm32-unknown-unknown --test web` (wasm-bindgen-test-runner drives
//! Chromium through chromedriver). The tiny VGG fixture, converted to int8, explains its own
//! input image; the map must match PyTorch's official Score-CAM map of the f32 model.
#![cfg(target_arch = "wasm32")]

use js_sys::{Function, Object, Reflect};
use scorecam::metrics::pearson;
use scorecam::web;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const MANIFEST: &str = include_str!("fixtures/vgg_tiny/int8/vgg_tiny.json");
const WEIGHTS: &[u8] = include_bytes!("fixtures/vgg_tiny/int8/vgg_tiny.safetensors");
const INPUT_PNG: &[u8] = include_bytes!("fixtures/vgg_tiny/input.png");
const OFFICIAL_NPY: &[u8] = include_bytes!("fixtures/vgg_tiny/official_scorecam.npy");
/// pytorch-grad-cam's Grad-CAM and Grad-CAM++ maps of the f32 model, all 10 classes.
const GRADCAM_NPY: &[u8] = include_bytes!("fixtures/vgg_tiny/gradcam.npy");
const GRADCAMPP_NPY: &[u8] = include_bytes!("fixtures/vgg_tiny/gradcampp.npy");
/// Each channel's score in the official algorithm (NaN: constant, skipped).
const CHANNEL_SCORES_NPY: &[u8] = include_bytes!("fixtures/vgg_tiny/official_channel_scores.npy");

/// The f32 payload of a little-endian `<f4` .npy file.
fn npy_f32(bytes: &[u8]) -> Vec<f32> {
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    bytes[10 + header_len..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn get(o: &JsValue, key: &str) -> JsValue {
    Reflect::get(o, &key.into()).unwrap()
}

fn message(e: JsValue) -> String {
    js_sys::Error::from(e).message().into()
}

/// A session on the CPU, so the numbers do not depend on the adapter, with the tiny model.
async fn load() -> web::WebSession {
    let session = web::WebSession::start("cpu".into()).await.unwrap();
    assert_eq!(get(&session.backend().unwrap(), "name").as_string().unwrap(), "cpu");
    let model = session.load_model(MANIFEST, WEIGHTS, None).unwrap();
    assert_eq!(get(&model, "input_size").as_f64(), Some(32.0));
    session
}

fn request(entries: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in entries {
        Reflect::set(&o, &(*k).into(), v).unwrap();
    }
    o.into()
}

fn options(entries: &[(&str, f64)]) -> JsValue {
    request(&entries.iter().map(|(k, v)| (*k, JsValue::from(*v))).collect::<Vec<_>>())
}

async fn set_input_image(session: &web::WebSession) -> JsValue {
    let img = scorecam::image_input::decode(INPUT_PNG, "input.png").unwrap();
    let rgba: Vec<u8> = img.pixels().flat_map(|p| [p[0], p[1], p[2], 255]).collect();
    session.set_image(rgba, img.width(), img.height()).await.unwrap()
}

#[wasm_bindgen_test]
async fn explains_like_pytorch() {
    let session = load().await;
    let forward = set_input_image(&session).await;
    let top5 = js_sys::Array::from(&get(&forward, "top5"));
    assert_eq!(top5.length(), 5);

    let record = Function::new_with_args("p", "globalThis.progressCalls = (globalThis.progressCalls || 0) + 1; return p.done <= p.total;");
    let result = session.explain(Object::new().into(), record).await.unwrap();
    let map = js_sys::Float32Array::from(get(&result, "map")).to_vec();
    let reference = npy_f32(OFFICIAL_NPY);
    assert_eq!(map.len(), reference.len());
    let r = pearson(&map, &reference);
    assert!(r > 0.99, "map vs PyTorch's official Score-CAM: pearson {r}");
    let calls = Reflect::get(&js_sys::global(), &"progressCalls".into()).unwrap().as_f64().unwrap_or(0.0);
    assert!(calls >= 1.0, "progress was reported");
    assert_eq!(get(&get(&result, "explained"), "class").as_f64(), get(&top5.get(0), "class").as_f64());
    assert_eq!(get(&result, "method").as_string().as_deref(), Some("scorecam"));
    assert_eq!(get(&get(&result, "stats"), "skipped_constant").as_f64(), Some(5.0));

    // Cancelling from the progress callback rejects with an AbortError.
    let cancel = Function::new_with_args("p", "return false;");
    let err = session.explain(request(&[("class", 3.into()), ("options", options(&[("batch_size", 1.0)]))]), cancel).await.unwrap_err();
    assert_eq!(js_sys::Error::from(err).name(), "AbortError");

    // Grad-CAM and Grad-CAM++ in the browser (Burn's autodiff in wasm) against pytorch-grad-cam,
    // on a class whose map is not empty.
    for (method, npy) in [("gradcam", GRADCAM_NPY), ("gradcampp", GRADCAMPP_NPY)] {
        let result = session.explain(request(&[("class", 2.into()), ("method", method.into())]), Function::new_no_args("return true")).await.unwrap();
        let ours = js_sys::Float32Array::from(get(&result, "map")).to_vec();
        let reference = &npy_f32(npy)[2 * 1024..3 * 1024];
        let r = pearson(&ours, reference);
        assert!(r > 0.98, "{method} (int8, wasm) vs pytorch-grad-cam (f32): pearson {r}");
        assert_eq!(get(&get(&result, "explained"), "class").as_f64(), Some(2.0));
    }

    // The resize the page uses for its 224x224 maps.
    let resized = web::resize_square_map(&map, 32, 224).unwrap();
    assert_eq!(resized.len(), 224 * 224);
}

/// The teaching views' data: channel records, activations, a channel's mask and masked input,
/// curve points, and a randomised stage.
#[wasm_bindgen_test]
async fn the_teaching_views_data() {
    let session = load().await;
    set_input_image(&session).await;
    let result = session.explain(Object::new().into(), Function::new_no_args("return true")).await.unwrap();
    // the per-channel records as columns
    let scores = js_sys::Float32Array::from(get(&result, "channel_scores")).to_vec();
    let constant = js_sys::Uint8Array::from(get(&result, "channel_constant")).to_vec();
    let weights = js_sys::Float32Array::from(get(&result, "channel_weights")).to_vec();
    let reference = npy_f32(CHANNEL_SCORES_NPY);
    assert_eq!((scores.len(), constant.len(), weights.len()), (reference.len(), reference.len(), reference.len()));
    for ((s, c), r) in scores.iter().zip(&constant).zip(&reference) {
        assert_eq!(*c == 1, r.is_nan());
        assert_eq!(s.is_nan(), r.is_nan());
        // int8 weights in wasm against the f32 model in PyTorch
        if !s.is_nan() {
            assert!((s - r).abs() < 0.02, "score {s} vs PyTorch {r}");
        }
    }
    assert!(get(&result, "channels").is_undefined(), "no per-channel objects: they were slow");
    let acts = session.activations().unwrap();
    assert_eq!(get(&acts, "channels").as_f64(), Some(16.0));
    assert_eq!(js_sys::Float32Array::from(get(&acts, "data")).length(), 16 * 8 * 8);
    assert_eq!(js_sys::Uint8Array::from(get(&acts, "constant")).to_vec().iter().filter(|c| **c == 1).count(), 5);
    let view = session.channel_view(JsValue::NULL, 2).await.unwrap();
    assert_eq!(js_sys::Float32Array::from(get(&view, "mask")).length(), 32 * 32);
    assert_eq!(js_sys::Uint8Array::from(get(&view, "masked")).length(), 4 * 32 * 32);
    assert!(session.channel_view(JsValue::NULL, 99).await.is_err());

    let map = js_sys::Float32Array::from(get(&result, "map")).to_vec();
    let n = session.curve_length().unwrap();
    assert_eq!(n, (32 * 32usize).div_ceil(224) + 1);
    let whole = session.curve_points(JsValue::NULL, map.clone(), "deletion".into(), 0, n).await.unwrap();
    let mut pieces = session.curve_points(JsValue::NULL, map.clone(), "deletion".into(), 0, 2).await.unwrap();
    pieces.extend(session.curve_points(JsValue::NULL, map.clone(), "deletion".into(), 2, n).await.unwrap());
    assert_eq!(whole, pieces);
    assert_eq!(web::auc(&whole), scorecam::metrics::auc(&whole));
    assert!(session.curve_points(JsValue::NULL, map.clone(), "sideways".into(), 0, 2).await.is_err());
    assert!(session.curve_points(JsValue::NULL, map[1..].to_vec(), "deletion".into(), 0, 2).await.is_err());
    let adi = session.drop_increase(JsValue::NULL, map.clone(), "paper".into()).await.unwrap();
    assert!(get(&adi, "drop").as_f64().is_some());

    let stage0 = session.randomised(JsValue::NULL, WEIGHTS.to_vec(), 0, 0, Function::new_no_args("return true")).await.unwrap();
    assert_eq!(js_sys::Float32Array::from(get(&stage0, "map")).to_vec(), map, "stage 0 is the intact network");
    let stage7 = session.randomised(JsValue::NULL, WEIGHTS.to_vec(), 7, 0, Function::new_no_args("return true")).await.unwrap();
    assert_eq!(js_sys::Array::from(&get(&stage7, "groups")).length(), 7);
    let r = web::spearman(&map, &js_sys::Float32Array::from(get(&stage7, "map")).to_vec()).unwrap();
    // (the tiny model's channel scores are nearly equal, so its map survives a random classifier
    // and changes only once the convolutions are random too)
    assert!(r < 0.99, "every layer randomised, the map changed: {r}");
    assert!(session.randomised(JsValue::NULL, WEIGHTS[1..].to_vec(), 1, 0, Function::new_no_args("return true")).await.is_err());
}

#[wasm_bindgen_test]
async fn the_page_reads_the_method_and_colormap_lists_from_the_core() {
    let methods = js_sys::Array::from(&web::methods().unwrap());
    let names: Vec<String> = methods.iter().map(|m| get(&m, "name").as_string().unwrap()).collect();
    assert_eq!(names, scorecam::cam::METHODS.iter().map(|s| s.name.to_string()).collect::<Vec<_>>());
    let scorecam = methods.get(0);
    assert_eq!(get(&scorecam, "in_browser").as_bool(), Some(true));
    let opts = js_sys::Array::from(&get(&scorecam, "options"));
    assert_eq!(get(&opts.get(1), "name").as_string().as_deref(), Some("top_k"));
    assert!(get(&opts.get(1), "default").is_null());
    let cmaps = js_sys::Array::from(&web::colormaps().unwrap());
    assert_eq!(cmaps.iter().map(|c| get(&c, "name").as_string().unwrap()).collect::<Vec<_>>(), ["jet", "turbo", "viridis"]);
}

#[wasm_bindgen_test]
async fn bad_input_is_an_error_not_a_panic() {
    let session = load().await;
    let truncated = &WEIGHTS[..WEIGHTS.len() / 2];
    let e = message(session.load_model(MANIFEST, truncated, None).unwrap_err());
    assert!(e.contains("bytes") || e.contains("sha256") || e.contains("SHA"), "{e}");
    // a file that fails its checks leaves the loaded model in place
    assert_eq!(get(&session.model().unwrap(), "input_size").as_f64(), Some(32.0));
    let e = message(session.load_model("{not json", WEIGHTS, None).unwrap_err());
    assert!(!e.is_empty());
    let e = message(session.explain(JsValue::UNDEFINED, Function::new_no_args("return true")).await.unwrap_err());
    assert!(e.contains("no image"), "{e}");
    let e = message(session.set_image(vec![0; 10], 4, 4).await.unwrap_err());
    assert!(e.contains("RGBA"), "{e}");
    // with an image in place, so the request itself is what fails
    set_input_image(&session).await;
    let never = Function::new_no_args("return true");
    let e = message(session.explain(request(&[("method", "scorecam-made-up".into())]), never.clone()).await.unwrap_err());
    assert!(e.contains("unknown method \"scorecam-made-up\""), "{e}");
    let e = message(session.explain(request(&[("method", "gradcam".into()), ("options", options(&[("top_k", 4.0)]))]), never.clone()).await.unwrap_err());
    assert!(e.contains("gradcam has no option \"top_k\""), "{e}");
    let e = message(session.explain(request(&[("options", options(&[("batch_size", 0.0)]))]), never.clone()).await.unwrap_err());
    assert!(e.contains("batch_size must be a whole number from 1 to 1024"), "{e}");
    let e = message(session.explain(request(&[("method", "rise".into())]), never.clone()).await.unwrap_err());
    assert!(e.contains("not offered in the browser"), "{e}");
    let e = message(session.explain(request(&[("variant", "official".into())]), never.clone()).await.unwrap_err());
    assert!(e.contains("unknown field `variant`"), "{e}");
    assert!(web::render_heatmap(&[0.0; 10], 4, 8, 8, "jet").is_err());
    assert!(web::colormap_strip("rainbow", 8).is_err());
    assert_eq!(web::colormap_strip("jet", 2).unwrap(), vec![0, 0, 128, 255, 128, 0, 0, 255]);
    assert!(web::last_panic().is_none());
}

/// The compare view's calls: one method at a time, with the eval metrics, a target, its passes,
/// cancellable; and the teaching text the page shows for each method.
#[wasm_bindgen_test]
async fn the_compare_view_runs_one_method_at_a_time() {
    let session = load().await;
    set_input_image(&session).await;
    let never = Function::new_no_args("return true");
    // A cell is two calls: the method (its curves' keys), then its metrics.
    let method = |name: &str| request(&[("class", 2.into()), ("method", name.into()), ("target", "softmax".into())]);
    let keys = get(&session.compare_method(method("gradcam"), 224, never.clone()).await.unwrap(), "keys");
    assert_eq!(js_sys::Array::from(&keys).length(), 2);
    let r = session.compare_metrics(JsValue::NULL, never.clone()).await.unwrap();
    assert_eq!(get(&r, "method").as_string().as_deref(), Some("gradcam"));
    assert_eq!(get(&r, "target").as_string().as_deref(), Some("softmax"));
    assert_eq!(js_sys::Float32Array::from(get(&r, "map")).length(), 32 * 32);
    for key in ["seconds", "forwards", "deletion_auc", "insertion_auc", "average_drop"] {
        assert!(get(&r, key).as_f64().is_some_and(f64::is_finite), "{key}");
    }
    let curves = get(&r, "curves");
    assert_eq!(js_sys::Array::from(&curves).length(), 2);
    assert!(session.compare_metrics(JsValue::NULL, never.clone()).await.is_err(), "one compareMetrics per compareMethod");
    // A map ordered alike (here the same method's again; on Lite0 HiResCAM's), handed the curves
    // another worker scored: only Average Drop's one pass, the same AUCs.
    let hires = session.compare_method(method("gradcam"), 224, never.clone()).await.unwrap();
    assert!(js_sys::JSON::stringify(&get(&hires, "keys")).unwrap() == js_sys::JSON::stringify(&keys).unwrap());
    let h = session.compare_metrics(curves, never.clone()).await.unwrap();
    assert_eq!(get(&h, "metric_forwards").as_f64(), Some(1.0));
    for key in ["deletion_auc", "insertion_auc"] {
        assert_eq!(get(&h, key).as_f64(), get(&r, key).as_f64(), "{key}");
    }
    assert!(get(&r, "metric_forwards").as_f64().unwrap() > 2.0);
    // 32 x 32: 1024 / 224 -> 6 points a curve; a curve step of 0 or beyond the image is refused.
    assert_eq!(get(&r, "curve_points").as_f64(), Some(6.0));
    let e = message(session.compare_method(method("gradcam"), 0, never.clone()).await.unwrap_err());
    assert!(e.contains("curve step of 0"), "{e}");
    assert!(session.compare_method(method("gradcam"), 1025, never.clone()).await.is_err());
    let stop = Function::new_no_args("return false");
    let e = session.compare_method(request(&[("method", "groupcam".into())]), 224, stop).await.unwrap_err();
    assert_eq!(get(&e, "name").as_string().as_deref(), Some("AbortError"));
    let e = message(session.compare_method(request(&[("method", "eigencam".into()), ("target", "logit".into())]), 224, never.clone()).await.unwrap_err());
    assert!(e.contains("takes no target"), "{e}");
    // SS-CAM's 35 noisy masks per channel of the tiny model's 16
    let passes = session.passes(request(&[("method", "sscam".into())])).unwrap();
    assert_eq!(get(&passes, "forwards").as_f64(), Some(35.0 * 16.0));
    let methods = js_sys::Array::from(&web::methods().unwrap());
    let sscam = methods.iter().find(|m| get(m, "name").as_string().as_deref() == Some("sscam")).unwrap();
    assert_eq!(get(&sscam, "costly").as_bool(), Some(true));
    assert!(get(&get(&sscam, "teaching"), "versus_scorecam").as_string().is_some_and(|t| !t.is_empty()));
    assert!(web::last_panic().is_none());
}

/// A visitor's ONNX file, imported as the page's import worker does, then loaded at a layer of
/// the visitor's choice; bad files are refused with their reason, the loaded model kept.
#[wasm_bindgen_test]
async fn imports_an_onnx_model_and_refuses_bad_files() {
    const ONNX: &[u8] = include_bytes!("fixtures/onnx/tiny_resnet/tiny_resnet.dynamo.dynamic.onnx");
    let labels: Vec<JsValue> = (0..10).map(|i| JsValue::from(format!("kind {i}"))).collect();
    let opts = request(&[("labels", js_sys::Array::from_iter(labels).into()), ("name", "tiny".into())]);
    let out = web::import_model(ONNX.to_vec(), "tiny_resnet.onnx", opts).unwrap();
    let info = get(&out, "info");
    assert_eq!(get(&info, "classes").as_f64(), Some(10.0));
    assert_eq!(get(&info, "class_names").as_string().as_deref(), Some("labels"));
    assert_eq!(get(&info, "target_layer").as_string().as_deref(), Some("relu_4"));
    assert_eq!(get(&info, "source_sha256").as_string().unwrap(), web::sha256_hex(ONNX));
    let manifest = get(&out, "manifest").as_string().unwrap();
    let weights = js_sys::Uint8Array::from(get(&out, "weights")).to_vec();
    let session = load().await;
    let model = session.load_model(&manifest, &weights, Some("relu_2".into())).unwrap();
    assert_eq!(get(&model, "target_layer").as_string().as_deref(), Some("relu_2"));
    set_input_image(&session).await;
    let e = message(session.load_model(&manifest, &weights, Some("nowhere".into())).unwrap_err());
    assert!(e.contains("no layer called \"nowhere\""), "{e}");
    assert_eq!(get(&session.model().unwrap(), "target_layer").as_string().as_deref(), Some("relu_2"), "the loaded model stays");
    let e = message(web::import_model(b"not a model".to_vec(), "notes.onnx", JsValue::UNDEFINED).unwrap_err());
    assert!(e.contains("notes.onnx") && e.contains("not an ONNX model"), "{e}");
    let e = message(web::import_model(ONNX[..ONNX.len() / 2].to_vec(), "cut.onnx", JsValue::UNDEFINED).unwrap_err());
    assert!(e.contains("cut.onnx"), "{e}");
    let e = message(web::import_model(ONNX.to_vec(), "x.onnx", request(&[("layers", "relu_2".into())])).unwrap_err());
    assert!(e.contains("unknown field `layers`"), "{e}");
    assert!(web::last_panic().is_none());
}
