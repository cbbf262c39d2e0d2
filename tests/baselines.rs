//! The baselines on the tiny model: Grad-CAM, Grad-CAM++ and the input gradient against
//! pytorch-grad-cam / PyTorch (fixtures from scripts/reference.py fixture), the other methods'
//! contracts, and the sanity check's cascading randomisation.

mod common;

use common::*;
use scorecam::cam::{self, IntegratedGradientsOptions, MeaningfulPerturbationOptions, Method, RiseOptions, SmoothGradOptions};

fn fixture(name: &str) -> std::path::PathBuf {
    repo().join("tests/fixtures/vgg_tiny").join(name)
}

fn setup() -> (scorecam::models::Model, Vec<f32>) {
    let (f32_model, _, _) = f32_and_int8(&fixture("weights.safetensors"), arch("vgg_tiny"), &backend());
    (f32_model, read_npy(&fixture("input.npy")).1)
}

#[test]
fn grad_cam_and_grad_cam_pp_match_pytorch_grad_cam() {
    let (model, input) = setup();
    // Grad-CAM++ is not linear in the gradient, so it sees where max pooling sends the gradient
    // of a window with tied maxima (zeros after ReLU): PyTorch picks one position, Burn another.
    // Grad-CAM sums the gradients and is exact; Lite0 (no max pooling) is exact for both.
    let mut compared = 0;
    for (method, name, max_diff, min_pearson) in [(Method::GradCam, "gradcam.npy", 1e-4, 0.99999), (Method::GradCamPlusPlus, "gradcampp.npy", 0.1, 0.99)] {
        let (shape, all) = read_npy(&fixture(name));
        assert_eq!(shape, vec![10, 32, 32]);
        for class in 0..10 {
            let reference = &all[class * 1024..(class + 1) * 1024];
            let e = explain(&model, &input, Some(class), &method);
            let diff = e.map.iter().zip(reference).fold(0f32, |d, (a, b)| d.max((a - b).abs()));
            assert!(diff < max_diff, "{name} class {class}: maps differ by {diff}");
            if reference.iter().any(|v| *v != reference[0]) {
                let r = pearson(&e.map, reference);
                println!("{name} class {class}: max |ours - pytorch-grad-cam| = {diff:.2e}, Pearson {r:.6}");
                assert!(r > min_pearson, "{name} class {class}: Pearson {r}");
                compared += 1;
            }
        }
    }
    assert!(compared >= 6, "too few classes with a non-zero map: {compared}");
}

/// What the gradient baselines show: `max_c |v_c|` of a `[3, 32, 32]` attribution, min-max scaled.
fn channel_abs_max_normalised(v: &[f32]) -> Vec<f32> {
    let n = v.len() / 3;
    let raw: Vec<f32> = (0..n).map(|i| v[i].abs().max(v[n + i].abs()).max(v[2 * n + i].abs())).collect();
    let max = raw.iter().copied().fold(0f32, f32::max);
    let min = raw.iter().copied().fold(f32::MAX, f32::min);
    raw.iter().map(|r| (r - min) / (max - min)).collect()
}

#[test]
fn input_gradient_matches_pytorch_autograd() {
    let (model, input) = setup();
    let g = pollster::block_on(cam::input_gradients(&model, input.clone(), 5)).unwrap();
    let reference = read_npy(&fixture("input_gradient.npy")).1;
    let d = max_rel_diff(&g, &reference);
    assert!(d < 1e-4, "input gradients differ by {d} (relative)");
    // and the vanilla-gradient map is max |g| over the colour channels, scaled to [0, 1]
    let e = explain(&model, &input, Some(5), &Method::Gradient);
    assert!(e.map.iter().zip(channel_abs_max_normalised(&g)).all(|(m, r)| (m - r).abs() < 1e-5));
}

#[test]
fn pixel_baselines_give_deterministic_unit_range_maps() {
    let (model, input) = setup();
    let methods = [
        Method::Rise(RiseOptions { masks: 64, grid: 4, ..RiseOptions::default() }),
        Method::SmoothGrad(SmoothGradOptions { samples: 6, ..SmoothGradOptions::default() }),
        Method::IntegratedGradients(IntegratedGradientsOptions { steps: 8, ..IntegratedGradientsOptions::default() }),
        Method::MeaningfulPerturbation(MeaningfulPerturbationOptions { iterations: 20, mask_size: 8, ..MeaningfulPerturbationOptions::default() }),
    ];
    for method in methods {
        let a = explain(&model, &input, Some(5), &method);
        let b = explain(&model, &input, Some(5), &method);
        assert_eq!(a.map.len(), 32 * 32, "{method:?}");
        assert!(a.map.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)), "{method:?}: values outside [0, 1]");
        assert!(a.map.contains(&1.0), "{method:?}: not normalised");
        assert_eq!(a.map, b.map, "{method:?}: not deterministic");
        assert!(a.stats.forwards > 1, "{method:?}");
    }
}

#[test]
fn integrated_gradients_with_one_step_is_input_times_gradient() {
    // One Riemann step evaluates the gradient at the image itself: (x - black) * grad(x).
    let (model, input) = setup();
    let g = pollster::block_on(cam::input_gradients(&model, input.clone(), 5)).unwrap();
    let e = explain(&model, &input, Some(5), &Method::IntegratedGradients(IntegratedGradientsOptions { steps: 1, batch_size: 1 }));
    let n = 32 * 32;
    let norm = &model.manifest.normalisation;
    let attr: Vec<f32> = (0..3 * n).map(|i| g[i] * (input[i] + norm.mean[i / n] / norm.std[i / n])).collect();
    assert!(e.map.iter().zip(channel_abs_max_normalised(&attr)).all(|(m, r)| (m - r).abs() < 1e-4));
}

#[test]
fn sanity_check_randomisation_destroys_the_gradient_map_stage_by_stage() {
    let (_, input) = setup();
    let weights = std::fs::read(fixture("int8/vgg_tiny.safetensors")).unwrap();
    let int8 = load_int8_fixture();
    let r = pollster::block_on(scorecam::eval::sanity::cascading_randomisation(&int8, scorecam::models::Model::decode(&int8.manifest, &weights).unwrap().tensors, &[input], &[Method::Gradient], 0, &mut |_, _| {})).unwrap();
    // tiny VGG: 3 classifier layers + 4 convs, from the top
    assert_eq!(r.stages, ["original", "classifier.6", "classifier.3", "classifier.0", "features.8", "features.6", "features.3", "features.0"]);
    assert!((r.spearman[0][0] - 1.0).abs() < 1e-9);
    let last = *r.spearman[0].last().unwrap();
    assert!(last < 0.5, "the gradient map survives full randomisation: Spearman {last}");
    assert_eq!(r.maps[0].len(), r.stages.len());
}

fn load_int8_fixture() -> scorecam::models::Model {
    let manifest_path = fixture("int8/vgg_tiny.json");
    let manifest = scorecam::weights::Manifest::from_json(&std::fs::read_to_string(&manifest_path).unwrap(), "vgg_tiny.json").unwrap();
    let bytes = std::fs::read(fixture("int8/vgg_tiny.safetensors")).unwrap();
    scorecam::models::Model::load(manifest, &bytes, &backend().build_options()).unwrap()
}

