//! Eigen-CAM (Bany Muhammad & Yeasin 2020) as pytorch-grad-cam computes it: the projection of
//! the target layer's activations on their first principal component (channels centred over
//! the positions first, as pytorch-grad-cam does). Class-agnostic: no score, no pass beyond the
//! image's own forward. The sign of a principal component is arbitrary; ours is the one that
//! correlates positively with the channels' sum ([`first_component`]).
//!
//! [`first_component`]: super::first_component

use super::projection::first_component;
use super::registry::{Cost, Method, MethodKind, MethodSpec, Teaching};
use super::{smoothing, Finish, MethodInput, MethodOutput, Saliency, Stats};
use crate::error::Result;

pub(super) static SPEC: MethodSpec = MethodSpec {
    name: "eigencam",
    display_name: "Eigen-CAM",
    kind: MethodKind::Cam,
    in_browser: true,
    summary: "Eigen-CAM: the activations' first principal component (class-agnostic; no pass beyond the forward)",
    aliases: &["eigen-cam"],
    options: &smoothing::AUG,
    target: None,
    cost: Cost::ACTIVATIONS,
    costly: false,
    teaching: Teaching {
        formula: "L = ReLU(X v₁), X = the activations as positions x channels, centred; v₁ its first right singular vector",
        paper: "Bany Muhammad, Yeasin. Eigen-CAM: Class Activation Map using Principal Components. IJCNN 2020 (arXiv 2008.00299)",
        passes: "none beyond the image's forward",
        versus_scorecam: "Shows the main direction of variation of the activations, the same for every class, with no scores at all.",
    },
    build: |o| smoothing::build(o, Method::EigenCam),
};

pub(super) fn run(input: &MethodInput<'_>) -> Result<MethodOutput> {
    let maps = &input.forwarded.maps;
    let map = first_component(&maps.data, maps.channels, maps.height * maps.width);
    Ok(MethodOutput::new(Saliency::LowRes { map, finish: Finish::NormaliseThenUpsample }, Stats::default()))
}
