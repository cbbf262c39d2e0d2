//! Faithfulness and localisation metrics for saliency maps, each a small unit behind one
//! interface ([`Metric::evaluate`]), as in Quantus and torch-cam. Every metric reads class
//! scores through a [`Scorer`], so the same code runs against a network ([`ModelScorer`]) and
//! against hand-made score functions in the unit tests.

mod correlation;
mod faithfulness;
mod localisation;

use crate::cam::progress::pause;
use crate::cam::{class_probabilities, input_tensor, masked_on_device, YieldFn};
use crate::error::{Error, Result};
use crate::models::Model;
use burn::tensor::{Tensor, TensorData};

pub use correlation::{pearson, spearman};
pub use faithfulness::{auc, average_drop_increase, causal_curve, keep_top_fraction, CausalCurve, CausalMode, Protocol};
pub use localisation::{energy_in_box, BoundingBox};

/// Softmax probabilities of one class for batches of normalised `[3, size, size]` images.
#[allow(async_fn_in_trait)] // used with concrete types only, never as `dyn`
pub trait Scorer {
    /// `images` holds `n` images back to back; returns `n` probabilities.
    async fn probabilities(&mut self, images: Vec<f32>, n: usize) -> Result<Vec<f32>>;

    /// The probabilities of `n` masked copies of one image: `image * mask + substrate * (1 -
    /// mask)` (a zero substrate if `None`), `masks` holding `n` single-plane masks. This default
    /// builds the images on the host; [`ModelScorer`] masks on the device instead.
    async fn masked_probabilities(&mut self, image: &[f32], substrate: Option<&[f32]>, masks: Vec<f32>, n: usize) -> Result<Vec<f32>> {
        let plane = masks.len() / n.max(1);
        let mut images = Vec::with_capacity(n * image.len());
        for m in masks.chunks_exact(plane) {
            for (c, channel) in image.chunks_exact(plane).enumerate() {
                images.extend(channel.iter().zip(m).enumerate().map(|(i, (x, m))| match substrate {
                    None => x * m,
                    Some(s) => x * m + s[c * plane + i] * (1.0 - m),
                }));
            }
        }
        self.probabilities(images, n).await
    }
}

/// Scores images with a model, `batch_size` at a time (capped by the model's binding limit).
pub struct ModelScorer<'a> {
    pub model: &'a Model,
    pub class: usize,
    pub batch_size: usize,
    /// Forward passes run so far (images).
    pub forwards: usize,
    /// Hands the host a turn between batches (the page's event loop).
    pub yield_now: Option<YieldFn>,
}

impl<'a> ModelScorer<'a> {
    pub fn new(model: &'a Model, class: usize, batch_size: usize) -> Self {
        Self { model, class, batch_size: batch_size.clamp(1, model.max_batch()), forwards: 0, yield_now: None }
    }
}

impl Scorer for ModelScorer<'_> {
    async fn probabilities(&mut self, images: Vec<f32>, n: usize) -> Result<Vec<f32>> {
        let size = self.model.input_size();
        let per = 3 * size * size;
        if images.len() != n * per {
            return Err(Error::Invalid(format!("{} values for {n} images of 3x{size}x{size}", images.len())));
        }
        let mut out = Vec::with_capacity(n);
        for chunk in images.chunks(self.batch_size * per) {
            let b = chunk.len() / per;
            let batch = Tensor::<4>::from_data(TensorData::new(chunk.to_vec(), [b, 3, size, size]), &self.model.device);
            out.extend(class_probabilities(self.model, batch, self.class).await?);
            self.forwards += b;
            pause(self.yield_now).await;
        }
        Ok(out)
    }

    async fn masked_probabilities(&mut self, image: &[f32], substrate: Option<&[f32]>, masks: Vec<f32>, n: usize) -> Result<Vec<f32>> {
        let size = self.model.input_size();
        let plane = size * size;
        if image.len() != 3 * plane || masks.len() != n * plane || substrate.is_some_and(|s| s.len() != image.len()) {
            return Err(Error::Invalid(format!("masks or images do not fit {n} masks of {size}x{size}")));
        }
        // Three planes per masked image would travel to the device; one mask plane does.
        let input = input_tensor(self.model, image);
        let substrate = substrate.map(|s| input_tensor(self.model, s));
        let mut out = Vec::with_capacity(n);
        for chunk in masks.chunks(self.batch_size * plane) {
            let b = chunk.len() / plane;
            let batch = masked_on_device(self.model, &input, substrate.as_ref(), chunk.to_vec(), b);
            out.extend(class_probabilities(self.model, batch, self.class).await?);
            self.forwards += b;
            pause(self.yield_now).await;
        }
        Ok(out)
    }
}

