//! The geometry both the CPU kernels and the layers use, and nothing else: a convolution's shape,
//! the activation fused into it, the region of an image a Score-CAM mask reaches, and where a
//! model keeps its weights. A leaf: it imports nothing from the rest of `models`, nor Burn, so
//! the CPU kernels that use it run under Miri with it (crates/kernels-miri).

use serde::{Deserialize, Serialize};
use std::ops::Range;

// Written as compares and selects, which become one vector op each in wasm (`f32x4.pmax`,
// `f32x4.pmin`): `f32::max`'s NaN rule costs wasm scalar code, about 20x slower on a ReLU pass.
// NaN stays NaN, as in PyTorch.
#[inline(always)]
fn relu(v: f32) -> f32 {
    if v < 0.0 { 0.0 } else { v }
}

#[inline(always)]
fn relu6(v: f32) -> f32 {
    let v = relu(v);
    if v > 6.0 { 6.0 } else { v }
}

/// The activation that follows a convolution, applied by the layer itself so the CPU kernel
/// can fuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    #[default]
    None,
    Relu,
    /// min(max(x, 0), 6), EfficientNet-Lite's.
    Relu6,
}

impl Activation {
    /// In place, on host values.
    #[inline]
    pub fn apply(self, values: &mut [f32]) {
        match self {
            Self::None => {}
            Self::Relu => values.iter_mut().for_each(|v| *v = relu(*v)),
            Self::Relu6 => values.iter_mut().for_each(|v| *v = relu6(*v)),
        }
    }

    /// The activation as a clamp `[lo, hi]` (what `kernels::gemm::Epilogue` applies): the same
    /// comparisons as `relu` and `relu6`, so the same values.
    pub fn range(self) -> [f32; 2] {
        match self {
            Self::None => [f32::NEG_INFINITY, f32::INFINITY],
            Self::Relu => [0.0, f32::INFINITY],
            Self::Relu6 => [0.0, 6.0],
        }
    }
}

/// Where a model's weights live on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceWeights {
    /// f32, dequantised on the host at load (4 bytes per weight).
    #[default]
    F32,
    /// The file's int8 values and per-row scales, dequantised inside the matmul (1 byte per
    /// weight plus the scales) for every layer the matmul computes: all but depthwise
    /// convolutions, which stay f32 (they are small).
    Int8,
    /// On the CPU backend: convolutions f32 (our CPU kernels), the linear layers' weights as the
    /// file's int8 rows, dequantised as our kernel reads them (`kernels::linear`): the same values
    /// as `F32`, VGG16 in 183 MB instead of 553 MB. What the page's CPU workers hold.
    Int8Linear,
}

impl DeviceWeights {
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Int8 => "int8",
            Self::Int8Linear => "int8-linear",
        }
    }
}

/// The outputs of a window of `span` inputs, `stride` apart, `before` zeros of padding and `len`
/// outputs along one axis (a convolution's or a pool's, with ceil mode's last window counted in
/// `len`) that read any of inputs `inputs` (not empty).
pub fn reached_along(inputs: Range<usize>, span: usize, stride: usize, before: usize, len: usize) -> Range<usize> {
    // Output o reads inputs o * stride - before up to o * stride - before + span - 1.
    let end = ((inputs.end - 1 + before) / stride + 1).min(len);
    let first = (inputs.start + before + 1).saturating_sub(span).div_ceil(stride).min(end);
    first..end
}

/// How a convolution pads its input, as a backbone's code describes it; [`ConvShape::new`] turns
/// it into the zeros on each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    Valid,
    /// TF's SAME: the output is the input over the stride, rounded up, and where the padding is
    /// odd the extra zero goes at the end (bottom, right).
    Same,
    /// (top, bottom, left, right), as [`ConvShape::padding`].
    Explicit([usize; 4]),
}

/// A convolution's geometry at the model's input size: enough to time it alone and to tell
/// layers apart in a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConvShape {
    pub cin: usize,
    pub cout: usize,
    pub kernel: usize,
    pub stride: usize,
    pub groups: usize,
    /// (top, bottom, left, right) zeros around the input.
    pub padding: [usize; 4],
    /// The input's height and width.
    pub input: [usize; 2],
}

/// The rectangle of an image a Score-CAM mask leaves non-zero, or that such an input reaches in a
/// layer's output: rows `rows`, columns `cols`. Everything outside it is the zero image's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub rows: Range<usize>,
    pub cols: Range<usize>,
}

impl Region {
    pub const EMPTY: Region = Region { rows: 0..0, cols: 0..0 };

    /// Nothing in it.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() || self.cols.is_empty()
    }

    /// The smallest rectangle holding both.
    pub fn union(&self, other: &Region) -> Region {
        match (self.is_empty(), other.is_empty()) {
            (true, _) => other.clone(),
            (_, true) => self.clone(),
            _ => Region { rows: self.rows.start.min(other.rows.start)..self.rows.end.max(other.rows.end), cols: self.cols.start.min(other.cols.start)..self.cols.end.max(other.cols.end) },
        }
    }
}

impl ConvShape {
    /// The output region that reads any input pixel of `region` (through the kernel, stride and
    /// padding): its rows and its columns.
    pub fn reached(&self, region: &Region) -> Region {
        if region.is_empty() {
            return Region::EMPTY;
        }
        let [oh, ow] = self.output();
        let reached = Region { rows: self.reached_along(region.rows.clone(), self.padding[0], oh), cols: self.reached_along(region.cols.clone(), self.padding[2], ow) };
        if reached.is_empty() { Region::EMPTY } else { reached }
    }

    /// The outputs along one axis (`before` zeros of padding, `len` outputs) that read any of
    /// inputs `inputs`.
    fn reached_along(&self, inputs: Range<usize>, before: usize, len: usize) -> Range<usize> {
        reached_along(inputs, self.kernel, self.stride, before, len)
    }

    /// With `padding` resolved at `input`'s size.
    pub fn new(cin: usize, cout: usize, kernel: usize, stride: usize, groups: usize, padding: Padding, input: [usize; 2]) -> Self {
        let same = |size: usize| {
            let out = size.div_ceil(stride);
            let total = ((out - 1) * stride + kernel).saturating_sub(size);
            (total / 2, total - total / 2)
        };
        let padding = match padding {
            Padding::Valid => [0; 4],
            Padding::Same => {
                let (t, b) = same(input[0]);
                let (l, r) = same(input[1]);
                [t, b, l, r]
            }
            Padding::Explicit(sides) => sides,
        };
        Self { cin, cout, kernel, stride, groups, padding, input }
    }

    pub fn output(&self) -> [usize; 2] {
        let [t, b, l, r] = self.padding;
        [(self.input[0] + t + b - self.kernel) / self.stride + 1, (self.input[1] + l + r - self.kernel) / self.stride + 1]
    }

    /// The matmul's inner dimension: one column of im2col.
    pub fn depth(&self) -> usize {
        self.cin / self.groups * self.kernel * self.kernel
    }

    /// Grouped (depthwise) convolutions are not one matrix product; they always run direct.
    pub fn has_matmul(&self) -> bool {
        self.groups == 1
    }

    /// Bytes of one image's im2col matrix (f32).
    pub fn columns_bytes(&self) -> usize {
        let [h, w] = self.output();
        4 * self.depth() * h * w
    }

    /// Multiply-adds for one image.
    pub fn macs(&self) -> usize {
        let [h, w] = self.output();
        self.cout * self.depth() * h * w
    }
}
