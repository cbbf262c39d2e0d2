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

/// Backend chosen once per page: the CPU here, so the numbers do not depend on the adapter.
async fn load() {
    let info = web::init_backend("cpu".into()).await.unwrap();
    assert_eq!(get(&info, "backend").as_string().unwrap(), "cpu");
    let model = web::load_model(MANIFEST, WEIGHTS).unwrap();
    assert_eq!(get(&model, "inputSize").as_f64(), Some(32.0));
}

#[wasm_bindgen_test]
async fn explains_like_pytorch() {
    load().await;
    let img = scorecam::image_input::decode(INPUT_PNG, "input.png").unwrap();
    let rgba: Vec<u8> = img.pixels().flat_map(|p| [p[0], p[1], p[2], 255]).collect();
    let forward = web::set_image(rgba, img.width(), img.height()).await.unwrap();
    let top5 = js_sys::Array::from(&get(&forward, "top5"));
    assert_eq!(top5.length(), 5);

    let record = Function::new_with_args("p", "globalThis.progressCalls = (globalThis.progressCalls || 0) + 1; return p.done <= p.total;");
    let result = web::explain(-1, Object::new().into(), record).await.unwrap();
    let map = js_sys::Float32Array::from(get(&result, "map")).to_vec();
    let reference = npy_f32(OFFICIAL_NPY);
    assert_eq!(map.len(), reference.len());
    let r = pearson(&map, &reference);
    assert!(r > 0.99, "map vs PyTorch's official Score-CAM: pearson {r}");
    let calls = Reflect::get(&js_sys::global(), &"progressCalls".into()).unwrap().as_f64().unwrap_or(0.0);
    assert!(calls >= 1.0, "progress was reported");
    assert_eq!(get(&result, "class").as_f64(), get(&top5.get(0), "index").as_f64());

    // Cancelling from the progress callback rejects with an AbortError.
    let cancel = Function::new_with_args("p", "return false;");
    let opts = Object::new();
    Reflect::set(&opts, &"batchSize".into(), &1.into()).unwrap();
    let err = web::explain(3, opts.into(), cancel).await.unwrap_err();
    assert_eq!(js_sys::Error::from(err).name(), "AbortError");

    // Grad-CAM and Grad-CAM++ in the browser (Burn's autodiff in wasm) against pytorch-grad-cam,
    // on a class whose map is not empty.
    for (method, npy) in [("gradcam", GRADCAM_NPY), ("gradcampp", GRADCAMPP_NPY)] {
        let opts = Object::new();
        Reflect::set(&opts, &"method".into(), &method.into()).unwrap();
        let result = web::explain(2, opts.into(), Function::new_no_args("return true")).await.unwrap();
        let ours = js_sys::Float32Array::from(get(&result, "map")).to_vec();
        let reference = &npy_f32(npy)[2 * 1024..3 * 1024];
        let r = pearson(&ours, reference);
        assert!(r > 0.98, "{method} (int8, wasm) vs pytorch-grad-cam (f32): pearson {r}");
        assert_eq!(get(&result, "class").as_f64(), Some(2.0));
    }

    // The resize the page uses for its 224x224 maps.
    let resized = web::resize_square_map(&map, 32, 224).unwrap();
    assert_eq!(resized.len(), 224 * 224);
}

#[wasm_bindgen_test]
async fn bad_input_is_an_error_not_a_panic() {
    load().await;
    let truncated = &WEIGHTS[..WEIGHTS.len() / 2];
    let e = message(web::load_model(MANIFEST, truncated).unwrap_err());
    assert!(e.contains("bytes") || e.contains("sha256") || e.contains("SHA"), "{e}");
    let e = message(web::load_model("{not json", WEIGHTS).unwrap_err());
    assert!(!e.is_empty());
    load().await;
    let e = message(web::set_image(vec![0; 10], 4, 4).await.unwrap_err());
    assert!(e.contains("RGBA"), "{e}");
    let opts = Object::new();
    Reflect::set(&opts, &"variant".into(), &"made-up".into()).unwrap();
    let e = message(web::explain(0, opts.into(), Function::new_no_args("return true")).await.unwrap_err());
    assert!(e.contains("variant") || e.contains("no image"), "{e}");
    let opts = Object::new();
    Reflect::set(&opts, &"method".into(), &"rise".into()).unwrap();
    let e = message(web::explain(0, opts.into(), Function::new_no_args("return true")).await.unwrap_err());
    assert!(e.contains("method") || e.contains("no image"), "{e}");
    assert!(web::render_heatmap(&[0.0; 10], 4, 8, 8, "jet").is_err());
    assert!(web::colormap_strip("rainbow", 8).is_err());
    assert_eq!(web::colormap_strip("jet", 2).unwrap(), vec![0, 0, 128, 255, 128, 0, 0, 255]);
    assert!(web::last_panic().is_none());
}
