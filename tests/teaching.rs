//! The data behind the page's teaching views (docs/web.md, "Teaching views"), on the tiny VGG
//! fixture: each channel's Score-CAM score against the official algorithm in PyTorch, the masks
//! the scores come from, the deletion and insertion curves against `scorecam eval`'s, and the
//! randomisation stepper against `scorecam sanity`'s maps.

mod common;

use common::*;
use scorecam::cam::{self, Method, Reporter};
use scorecam::metrics::{self, CausalMode, Metric, ModelScorer, Sample};
use scorecam::session::{ExplainRequest, PreparedImage, Session};
use scorecam::weights::Manifest;

fn fixture(name: &str) -> std::path::PathBuf {
    repo().join("tests/fixtures/vgg_tiny").join(name)
}

/// A session as the page and the CLI make it: the int8 fixture and its own input image.
fn session() -> (Session, Vec<u8>) {
    let manifest = Manifest::from_json(&std::fs::read_to_string(fixture("int8/vgg_tiny.json")).unwrap(), "vgg_tiny.json").unwrap();
    let bytes = std::fs::read(fixture("int8/vgg_tiny.safetensors")).unwrap();
    let mut session = Session::new(backend());
    let model = session.load_model(manifest, &bytes).unwrap();
    let photo = scorecam::image_input::read(&fixture("input.png")).unwrap();
    session.set_image(pollster::block_on(PreparedImage::new(model, &photo)).unwrap()).unwrap();
    (session, bytes)
}

fn request(method: &str) -> ExplainRequest {
    ExplainRequest { method: method.into(), ..ExplainRequest::default() }
}

#[test]
fn channel_scores_match_the_official_algorithm() {
    let (model, _, _) = f32_and_int8(&fixture("weights.safetensors"), arch("vgg_tiny"), &backend());
    let input = read_npy(&fixture("input.npy")).1;
    let e = explain(&model, &input, None, &Method::default());
    let (_, reference) = read_npy(&fixture("official_channel_scores.npy"));
    assert_eq!(e.channels.len(), 16);
    for (c, r) in e.channels.iter().zip(&reference) {
        assert_eq!(c.constant, r.is_nan(), "channel {}", c.channel);
        match c.score {
            None => assert!(r.is_nan(), "channel {} not scored", c.channel),
            Some(s) => {
                assert!((s - r).abs() < 1e-5, "channel {}: {s} vs PyTorch {r}", c.channel);
                // the official weight is the score itself
                assert_eq!(c.weight, s);
            }
        }
    }
    // a gradient method has weights for every channel and no scores
    let g = explain(&model, &input, Some(3), &Method::with_options("gradcam", &Default::default()).unwrap());
    assert!(g.channels.len() == 16 && g.channels.iter().all(|c| c.score.is_none()));
    assert_eq!(g.channels.iter().map(|c| c.weight).collect::<Vec<_>>(), g.channel_weights);
}

#[test]
fn a_channels_mask_gives_its_score() {
    let (session, _) = session();
    let explainer = session.explainer(&request("scorecam")).unwrap();
    let (e, summary) = pollster::block_on(explainer.run(&mut Reporter::silent())).unwrap();
    assert_eq!(summary.channels, e.channels);
    let scored = e.channels.iter().find(|c| c.score.is_some()).unwrap();
    let view = pollster::block_on(explainer.channel_view(scored.channel)).unwrap();
    let size = explainer.model.input_size();
    assert_eq!((view.mask.len(), view.masked_rgb.len()), (size * size, 3 * size * size));
    let (lo, hi) = view.mask.iter().fold((f32::MAX, f32::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
    assert!(lo == 0.0 && (hi - 1.0).abs() < 1e-6, "min-max normalised: {lo}..{hi}");
    // the network, asked about the input masked by this mask, gives the channel's score
    let masked: Vec<f32> = explainer.image.image.chunks_exact(size * size).flat_map(|plane| plane.iter().zip(&view.mask).map(|(x, m)| x * m)).collect();
    let f = pollster::block_on(cam::forward_image(&explainer.model, &masked)).unwrap();
    let p = f.probabilities[e.class];
    assert!((p - scored.score.unwrap()).abs() < 1e-5, "{p} vs {}", scored.score.unwrap());
    // a constant map masks nothing in: an all-zero mask
    let constant = e.channels.iter().find(|c| c.constant).unwrap();
    assert!(pollster::block_on(explainer.channel_view(constant.channel)).unwrap().mask.iter().all(|v| *v == 0.0));
    assert!(pollster::block_on(explainer.channel_view(16)).is_err());
}

#[test]
fn curves_in_pieces_equal_scorecam_evals() {
    let (session, _) = session();
    let explainer = session.explainer(&request("scorecam")).unwrap();
    let (e, _) = pollster::block_on(explainer.run(&mut Reporter::silent())).unwrap();
    let image = &explainer.image.image;
    for (metric, mode) in [(Metric::Deletion, CausalMode::Deletion), (Metric::Insertion, CausalMode::Insertion)] {
        let sample = Sample { image, size: e.size, map: &e.map, probability: e.class_probability, boxes: &[] };
        let mut scorer = ModelScorer::new(&explainer.model, e.class, 16);
        let eval = pollster::block_on(metric.evaluate(&sample, &mut scorer)).unwrap().unwrap();
        let reference = eval.curve.unwrap();
        let curve = explainer.causal_curve(&e.map, mode).unwrap();
        assert_eq!(curve.point_count(), reference.len());
        // the page asks for a few points at a time, from several workers
        let mut points = Vec::new();
        for (a, b) in [(0, 1), (1, 3), (3, 100)] {
            points.extend(pollster::block_on(explainer.curve_points(&curve, a..b)).unwrap());
        }
        let diff = points.iter().zip(&reference).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(diff < 1e-6, "{metric:?}: max diff {diff}");
        assert!((metrics::auc(&points) - eval.values[0].1).abs() < 1e-6);
    }
    assert!(explainer.causal_curve(&e.map[1..], CausalMode::Deletion).is_err());
    let d = pollster::block_on(explainer.drop_increase(&e.map, metrics::Protocol::KeepTopHalf)).unwrap();
    assert_eq!(metrics::average_drop_increase(d.probability, d.masked_probability), (d.drop, d.increase));
    assert_eq!(d.probability, e.class_probability);
}

#[test]
fn the_randomisation_stepper_gives_scorecam_sanitys_maps() {
    let (session, bytes) = session();
    let explainer = session.explainer(&request("scorecam")).unwrap();
    let model = explainer.model.clone();
    let image = explainer.image.image.clone();
    let r = pollster::block_on(scorecam::eval::sanity::cascading_randomisation(&model, scorecam::models::Model::decode(&model.manifest, &bytes).unwrap().tensors, &[image], &[Method::default()], 7, &mut |_, _| {})).unwrap();
    for stage in [0, 2, 7] {
        let (s, e, summary) = pollster::block_on(explainer.randomised(&bytes, stage, 7, &mut Reporter::silent())).unwrap();
        assert_eq!(s.groups.len() + 1, r.stages.len());
        assert_eq!(s.stage, stage);
        if stage > 0 {
            assert_eq!(s.groups[stage - 1], r.stages[stage]);
        }
        assert_eq!(e.map, r.maps[0][stage], "stage {stage}");
        assert_eq!(summary.explained.class, explainer.image.probabilities.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0);
    }
    assert!(pollster::block_on(explainer.randomised(&bytes, 8, 7, &mut Reporter::silent())).is_err());
    assert!(pollster::block_on(explainer.randomised(&bytes[1..], 1, 7, &mut Reporter::silent())).is_err());
}
