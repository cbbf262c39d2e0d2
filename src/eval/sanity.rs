//! Model-parameter randomisation test (Adebayo et al., "Sanity Checks for Saliency Maps", 2018),
//! cascading version: re-initialise the layers from the top (logits) down, one more layer (VGG)
//! or block (EfficientNet) per stage, and compare each method's map with the original one by
//! Spearman rank correlation. A method whose maps survive randomisation does not explain the
//! network.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use image::{imageops, RgbImage};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use serde::Serialize;

use crate::cam::{self, Method, Reporter};
use crate::error::{Error, Result};
use crate::metrics::spearman;
use crate::models::Model;
use crate::render::{self, Colormap};
use crate::weights::{decode_int8, NamedTensors};

#[derive(Debug, Clone, Serialize)]
pub struct SanityResult {
    pub model: String,
    /// "original", then the layer group randomised at each stage (cumulative).
    pub stages: Vec<String>,
    pub methods: Vec<String>,
    /// [method][stage]: mean Spearman correlation with the original map over the images.
    pub spearman: Vec<Vec<f64>>,
    /// [method][stage]: the first image's map.
    #[serde(skip)]
    pub maps: Vec<Vec<Vec<f32>>>,
    pub size: usize,
    pub images: usize,
}

/// Position of a layer group in the forward order (stem first, classifier last).
fn forward_rank(group: &str) -> (u8, usize, usize) {
    let parts: Vec<&str> = group.split('.').collect();
    let num = |i: usize| parts.get(i).and_then(|p| p.parse().ok()).unwrap_or(0);
    match parts[0] {
        "conv_stem" => (0, 0, 0),
        "features" | "blocks" => (1, num(1), num(2)),
        "conv_head" => (2, 0, 0),
        _ => (3, num(1), 0),
    }
}

/// The group a tensor belongs to: a whole block for EfficientNet (`blocks.s.j`), else its layer.
fn group_of(name: &str) -> String {
    let parts: Vec<&str> = name.split('.').collect();
    if parts[0] == "blocks" && parts.len() > 3 { parts[..3].join(".") } else { parts[..parts.len() - 1].join(".") }
}

/// Layer groups from the top of the network down.
pub fn groups_top_down(tensors: &NamedTensors) -> Vec<String> {
    let mut groups: Vec<String> = tensors.tensors.keys().map(|n| group_of(n)).collect();
    groups.sort_by_key(|g| std::cmp::Reverse(forward_rank(g)));
    groups.dedup();
    groups
}

/// Re-initialises every tensor of `group`: weights He-normal (std sqrt(2 / fan_in)), biases 0.
fn randomise(tensors: &mut NamedTensors, group: &str, rng: &mut rand::rngs::StdRng) {
    for (name, t) in tensors.tensors.iter_mut().filter(|(n, _)| group_of(n) == group) {
        if name.ends_with("bias") {
            t.data.iter_mut().for_each(|v| *v = 0.0);
        } else {
            let fan_in: usize = t.shape[1..].iter().product::<usize>().max(1);
            let normal = Normal::new(0.0f32, (2.0 / fan_in as f32).sqrt()).expect("positive std");
            t.data.iter_mut().for_each(|v| *v = normal.sample(rng));
        }
    }
}

/// Runs the test on normalised images with `model`'s weights (`weights`: its int8 file).
pub async fn cascading_randomisation(
    model: &Model,
    weights: &[u8],
    images: &[Vec<f32>],
    methods: &[Method],
    seed: u64,
    on_stage: &mut dyn FnMut(usize, usize),
) -> Result<SanityResult> {
    if images.is_empty() || methods.is_empty() {
        return Err(Error::Invalid("the sanity check needs at least one image and one method".into()));
    }
    let (_, mut tensors) = decode_int8(weights, &model.manifest.weights.file)?;
    let groups = groups_top_down(&tensors);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut stages = vec!["original".to_string()];
    let mut spearmans = vec![Vec::new(); methods.len()];
    let mut maps = vec![Vec::new(); methods.len()];
    let mut originals: Vec<Vec<Vec<f32>>> = vec![Vec::new(); methods.len()];
    let mut classes = Vec::new();
    for stage in 0..=groups.len() {
        on_stage(stage, groups.len() + 1);
        if stage > 0 {
            randomise(&mut tensors, &groups[stage - 1], &mut rng);
            stages.push(groups[stage - 1].clone());
        }
        let m = model.with_tensors(tensors.clone())?;
        let mut sums = vec![0f64; methods.len()];
        for (i, image) in images.iter().enumerate() {
            let f = cam::forward_image(&m, image).await?;
            if stage == 0 {
                classes.push(cam::top_k(&f.probabilities, 1)[0].0);
            }
            for (k, method) in methods.iter().enumerate() {
                let e = cam::explain_forwarded(&m, &f, Some(classes[i]), method, &mut Reporter::silent()).await?;
                if stage == 0 {
                    originals[k].push(e.map.clone());
                }
                sums[k] += spearman(&originals[k][i], &e.map);
                if i == 0 {
                    maps[k].push(e.map);
                }
            }
        }
        for (k, s) in sums.iter().enumerate() {
            spearmans[k].push(s / images.len() as f64);
        }
    }
    on_stage(groups.len() + 1, groups.len() + 1);
    Ok(SanityResult {
        model: model.manifest.name.clone(),
        stages,
        methods: methods.iter().map(|m| m.display_name().to_string()).collect(),
        spearman: spearmans,
        maps,
        size: model.input_size(),
        images: images.len(),
    })
}

