//! RISE (Petsiuk et al. 2018): random binary masks on a coarse grid, upsampled bilinearly with a
//! random sub-cell shift; the saliency is the class probability on each masked input times the
//! mask, summed and divided by `masks * p` (their `generate_masks` and `forward`).

use rand::{RngExt, SeedableRng};

use super::registry::{Method, MethodKind, MethodSpec, OptionKind, OptionSpec, BATCH_SIZE};
use crate::imageops::upsample::bilinear_matrix;
use super::registry::{Cost, Passes, Teaching};
use super::{masked_on_device, target_scores, Target, MethodInput, MethodOutput, Partial, Progress, Reporter, Saliency, Stats};
use crate::error::{Error, Result};

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "rise",
    display_name: "RISE",
    kind: MethodKind::Pixel,
    in_browser: false,
    summary: "RISE: random coarse masks, each weighted by the class probability on the masked input (the paper's 8000 masks, 7 x 7 grid, p = 0.5)",
    aliases: &[],
    options: &[
        OptionSpec { name: "masks", kind: OptionKind::Integer, default: Some(8000.0), min: Some(1.0), max: None, help: "random masks" },
        OptionSpec { name: "grid", kind: OptionKind::Integer, default: Some(7.0), min: Some(1.0), max: None, help: "cells per side of the random grid" },
        OptionSpec { name: "p", kind: OptionKind::Number, default: Some(0.5), min: Some(0.0), max: Some(1.0), help: "probability that a cell is kept" },
        BATCH_SIZE,
        OptionSpec { name: "seed", kind: OptionKind::Integer, default: Some(0.0), min: Some(0.0), max: None, help: "random seed" },
    ],
    target: Some(Target::Softmax),
    cost: Cost { forwards: Passes { fixed: 0, per_channel: 0, times: Some("masks") }, ..Cost::ACTIVATIONS },
    costly: true,
    teaching: Teaching {
        formula: "S = Σ_i f(x ⊙ M_i)_c M_i / (N p), M_i random upsampled binary grids",
        paper: "Petsiuk, Das, Saenko. RISE: Randomized Input Sampling for Explanation of Black-box Models. BMVC 2018 (arXiv 1806.07421)",
        passes: "1 forward per mask (8000)",
        versus_scorecam: "Scores random masks instead of the network's own activation maps.",
    },
    build: |o| {
        Ok(Method::Rise(RiseOptions {
            masks: o.required_usize("masks"),
            grid: o.required_usize("grid"),
            p: o.f32("p"),
            batch_size: o.required_usize("batch_size"),
            seed: o.required_usize("seed") as u64,
        }))
    },
};

#[derive(Debug, Clone, PartialEq)]
pub struct RiseOptions {
    pub masks: usize,
    /// Cells per side of the random grid.
    pub grid: usize,
    /// Probability that a cell is kept.
    pub p: f32,
    pub batch_size: usize,
    pub seed: u64,
}

impl Default for RiseOptions {
    /// The RISE paper's ImageNet settings: 8000 masks, a 7x7 grid, p = 0.5.
    fn default() -> Self {
        Self { masks: 8000, grid: 7, p: 0.5, batch_size: 16, seed: 0 }
    }
}

/// Makes RISE's masks, one at a time, from a seeded generator.
pub struct MaskGenerator {
    grid: usize,
    size: usize,
    cell: usize,
    p: f32,
    /// Bilinear weights from the grid to `(grid + 1) * cell` pixels (`up x grid`).
    up: Vec<f32>,
    rng: rand::rngs::StdRng,
}

impl MaskGenerator {
    pub fn new(size: usize, opts: &RiseOptions) -> Result<Self> {
        if opts.grid == 0 || opts.grid > size || !(opts.p > 0.0 && opts.p <= 1.0) {
            return Err(Error::Invalid(format!("RISE needs 1 <= grid <= {size} and 0 < p <= 1")));
        }
        let cell = size.div_ceil(opts.grid);
        let up_size = (opts.grid + 1) * cell;
        Ok(Self {
            grid: opts.grid,
            size,
            cell,
            p: opts.p,
            up: bilinear_matrix(opts.grid, up_size, false),
            rng: rand::rngs::StdRng::seed_from_u64(opts.seed),
        })
    }

