//! Every CAM method against the library that defines it, on the real EfficientNet-Lite0 (in CI:
//! `.data/efficientnet_lite0.pth`, from scripts/setup.sh) and on VGG16 with seed-0 weights
//! (`#[ignore]`d: `.data/vgg16_random_seed0.pth`, 528 MB, from `python scripts/reference.py
//! weights .data`):
//!
//!   cargo test --release --test methods                 # Lite0 and the tiny model
//!   cargo test --release --test methods -- --ignored    # VGG16
//!
//! The references are tests/fixtures/cams/<model>/ (scripts/cam_reference.py: pytorch-grad-cam
//! 1.5.7, torch-cam 0.5.0, Group-CAM's official code), the same layer, image (chelsea) and class
//! (meta.json's).
//! Pearson >= 0.999, >= 0.99 for the methods that draw noise (which the fixtures draw from our
//! generator, so they agree far better). Then, on the tiny VGG of tests/tiny_vgg.rs, every method
//! of the registry: a map of the right size in [0, 1], its passes as its spec says, and the
//! methods planned as batches giving the same map however the batches are scored.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use common::*;
use scorecam::backend::Backend;
use scorecam::cam::{self, Finish, Method, MethodKind, OptionValues, Reporter, Target, METHODS};
use scorecam::models::Model;

fn data_file(name: &str) -> PathBuf {
    let dir = std::env::var_os("SCORECAM_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join(".data"));
    let p = dir.join(name);
    assert!(p.exists(), "{} is missing: see the header of tests/methods.rs", p.display());
    p
}

struct Subject {
    key: &'static str,
    model: Model,
    input: Vec<f32>,
    meta: serde_json::Value,
    /// The class explained (meta.json's: 285 for Lite0, for the random VGG16 the first of its
    /// top classes whose maps are not all zero).
    class: usize,
}

/// The f32 model (the references are f32 PyTorch's) and the shared input.
fn subject(key: &'static str, arch_name: &str, weights: &str) -> Subject {
    let model = f32_and_int8(&data_file(weights), arch(arch_name), &backend()).0;
    let input = read_npy(&shared().join("reference/inputs/chelsea_imagenet_norm.npy")).1;
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(repo().join("tests/fixtures/cams").join(key).join("meta.json")).unwrap()).unwrap();
    let class = meta["class"].as_u64().unwrap() as usize;
    Subject { key, model, input, meta, class }
}

fn lite0() -> &'static Subject {
    static S: OnceLock<Subject> = OnceLock::new();
    S.get_or_init(|| subject("efficientnet_lite0", "efficientnet_lite0", "efficientnet_lite0.pth"))
}

fn vgg16() -> &'static Subject {
    static S: OnceLock<Subject> = OnceLock::new();
    S.get_or_init(|| subject("vgg16_random_seed0", "vgg16", "vgg16_random_seed0.pth"))
}

/// The reference map at input resolution: pytorch-grad-cam's and Group-CAM's as stored (uint16),
/// torch-cam's (at the target layer's resolution) upsampled as its users do, bilinear with
/// half-pixel centres, and scaled to [0, 1] (our finish: the same map, Pearson unchanged).
fn reference(s: &Subject, name: &str, finish: Finish) -> Vec<f32> {
    let path = repo().join("tests/fixtures/cams").join(s.key).join(format!("{name}.npy"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    if s.meta["maps"][name]["resolution"] == "input" {
        return npy.into_vec::<u16>().unwrap().into_iter().map(|v| v as f32 / 65535.0).collect();
    }
    let low = npy.into_vec::<f32>().unwrap();
    cam::finish_map(low, shape[0], shape[1], finish, s.model.input_size())
}

/// Our method for a fixture's name: `method[+option][@target]`, with the options meta.json lists.
fn method_of(s: &Subject, name: &str) -> (Method, Option<Target>) {
    let (base, target) = name.split_once('@').map_or((name, None), |(m, t)| (m, Some(Target::from_name(t).unwrap())));
    let method = base.split('+').next().unwrap();
    let options: OptionValues = s.meta["maps"][name]["options"].as_object().map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_f64().unwrap())).collect()).unwrap_or_default();
    (Method::with_options(method, &options).unwrap(), target)
}