/// Writes `sanity.md`, `sanity.json` and `sanity_grid.png` (rows: methods; columns: the photo,
/// then the original map and each randomisation stage, left to right).
pub fn write(out: &Path, r: &SanityResult, photo: &RgbImage) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out.display(), e))?;
    let mut md = format!(
        "# Sanity check: cascading randomisation, {}\n\nMean Spearman rank correlation with the original map over {} image(s); stages randomise the layers from the top, cumulatively.\n\n| stage (randomised down to) |",
        r.model, r.images
    );
    for m in &r.methods {
        let _ = write!(md, " {m} |");
    }
    md.push_str("\n|---|");
    md.push_str(&"---:|".repeat(r.methods.len()));
    md.push('\n');
    for (s, stage) in r.stages.iter().enumerate() {
        let _ = write!(md, "| {stage} |");
        for k in 0..r.methods.len() {
            let _ = write!(md, " {:.3} |", r.spearman[k][s]);
        }
        md.push('\n');
    }
    let tile = 96u32;
    let cols = r.stages.len() as u32 + 1;
    let mut grid = RgbImage::from_pixel(cols * tile, r.methods.len() as u32 * tile, image::Rgb([255, 255, 255]));
    let small_photo = imageops::resize(photo, tile, tile, imageops::FilterType::Triangle);
    for (k, maps) in r.maps.iter().enumerate() {
        imageops::replace(&mut grid, &small_photo, 0, (k as u32 * tile) as i64);
        for (s, map) in maps.iter().enumerate() {
            let resized = render::map_to_image_size(map, r.size, tile, tile);
            let heat = render::heatmap(&resized, tile, tile, Colormap::Jet);
            imageops::replace(&mut grid, &heat, ((s as u32 + 1) * tile) as i64, (k as u32 * tile) as i64);
        }
    }
    let paths = [out.join("sanity.md"), out.join("sanity.json"), out.join("sanity_grid.png")];
    std::fs::write(&paths[0], md).map_err(|e| Error::io(paths[0].display(), e))?;
    std::fs::write(&paths[1], serde_json::to_string_pretty(r).map_err(|e| Error::Invalid(e.to_string()))?).map_err(|e| Error::io(paths[1].display(), e))?;
    grid.save(&paths[2]).map_err(|e| Error::Invalid(format!("{}: {e}", paths[2].display())))?;
    Ok(paths.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_run_from_the_top_down() {
        let mut t = NamedTensors::new("x");
        for n in ["conv_stem.weight", "blocks.0.0.conv_dw.weight", "blocks.1.1.conv_pw.weight", "blocks.1.0.conv_pwl.bias", "conv_head.weight", "classifier.weight"] {
            t.insert(n, crate::weights::HostTensor::new(vec![1], vec![0.0]));
        }
        assert_eq!(groups_top_down(&t), ["classifier", "conv_head", "blocks.1.1", "blocks.1.0", "blocks.0.0", "conv_stem"]);
        let mut v = NamedTensors::new("v");
        for n in ["features.0.weight", "features.28.weight", "features.5.bias", "classifier.0.weight", "classifier.6.bias"] {
            v.insert(n, crate::weights::HostTensor::new(vec![1], vec![0.0]));
        }
        assert_eq!(groups_top_down(&v), ["classifier.6", "classifier.0", "features.28", "features.5", "features.0"]);
    }
}
