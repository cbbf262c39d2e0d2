//! `scorecam bench`: model load, forward passes at batch 1 and at the Score-CAM batch, and one
//! full Score-CAM, timed on whatever backend the session runs.

use std::time::Instant;

use burn::tensor::Tensor;
use serde::Serialize;

use crate::backend::Backend;
use crate::cam::{self, Method, Reporter, ScoreCamOptions};
use crate::error::Result;
use crate::session::Session;

/// Seconds, as measured.
#[derive(Debug, Clone, Serialize)]
pub struct Bench {
    pub model: String,
    pub backend: String,
    pub load_s: f64,
    pub forward_b1_s: f64,
    pub forward_batch: usize,
    pub forward_bn_s: f64,
    pub images_per_s_bn: f64,
    pub scorecam_s: f64,
    pub scorecam_top_k: Option<usize>,
    pub scorecam_forwards: usize,
    pub skipped_constant: usize,
    /// Score-CAM batches scored at once ([`Backend::lanes`]).
    pub lanes: usize,
}

/// Times `model_path` on `backend`: forwards of ones (`runs` repetitions after a warm-up), then
/// Score-CAM of `image` (a normalised input; zeros if `None`).
pub fn run(model_path: &std::path::Path, backend: Backend, image: Option<&image::RgbImage>, batch_size: usize, runs: usize, top_k: Option<usize>) -> Result<Bench> {
    let (backend_name, lanes) = (backend.name, backend.lanes);
    let mut session = Session::new(backend);
    let t_load = Instant::now();
    let model = session.load_model_file(model_path)?;
    let load_s = t_load.elapsed().as_secs_f64();
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
    let t = Instant::now();
    let exp = pollster::block_on(cam::explain(&model, &input, None, &method, &mut Reporter::silent()))?;
    Ok(Bench {
        model: model.manifest.name.clone(),
        backend: backend_name.to_string(),
        lanes,
        load_s,
        forward_b1_s,
        forward_batch: batch_size,
        forward_bn_s,
        images_per_s_bn: batch_size as f64 / forward_bn_s,
        scorecam_s: t.elapsed().as_secs_f64(),
        scorecam_top_k: top_k,
        scorecam_forwards: exp.stats.forwards,
        skipped_constant: exp.stats.skipped_constant,
    })
}
