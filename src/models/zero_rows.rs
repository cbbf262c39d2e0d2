//! The part of an image a Score-CAM mask leaves at zero, through a whole network
//! (`cpu_conv::Skip` does it for one layer). A masked input is zero outside its mask's rectangle
//! of rows and columns ([`Region`]), so each layer's output is the zero image's outside the
//! region the input reaches through the layers before: that is copied from one recorded forward
//! of the zero image instead of computed (by every kernel outside the reached rows; by Winograd
//! tiles outside the reached columns too). EfficientNet-Lite0 and VGG both run their features
//! through [`Rows`], step by step.

use std::sync::{Arc, Mutex};

use burn::tensor::Tensor;

use super::conv::{host_image, ConvKernel, ConvShape, Region};
use super::cpu_conv::Skip;

/// How a forward treats the region a mask leaves at zero (its rows, and for Winograd its
/// columns), step by step (a convolution, or a block run as one).
pub(crate) enum Rows<'a> {
    /// All computed.
    All,
    /// All computed, and each step's output for the first image recorded: run on the zero image,
    /// what `Reached` copies.
    Record(Vec<Vec<f32>>),
    /// Each image's region its input reaches computed, the rest copied from the recorded steps.
    Reached { regions: Vec<Region>, recorded: &'a [Vec<f32>], step: usize },
}

impl Rows<'_> {
    /// Runs one step, `run(skip)`, whose regions follow `shape` (its strided convolution's, for a
    /// block); `None` where `run` declines it.
    pub(crate) fn step(&mut self, shape: &ConvShape, run: impl FnOnce(Option<Skip>) -> Option<Tensor<4>>) -> Option<Tensor<4>> {
        match self {
            Rows::All => run(None),
            Rows::Record(steps) => {
                let out = run(None)?;
                steps.push(host_image(&out).unwrap_or_default());
                Some(out)
            }
            Rows::Reached { regions, recorded, step } => {
                let reached: Vec<Region> = regions.iter().map(|r| shape.reached(r)).collect();
                let background = recorded.get(*step).map_or(&[][..], |b| &b[..]);
                // (No recorded output: the step did not run on flex, and computes all its rows.)
                let skip = Some(Skip { regions: &reached, background }).filter(|_| !background.is_empty());
                let out = run(skip)?;
                *regions = reached;
                *step += 1;
                Some(out)
            }
        }
    }

    /// A 2x2 max pool (stride 2), which needs no record: an output pixel is the zero image's
    /// wherever its four input pixels are.
    pub(crate) fn pool_2x2(&mut self) {
        if let Rows::Reached { regions, .. } = self {
            for r in regions.iter_mut() {
                *r = if r.is_empty() { Region::EMPTY } else { Region { rows: r.rows.start / 2..r.rows.end.div_ceil(2), cols: r.cols.start / 2..r.cols.end.div_ceil(2) } };
            }
        }
    }
}

/// Each step's output for the zero image, one image each.
type Steps = Arc<Vec<Vec<f32>>>;
/// The steps, with the conv kernels that computed them.
type Recorded = Option<(Vec<ConvKernel>, Steps)>;

/// The zero image's steps, recorded once per set of conv kernels (a model built on flex always
/// has the same ones; kept with them in case not).
#[derive(Debug, Default, Clone)]
pub(crate) struct ZeroImage(Arc<Mutex<Recorded>>);

impl ZeroImage {
    /// The steps for `kernels`, recorded first by `features(zeros, Rows::Record)` if they are not
    /// yet (`zeros`: one all-zero image shaped like `like`'s images).
    pub(crate) fn steps(&self, kernels: Vec<ConvKernel>, like: &Tensor<4>, features: impl FnOnce(Tensor<4>, &mut Rows)) -> Steps {
        let mut cache = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((k, steps)) = &*cache
            && *k == kernels
        {
            return steps.clone();
        }
        let [_, c, h, w] = like.dims();
        let mut record = Rows::Record(Vec::new());
        features(Tensor::zeros([1, c, h, w], &like.device()), &mut record);
        let Rows::Record(steps) = record else { unreachable!("recorded above") };
        let steps = Arc::new(steps);
        *cache = Some((kernels, steps.clone()));
        steps
    }
}
