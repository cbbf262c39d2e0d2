//! Fuzz harnesses for every parser in this crate (docs/security.md, "Parsers and fuzzing").
//!
//! Each `#[test]` is a bolero target. Under `cargo test` (stable) it runs the files stored in
//! `tests/__fuzz__/NAME/corpus/` and then random inputs for one second
//! (`BOLERO_RANDOM_TEST_TIME_MS`, `BOLERO_RANDOM_ITERATIONS` change that); on nightly,
//! `cargo bolero test -p scorecam-formats --test fuzz fuzz::NAME` runs it under libFuzzer, which
//! grows the corpus. A target passes when nothing panics: every input is either read or refused
//! with an error (and what is read keeps the parser's invariants, checked below).
//!
//! Two kinds of target: the raw ones take the fuzzer's bytes as the file (what libFuzzer is good
//! at, starting from the stored corpus); the `_mutated` ones take a valid file and change it as
//! the input says (bytes flipped, the file cut, one JSON number or value replaced), which reaches
//! past the container's own checks in the one second the stable run has.

use std::sync::OnceLock;

use bolero::check;
use scorecam_formats::graph::{window_output, Program};
use scorecam_formats::onnx::{self, ImportOptions};
use scorecam_formats::weights::{decode_int8, decode_int8_keeping_matrices, Manifest};
use scorecam_formats::error::{MAX_MESSAGE, MAX_NAME};
use scorecam_formats::{labels, state_dict, Result};
use serde_json::Value;

const WEIGHTS: &[u8] = include_bytes!("../../../tests/fixtures/vgg_tiny/int8/vgg_tiny.safetensors");
const MANIFEST: &str = include_str!("../../../tests/fixtures/vgg_tiny/int8/vgg_tiny.json");
const ONNX: &[u8] = include_bytes!("../../../tests/fixtures/onnx/tiny_misc/tiny_misc.legacy.fixed.onnx");
const TORCH_ZIP: &[u8] = include_bytes!("fixtures/torch/tiny.pth");
const TORCH_LEGACY: &[u8] = include_bytes!("fixtures/torch/tiny_legacy.pth");

/// What was read, or None after checking that the error is a message a person can read: a
/// hostile file must not make it megabytes (a `pads` list of a billion zeros once did).
fn read<T>(result: Result<T>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            let message = e.to_string();
            assert!(message.len() <= MAX_NAME + MAX_MESSAGE + 32, "a {}-byte error: {}…", message.len(), &message[..message.floor_char_boundary(300)]);
            None
        }
    }
}

/// Changes to a valid file: bytes XORed at positions (modulo the length), then the file cut
/// to `keep` bytes (modulo its length + 1) when given.
#[derive(Debug, Clone, bolero::TypeGenerator)]
struct Mutation {
    flips: Vec<(u32, u8)>,
    keep: Option<u32>,
}

impl Mutation {
    fn apply(&self, file: &[u8]) -> Vec<u8> {
        let mut bytes = file.to_vec();
        for &(at, xor) in &self.flips {
            let n = bytes.len();
            bytes[at as usize % n] ^= xor;
        }
        if let Some(keep) = self.keep {
            bytes.truncate(keep as usize % (bytes.len() + 1));
        }
        bytes
    }
}

/// A JSON value to put somewhere in a valid document: the numbers that break size arithmetic
/// (0, 1, 2^32, 2^64 - 1, negatives, fractions), strings, nulls, empty containers.
#[derive(Debug, Clone, bolero::TypeGenerator)]
enum Replacement {
    Unsigned(u64),
    Edge(u8),
    Signed(i64),
    Float(f64),
    Text(String),
    Null,
    EmptyList,
    EmptyObject,
}

impl Replacement {
    fn value(&self) -> Value {
        const EDGES: [u64; 8] = [0, 1, 2, 65_536, 1 << 31, 1 << 32, usize::MAX as u64 / 2 + 1, u64::MAX];
        match self {
            Self::Unsigned(n) => (*n).into(),
            Self::Edge(i) => EDGES[*i as usize % EDGES.len()].into(),
            Self::Signed(n) => (*n).into(),
            Self::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Self::Text(s) => s.clone().into(),
            Self::Null => Value::Null,
            Self::EmptyList => Value::Array(vec![]),
            Self::EmptyObject => Value::Object(Default::default()),
        }
    }
}

/// Replaces the `k`-th leaf (number, string, bool, null; depth first, modulo their count) of
/// `doc` by each `(k, value)` in turn.
fn replace_leaves(doc: &mut Value, edits: &[(u32, Replacement)]) {
    fn leaves(v: &mut Value) -> Vec<&mut Value> {
        match v {
            Value::Array(items) => items.iter_mut().flat_map(leaves).collect(),
            Value::Object(map) => map.values_mut().flat_map(leaves).collect(),
            leaf => vec![leaf],
        }
    }
    for (k, replacement) in edits {
        let mut all = leaves(doc);
        if all.is_empty() {
            return;
        }
        let n = all.len();
        *all.swap_remove(*k as usize % n) = replacement.value();
    }
}

