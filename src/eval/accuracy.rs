//! `scorecam accuracy`: top-1 accuracy of the int8 model on a labelled folder, and, given the
//! unquantised model, how far quantisation moves the logits.

use serde::Serialize;

use crate::cam;
use crate::error::Result;
use crate::image_input;
use crate::models::Model;

/// What one run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Accuracy {
    pub images: usize,
    pub model: String,
    /// Top-1 of the int8 model, in [0, 1].
    pub int8_top1: f64,
    /// Target-layer maps that are constant (the masked forwards official Score-CAM skips), per image.
    pub constant_maps_per_image: f64,
    pub channels: usize,
    /// With the f32 model: its top-1, how often both agree, and the largest logit difference
    /// (absolute, and relative to the largest |logit|).
    pub f32_top1: Option<f64>,
    pub agreement: Option<f64>,
    pub max_logit_diff: Option<f32>,
    pub max_logit_rel_diff: Option<f32>,
}

fn argmax(v: &[f32]) -> usize {
    cam::top_k(v, 1)[0].0
}

/// Runs the int8 `model` (and `f32_model` if given) over `samples`; `on_image` after each.
pub async fn measure(model: &Model, f32_model: Option<&Model>, samples: &[super::dataset::Sample], on_image: &mut dyn FnMut()) -> Result<Accuracy> {
    let (mut int8, mut f32c, mut agree, mut max_diff, mut max_rel, mut constant) = (0usize, 0usize, 0usize, 0f32, 0f32, 0usize);
    for sample in samples {
        let x = image_input::to_input(&image_input::read(&sample.path)?, model.input_size(), &model.manifest.normalisation);
        let forwarded = cam::forward_image(model, &x).await?;
        constant += (0..forwarded.maps.channels).filter(|&k| forwarded.maps.is_constant(k)).count();
        let a = forwarded.logits;
        int8 += (argmax(&a) == sample.label) as usize;
        if let Some(m) = f32_model {
            let b = cam::forward_image(m, &x).await?.logits;
            f32c += (argmax(&b) == sample.label) as usize;
            agree += (argmax(&a) == argmax(&b)) as usize;
            let diff = a.iter().zip(&b).fold(0f32, |d, (p, q)| d.max((p - q).abs()));
            max_diff = max_diff.max(diff);
            max_rel = max_rel.max(diff / b.iter().fold(0f32, |m, v| m.max(v.abs())));
        }
        on_image();
    }
    let n = samples.len().max(1) as f64;
    let with_f32 = |v: f64| f32_model.map(|_| v);
    Ok(Accuracy {
        images: samples.len(),
        model: model.manifest.name.clone(),
        int8_top1: int8 as f64 / n,
        constant_maps_per_image: constant as f64 / n,
        channels: model.network.target_shape()[0],
        f32_top1: with_f32(f32c as f64 / n),
        agreement: with_f32(agree as f64 / n),
        max_logit_diff: f32_model.map(|_| max_diff),
        max_logit_rel_diff: f32_model.map(|_| max_rel),
    })
}
