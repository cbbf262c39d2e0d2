//! `scorecam bench`: model load, forward passes at batch 1 and at the Score-CAM batch, and one
//! full Score-CAM, timed on whatever backend the session runs.

use web_time::Instant;

use burn::tensor::Tensor;
use serde::Serialize;

use crate::cam::{self, Method, Reporter, ScoreCamOptions};
use crate::error::Result;
use crate::session::Session;

/// Seconds, as measured.
#[derive(Debug, Clone, Serialize)]
pub struct Bench {
    pub model: String,
    pub backend: String,
    pub adapter: String,
    /// Building the model on the device and choosing its convolution kernels (with the probe,
    /// unless it came from the cache).
    pub load_s: f64,
    /// "f32" or "int8", and the bytes the weights take on the device.
    pub device_weights: String,
    pub weight_bytes_on_device: usize,
    /// Each convolution's kernel, summarised ("13 direct", "1 direct, 12 matmul").
    pub conv_kernels: String,
    pub forward_b1_s: f64,
    pub forward_batch: usize,
    pub forward_bn_s: f64,
    pub images_per_s_bn: f64,
    /// The first full Score-CAM (it compiles what the forwards did not), and a second one.
    pub scorecam_s: f64,
    pub scorecam_warm_s: Option<f64>,
    pub scorecam_top_k: Option<usize>,
    pub scorecam_forwards: usize,
    pub skipped_constant: usize,
    /// Multiply-adds of one forward pass, and the Score-CAM's rate in TFLOP/s (2 FLOP per
    /// multiply-add, the warm run where there is one), to set against the device's peak.
    pub gmacs_per_forward: f64,
    pub scorecam_tflops: f64,
    /// Score-CAM batches scored at once ([`crate::backend::Backend::lanes`]).
    pub lanes: usize,
}

/// Times the session's model: forwards of ones (`runs` repetitions after a warm-up), then
/// Score-CAM of `image` (a normalised input; zeros if `None`), and again if `warm`.
pub fn run(session: Session, load_s: f64, image: Option<&image::RgbImage>, batch_size: usize, runs: usize, top_k: Option<usize>, warm: bool) -> Result<Bench> {
    let backend = session.backend().clone();
    let model = session.require_model()?;
    let size = model.input_size();
    let forward = |batch: usize| -> Result<f64> {
        let x = Tensor::<4>::ones([batch, 3, size, size], &model.device);
        pollster::block_on(cam::read_f32(model.network.forward(x.clone())))?; // warm-up (autotune, allocation)
        let t = Instant::now();
        for _ in 0..runs {
            pollster::block_on(cam::read_f32(model.network.forward(x.clone())))?;
        }
        Ok(t.elapsed().as_secs_f64() / runs.max(1) as f64)
    };
    let forward_b1_s = forward(1)?;
    let batch_size = batch_size.min(model.max_batch());
    let forward_bn_s = forward(batch_size)?;
    let input = match image {
        Some(img) => crate::image_input::to_input(img, size, &model.manifest.normalisation),
        None => vec![0.0; 3 * size * size],
    };
    let method = Method::ScoreCam(ScoreCamOptions { batch_size, top_k, ..Default::default() });
    let scorecam = || -> Result<(f64, crate::cam::Explanation)> {
        let t = Instant::now();
        let exp = pollster::block_on(cam::explain(&model, &input, None, &method, &mut Reporter::silent()))?;
        Ok((t.elapsed().as_secs_f64(), exp))
    };
    let (scorecam_s, exp) = scorecam()?;
    let scorecam_warm_s = if warm { Some(scorecam()?.0) } else { None };
    let macs = model.network.macs_per_image() as f64;
    let forwards = exp.stats.forwards as f64;
    Ok(Bench {
        model: model.manifest.name.clone(),
        backend: backend.name.to_string(),
        adapter: backend.adapter.clone(),
        lanes: backend.lanes,
        load_s,
        device_weights: model.weights.name().to_string(),
        weight_bytes_on_device: model.weight_bytes_on_device(),
        conv_kernels: model.conv_kernel_summary(),
        forward_b1_s,
        forward_batch: batch_size,
        forward_bn_s,
        images_per_s_bn: batch_size as f64 / forward_bn_s,
        scorecam_s,
        scorecam_warm_s,
        scorecam_top_k: top_k,
        scorecam_forwards: exp.stats.forwards,
        skipped_constant: exp.stats.skipped_constant,
        gmacs_per_forward: macs / 1e9,
        scorecam_tflops: 2.0 * macs * forwards / scorecam_warm_s.unwrap_or(scorecam_s) / 1e12,
    })
}