fn check(s: &Subject, name: &str, min_pearson: f64) {
    if let Some(why) = s.meta.get("skipped").and_then(|k| k.get(name)) {
        println!("{} {name}: no reference ({why})", s.key);
        return;
    }
    assert!(s.meta["maps"].get(name).is_some(), "{}: no fixture {name}: run scripts/cam_reference.py", s.key);
    let (method, target) = method_of(s, name);
    let f = pollster::block_on(cam::forward_image(&s.model, &s.input)).unwrap();
    let e = pollster::block_on(cam::explain_target(&s.model, &f, Some(s.class), target, &method, &mut Reporter::silent())).unwrap();
    let finish = if method == Method::Cam { Finish::SignedNormaliseThenUpsample } else { Finish::NormaliseThenUpsample };
    let theirs = reference(s, name, finish);
    let constant = |m: &[f32]| m.iter().all(|v| *v == m[0]);
    if constant(&theirs) {
        // an all-zero map (the ReLU of a negative sum, common with random VGG16 weights)
        println!("{} {name}: the reference is constant; ours {}", s.key, if constant(&e.map) { "too" } else { "is not" });
        assert!(constant(&e.map) || e.map.iter().all(|v| *v < 1e-3), "{} {name}: the reference is constant, ours is not", s.key);
        return;
    }
    let r = pearson(&e.map, &theirs);
    let diff = e.map.iter().zip(&theirs).fold(0f32, |d, (a, b)| d.max((a - b).abs()));
    println!("{} {name} ({}): Pearson {r:.6}, max |diff| {diff:.2e}, {:?}", s.key, s.meta["maps"][name]["library"], e.stats);
    assert!(r >= min_pearson, "{} {name}: Pearson {r} < {min_pearson}", s.key);
}

const DETERMINISTIC: f64 = 0.999;
const RANDOM: f64 = 0.99;

macro_rules! parity {
    ($($lite:ident, $vgg:ident, $name:expr, $min:expr;)*) => {$(
        #[test]
        fn $lite() {
            check(lite0(), $name, $min);
        }

        #[test]
        #[ignore]
        fn $vgg() {
            check(vgg16(), $name, $min);
        }
    )*};
}

parity! {
    lite0_hirescam, vgg16_hirescam, "hirescam", DETERMINISTIC;
    lite0_gradcam_elementwise, vgg16_gradcam_elementwise, "gradcamelementwise", DETERMINISTIC;
    lite0_xgradcam, vgg16_xgradcam, "xgradcam", DETERMINISTIC;
    lite0_layercam, vgg16_layercam, "layercam", DETERMINISTIC;
    lite0_eigencam, vgg16_eigencam, "eigencam", DETERMINISTIC;
    lite0_eigengradcam, vgg16_eigengradcam, "eigengradcam", DETERMINISTIC;
    lite0_kpcacam, vgg16_kpcacam, "kpcacam", DETERMINISTIC;
    lite0_fem, vgg16_fem, "fem", DETERMINISTIC;
    lite0_ablationcam, vgg16_ablationcam, "ablationcam", DETERMINISTIC;
    lite0_shapleycam, vgg16_shapleycam, "shapleycam", DETERMINISTIC;
    lite0_shapleycam_softmax, vgg16_shapleycam_softmax, "shapleycam@softmax", DETERMINISTIC;
    lite0_finercam, vgg16_finercam, "finercam", DETERMINISTIC;
    lite0_finercam_torchcam, vgg16_finercam_torchcam, "finercam-torchcam", DETERMINISTIC;
    lite0_fullgrad, vgg16_fullgrad, "fullgrad", DETERMINISTIC;
    lite0_gradcam_eigen_smooth, vgg16_gradcam_eigen_smooth, "gradcam+eigen_smooth", DETERMINISTIC;
    lite0_gradcam_aug_smooth, vgg16_gradcam_aug_smooth, "gradcam+aug_smooth", DETERMINISTIC;
    lite0_groupcam, vgg16_groupcam, "groupcam", DETERMINISTIC;
    lite0_iscam, vgg16_iscam, "iscam", DETERMINISTIC;
    lite0_sscam, vgg16_sscam, "sscam", RANDOM;
    lite0_smoothgradcampp, vgg16_smoothgradcampp, "smoothgradcampp", RANDOM;
}

