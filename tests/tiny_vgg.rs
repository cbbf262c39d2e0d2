//! Fast parity suite: a VGG-shaped model (torchvision layout, 32x32 input) against PyTorch
//! outputs checked in under tests/fixtures/vgg_tiny (made by scripts/reference.py fixture).

mod common;

use common::*;
use scorecam::backend::Backend;
use scorecam::cam::{self, Method, Progress, Reporter, ScoreCamOptions, ScoreCamVariant};
use scorecam::Error;

fn fixture(name: &str) -> std::path::PathBuf {
    repo().join("tests/fixtures/vgg_tiny").join(name)
}

fn setup() -> (scorecam::models::Model, scorecam::models::Model, Vec<f32>) {
    let (f32_model, int8_model, _) = f32_and_int8(&fixture("weights.safetensors"), arch("vgg_tiny"), &backend());
    (f32_model, int8_model, read_npy(&fixture("input.npy")).1)
}

#[test]
fn logits_and_target_activations_match_pytorch() {
    let (model, _, input) = setup();
    let f = pollster::block_on(cam::forward_image(&model, &input)).unwrap();
    let (_, logits) = read_npy(&fixture("logits.npy"));
    let (shape, acts) = read_npy(&fixture("activations.npy"));
    assert_eq!(shape, vec![1, 16, 8, 8]);
    assert_eq!([f.maps.channels, f.maps.height, f.maps.width], [16, 8, 8]);
    assert!(max_rel_diff(&f.logits, &logits) < 1e-4, "logits differ: {}", max_rel_diff(&f.logits, &logits));
    assert!(max_rel_diff(&f.maps.data, &acts) < 1e-4, "activations differ: {}", max_rel_diff(&f.maps.data, &acts));
}

