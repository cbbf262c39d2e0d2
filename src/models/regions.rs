//! The part of an image a Score-CAM mask leaves at zero, through a whole network
//! (`kernels::Skip` does it for one layer). A masked input is zero outside its mask's rectangle
//! of rows and columns ([`Region`]), so each layer's output is the zero image's outside the
//! region the input reaches through the layers before: that is copied from one recorded forward
//! of the zero image instead of computed (by every kernel outside the reached rows; by Winograd
//! tiles outside the reached columns too). Every backbone runs its features through
//! [`Regions`], step by step, and carries each value's [`Reach`] beside it.

use std::sync::{Arc, Mutex};

use burn::tensor::Tensor;

use super::device::host_image;
use super::geometry::{ConvShape, Region};
use super::kernels::Skip;
use super::layers::ConvKernel;

/// Where a value of a masked forward may differ from the zero image's, one region per image;
/// `None` where that is not tracked (not a masked forward, or after an operation that mixes
/// positions, such as squeeze-excite's global pooling): then anywhere.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Reach(Option<Vec<Region>>);

impl Reach {
    /// Not tracked: the value may differ anywhere.
    pub(crate) const ANYWHERE: Reach = Reach(None);

    /// Tracked, one region per image.
    pub(crate) fn from_regions(regions: Vec<Region>) -> Reach {
        Reach(Some(regions))
    }

    /// After a convolution, or a pooling window, of `shape`.
    pub(crate) fn through(&self, shape: &ConvShape) -> Reach {
        Reach(self.0.as_ref().map(|regions| regions.iter().map(|r| shape.reached(r)).collect()))
    }

    /// After a 2x2 pool with stride 2 (VGG's): an output pixel is the zero image's wherever its
    /// four input pixels are.
    pub(crate) fn pool_2x2(&self) -> Reach {
        let half = |r: &Region| if r.is_empty() { Region::EMPTY } else { Region { rows: r.rows.start / 2..r.rows.end.div_ceil(2), cols: r.cols.start / 2..r.cols.end.div_ceil(2) } };
        Reach(self.0.as_ref().map(|regions| regions.iter().map(half).collect()))
    }

    /// Where either value may differ (their sum, product or concatenation).
    pub(crate) fn union(&self, other: &Reach) -> Reach {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) if a.len() == b.len() => Reach(Some(a.iter().zip(b).map(|(a, b)| a.union(b)).collect())),
            _ => Reach::ANYWHERE,
        }
    }

    /// The regions, where tracked.
    pub(crate) fn regions(&self) -> Option<&[Region]> {
        self.0.as_deref()
    }
}

/// How a forward treats the region a mask leaves at zero (its rows, and for Winograd its
/// columns), step by step (a convolution, or a block run as one).
pub(crate) enum Regions<'a> {
    /// All computed.
    All,
    /// All computed, and each step's output for the first image recorded: run on the zero image,
    /// what `Masked` copies.
    Record(Vec<Vec<f32>>),
    /// Images zero outside `input`, one region each: each step computes the region its input
    /// reaches, the rest copied from the recorded steps.
    Masked { input: Vec<Region>, recorded: &'a [Vec<f32>], step: usize },
    /// All computed, under autodiff, a zero leaf added to each step's output: its gradient is the
    /// gradient at that output (FullGrad's bias gradients). Each step's (leaf, output).
    Probe(Vec<(Tensor<4>, Tensor<4>)>),
}

impl Regions<'_> {
    /// Where the network's input may differ from the zero image: the masks' regions in a masked
    /// forward.
    pub(crate) fn input_reach(&self) -> Reach {
        match self {
            Regions::Masked { input, .. } => Reach(Some(input.clone())),
            _ => Reach::ANYWHERE,
        }
    }

    /// Runs one step, `run(skip)`, on an input that reaches `reach`; its regions follow `shape`
    /// (its strided convolution's, for a block). Returns the output and where it reaches; `None`
    /// where `run` declines (then the step counts for nothing, in the record as in the masked
    /// forward).
    pub(crate) fn step(&mut self, shape: &ConvShape, reach: &Reach, run: impl FnOnce(Option<Skip>) -> Option<Tensor<4>>) -> Option<(Tensor<4>, Reach)> {
        match self {
            Regions::All => Some((run(None)?, Reach::ANYWHERE)),
            Regions::Record(steps) => {
                let out = run(None)?;
                steps.push(host_image(&out).unwrap_or_default());
                Some((out, Reach::ANYWHERE))
            }
            Regions::Probe(probes) => {
                let out = run(None)?;
                let leaf = Tensor::<4>::zeros(out.dims(), &out.device()).autodiff().require_grad();
                let out = out + leaf.clone();
                probes.push((leaf, out.clone()));
                Some((out, Reach::ANYWHERE))
            }
            Regions::Masked { recorded, step, .. } => {
                let reached = reach.through(shape);
                let background = recorded.get(*step).map_or(&[][..], |b| &b[..]);
                // (No recorded output: the step did not run on flex, and computes all its rows;
                // an input reaching anywhere computes them all too.)
                let skip = reached.regions().filter(|_| !background.is_empty()).map(|regions| Skip { regions, background });
                let out = run(skip)?;
                *step += 1;
                Some((out, reached))
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
    /// The steps for `kernels`, recorded first by `features(zeros, Regions::Record)` if they are
    /// not yet (`zeros`: one all-zero image shaped like `like`'s images).
    pub(crate) fn steps(&self, kernels: Vec<ConvKernel>, like: &Tensor<4>, features: impl FnOnce(Tensor<4>, &mut Regions)) -> Steps {
        let mut cache = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((k, steps)) = &*cache
            && *k == kernels
        {
            return steps.clone();
        }
        let [_, c, h, w] = like.dims();
        let mut record = Regions::Record(Vec::new());
        features(Tensor::zeros([1, c, h, w], &like.device()), &mut record);
        let Regions::Record(steps) = record else { unreachable!("recorded above") };
        let steps = Arc::new(steps);
        *cache = Some((kernels, steps.clone()));
        steps
    }
}