#[test]
fn lite0_cam() {
    check(lite0(), "cam", DETERMINISTIC);
}

/// VGG16's head is no pooled linear layer: CAM says so instead of drawing something.
#[test]
#[ignore]
fn vgg16_cam_is_refused_with_its_reason() {
    let s = vgg16();
    let e = pollster::block_on(cam::explain(&s.model, &s.input, Some(s.class), &Method::Cam, &mut Reporter::silent())).unwrap_err().to_string();
    assert!(e.contains("global average pooling followed by one linear layer") && e.contains("three linear layers"), "{e}");
}

/// The noise SS-CAM and Smooth Grad-CAM++ draw is the script's, value for value.
#[test]
fn the_noise_is_the_fixture_scripts() {
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(repo().join("tests/fixtures/cams/efficientnet_lite0/meta.json")).unwrap()).unwrap();
    let theirs: Vec<f32> = meta["noise_check"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    let ours = cam::normal_noise(0, 1, 0, theirs.len());
    for (a, b) in ours.iter().zip(&theirs) {
        assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{ours:?} vs {theirs:?}");
    }
}

// --- every method on the tiny model -----------------------------------------------------

fn tiny() -> (Model, Vec<f32>) {
    let dir = repo().join("tests/fixtures/vgg_tiny");
    let (_, int8, _) = f32_and_int8(&dir.join("weights.safetensors"), arch("vgg_tiny"), &backend());
    (int8, read_npy(&dir.join("input.npy")).1)
}

