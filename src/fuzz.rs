//! Fuzz harnesses for the parsers that live beside Burn (the Burn-free ones are in
//! crates/formats/tests/fuzz.rs; docs/security.md lists both). Each `#[test]` is a bolero target:
//! under `cargo test` it runs the stored corpus (`src/__fuzz__/fuzz__NAME/corpus/`) and then
//! random inputs for one second; on nightly, `cargo bolero test --lib fuzz::NAME` runs it under
//! libFuzzer. A target passes when nothing panics and what is accepted keeps its invariants.

use bolero::check;

use crate::cam::Method;
use crate::eval::dataset::{parse_boxes, parse_labels, Shard};
use crate::image_input::{self, MAX_PIXELS};
use crate::imageops::upsample::{try_resize_map, MAX_MAP_VALUES};
use crate::session::ExplainRequest;

const PNG: &[u8] = include_bytes!("../tests/fixtures/vgg_tiny/input.png");
const JPEG: &[u8] = include_bytes!("../tests/fixtures/exif_orientation6.jpg");

/// A valid image with bytes XORed at positions (modulo its length), then cut to `keep` bytes.
#[derive(Debug, Clone, bolero::TypeGenerator)]
struct Mutation {
    jpeg: bool,
    flips: Vec<(u16, u8)>,
    keep: Option<u16>,
}

fn check_decode(bytes: &[u8]) {
    if let Ok(img) = image_input::decode(bytes, "fuzz") {
        assert!(img.width() >= 1 && img.height() >= 1 && img.width() as u64 * img.height() as u64 <= MAX_PIXELS);
    }
}

/// `image_input::decode`: JPEG, PNG and WebP from bytes, the size read from the header first.
#[test]
fn image_decode() {
    check!().for_each(check_decode);
}

#[test]
fn image_decode_mutated() {
    check!().with_type::<Mutation>().for_each(|m| {
        let mut bytes = if m.jpeg { JPEG } else { PNG }.to_vec();
        for &(at, xor) in &m.flips {
            let n = bytes.len();
            bytes[at as usize % n] ^= xor;
        }
        if let Some(keep) = m.keep {
            bytes.truncate(keep as usize % (bytes.len() + 1));
        }
        check_decode(&bytes);
    });
}

/// `image_input::from_rgba`: a canvas' pixels and the size the page says they have.
#[test]
fn image_from_rgba() {
    check!().with_type::<(Vec<u8>, u32, u32)>().for_each(|(rgba, w, h)| {
        if let Ok(img) = image_input::from_rgba(rgba, *w, *h) {
            assert_eq!(img.as_raw().len() * 4, rgba.len() * 3);
        }
    });
}

/// labels.csv (`eval`, `accuracy`) and its boxes. The folder does not exist: a row with boxes
/// and no size is refused, not read.
#[test]
fn labels_csv() {
    let dir = std::path::Path::new("/nonexistent/scorecam-fuzz");
    check!().for_each(|bytes| {
        let Ok(text) = std::str::from_utf8(bytes) else { return };
        if let Ok(samples) = parse_labels(text, dir) {
            for s in samples {
                assert!(s.boxes.iter().all(|b| [b.x1, b.y1, b.x2, b.y2].iter().all(|v| v.is_finite())));
                assert!(s.width.is_finite() && s.height.is_finite());
            }
        }
        let _ = parse_boxes(text);
    });
}

/// `--shard`: I/N, N or auto with the index from Slurm's or Kubernetes' variables.
#[test]
fn shard() {
    check!().with_type::<(String, Option<String>, Option<String>, Option<String>, Option<String>)>().for_each(|(arg, id, min, count, index)| {
        let env = |name: &str| match name {
            "SLURM_ARRAY_TASK_ID" => id.clone(),
            "SLURM_ARRAY_TASK_MIN" => min.clone(),
            "SLURM_ARRAY_TASK_COUNT" => count.clone(),
            "JOB_COMPLETION_INDEX" => index.clone(),
            _ => None,
        };
        for s in [arg.as_str(), "auto", "4"] {
            if let Ok(shard) = Shard::parse_with_env(s, &env) {
                assert!(shard.index < shard.count);
            }
        }
    });
}

/// What the page and the wasm API send as a request (`{class, method, options}`, JSON), read
/// as the CLI and the page read it, and the method built from it.
#[test]
fn explain_request() {
    check!().for_each(|bytes| {
        if let Ok(request) = serde_json::from_slice::<ExplainRequest>(bytes)
            && let Ok(method) = request.method()
        {
            let _ = (method.name(), method.display_name(), method.spec());
        }
    });
}

/// Every method's options set to any value (NaN, infinities, huge counts): refused outside the
/// range the registry declares, never a panic.
#[test]
fn method_options() {
    check!().with_type::<(u8, Vec<(u8, f64)>)>().for_each(|(m, values)| {
        let spec = crate::cam::METHODS[*m as usize % crate::cam::METHODS.len()];
        let options = values
            .iter()
            .map(|(k, v)| match spec.options.get(*k as usize) {
                Some(o) => (o.name.to_string(), *v),
                None => (format!("option{k}"), *v),
            })
            .collect();
        if let Ok(method) = spec.with_options(&options) {
            let _ = Method::with_options(method.name(), &options);
        }
    });
}

/// `resize_map` on the sizes the page can send (`renderHeatmap`, `resizeMap`: u32 from JS, the
/// wasm32 usize): every product is checked, and only sizes whose every product fits in 2^28 (so
/// in wasm32's usize) are resized. Half the sizes drawn are small (below 64), half any u32;
/// accepted sizes that would allocate more than 2^16 values are skipped, not resized.
#[test]
fn resize_map_sizes() {
    let size = |v: u32| if v & 1 == 0 { (v >> 1) as usize % 64 } else { v as usize };
    check!().with_type::<(u32, u32, u32, u32, u16)>().for_each(|&(h, w, oh, ow, len)| {
        let (h, w, oh, ow) = (size(h), size(w), size(oh), size(ow));
        let products = [(h, w), (oh, ow), (h, ow), (oh, h), (ow, w)].map(|(a, b)| a as u64 * b as u64);
        let fits = [h, w, oh, ow].iter().all(|&v| v > 0) && products.iter().all(|&p| p <= MAX_MAP_VALUES as u64);
        let small = fits && products.iter().all(|&p| p <= 1 << 16);
        // the right length half the time where it is small, else any length
        let map = vec![0.5f32; if small && len % 2 == 0 { h * w } else { len as usize % 4096 }];
        let valid = fits && map.len() as u64 == products[0];
        if valid && !small {
            return;
        }
        match try_resize_map(&map, h, w, oh, ow) {
            Ok(out) => {
                assert!(valid, "{h}x{w} -> {oh}x{ow} from {} values", map.len());
                assert_eq!(out.len(), oh * ow);
                assert!(out.iter().all(|v| (v - 0.5).abs() < 1e-5));
            }
            Err(e) => assert!(!valid, "{h}x{w} -> {oh}x{ow}: {e}"),
        }
    });
}
