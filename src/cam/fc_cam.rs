//! CAM (Zhou et al. 2016), as torch-cam computes it: for a network whose head is global average
//! pooling and one linear layer, each channel's weight is the class's row of that layer, and the
//! map keeps its negative evidence (no ReLU) before the min-max. With another score than the
//! logit (`--target`), the weights are that score's gradient with respect to the pooled
//! features, which for the logit is exactly the row. Any other head is refused with what it is.

use burn::tensor::{Tensor, TensorData};

use super::registry::{Cost, Method, MethodKind, MethodSpec, Teaching};
use super::{read_f32, Finish, MethodInput, MethodOutput, Saliency, Stats, Target};
use crate::error::{Error, Result};

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "cam",
    display_name: "CAM",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "CAM (torch-cam): each channel weighted by the classifier's weight for the class; needs a head of global average pooling and one linear layer (EfficientNet-Lite0 and such ONNX models, not VGG16)",
    aliases: &[],
    options: &[],
    target: Some(Target::Logit),
    cost: Cost { forwards: super::registry::Passes::NONE, head_forwards: super::registry::Passes::ONE, backwards: super::registry::Passes::ONE, gradients: true },
    costly: false,
    teaching: Teaching {
        formula: "w_k = W_{c,k}, the linear layer's weight from channel k's average to class c; L = minmax(Σ_k w_k A_k) (no ReLU)",
        paper: "Zhou, Khosla, Lapedriza, Oliva, Torralba. Learning Deep Features for Discriminative Localization. CVPR 2016 (arXiv 1512.04150)",
        passes: "none: the weights are the classifier's (one backward through the linear layer reads them)",
        versus_scorecam: "Reads each channel's weight off the classifier itself, which only a network ending in global average pooling and one linear layer allows.",
    },
    build: |_| Ok(Method::Cam),
};

pub(super) async fn run(input: &MethodInput<'_>) -> Result<MethodOutput> {
    let model = input.model;
    let linear = model
        .network
        .pooled_linear()
        .map_err(|why| Error::Invalid(format!("CAM needs a network whose head is global average pooling followed by one linear layer: {why}. Grad-CAM generalises CAM to any head")))?;
    let maps = &input.forwarded.maps;
    let n = (maps.height * maps.width) as f32;
    let pooled: Vec<f32> = (0..maps.channels).map(|k| maps.channel(k).iter().sum::<f32>() / n).collect();
    let x = Tensor::<2>::from_data(TensorData::new(pooled, [1, maps.channels]), &model.device).autodiff().require_grad();
    let grads = input.target.scores(linear.forward(x.clone()), input.class).sum().backward();
    let weights = read_f32(x.grad(&grads).ok_or_else(|| Error::Device("no gradient reached the pooled features".into()))?).await?;
    let stats = Stats { head_forwards: 1, backwards: 1, ..Stats::default() };
    Ok(MethodOutput::new(Saliency::Channels { weights, finish: Finish::SignedNormaliseThenUpsample }, stats))
}
