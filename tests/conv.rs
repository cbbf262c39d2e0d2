//! Convolutions as matrix products (src/models/conv.rs), int8 weights on the device, and the
//! kernel probe (src/models/probe.rs), on the suite's backend (flex, or $SCORECAM_TEST_BACKEND:
//! wgpu on lavapipe in scripts/test.sh).

mod common;

use burn::tensor::{Tensor, TensorData};
use common::*;
use scorecam::cam::{self, Method, Reporter};
use scorecam::models::{BuildOptions, Conv, ConvChoice, ConvKernel, ConvShape, DeviceWeights, Model, Network, Padding};
use scorecam::session::Session;
use scorecam::weights::{dequantize_rows, quantize_rows, HostTensor, NamedTensors};

fn pattern(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// Every distinct convolution of VGG16 (3x3, padding 1, at each resolution) and of
/// EfficientNet-Lite0 (TF 'SAME': the stem, 1x1 expansions and projections, at each stage's
/// size; the grouped depthwise ones always run direct).
fn full_size_shapes() -> Vec<ConvShape> {
    let pad1 = Padding::Explicit([1; 4]);
    let mut shapes: Vec<ConvShape> = [(3, 64, 224), (64, 64, 224), (64, 128, 112), (128, 128, 112), (128, 256, 56), (256, 256, 56), (256, 512, 28), (512, 512, 28), (512, 512, 14)]
        .into_iter()
        .map(|(cin, cout, hw)| ConvShape::new(cin, cout, 3, 1, 1, pad1, [hw, hw]))
        .collect();
    let same = Padding::Same;
    shapes.push(ConvShape::new(3, 32, 3, 2, 1, same, [224, 224]));
    for (cin, cout, hw) in [(32, 16, 112), (16, 96, 112), (96, 24, 56), (24, 144, 56), (144, 40, 28), (240, 80, 14), (480, 112, 14), (672, 192, 7), (1152, 320, 7), (320, 1280, 7)] {
        shapes.push(ConvShape::new(cin, cout, 1, 1, 1, same, [hw, hw]));
    }
    shapes
}

fn layer(shape: ConvShape, weights: DeviceWeights, kernel: ConvKernel, w: &[f32], b: &[f32], device: &burn::tensor::Device) -> Conv {
    let wt = HostTensor::new(vec![shape.cout, shape.cin / shape.groups, shape.kernel, shape.kernel], w.to_vec());
    let options = BuildOptions { device: device.clone(), weights, binding_limit: Some(128 << 20), lanes: 1 };
    let mut conv = Conv::new(wt, HostTensor::new(vec![shape.cout], b.to_vec()), shape, scorecam::models::Activation::None, &options);
    conv.set_kernel(kernel);
    conv
}

fn run(conv: &Conv, x: &Tensor<4>) -> Vec<f32> {
    pollster::block_on(cam::read_f32(conv.forward(x.clone()))).unwrap()
}

/// The matmul and Burn's own kernel agree on every full-size layer shape of both models
/// (max |difference| / max |direct| <= 1e-5), with weights as the int8 file gives them. On a GPU
/// backend int8 weights on the device are checked too. On lavapipe each shape takes from
/// seconds to minutes, mostly autotuning, so there the suite checks one shape of each kind
/// (VGG16's first and last convolutions, Lite0's strided stem, a wide and a deep 1x1) unless
/// SCORECAM_CONV_SHAPES=all (docs/benchmarks.md has that run's results).
#[test]
fn matmul_equals_direct_on_every_full_size_layer() {
    let backend = backend();
    let device = &backend.device;
    let all = backend.name == "cpu" || std::env::var("SCORECAM_CONV_SHAPES").is_ok_and(|v| v == "all");
    let sample = |s: &ConvShape| [(3, 64, 3), (512, 512, 3), (3, 32, 3), (16, 96, 1), (320, 1280, 1)].contains(&(s.cin, s.cout, s.kernel));
    for shape in full_size_shapes().into_iter().filter(|s| all || sample(s)) {
        let w0 = pattern(shape.cout * shape.depth(), 1);
        let q = quantize_rows(&w0, shape.cout);
        let w = dequantize_rows(&q.values, &q.scales);
        let b = pattern(shape.cout, 2);
        let [h, wd] = shape.input;
        let x: Tensor<4> = Tensor::from_data(TensorData::new(pattern(shape.cin * h * wd, 3), [1, shape.cin, h, wd]), device);
        let direct = run(&layer(shape, DeviceWeights::F32, ConvKernel::Direct, &w, &b, device), &x);
        let matmul = run(&layer(shape, DeviceWeights::F32, ConvKernel::Matmul, &w, &b, device), &x);
        assert_eq!(direct.len(), shape.cout * shape.output()[0] * shape.output()[1]);
        let diff = max_rel_diff(&matmul, &direct);
        eprintln!("{}x{} {}->{} at {}: matmul vs direct {diff:.2e}", shape.kernel, shape.kernel, shape.cin, shape.cout, h);
        assert!(diff <= 1e-5, "{shape:?}: {diff}");
        if backend.name != "cpu" && shape.depth() % 4 == 0 {
            let int8 = run(&layer(shape, DeviceWeights::Int8, ConvKernel::Matmul, &w, &b, device), &x);
            let diff = max_rel_diff(&int8, &direct);
            assert!(diff <= 1e-5, "int8 on the device, {shape:?}: {diff}");
        }
    }
}

/// A batch larger than one im2col chunk (chunks are cut by the binding limit) gives each image
/// what it gives alone.
#[test]
fn chunked_im2col_equals_one_image_at_a_time() {
    let backend = backend();
    let device = &backend.device;
    let shape = ConvShape::new(64, 64, 3, 1, 1, Padding::Explicit([1; 4]), [56, 56]);
    let (w, b) = (pattern(shape.cout * shape.depth(), 4), pattern(shape.cout, 5));
    // 64*9*56*56*4 bytes = 7.2 MB of columns per image: a 16 MiB limit makes chunks of 2.
    assert_eq!((16 << 20) / shape.columns_bytes(), 2);
    let wt = HostTensor::new(vec![64, 64, 3, 3], w.clone());
    let options = BuildOptions { device: device.clone(), weights: DeviceWeights::F32, binding_limit: Some(16 << 20), lanes: 1 };
    let mut conv = Conv::new(wt, HostTensor::new(vec![64], b.clone()), shape, scorecam::models::Activation::None, &options);
    conv.set_kernel(ConvKernel::Matmul);
    let images = pattern(5 * 64 * 56 * 56, 6);
    let x: Tensor<4> = Tensor::from_data(TensorData::new(images.clone(), [5, 64, 56, 56]), device);
    let batched = run(&conv, &x);
    let per_image = 64 * 56 * 56;
    for i in 0..5 {
        let one: Tensor<4> = Tensor::from_data(TensorData::new(images[i * per_image..(i + 1) * per_image].to_vec(), [1, 64, 56, 56]), device);
        let alone = run(&conv, &one);
        assert!(max_rel_diff(&batched[i * per_image..(i + 1) * per_image], &alone) <= 1e-6, "image {i}");
    }
}

/// VGG16's weights in int8 on the device take at most 150 MB (528 MB in f32): every layer but
/// the first convolution (27 inputs per output, no scale block fits) is int8.
#[test]
fn vgg16_int8_weights_fit_in_150_mb() {
    let cfg = scorecam::models::VggConfig::vgg16();
    let mut t = NamedTensors::new("zeros");
    let (mut cin, mut index) = (3, 0);
    for layer in &cfg.layers {
        match layer {
            Some(cout) => {
                t.insert(format!("features.{index}.weight"), HostTensor::new(vec![*cout, cin, 3, 3], vec![0.0; cout * cin * 9]));
                t.insert(format!("features.{index}.bias"), HostTensor::new(vec![*cout], vec![0.0; *cout]));
                cin = *cout;
                index += 2;
            }
            None => index += 1,
        }
    }
    for (i, (din, dout)) in [(25088, 4096), (4096, 4096), (4096, 1000)].into_iter().enumerate() {
        t.insert(format!("classifier.{}.weight", i * 3), HostTensor::new(vec![dout, din], vec![0.0; dout * din]));
        t.insert(format!("classifier.{}.bias", i * 3), HostTensor::new(vec![dout], vec![0.0; dout]));
    }
    let arch = scorecam::models::architecture("vgg16").unwrap();
    let options = |weights, binding_limit| BuildOptions { weights, binding_limit, ..BuildOptions::cpu() };
    let int8 = Network::load(arch, None, t.clone(), &options(DeviceWeights::Int8, Some(128 << 20))).unwrap();
    let linear = Network::load(arch, None, t.clone(), &options(DeviceWeights::Int8Linear, None)).unwrap();
    let f32 = Network::load(arch, None, t, &BuildOptions::cpu()).unwrap();
    let (bytes_int8, bytes_f32, bytes_linear) = (int8.weight_bytes_on_device(), f32.weight_bytes_on_device(), linear.weight_bytes_on_device());
    eprintln!("VGG16 weights on the device: int8 {bytes_int8} bytes, f32 {bytes_f32} bytes, int8 linear layers {bytes_linear} bytes");
    assert_eq!(bytes_f32, 4 * 138_357_544);
    assert!(bytes_int8 <= 150_000_000, "{bytes_int8}");
    assert!(bytes_linear <= 185_000_000, "{bytes_linear}");
    assert_eq!(linear.parameters(), 138_357_544);
    assert_eq!(int8.convs().iter().filter(|c| c.is_int8()).count(), 12);
}

fn tiny_session(weights: DeviceWeights) -> Session {
    let mut backend = backend();
    backend.weights = weights;
    let mut session = Session::new(backend);
    session.load_model_file(&repo().join("tests/fixtures/vgg_tiny/int8/vgg_tiny.json"), &Default::default()).unwrap();
    session
}

fn scorecam_map(model: &Model) -> Vec<f32> {
    let (_, input) = read_npy(&repo().join("tests/fixtures/vgg_tiny/input.npy"));
    let method = Method::ScoreCam(Default::default());
    pollster::block_on(cam::explain(model, &input, None, &method, &mut Reporter::silent())).unwrap().map
}

/// int8 weights on a GPU give the f32 model's logits and Score-CAM map: the values are the
/// file's either way, dequantised in the kernel instead of on the host.
#[test]
fn int8_on_the_device_matches_f32() {
    if backend().name == "cpu" {
        eprintln!("skipped: int8 on the device is for GPU backends (flex computes in f32)");
        return;
    }
    let int8 = tiny_session(DeviceWeights::Int8).require_model().unwrap();
    let f32 = tiny_session(DeviceWeights::F32).require_model().unwrap();
    assert!(int8.weight_bytes_on_device() < f32.weight_bytes_on_device() / 2);
    let (_, input) = read_npy(&repo().join("tests/fixtures/vgg_tiny/input.npy"));
    let logits = |m: &Model| pollster::block_on(cam::read_f32(m.network.forward(Tensor::from_data(TensorData::new(input.clone(), [1, 3, 32, 32]), &m.device)))).unwrap();
    let diff = max_rel_diff(&logits(&int8), &logits(&f32));
    assert!(diff <= 1e-5, "logits {diff}");
    let r = pearson(&scorecam_map(&int8), &scorecam_map(&f32));
    eprintln!("int8 vs f32 on the device: logits {diff:.2e}, Score-CAM map Pearson {r:.6}");
    assert!(r >= 0.999, "{r}");
}

/// The browser's CPU backend keeps the linear layers as the file's int8 rows (our kernel
/// dequantises them as it reads them): the same logits as f32 weights up to summation order,
/// Score-CAM's map and a gradient method's (Burn's ops on the dequantised weights, as autodiff
/// needs) the same, in less memory.
#[test]
fn int8_linear_layers_on_the_cpu_match_f32() {
    if backend().name != "cpu" {
        eprintln!("skipped: int8 linear layers are for the CPU backend");
        return;
    }
    let int8 = tiny_session(DeviceWeights::Int8Linear).require_model().unwrap();
    let f32 = tiny_session(DeviceWeights::F32).require_model().unwrap();
    assert_eq!(int8.weights.name(), "int8-linear");
    assert_eq!(int8.network.parameters(), f32.network.parameters());
    assert!(int8.weight_bytes_on_device() < f32.weight_bytes_on_device(), "{} vs {}", int8.weight_bytes_on_device(), f32.weight_bytes_on_device());
    let (_, input) = read_npy(&repo().join("tests/fixtures/vgg_tiny/input.npy"));
    let batch: Vec<f32> = (0..5).flat_map(|i| input.iter().map(move |v| v * (1.0 - 0.2 * i as f32))).collect();
    let logits = |m: &Model| pollster::block_on(cam::read_f32(m.network.forward(Tensor::from_data(TensorData::new(batch.clone(), [5, 3, 32, 32]), &m.device)))).unwrap();
    let diff = max_rel_diff(&logits(&int8), &logits(&f32));
    assert!(diff <= 1e-6, "logits {diff}");
    let map = |m: &Model, method: Method| pollster::block_on(cam::explain(m, &input, None, &method, &mut Reporter::silent())).unwrap().map;
    let score = max_rel_diff(&map(&int8, Method::ScoreCam(Default::default())), &map(&f32, Method::ScoreCam(Default::default())));
    let grad_map = map(&int8, Method::GradCam);
    let grad = max_rel_diff(&grad_map, &map(&f32, Method::GradCam));
    assert_eq!(map(&int8, Method::GradCam), grad_map, "the second gradient run, on the kept f32 weights, gives the same map");
    eprintln!("int8 linear layers vs f32 on the CPU: logits {diff:.2e}, Score-CAM map {score:.2e}, Grad-CAM map {grad:.2e}");
    assert!(score <= 1e-5 && grad <= 1e-5, "Score-CAM {score}, Grad-CAM {grad}");
    // The file decoded to f32 and built again (stage 0 of the sanity check's cascade): int8 rows
    // again, so the very same map.
    let dir = repo().join("tests/fixtures/vgg_tiny/int8");
    let manifest = scorecam::weights::Manifest::from_json(&std::fs::read_to_string(dir.join("vgg_tiny.json")).unwrap(), "vgg_tiny.json").unwrap();
    let tensors = Model::decode(&manifest, &std::fs::read(dir.join(&manifest.weights.file)).unwrap()).unwrap().tensors;
    let again = int8.with_tensors(tensors).unwrap();
    assert_eq!(again.weight_bytes_on_device(), int8.weight_bytes_on_device());
    let method = Method::ScoreCam(Default::default());
    assert_eq!(map(&again, method.clone()), map(&int8, method));
}

/// The probe times each layer shape with a choice, sets the kernels it found fastest, and a
/// cached probe with the same key is applied as it is, without timing anything again.
#[test]
fn the_probe_is_applied_and_its_cached_result_reused() {
    let mut session = tiny_session(DeviceWeights::F32);
    let probe = pollster::block_on(session.choose_conv_kernels(ConvChoice::Probe { cached: None }, 16)).unwrap().unwrap();
    assert_eq!(probe.layers.iter().map(|l| l.count).sum::<usize>(), 4, "every conv of the tiny VGG has a choice");
    assert!(probe.layers.iter().all(|l| l.direct_ms > 0.0 && l.matmul_ms > 0.0));
    let model = session.require_model().unwrap();
    for conv in model.network.convs() {
        let layer = probe.layers.iter().find(|l| l.shape == conv.shape).unwrap();
        assert_eq!(conv.kernel, layer.kernel);
    }
    drop(model);
    // The same key: reused as it is, even with the opposite choices.
    let mut flipped = probe.clone();
    for l in &mut flipped.layers {
        l.kernel = if l.kernel == ConvKernel::Direct { ConvKernel::Matmul } else { ConvKernel::Direct };
    }
    let mut again = tiny_session(DeviceWeights::F32);
    let reused = pollster::block_on(again.choose_conv_kernels(ConvChoice::Probe { cached: Some(flipped.clone()) }, 16)).unwrap().unwrap();
    assert_eq!(reused, flipped);
    assert!(again.require_model().unwrap().network.convs().iter().all(|c| flipped.layers.iter().any(|l| l.shape == c.shape && l.kernel == c.kernel)));
    // Another key (another batch): probed afresh.
    let mut other = tiny_session(DeviceWeights::F32);
    let fresh = pollster::block_on(other.choose_conv_kernels(ConvChoice::Probe { cached: Some(flipped.clone()) }, 2)).unwrap().unwrap();
    assert_ne!(fresh.key, flipped.key);
    assert_eq!(fresh.batch, 2);
    // Whatever the kernels, the map is the same.
    let direct = tiny_session(DeviceWeights::F32);
    let mut matmul = tiny_session(DeviceWeights::F32);
    pollster::block_on(matmul.choose_conv_kernels(ConvChoice::Matmul, 16)).unwrap();
    assert!(matmul.require_model().unwrap().network.convs().iter().all(|c| c.kernel == ConvKernel::Matmul));
    let (a, b) = (scorecam_map(&direct.require_model().unwrap()), scorecam_map(&matmul.require_model().unwrap()));
    assert!(max_rel_diff(&b, &a) <= 1e-5);
}
