//! Metrics that change the input according to the map and watch the class probability: Average
//! Drop / Increase and RISE's deletion / insertion curves.

use super::Scorer;
use crate::imageops::filters::rise_blur;
use crate::error::Result;

/// How a map masks the input for Average Drop / Increase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The libraries' (pytorch-grad-cam, torch-cam): the normalised input times the map.
    InputTimesMap,
    /// The Score-CAM paper's: keep the 50% most salient pixels, set the rest to 0 (the mean
    /// colour, in normalised space).
    KeepTopHalf,
}

impl Protocol {
    /// The mask that multiplies the normalised image.
    pub fn mask(&self, map: &[f32]) -> Vec<f32> {
        match self {
            Self::InputTimesMap => map.to_vec(),
            Self::KeepTopHalf => keep_top_fraction(map, 0.5),
        }
    }

    /// The masked copy of a normalised `[3, size, size]` image.
    pub fn apply(&self, image: &[f32], map: &[f32]) -> Vec<f32> {
        let mask = self.mask(map);
        image.chunks_exact(map.len()).flat_map(|plane| plane.iter().zip(&mask).map(|(x, m)| x * m)).collect()
    }
}

/// Pixel indices from most to least salient; ties in index order (numpy's
/// `argsort(-map, kind="stable")`, which the reference script uses too).
pub fn salient_order(map: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..map.len()).collect();
    idx.sort_by(|a, b| map[*b].total_cmp(&map[*a]));
    idx
}

/// 1 for the `fraction` most salient pixels (rounded down), 0 elsewhere.
pub fn keep_top_fraction(map: &[f32], fraction: f64) -> Vec<f32> {
    let keep = (map.len() as f64 * fraction) as usize;
    let mut mask = vec![0f32; map.len()];
    for &i in &salient_order(map)[..keep] {
        mask[i] = 1.0;
    }
    mask
}

/// Average Drop and Increase for one image, in percent: `max(0, y - o) / y * 100` and
/// `100 * [o > y]`, with y the class probability on the image and o on the masked image.
pub fn average_drop_increase(y: f32, o: f32) -> (f64, f64) {
    let (y, o) = (y as f64, o as f64);
    let drop = if y > 0.0 { 100.0 * (y - o).max(0.0) / y } else { 0.0 };
    (drop, if o > y { 100.0 } else { 0.0 })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CausalMode {
    /// Start from the image, set the most salient pixels to 0 (normalised space) first.
    Deletion,
    /// Start from a blurred image, put the most salient original pixels back first.
    Insertion,
}

/// RISE's `CausalMetric.single_run`: the class probability before any step and after each of
/// `ceil(size^2 / step)` steps (so `steps + 1` values). Each step is a mask over the image (1:
/// the image's pixel, 0: the substrate's), so the scorer can mask on the device.
pub async fn causal_curve(image: &[f32], size: usize, map: &[f32], mode: CausalMode, step: usize, scorer: &mut impl Scorer) -> Result<Vec<f32>> {
    let curve = CausalCurve::new(image, size, map, mode, step);
    curve.points(image, 0..curve.point_count(), scorer).await
}

/// One deletion or insertion curve, computable a range of points at a time (the page draws it
/// as its points come in, and shares them out to its workers): the points of any split equal
/// [`causal_curve`]'s.
#[derive(Debug, Clone)]
pub struct CausalCurve {
    mode: CausalMode,
    step: usize,
    /// Pixels from most to least salient.
    order: Vec<usize>,
    /// What the removed pixels become: zeros (deletion) or the blurred image (insertion).
    substrate: Option<Vec<f32>>,
}

impl CausalCurve {
    pub fn new(image: &[f32], size: usize, map: &[f32], mode: CausalMode, step: usize) -> Self {
        let substrate = match mode {
            CausalMode::Deletion => None,
            CausalMode::Insertion => Some(rise_blur(image, size)),
        };
        Self { mode, step: step.max(1), order: salient_order(map), substrate }
    }

    /// A digest of the pixel order (and the mode and step): two maps whose curves are the same
    /// points have the same key, whatever their values.
    pub fn key(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.mode == CausalMode::Deletion, self.step, &self.order).hash(&mut h);
        h.finish()
    }

    /// Points of the curve: `ceil(size^2 / step) + 1`.
    pub fn point_count(&self) -> usize {
        self.order.len().div_ceil(self.step) + 1
    }

    /// The masks of points `range` back to back (1: the image's pixel, 0: the substrate's).
    /// Point `i` has its `i * step` most salient pixels deleted (or inserted).
    pub fn masks(&self, range: std::ops::Range<usize>) -> Vec<f32> {
        let n = self.order.len();
        let (from, to) = (range.start.min(self.point_count()), range.end.min(self.point_count()));
        let (start, flip_to) = match self.mode {
            CausalMode::Deletion => (1f32, 0f32),
            CausalMode::Insertion => (0.0, 1.0),
        };
        let mut mask = vec![start; n];
        for &p in &self.order[..(from * self.step).min(n)] {
            mask[p] = flip_to;
        }
        let mut masks = Vec::with_capacity((to.saturating_sub(from)) * n);
        for i in from..to {
            masks.extend_from_slice(&mask);
            for &p in &self.order[(i * self.step).min(n)..((i + 1) * self.step).min(n)] {
                mask[p] = flip_to;
            }
        }
        masks
    }

    /// The class probabilities at points `range` (clamped to the curve).
    pub async fn points(&self, image: &[f32], range: std::ops::Range<usize>, scorer: &mut impl Scorer) -> Result<Vec<f32>> {
        let count = range.end.min(self.point_count()).saturating_sub(range.start);
        if count == 0 {
            return Ok(Vec::new());
        }
        // Every point's mask at once (45 MB for a whole curve at 224x224): the scorer batches
        // them and uploads the image and the substrate once.
        scorer.masked_probabilities(image, self.substrate.as_deref(), self.masks(range), count).await
    }
}