/// Small options for the methods whose defaults take thousands of passes.
fn quick(name: &str) -> OptionValues {
    let pairs: &[(&str, f64)] = match name {
        "sscam" | "iscam" => &[("num_samples", 2.0), ("batch_size", 5.0)],
        "rise" => &[("masks", 16.0)],
        "smoothgrad" => &[("samples", 3.0)],
        "integrated-gradients" => &[("steps", 3.0)],
        "mask" => &[("iterations", 3.0), ("mask_size", 4.0)],
        "groupcam" => &[("groups", 4.0), ("batch_size", 3.0)],
        "ablationcam" => &[("batch_size", 5.0)],
        _ => &[],
    };
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn every_method_gives_a_unit_map_at_the_cost_its_spec_says() {
    let (model, input) = tiny();
    let f = pollster::block_on(cam::forward_image(&model, &input)).unwrap();
    let channels = f.maps.channels;
    for spec in METHODS {
        let options = quick(spec.name);
        let method = spec.with_options(&options).unwrap();
        let result = pollster::block_on(cam::explain_forwarded(&model, &f, Some(5), &method, &mut Reporter::silent()));
        if spec.name == "cam" {
            let e = result.unwrap_err().to_string();
            assert!(e.contains("global average pooling"), "{e}");
            continue;
        }
        let e = result.unwrap_or_else(|err| panic!("{}: {err}", spec.name));
        assert_eq!(e.map.len(), 32 * 32, "{}", spec.name);
        assert!(e.map.iter().all(|v| v.is_finite() && (0.0..=1.0 + 1e-6).contains(v)), "{}", spec.name);
        assert_eq!(e.target, spec.target, "{}", spec.name);
        let passes = spec.passes(channels, &options);
        // Score-CAM skips constant maps, and scores them in one zero-input forward where it
        // does not: at most what the spec says, plus that forward.
        assert!(e.stats.forwards <= passes.forwards + 1 && e.stats.head_forwards <= passes.head_forwards + 2 && e.stats.backwards <= passes.backwards + 1, "{}: {:?} vs {passes:?}", spec.name, e.stats);
        // (ShapleyCAM's Hessian term runs only for a score through the softmax.)
        if spec.kind == MethodKind::Cam && !spec.name.starts_with("scorecam") && spec.name != "shapleycam" {
            assert_eq!((e.stats.forwards, e.stats.head_forwards, e.stats.backwards), (passes.forwards, passes.head_forwards, passes.backwards), "{}", spec.name);
        }
    }
}

/// Every score, on every method that takes one; the class-agnostic ones refuse one.
#[test]
fn targets_change_what_is_explained() {
    let (model, input) = tiny();
    let f = pollster::block_on(cam::forward_image(&model, &input)).unwrap();
    let run = |name: &str, target: Option<Target>| pollster::block_on(cam::explain_target(&model, &f, Some(5), target, &Method::with_options(name, &quick(name)).unwrap(), &mut Reporter::silent()));
    for name in ["gradcam", "scorecam", "shapleycam", "ablationcam", "gradient"] {
        let runs: Vec<_> = Target::ALL.iter().map(|t| run(name, Some(*t)).unwrap()).collect();
        assert!(runs.iter().all(|e| e.map.iter().all(|v| v.is_finite())), "{name}");
        // (the tiny model's maps can be all zero: compare what they are made of)
        let made_of = |e: &cam::Explanation| if e.channel_weights.is_empty() { e.map.clone() } else { e.channel_weights.clone() };
        assert!(made_of(&runs[0]) != made_of(&runs[1]), "{name}: the probability and the logit explain differently");
    }
    // ShapleyCAM with the logit is Grad-CAM (the head's second derivative is zero)
    assert_eq!(run("shapleycam", None).unwrap().map, run("gradcam", None).unwrap().map);
    assert!(run("eigencam", Some(Target::Logit)).unwrap_err().to_string().contains("takes no target"));
}

/// SS-CAM, IS-CAM, Group-CAM and Ablation-CAM as the page's workers and the CLI's lanes run
/// them: batches scored in another order, on another copy of the model, or on several threads,
/// give one run's map.
#[test]
fn the_score_cam_family_gives_one_map_however_its_batches_are_scored() {
    let (model, input) = tiny();
    let (copy, _) = tiny();
    let dir = repo().join("tests/fixtures/vgg_tiny");
    let threaded = f32_and_int8(&dir.join("weights.safetensors"), arch("vgg_tiny"), &Backend { lanes: 3, ..backend() }).1;
    for name in ["sscam", "iscam", "groupcam", "ablationcam"] {
        let method = Method::with_options(name, &quick(name)).unwrap();
        let target = method.spec().target.unwrap();
        let one = explain(&model, &input, Some(5), &method);
        let f = pollster::block_on(cam::forward_image(&model, &input)).unwrap();
        let f_b = pollster::block_on(cam::forward_image(&copy, &input)).unwrap();
        let lead = cam::MethodInput { model: &model, forwarded: &f, class: 5, target };
        let helper = cam::MethodInput { model: &copy, forwarded: &f_b, class: 5, target };
        let plan = pollster::block_on(method.channel_scoring(&lead)).unwrap().unwrap();
        assert!(plan.batch_count() > 1, "{name}");
        let mut scores = vec![f32::NAN; plan.channels()];
        for b in (0..plan.batch_count()).rev() {
            let input = if b % 2 == 0 { &lead } else { &helper };
            for (&k, v) in plan.batch(b).unwrap().iter().zip(pollster::block_on(plan.score(input, b)).unwrap()) {
                scores[k] = v;
            }
        }
        let shared = cam::assemble(&model, &f, 5, Some(target), pollster::block_on(plan.finish(&lead, scores)).unwrap());
        assert_eq!(shared.map, one.map, "{name}");
        assert_eq!(shared.stats, one.stats, "{name}");
        assert_eq!(explain(&threaded, &input, Some(5), &method).map, one.map, "{name} in lanes");
    }
}

/// The compare grid's cell: the method's map checked by the metrics code, cancellable.
#[test]
fn a_comparison_carries_the_methods_map_and_the_eval_metrics() {
    use scorecam::session::{ExplainRequest, PreparedImage, Session};
    let dir = repo().join("tests/fixtures/vgg_tiny");
    let (_, _, (manifest, bytes)) = f32_and_int8(&dir.join("weights.safetensors"), arch("vgg_tiny"), &backend());
    let mut session = Session::new(backend());
    let model = session.load_model(manifest, &bytes).unwrap();
    let img = scorecam::image_input::read(&dir.join("input.png")).unwrap();
    session.set_image(pollster::block_on(PreparedImage::new(model, &img)).unwrap()).unwrap();
    let request = ExplainRequest { class: Some(5), method: "gradcam".into(), target: Some(Target::Softmax), ..Default::default() };
    let explainer = session.explainer(&request).unwrap();
    let (e, c) = pollster::block_on(explainer.compare(&mut Reporter::silent())).unwrap();
    assert_eq!((c.method.as_str(), c.target, c.class), ("gradcam", Some(Target::Softmax), 5));
    assert_eq!((c.forwards, c.head_forwards, c.backwards), (1, 1, 1));
    // the metrics of `scorecam eval`, on the same map
    let m = scorecam::metrics::Sample { image: &explainer.image.image, size: 32, map: &e.map, probability: e.class_probability, boxes: &[] };
    let mut scorer = scorecam::metrics::ModelScorer::new(&explainer.model, 5, 16);
    for (metric, value) in [("deletion", c.deletion_auc), ("insertion", c.insertion_auc), ("ad-ai-library", c.average_drop)] {
        let score = pollster::block_on(scorecam::metrics::Metric::from_name(metric).unwrap().evaluate(&m, &mut scorer)).unwrap().unwrap();
        assert!((score.values[0].1 - value).abs() < 1e-9, "{metric}: {} vs {value}", score.values[0].1);
    }
    assert_eq!(c.curve_points, 6, "1024 pixels, 224 a step");
    // The same map again with a cache holding its curves: only Average Drop's pass, the same AUCs.
    let mut cache = scorecam::session::CurveCache::default();
    let step = scorecam::metrics::Metric::CAUSAL_STEP;
    let (_, first) = pollster::block_on(explainer.compare_with(&mut Reporter::silent(), step, &mut cache)).unwrap();
    let (_, again) = pollster::block_on(explainer.compare_with(&mut Reporter::silent(), step, &mut cache)).unwrap();
    assert_eq!((first.deletion_auc, first.insertion_auc), (c.deletion_auc, c.insertion_auc));
    assert_eq!((again.deletion_auc, again.insertion_auc, again.metric_forwards), (c.deletion_auc, c.insertion_auc, 1));
    // Twice the step: every other point of eval's curve (and the last), fewer passes.
    let run = pollster::block_on(explainer.compare_method(&mut Reporter::silent())).unwrap();
    let (full_keys, coarse_keys) = (explainer.curve_keys(&run, step).unwrap(), explainer.curve_keys(&run, 2 * step).unwrap());
    assert_ne!(full_keys, coarse_keys);
    let coarse = pollster::block_on(explainer.compare_metrics(&run, 2 * step, &mut cache, &mut Reporter::silent())).unwrap();
    assert_eq!(coarse.curve_points, 4);
    let full = cache.get(&full_keys[0]).unwrap();
    let points = cache.get(&coarse_keys[0]).unwrap();
    assert_eq!(points, [full[0], full[2], full[4], full[5]]);
    assert!((coarse.deletion_auc - scorecam::metrics::auc(points)).abs() < 1e-12);
    assert!(explainer.curve_keys(&run, 0).is_err());
    let mut stop = |_: &cam::Progress<'_>| false;
    assert!(matches!(pollster::block_on(explainer.compare(&mut Reporter::new(&mut stop))), Err(scorecam::Error::Cancelled)));
    // a class-agnostic method refuses a target, before any work
    let refused = session.explainer(&ExplainRequest { method: "eigencam".into(), target: Some(Target::Logit), ..Default::default() });
    assert!(refused.is_err());
}
