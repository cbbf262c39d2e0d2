//! Model-parameter randomisation test (Adebayo et al., "Sanity Checks for Saliency Maps", 2018),
//! cascading version: re-initialise the layers from the top (logits) down, one more layer (VGG)
//! or block (EfficientNet) per stage, and compare each method's map with the original one by
//! Spearman rank correlation. A method whose maps survive randomisation does not explain the
//! network.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use image::{imageops, RgbImage};
use serde::Serialize;

use crate::cam::{self, Method, Reporter};
use crate::error::{Error, Result};
use crate::metrics::spearman;
use crate::models::Model;
use crate::render::{self, Colormap};
use crate::weights::{Cascade, NamedTensors};

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

/// Runs the test on normalised images with `model`'s weights (`tensors`: as the model is built
/// from them, f32).
pub async fn cascading_randomisation(
    model: &Model,
    tensors: NamedTensors,
    images: &[Vec<f32>],
    methods: &[Method],
    seed: u64,
    on_stage: &mut dyn FnMut(usize, usize),
) -> Result<SanityResult> {
    if images.is_empty() || methods.is_empty() {
        return Err(Error::Invalid("the sanity check needs at least one image and one method".into()));
    }
    let mut cascade = Cascade::new(tensors, seed);
    let groups = cascade.groups().to_vec();
    let mut stages = vec!["original".to_string()];
    let mut spearmans = vec![Vec::new(); methods.len()];
    let mut maps = vec![Vec::new(); methods.len()];
    let mut originals: Vec<Vec<Vec<f32>>> = vec![Vec::new(); methods.len()];
    let mut classes = Vec::new();
    for stage in 0..=groups.len() {
        on_stage(stage, groups.len() + 1);
        if stage > 0 {
            stages.push(cascade.advance().unwrap_or_default().to_string());
        }
        let m = model.with_tensors(cascade.tensors().clone())?;
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