/// One image to evaluate a map on.
pub struct Sample<'a> {
    /// Normalised `[3, size, size]` input.
    pub image: &'a [f32],
    pub size: usize,
    /// The map being evaluated, `size x size`, in [0, 1].
    pub map: &'a [f32],
    /// Softmax probability of the explained class on the unmasked image.
    pub probability: f32,
    /// Object boxes in map pixels.
    pub boxes: &'a [BoundingBox],
}

/// A metric's numbers for one image and map.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Score {
    /// (name, value) pairs; names are stable column names (`avg_drop`, `deletion_auc`, ...).
    pub values: Vec<(String, f64)>,
    /// Deletion/insertion: the class probability after each step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve: Option<Vec<f32>>,
}

/// The metrics of the Score-CAM paper's evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Average Drop / Average Increase (Chattopadhay et al. 2018) under a masking protocol.
    AverageDropIncrease(Protocol),
    /// RISE's causal metrics: remove (deletion) or add back (insertion) the most salient pixels
    /// first, `step` pixels at a time.
    Deletion,
    Insertion,
    /// Share of the map's energy inside the (single, small) object box.
    EnergyPointingGame,
}

impl Metric {
    pub const NAMES: [&'static str; 5] = ["ad-ai-library", "ad-ai-paper", "deletion", "insertion", "pointing-game"];
    /// RISE's evaluation: 224 pixels a step on 224x224 images.
    pub const CAUSAL_STEP: usize = 224;

    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "ad-ai-library" | "ad-ai" => Self::AverageDropIncrease(Protocol::InputTimesMap),
            "ad-ai-paper" => Self::AverageDropIncrease(Protocol::KeepTopHalf),
            "deletion" => Self::Deletion,
            "insertion" => Self::Insertion,
            "pointing-game" | "energy-pointing-game" => Self::EnergyPointingGame,
            other => return Err(Error::Invalid(format!("unknown metric {other:?} (one of {})", Self::NAMES.join(", ")))),
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::AverageDropIncrease(Protocol::InputTimesMap) => "ad-ai-library",
            Self::AverageDropIncrease(Protocol::KeepTopHalf) => "ad-ai-paper",
            Self::Deletion => "deletion",
            Self::Insertion => "insertion",
            Self::EnergyPointingGame => "pointing-game",
        }
    }

    /// Evaluates one map; `None` where the metric does not apply (the pointing game on images
    /// without exactly one box covering less than half of the image).
    pub async fn evaluate(&self, sample: &Sample<'_>, scorer: &mut impl Scorer) -> Result<Option<Score>> {
        let prefix = self.name().replace('-', "_");
        let value = |name: &str, v: f64| (format!("{prefix}_{name}"), v);
        Ok(Some(match self {
            Self::AverageDropIncrease(protocol) => {
                let o = scorer.masked_probabilities(sample.image, None, protocol.mask(sample.map), 1).await?[0];
                let (drop, increase) = average_drop_increase(sample.probability, o);
                Score { values: vec![value("drop", drop), value("increase", increase)], curve: None }
            }
            Self::Deletion | Self::Insertion => {
                let mode = if *self == Self::Deletion { CausalMode::Deletion } else { CausalMode::Insertion };
                let curve = causal_curve(sample.image, sample.size, sample.map, mode, Self::CAUSAL_STEP, scorer).await?;
                Score { values: vec![value("auc", auc(&curve))], curve: Some(curve) }
            }
            Self::EnergyPointingGame => {
                let [b] = sample.boxes else { return Ok(None) };
                if b.area() >= 0.5 * (sample.size * sample.size) as f64 {
                    return Ok(None);
                }
                Score { values: vec![value("energy", 100.0 * energy_in_box(sample.map, sample.size, b))], curve: None }
            }
        }))
    }
}
