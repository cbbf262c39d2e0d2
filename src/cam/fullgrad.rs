//! FullGrad (Srinivas & Fleuret 2019) as pytorch-grad-cam computes it: the input-gradient term
//! `|x ⊙ ∂y/∂x|` (each colour normalised), plus for every convolution with a bias its
//! bias-gradient term `|b ⊙ ∂y/∂z|`, z the layer's output before its activation, each channel
//! min-max normalised (1e-7) and resized to the input, all summed and normalised. No target
//! layer: every layer counts.
//!
//! Which biases: pytorch-grad-cam takes every `Conv2d` and `BatchNorm2d` with a bias (a batch
//! norm's `β - μγ/√(σ² + ε)`). Our models fold each batch norm into the convolution before it,
//! so a folded convolution's bias is that batch norm's and its output is the batch norm's:
//! VGG16's 13 convolution biases, EfficientNet-Lite0's 49 batch norms (its convolutions have
//! none). An ONNX graph is refused where a bias lies elsewhere (a batch norm after no
//! convolution, a dilated convolution, a convolution after the target layer); a convolution that
//! had its own bias before a batch norm is one layer here, two in pytorch-grad-cam.

use super::registry::{Cost, Method, MethodKind, MethodSpec, Passes, Teaching};
use super::{min_max, read_f32, smoothing, MethodInput, MethodOutput, Saliency, Stats, Target};
use crate::error::{Error, Result};
use crate::imageops::upsample::resize_map;
use crate::models::Activation;

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "fullgrad",
    display_name: "FullGrad",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "FullGrad (pytorch-grad-cam): |input ⊙ input gradient| plus every convolution's |bias ⊙ gradient| (folded batch norms'), normalised per channel and summed; one backward through the whole network",
    aliases: &["full-grad"],
    options: &smoothing::AUG,
    target: Some(Target::Logit),
    cost: Cost { forwards: Passes::ONE, head_forwards: Passes::NONE, backwards: Passes::ONE, gradients: true },
    costly: false,
    teaching: Teaching {
        formula: "L = ψ(|x ⊙ ∂y/∂x|) + Σ_layers Σ_c ψ(|b_c ⊙ ∂y/∂z_c|), ψ = per-channel min-max and resize",
        paper: "Srinivas, Fleuret. Full-Gradient Representation for Neural Network Visualization. NeurIPS 2019 (arXiv 1905.00780)",
        passes: "1 forward + 1 backward through the whole network (every layer's gradient)",
        versus_scorecam: "Sums the gradients at the input and at every layer's biases from one backward pass through the whole network, instead of weighting one layer's channels by masked-input scores.",
    },
    build: |o| smoothing::build(o, Method::FullGrad),
};

pub(super) async fn run(input: &MethodInput<'_>) -> Result<MethodOutput> {
    let (model, f) = (input.model, input.forwarded);
    let size = model.input_size();
    let plane = size * size;
    let x = f.input.clone().autodiff().require_grad();
    let (logits, probes) = model.network.probed_forward(x.clone()).map_err(|why| Error::Invalid(format!("FullGrad needs every bias in a convolution of the features: {why}")))?;
    let grads = input.target.scores(logits, input.class).sum().backward();
    let gx = read_f32(x.grad(&grads).ok_or_else(|| Error::Device("no gradient reached the input".into()))?).await?;
    let mut total = vec![0f32; plane];
    for (xs, gs) in f.image.chunks_exact(plane).zip(gx.chunks_exact(plane)) {
        let mut t: Vec<f32> = xs.iter().zip(gs).map(|(x, g)| (x * g).abs()).collect();
        min_max(&mut t, 1e-7);
        total.iter_mut().zip(&t).for_each(|(a, v)| *a += v);
    }
    for (conv, (leaf, output)) in model.network.convs().into_iter().zip(probes) {
        let [_, channels, h, w] = output.dims();
        let n = h * w;
        let post = read_f32(output.inner()).await?;
        let g = match leaf.grad(&grads) {
            Some(g) => read_f32(g).await?,
            None => continue,
        };
        let bias = read_f32(conv.bias()).await?;
        let mut low = vec![0f32; n];
        for (k, b) in bias.iter().enumerate().take(channels) {
            let r = k * n..(k + 1) * n;
            // the gradient before the activation, from the one after it and the output's value
            let mut term: Vec<f32> = g[r.clone()].iter().zip(&post[r]).map(|(g, z)| (b * g * derivative(conv.activation, *z)).abs()).collect();
            min_max(&mut term, 1e-7);
            low.iter_mut().zip(&term).for_each(|(a, v)| *a += v);
        }
        // Resizing is linear: the sum of the resized channels is the resized sum.
        total.iter_mut().zip(resize_map(&low, h, w, size, size)).for_each(|(a, v)| *a += v);
    }
    let stats = Stats { forwards: 1, batches: 1, backwards: 1, ..Stats::default() };
    Ok(MethodOutput::new(Saliency::Map(total), stats))
}

/// The activation's derivative at an output value (PyTorch's: 0 where ReLU's input was 0, and
/// ReLU6's 0 or 6).
fn derivative(activation: Activation, output: f32) -> f32 {
    match activation {
        Activation::None => 1.0,
        Activation::Relu => f32::from(u8::from(output > 0.0)),
        Activation::Relu6 => f32::from(u8::from(output > 0.0 && output < 6.0)),
    }
}
