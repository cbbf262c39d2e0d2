//! Progress, cancellation and yielding, passed into the core by whoever drives it: the CLI's
//! progress bar, the page's callback (which also hands over the browser's event loop between
//! batches), or nothing at all in tests.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use super::maps::{finish_map, min_max, saliency_from_weights, Finish};
use super::FeatureMaps;
use crate::error::{Error, Result};

/// What a method knows part-way through.
#[derive(Debug)]
pub enum Partial<'a> {
    /// Channel weights known so far (0 for channels not yet scored).
    Weights { weights: &'a [f32], finish: Finish },
    /// A map at the target layer's resolution and how it is finished (Group-CAM's).
    LowRes { map: &'a [f32], finish: Finish },
    /// A map at input resolution (unnormalised).
    Map(&'a [f32]),
    /// Nothing drawable yet.
    Nothing,
}

/// Progress of a running explanation, reported between batches.
#[derive(Debug)]
pub struct Progress<'a> {
    pub done: usize,
    pub total: usize,
    pub partial: Partial<'a>,
}

impl Progress<'_> {
    /// The map known so far (`size x size`, in [0, 1]), if the method has one.
    pub fn partial_map(&self, maps: &FeatureMaps, size: usize) -> Option<Vec<f32>> {
        match &self.partial {
            Partial::Weights { weights, finish } => Some(saliency_from_weights(maps, weights, *finish, size)),
            Partial::LowRes { map, finish } => Some(finish_map(map.to_vec(), maps.height, maps.width, *finish, size)),
            Partial::Map(map) => {
                let mut m = map.to_vec();
                min_max(&mut m, 0.0);
                Some(m)
            }
            Partial::Nothing => None,
        }
    }
}

/// Return `false` to cancel between batches.
pub type ProgressFn<'a> = dyn FnMut(&Progress<'_>) -> bool + 'a;

/// Hands the host's event loop a turn (the browser: a macrotask, so the page can paint and take
/// input while the CPU backend computes synchronously).
pub type YieldFn = fn() -> Pin<Box<dyn Future<Output = ()>>>;

/// Counts that show what a method cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Forward passes run (images, not batches): the masked (or noisy, or blurred) inputs, or
    /// for a gradient method the one pass its backward starts from.
    pub forwards: usize,
    pub batches: usize,
    /// Channels skipped because their map is constant (official Score-CAM).
    pub skipped_constant: usize,
    /// Passes of the head alone, from the target layer's activations to the logits (AblationCAM's
    /// ablated activations).
    #[serde(default)]
    pub head_forwards: usize,
    /// Backward passes (through the head, or through the network for input gradients).
    #[serde(default)]
    pub backwards: usize,
}

/// Where a running method reports to: an optional progress callback that can cancel, and an
/// optional way to yield to the host between batches.
#[derive(Default)]
pub struct Reporter<'a> {
    on_progress: Option<&'a mut ProgressFn<'a>>,
    yield_now: Option<YieldFn>,
}

impl<'a> Reporter<'a> {
    /// Reports to `on_progress`.
    pub fn new(on_progress: &'a mut ProgressFn<'a>) -> Self {
        Self { on_progress: Some(on_progress), yield_now: None }
    }

    /// Reports nowhere and never cancels.
    pub fn silent() -> Self {
        Self::default()
    }

    /// Also yields to the host after every report.
    pub fn yielding(mut self, yield_now: Option<YieldFn>) -> Self {
        self.yield_now = yield_now;
        self
    }

    /// Reports `progress`; `Err(Cancelled)` if the callback said stop. Then yields.
    pub async fn report(&mut self, progress: Progress<'_>) -> Result<()> {
        if let Some(callback) = self.on_progress.as_mut()
            && !callback(&progress)
        {
            return Err(Error::Cancelled);
        }
        pause(self.yield_now).await;
        Ok(())
    }
}

/// Yields to the host if there is a way to.
pub async fn pause(yield_now: Option<YieldFn>) {
    if let Some(y) = yield_now {
        y().await;
    }
}