fn check_weights(bytes: &[u8]) {
    for decoded in [decode_int8(bytes, "fuzz.safetensors"), decode_int8_keeping_matrices(bytes, "fuzz.safetensors")] {
        if let Some(d) = read(decoded) {
            for (name, t) in &d.tensors.tensors {
                assert_eq!(t.shape.iter().product::<usize>(), t.data.len(), "{name}");
                assert!(t.data.iter().all(|v| v.is_finite()), "{name}");
            }
            for (name, (shape, rows)) in &d.tensors.int8 {
                assert_eq!(shape.iter().product::<usize>(), rows.values.len(), "{name}");
                assert_eq!(shape.first(), Some(&rows.scales.len()), "{name}");
            }
        }
    }
}

/// The int8 weight file (weights/format.rs): safetensors, its metadata, the graph it carries.
#[test]
fn int8_weights() {
    check!().for_each(check_weights);
}

#[test]
fn int8_weights_mutated() {
    check!().with_type::<Mutation>().for_each(|m| check_weights(&m.apply(WEIGHTS)));
}

fn check_manifest(text: &str) {
    if let Some(m) = read(Manifest::from_json(text, "fuzz.json")) {
        // What is read writes back as itself, and checks bytes without panicking.
        assert_eq!(Manifest::from_json(&m.to_json(), "again.json").unwrap(), m);
        read(m.verify(WEIGHTS));
        let _ = m.class_name(usize::MAX);
    }
}

/// The manifest beside each weight file (weights/manifest.rs).
#[test]
fn manifest() {
    check!().for_each(|bytes| {
        if let Ok(text) = std::str::from_utf8(bytes) {
            check_manifest(text);
        }
    });
}

#[test]
fn manifest_mutated() {
    check!().with_type::<Vec<(u32, Replacement)>>().for_each(|edits| {
        let mut doc: Value = serde_json::from_str(MANIFEST).unwrap();
        replace_leaves(&mut doc, edits);
        check_manifest(&doc.to_string());
    });
}

fn check_onnx(bytes: Vec<u8>, input_size: Option<usize>) {
    if let Some(imported) = read(onnx::import(bytes, "fuzz.onnx", &ImportOptions { input_size, layer: None })) {
        imported.program.check().expect("an imported program is checked");
        // What a converted file carries reads back.
        Program::from_json(&imported.program.to_json()).expect("a checked program reads back");
    }
}

/// ONNX models (onnx/): the protobuf, the metadata, planning the graph.
#[test]
fn onnx_model() {
    check!().for_each(|bytes| check_onnx(bytes.to_vec(), None));
}

#[test]
fn onnx_model_mutated() {
    check!().with_type::<(Mutation, Option<u16>)>().for_each(|(m, size)| check_onnx(m.apply(ONNX), size.map(usize::from)));
}

/// The graph a converted weight file carries (graph.rs): every number in it replaced in turn
/// (shapes, strides, pads, indices), checked shape by shape with checked arithmetic.
#[test]
fn graph_mutated() {
    static GRAPH: OnceLock<String> = OnceLock::new();
    let json = GRAPH.get_or_init(|| onnx::import(ONNX.to_vec(), "tiny_misc.onnx", &ImportOptions::default()).unwrap().program.to_json());
    check!().with_type::<Vec<(u32, Replacement)>>().for_each(|edits| {
        let mut doc: Value = serde_json::from_str(json).unwrap();
        replace_leaves(&mut doc, edits);
        if let Some(program) = read(Program::from_json(&doc.to_string())) {
            let _ = (program.layers(), program.largest_value_bytes(), program.quantised_tensors());
        }
    });
}

#[test]
fn graph_json() {
    check!().for_each(|bytes| {
        if let Ok(text) = std::str::from_utf8(bytes) {
            read(Program::from_json(text));
        }
    });
}

/// The output size of a convolution or pooling window, over any sizes.
#[test]
fn window_sizes() {
    check!().with_type::<(usize, usize, usize, usize, [usize; 2], bool)>().for_each(|&(n, k, s, d, pads, ceil)| {
        if let Some(out) = window_output(n, k, s, d, pads, ceil) {
            assert!(out >= 1 && out <= n.saturating_add(pads[0]).saturating_add(pads[1]));
        }
    });
}

fn check_state_dict(bytes: &[u8]) {
    if let Some(t) = read(state_dict::read(bytes, "fuzz.pth")) {
        for (name, t) in &t.tensors {
            assert_eq!(t.shape.iter().product::<usize>(), t.data.len(), "{name}");
        }
    }
}

/// PyTorch checkpoints and safetensors state dicts (torch.rs, state_dict.rs): zip and legacy
/// containers, the pickle subset.
#[test]
fn state_dict() {
    check!().for_each(check_state_dict);
}

#[test]
fn state_dict_mutated() {
    check!().with_type::<(Mutation, bool)>().for_each(|(m, legacy)| check_state_dict(&m.apply(if *legacy { TORCH_LEGACY } else { TORCH_ZIP })));
}

/// Class names from a labels file (labels.rs).
#[test]
fn labels_file() {
    check!().for_each(|bytes| {
        if let Ok(text) = std::str::from_utf8(bytes)
            && let Some(names) = read(labels::parse(text))
        {
            assert!(!names.is_empty() && names.iter().all(|n| !n.is_empty()));
        }
    });
}
