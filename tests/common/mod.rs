//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use scorecam::backend::Backend;
use scorecam::cam::{self, Explanation, Method, Reporter};
use scorecam::convert;
use scorecam::models::{architecture, ArchitectureSpec, Model};
use scorecam::weights::{encode_int8, sha256_hex, Manifest, NamedTensors, WeightsRef};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// ../shared beside the checkout (or $SCORECAM_SHARED).
pub fn shared() -> PathBuf {
    std::env::var_os("SCORECAM_SHARED").map(PathBuf::from).unwrap_or_else(|| repo().join("../shared"))
}

pub fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    (shape, npy.into_vec::<f32>().unwrap())
}

/// The library's Pearson correlation, with the lengths checked.
pub fn pearson(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    scorecam::metrics::pearson(a, b)
}

/// max |a - b| / max |b|: the "relative" error used for logits and activations.
pub fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// The backend the suite runs on: flex, or $SCORECAM_TEST_BACKEND.
pub fn backend() -> Backend {
    Backend::start(&std::env::var("SCORECAM_TEST_BACKEND").unwrap_or_else(|_| "flex".into())).unwrap()
}

/// The architecture-table row called `name`.
pub fn arch(name: &str) -> &'static ArchitectureSpec {
    architecture(name).unwrap()
}

/// Canonical f32 tensors from a source state_dict.
pub fn source_tensors(path: &Path, arch: &ArchitectureSpec) -> NamedTensors {
    convert::canonical_tensors(convert::read_state_dict(path).unwrap(), arch).unwrap()
}

/// The unquantised model and its int8 twin, both from the same source file; and the int8 file
/// with its manifest, to load it again.
pub fn f32_and_int8(path: &Path, arch: &ArchitectureSpec, backend: &Backend) -> (Model, Model, (Manifest, Vec<u8>)) {
    let tensors = source_tensors(path, arch);
    let bytes = encode_int8(&tensors, arch.name, None).unwrap();
    let target = convert::check_buildable(arch, None, &tensors).unwrap();
    let manifest = convert::manifest_for(arch, target, WeightsRef { file: "test.safetensors".into(), bytes: bytes.len() as u64, sha256: sha256_hex(&bytes) });
    let options = backend.build_options();
    let f32_model = Model::from_tensors(manifest.clone(), None, tensors, &options).unwrap();
    let int8_model = Model::load(manifest.clone(), &bytes, &options).unwrap();
    (f32_model, int8_model, (manifest, bytes))
}

pub fn explain(model: &Model, input: &[f32], class: Option<usize>, method: &Method) -> Explanation {
    pollster::block_on(cam::explain(model, input, class, method, &mut Reporter::silent())).unwrap()
}