#[test]
fn official_scorecam_matches_the_reference_implementation() {
    let (model, _, input) = setup();
    let exp = explain(&model, &input, None, &Method::default());
    let (_, reference) = read_npy(&fixture("official_scorecam.npy"));
    assert_eq!(exp.class, 5);
    let r = pearson(&exp.map, &reference);
    assert!(r >= 0.999, "Pearson {r}");
    // the fixture has 5 constant channels; the official algorithm skips exactly those
    assert_eq!(exp.stats.skipped_constant, 5);
    assert_eq!(exp.stats.forwards, 11);
    assert!(exp.map.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn gradcam_library_variant_matches_pytorch_grad_cam() {
    let (model, _, input) = setup();
    let method = Method::ScoreCam(ScoreCamOptions { variant: ScoreCamVariant::GradCamLibrary, batch_size: 4, top_k: None });
    let exp = explain(&model, &input, Some(5), &method);
    let (_, reference) = read_npy(&fixture("gradcamlib_scorecam.npy"));
    let r = pearson(&exp.map, &reference);
    assert!(r >= 0.999, "Pearson {r}");
    let sum: f32 = exp.channel_weights.iter().sum();
    assert!((sum - 1.0).abs() < 1e-5, "softmax weights sum to {sum}");
}

#[test]
fn batch_size_does_not_change_the_map() {
    let (model, _, input) = setup();
    let one = explain(&model, &input, None, &Method::ScoreCam(ScoreCamOptions { batch_size: 1, ..Default::default() }));
    let many = explain(&model, &input, None, &Method::ScoreCam(ScoreCamOptions { batch_size: 7, ..Default::default() }));
    assert!(max_rel_diff(&one.map, &many.map) < 1e-4);
    assert_eq!(one.stats.batches, 11);
    // On the CPU the first batch is one masked input (the first partial map after one forward),
    // then batches of 7: 1 + 7 + 3; on a GPU every batch is full: 7 + 4.
    assert_eq!(many.stats.batches, if model.binding_limit.is_none() { 3 } else { 2 });
}

/// Score-CAM's masked inputs are zero outside their mask's rectangle: the forward that computes
/// only the rows those reach (and Winograd only the tiles of the columns they reach; the rest
/// copied from the zero image's forward) gives the forward's logits, through every conv (the
/// first, then Winograd's) and max pool. Twice: the second reuses the zero image's record. Not
/// bit for bit: F(4x4, 3x3) leaves a rounding residual (about 1e-7 of a tile's values) in a
/// computed pixel that no input reaches, where the skip copies the zero image's exact values
/// (`cpu_conv::WINOGRAD_FLUSH`).
#[test]
fn masked_forward_skipping_regions_equals_the_forward() {
    use burn::tensor::{Tensor, TensorData};
    use scorecam::models::Region;
    let (model, _, input) = setup();
    let size = model.input_size();
    // Image 0 non-zero in rows 9..14 and columns 5..12 (not on a tile's edge: a Winograd tile
    // computes pixels no input reaches), image 1 nowhere, image 2 everywhere but its last row and
    // first column.
    let regions = [Region { rows: 9..14, cols: 5..12 }, Region::EMPTY, Region { rows: 0..size - 1, cols: 1..size }];
    let pixels: Vec<f32> = regions
        .iter()
        .flat_map(|r| input.chunks_exact(size).enumerate().flat_map(move |(i, row)| row.iter().enumerate().map(move |(x, v)| if r.rows.contains(&(i % size)) && r.cols.contains(&x) { *v } else { 0.0 })))
        .collect();
    let batch = || Tensor::<4>::from_data(TensorData::new(pixels.clone(), [regions.len(), 3, size, size]), &model.device);
    let want = model.network.forward(batch()).into_data().try_to_vec::<f32>().unwrap();
    let mut first = None;
    for _ in 0..2 {
        let got = model.network.forward_masked(batch(), &regions).into_data().try_to_vec::<f32>().unwrap();
        let diff = max_rel_diff(&got, &want);
        eprintln!("masked forward, regions skipped: logits differ by {diff:.2e} of the largest");
        assert!(diff <= 1e-6, "logits differ by {diff}");
        // The same every time.
        assert_eq!(first.get_or_insert_with(|| got.clone()), &got);
    }
}

/// What the page's worker pool does: the batches of one plan, scored in another order by another
/// copy of the model, then finished. The map and the stats are exactly one run's.
#[test]
fn batches_scored_in_any_order_on_another_copy_give_the_same_map() {
    let (model, copy, input) = setup();
    let (_, copy_b, _) = setup();
    // Natively on the CPU the batches are also scored by several threads at once (lanes).
    let lanes = |n: usize| f32_and_int8(&fixture("weights.safetensors"), arch("vgg_tiny"), &Backend { lanes: n, ..backend() }).1;
    let (sequential, threaded) = (lanes(1), lanes(3));
    for method in [
        Method::ScoreCam(ScoreCamOptions { batch_size: 3, ..Default::default() }),
        Method::ScoreCam(ScoreCamOptions { variant: ScoreCamVariant::GradCamLibrary, batch_size: 4, top_k: None }),
        Method::ScoreCam(ScoreCamOptions { batch_size: 2, top_k: Some(5), ..Default::default() }),
    ] {
        let one = explain(&copy, &input, Some(5), &method);
        let f = pollster::block_on(cam::forward_image(&copy, &input)).unwrap();
        let f_b = pollster::block_on(cam::forward_image(&copy_b, &input)).unwrap();
        let target = method.spec().target.unwrap();
        let lead = cam::MethodInput { model: &copy, forwarded: &f, class: 5, target };
        let helper = cam::MethodInput { model: &copy_b, forwarded: &f_b, class: 5, target };
        let plan = pollster::block_on(method.channel_scoring(&lead)).unwrap().unwrap();
        let mut scores = vec![f32::NAN; plan.channels()];
        for b in (0..plan.batch_count()).rev() {
            let input = if b % 2 == 0 { &lead } else { &helper };
            for (&k, v) in plan.batch(b).unwrap().iter().zip(pollster::block_on(plan.score(input, b)).unwrap()) {
                scores[k] = v;
            }
        }
        let output = pollster::block_on(plan.finish(&lead, scores)).unwrap();
        let shared = cam::assemble(&copy, &f, 5, Some(target), output);
        assert_eq!(shared.map, one.map, "{method:?}");
        assert_eq!(shared.channel_weights, one.channel_weights);
        assert_eq!(shared.stats, one.stats);
        for m in [&sequential, &threaded] {
            let e = explain(m, &input, Some(5), &method);
            assert_eq!((e.map, e.stats), (one.map.clone(), one.stats.clone()), "{} lanes", m.lanes);
        }
    }
    let f = pollster::block_on(cam::forward_image(&model, &input)).unwrap();
    let input = cam::MethodInput { model: &model, forwarded: &f, class: 5, target: cam::Target::Softmax };
    let plan = pollster::block_on(Method::default().channel_scoring(&input)).unwrap().unwrap();
    assert!(matches!(pollster::block_on(plan.finish(&input, vec![f32::NAN; plan.channels()])), Err(Error::Invalid(_))), "unscored batches are refused");
    assert!(plan.batch(plan.batch_count()).is_err());
    assert!(pollster::block_on(Method::GradCam.channel_scoring(&input)).is_none());
}

#[test]
fn int8_map_stays_close_to_f32() {
    let (f32_model, int8_model, input) = setup();
    let a = explain(&f32_model, &input, Some(5), &Method::default());
    let b = explain(&int8_model, &input, Some(5), &Method::default());
    let r = pearson(&a.map, &b.map);
    assert!(r >= 0.99, "int8 vs f32 Pearson {r}");
}

#[test]
fn faster_scorecam_scores_only_top_k_channels() {
    let (model, _, input) = setup();
    let exp = explain(&model, &input, None, &Method::ScoreCam(ScoreCamOptions { top_k: Some(4), ..Default::default() }));
    assert_eq!(exp.stats.forwards, 4);
    assert_eq!(exp.channel_weights.iter().filter(|w| **w != 0.0).count(), 4);
}

#[test]
fn progress_reports_and_cancellation_stops_between_batches() {
    let (model, _, input) = setup();
    let method = Method::ScoreCam(ScoreCamOptions { batch_size: 3, ..Default::default() });
    // Batches of 3, the first of one masked input on the CPU (where lanes may return the first
    // two in either order): cancelled once two are in.
    let (first, second) = if model.binding_limit.is_none() { (1, 3) } else { (3, 3) };
    let mut seen = Vec::new();
    let result = pollster::block_on(cam::explain(&model, &input, None, &method, &mut Reporter::new(&mut |p: &Progress| {
        seen.push((p.done, p.total));
        p.done < first + second
    })));
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!([first, second].contains(&seen[0].0), "{seen:?}");
    assert_eq!(seen[1], (first + second, 11));
}

#[test]
fn out_of_range_class_is_an_error_not_a_panic() {
    let (model, _, input) = setup();
    let r = pollster::block_on(cam::explain(&model, &input, Some(10), &Method::default(), &mut Reporter::silent()));
    assert!(matches!(r, Err(Error::Invalid(_))), "{r:?}");
    let r = pollster::block_on(cam::explain(&model, &input[1..], None, &Method::default(), &mut Reporter::silent()));
    assert!(matches!(r, Err(Error::Invalid(_))), "{r:?}");
}

#[test]
fn backend_reports_its_binding_limit_and_starts_once() {
    let name = std::env::var("SCORECAM_TEST_BACKEND").unwrap_or_else(|_| "flex".into());
    let first = Backend::start(&name).unwrap();
    let again = Backend::start(&name).unwrap();
    assert_eq!(first.binding_limit, again.binding_limit);
    match first.binding_limit {
        None => assert_eq!(name, "flex"),
        // Vulkan and WebGPU both guarantee at least 128 MiB; lavapipe reports exactly that.
        Some(limit) => assert!(limit >= scorecam::models::MAX_BINDING_BYTES, "{limit}"),
    }
    assert!(Backend::start("tpu").is_err());
}

#[test]
fn a_model_with_other_weights_keeps_device_and_binding_limit() {
    let (f32_model, mut int8_model, x) = setup();
    int8_model.binding_limit = Some(3 << 20);
    let twin = int8_model.with_tensors(source_tensors(&fixture("weights.safetensors"), arch("vgg_tiny"))).unwrap();
    assert_eq!(twin.binding_limit, Some(3 << 20));
    assert_eq!(twin.max_batch(), int8_model.max_batch());
    // the source weights: the f32 model's logits exactly
    let a = pollster::block_on(cam::forward_image(&twin, &x)).unwrap();
    let b = pollster::block_on(cam::forward_image(&f32_model, &x)).unwrap();
    assert_eq!(a.probabilities, b.probabilities);
}