    /// The next `size x size` mask, values in [0, 1].
    pub fn next_mask(&mut self) -> Vec<f32> {
        let (g, s) = (self.grid, self.size);
        let cells: Vec<f32> = (0..g * g).map(|_| f32::from(self.rng.random::<f32>() < self.p)).collect();
        let dy = self.rng.random_range(0..self.cell);
        let dx = self.rng.random_range(0..self.cell);
        // rows of the grid upsampled along x, cropped: tmp[a][j] = sum_b cells[a][b] up[dx + j][b]
        let mut tmp = vec![0f32; g * s];
        for a in 0..g {
            for j in 0..s {
                let w = &self.up[(dx + j) * g..(dx + j + 1) * g];
                tmp[a * s + j] = (0..g).map(|b| cells[a * g + b] * w[b]).sum();
            }
        }
        let mut mask = vec![0f32; s * s];
        for i in 0..s {
            let w = &self.up[(dy + i) * g..(dy + i + 1) * g];
            let row = &mut mask[i * s..(i + 1) * s];
            for (a, wa) in w.iter().enumerate().filter(|(_, v)| **v != 0.0) {
                row.iter_mut().zip(&tmp[a * s..(a + 1) * s]).for_each(|(m, t)| *m += wa * t);
            }
        }
        mask
    }
}

pub(super) async fn run(opts: &RiseOptions, input: &MethodInput<'_>, reporter: &mut Reporter<'_>) -> Result<MethodOutput> {
    let (model, f, class) = (input.model, input.forwarded, input.class);
    if opts.masks == 0 || opts.batch_size == 0 {
        return Err(Error::Invalid("RISE needs at least one mask and a batch size of at least 1".into()));
    }
    let size = model.input_size();
    let n = size * size;
    let batch_size = opts.batch_size.min(model.max_batch());
    let mut generator = MaskGenerator::new(size, opts)?;
    let mut saliency = vec![0f32; n];
    let mut stats = Stats::default();
    for start in (0..opts.masks).step_by(batch_size) {
        let b = batch_size.min(opts.masks - start);
        let masks: Vec<Vec<f32>> = (0..b).map(|_| generator.next_mask()).collect();
        // The mask multiplies the normalised input, as RISE's code does (on the device).
        let batch = masked_on_device(model, &f.input, None, masks.concat(), b);
        let probs = target_scores(model, batch, class, input.target).await?;
        for (m, p) in masks.iter().zip(probs) {
            saliency.iter_mut().zip(m).for_each(|(s, v)| *s += p * v);
        }
        stats.forwards += b;
        stats.batches += 1;
        reporter.report(Progress { done: start + b, total: opts.masks, partial: Partial::Map(&saliency) }).await?;
    }
    let scale = 1.0 / (opts.masks as f32 * opts.p);
    saliency.iter_mut().for_each(|s| *s *= scale);
    Ok(MethodOutput::new(Saliency::Map(saliency), stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_are_deterministic_in_range_and_keep_about_p() {
        let opts = RiseOptions { seed: 7, ..RiseOptions::default() };
        let mut a = MaskGenerator::new(224, &opts).unwrap();
        let mut b = MaskGenerator::new(224, &opts).unwrap();
        let mut mean = 0.0;
        for _ in 0..200 {
            let m = a.next_mask();
            assert_eq!(m, b.next_mask());
            assert!(m.iter().all(|v| (-1e-6..=1.0 + 1e-6).contains(v)));
            mean += m.iter().sum::<f32>() / m.len() as f32 / 200.0;
        }
        assert!((mean - 0.5).abs() < 0.05, "mean mask value {mean}");
    }
}