/// RISE's `auc`: the trapezoid rule on a curve over [0, 1] (`(sum - first/2 - last/2) / (len - 1)`).
pub fn auc(curve: &[f32]) -> f64 {
    if curve.len() < 2 {
        return curve.first().copied().unwrap_or(0.0) as f64;
    }
    let sum: f64 = curve.iter().map(|v| *v as f64).sum();
    (sum - curve[0] as f64 / 2.0 - curve[curve.len() - 1] as f64 / 2.0) / (curve.len() - 1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;

    /// The "network" of the tests: the probability is the share of informative pixels that
    /// still hold their value 1 in all three colour planes.
    struct CountingScorer {
        informative: Vec<usize>,
        plane: usize,
    }

    impl Scorer for CountingScorer {
        async fn probabilities(&mut self, images: Vec<f32>, n: usize) -> Result<Vec<f32>> {
            let per = images.len() / n;
            assert_eq!(per, 3 * self.plane, "one image is three planes");
            let intact = |img: &[f32], p: usize| (0..3).all(|c| (img[c * self.plane + p] - 1.0).abs() < 1e-3);
            Ok(images.chunks(per).map(|img| self.informative.iter().filter(|&&p| intact(img, p)).count() as f32 / self.informative.len() as f32).collect())
        }
    }

    fn setup() -> (Vec<f32>, CountingScorer, usize) {
        let size = 8;
        let n = size * size;
        let mut image = vec![0.2f32; 3 * n];
        let informative = vec![9, 10, 17, 18];
        for &p in &informative {
            for c in 0..3 {
                image[c * n + p] = 1.0;
            }
        }
        (image, CountingScorer { informative, plane: n }, size)
    }

    #[test]
    fn deleting_the_informative_pixels_first_gives_the_lowest_deletion_auc() {
        let (image, mut scorer, size) = setup();
        let n = size * size;
        let mut good = vec![0f32; n];
        for &p in &scorer.informative.clone() {
            good[p] = 1.0;
        }
        let bad: Vec<f32> = good.iter().map(|v| 1.0 - v).collect();
        let run = |map: Vec<f32>, scorer: &mut CountingScorer| pollster::block_on(causal_curve(&image, size, &map, CausalMode::Deletion, 2, scorer)).unwrap();
        let good_curve = run(good.clone(), &mut scorer);
        let bad_curve = run(bad, &mut scorer);
        assert_eq!(good_curve.len(), n / 2 + 1);
        // two steps of two pixels delete the object: 1, 0.5, 0, 0, ...
        assert_eq!(&good_curve[..4], &[1.0, 0.5, 0.0, 0.0]);
        let (g, b) = (auc(&good_curve), auc(&bad_curve));
        // the good map's curve is 1, 0.5, then 0 for 30 more steps: (0.5 + 0.5) / 32
        assert!((g - 1.0 / 32.0).abs() < 1e-9 && b > 0.95, "good {g} bad {b}");
        // insertion is the mirror image: the good map restores the object first
        let ins = pollster::block_on(causal_curve(&image, size, &good, CausalMode::Insertion, 2, &mut scorer)).unwrap();
        assert_eq!(*ins.last().unwrap(), 1.0);
        assert!(auc(&ins) > 0.95);
    }

    #[test]
    fn a_curve_computed_in_pieces_equals_the_whole() {
        let (image, mut scorer, size) = setup();
        let map: Vec<f32> = (0..size * size).map(|i| ((i * 37) % 64) as f32 / 64.0).collect();
        for mode in [CausalMode::Deletion, CausalMode::Insertion] {
            let whole = pollster::block_on(causal_curve(&image, size, &map, mode, 3, &mut scorer)).unwrap();
            let curve = CausalCurve::new(&image, size, &map, mode, 3);
            assert_eq!(curve.point_count(), whole.len());
            let mut pieces = Vec::new();
            for (a, b) in [(0, 5), (5, 6), (6, 17), (17, 99)] {
                pieces.extend(pollster::block_on(curve.points(&image, a..b, &mut scorer)).unwrap());
            }
            assert_eq!(pieces, whole, "{mode:?}");
        }
    }

    #[test]
    fn auc_is_the_normalised_trapezoid() {
        assert_eq!(auc(&[1.0, 1.0, 1.0]), 1.0);
        assert_eq!(auc(&[1.0, 0.0]), 0.5);
        assert!((auc(&[0.0, 1.0, 1.0, 1.0, 1.0]) - 0.875).abs() < 1e-12);
    }

    #[test]
    fn average_drop_and_increase_have_their_published_definitions() {
        assert_eq!(average_drop_increase(0.8, 0.2), (75.0, 0.0));
        assert_eq!(average_drop_increase(0.5, 0.6), (0.0, 100.0));
        assert_eq!(average_drop_increase(0.5, 0.5), (0.0, 0.0));
    }

    #[test]
    fn the_paper_protocol_keeps_exactly_the_top_half() {
        let map = [0.9, 0.1, 0.5, 0.5];
        assert_eq!(keep_top_fraction(&map, 0.5), vec![1.0, 0.0, 1.0, 0.0]);
        let image = [1.0f32; 12];
        let masked = Protocol::KeepTopHalf.apply(&image, &map);
        assert_eq!(masked.iter().sum::<f32>(), 6.0);
        assert_eq!(Protocol::InputTimesMap.apply(&image, &map)[..4], map);
    }
}
