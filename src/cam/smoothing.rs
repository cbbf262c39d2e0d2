//! pytorch-grad-cam's two smoothings, offered on the methods it offers them on:
//! - `eigen_smooth`: the first principal component of the per-channel maps (the weighted
//!   activations `w_k A_k`, or HiResCAM's `g ⊙ A`, ...) instead of their sum
//!   (`get_2d_projection`; our sign convention in [`first_component`]);
//! - `aug_smooth`: the mean of the method's normalised maps over six copies of the input,
//!   flipped left-right or not, times 0.9, 1 or 1.1 (ttach's `HorizontalFlip` x
//!   `Multiply([0.9, 1, 1.1])` on the normalised tensor), each flipped back (`forward_augmentation_smoothing`).

use super::projection::first_component;
use super::registry::{Method, OptionKind, OptionSpec, Options};
use super::{forward_image, FeatureMaps, MethodInput, MethodOutput, Reporter, Saliency, Stats};
use crate::error::Result;

pub(super) const EIGEN_SMOOTH: OptionSpec = OptionSpec {
    name: "eigen_smooth",
    kind: OptionKind::Integer,
    default: Some(0.0),
    min: Some(0.0),
    max: Some(1.0),
    help: "1: the first principal component of the per-channel maps instead of their sum (pytorch-grad-cam's eigen_smooth)",
};

pub(super) const AUG_SMOOTH: OptionSpec = OptionSpec {
    name: "aug_smooth",
    kind: OptionKind::Integer,
    default: Some(0.0),
    min: Some(0.0),
    max: Some(1.0),
    help: "1: the mean map over the input flipped or not, times 0.9, 1 and 1.1 (pytorch-grad-cam's aug_smooth: 6 runs)",
};

/// Both smoothings (pytorch-grad-cam's BaseCAM methods that sum weighted channels).
pub(super) static BOTH: [OptionSpec; 2] = [EIGEN_SMOOTH, AUG_SMOOTH];
/// `aug_smooth` only (the methods whose map is no sum of channels: EigenCAM, KPCA-CAM, FEM, ...).
pub(super) static AUG: [OptionSpec; 1] = [AUG_SMOOTH];

/// Runs per `aug_smooth`.
pub(crate) const AUGMENTATIONS: usize = 6;
const FACTORS: [f32; 3] = [0.9, 1.0, 1.1];

/// `method`, wrapped in the smoothings its options ask for.
pub(super) fn build(o: &Options<'_>, method: Method) -> Result<Method> {
    let (eigen, aug) = (o.flag("eigen_smooth"), o.flag("aug_smooth"));
    if !eigen && !aug {
        return Ok(method);
    }
    Ok(Method::Smoothed { method: Box::new(method), eigen, aug })
}

pub(super) async fn run(method: &Method, eigen: bool, aug: bool, input: &MethodInput<'_>, reporter: &mut Reporter<'_>) -> Result<MethodOutput> {
    if !aug {
        let mut out = method.run(input, reporter).await?;
        if eigen {
            out.saliency = eigen_projection(out.saliency, &input.forwarded.maps);
        }
        return Ok(out);
    }
    let (model, image) = (input.model, &input.forwarded.image);
    let size = model.input_size();
    let plane = size * size;
    let mut mean = vec![0f32; plane];
    let mut stats = Stats::default();
    for flip in [false, true] {
        for factor in FACTORS {
            let x: Vec<f32> = image.chunks_exact(plane).flat_map(|p| p.chunks_exact(size).flat_map(move |row| augment_row(row, flip, factor))).collect();
            let f = forward_image(model, &x).await?;
            let pass = MethodInput { model, forwarded: &f, class: input.class, target: input.target };
            let out = Box::pin(run(method, eigen, false, &pass, reporter)).await?;
            let map = out.saliency.map(&f.maps, size);
            for (dst, row) in mean.chunks_exact_mut(size).zip(map.chunks_exact(size)) {
                for (x, d) in dst.iter_mut().enumerate() {
                    *d += row[if flip { size - 1 - x } else { x }] / AUGMENTATIONS as f32;
                }
            }
            let s = out.stats;
            stats.forwards += s.forwards + 1;
            stats.batches += s.batches + 1;
            stats.head_forwards += s.head_forwards;
            stats.backwards += s.backwards;
            stats.skipped_constant += s.skipped_constant;
        }
    }
    // The one pass on the image as it is duplicates the explained image's own forward.
    stats.forwards -= 1;
    stats.batches -= 1;
    Ok(MethodOutput::new(Saliency::Map(mean), stats))
}

fn augment_row(row: &[f32], flip: bool, factor: f32) -> Vec<f32> {
    let n = row.len();
    (0..n).map(|x| row[if flip { n - 1 - x } else { x }] * factor).collect()
}

/// `eigen_smooth`: per-channel maps (a weighted sum's `w_k A_k`, or a stack) as the projection
/// on their first principal component, finished the same way.
fn eigen_projection(saliency: Saliency, maps: &FeatureMaps) -> Saliency {
    let n = maps.height * maps.width;
    match saliency {
        Saliency::Channels { weights, finish } => {
            let stack: Vec<f32> = weights.iter().enumerate().flat_map(|(k, w)| maps.channel(k).iter().map(move |a| w * a)).collect();
            Saliency::LowRes { map: first_component(&stack, weights.len(), n), finish }
        }
        Saliency::Stack { maps: stack, finish } => Saliency::LowRes { map: first_component(&stack, stack.len() / n.max(1), n), finish },
        other => other,
    }
}
