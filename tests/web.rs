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
    let model = session.load_model(MANIFEST, WEIGHTS).unwrap();
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
    let e = message(session.load_model(MANIFEST, truncated).unwrap_err());
    assert!(e.contains("bytes") || e.contains("sha256") || e.contains("SHA"), "{e}");
    // a file that fails its checks leaves the loaded model in place
    assert_eq!(get(&session.model().unwrap(), "input_size").as_f64(), Some(32.0));
    let e = message(session.load_model("{not json", WEIGHTS).unwrap_err());
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
