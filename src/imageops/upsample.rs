//! Bilinear resizing as PyTorch's `F.interpolate(mode="bilinear", align_corners=False)` (and
//! OpenCV's INTER_LINEAR when enlarging) computes it, written as a matrix per axis so the same
//! numbers come out on every backend and on the host.

/// `out x input` row-major matrix: row `o` holds the weights of the input samples for output `o`.
/// `align_corners = false` is PyTorch's default (half-pixel centres); `true` is what
/// `nn.UpsamplingBilinear2d` does (pytorch-grad-cam's Score-CAM masks).
pub fn bilinear_matrix(input: usize, output: usize, align_corners: bool) -> Vec<f32> {
    let mut m = vec![0f32; output * input];
    for o in 0..output {
        let src = if align_corners {
            if output > 1 { o as f64 * (input - 1) as f64 / (output - 1) as f64 } else { 0.0 }
        } else {
            ((o as f64 + 0.5) * (input as f64 / output as f64) - 0.5).max(0.0)
        };
        let i0 = (src.floor() as usize).min(input - 1);
        let i1 = if i0 < input - 1 { i0 + 1 } else { i0 };
        let l1 = (src - i0 as f64) as f32;
        m[o * input + i0] += 1.0 - l1;
        m[o * input + i1] += l1;
    }
    m
}

/// The most values a map, its resized copy, or a buffer made on the way may hold: 2^28 (1 GiB of
/// f32; the largest canvas the page draws). Below 2^32, so a product that passes is the same on
/// wasm32, where `usize` is 32 bits, as natively.
pub const MAX_MAP_VALUES: usize = 1 << 28;

/// Whether an `h x w` map of `len` values can be resized to `out_h x out_w`: every size at least 1,
/// `len == h * w`, and every product [`resize_map`] allocates (the map, the output, the row pass,
/// each axis' matrix) at most [`MAX_MAP_VALUES`], computed without overflow on any target.
pub fn check_resize(len: usize, h: usize, w: usize, out_h: usize, out_w: usize) -> Result<(), String> {
    if [h, w, out_h, out_w].contains(&0) {
        return Err(format!("a {h}x{w} map resized to {out_h}x{out_w}: every size must be at least 1"));
    }
    let product = |a: usize, b: usize| a.checked_mul(b).filter(|n| *n <= MAX_MAP_VALUES);
    let Some(values) = product(h, w) else {
        return Err(format!("a {h}x{w} map is larger than {MAX_MAP_VALUES} values"));
    };
    if len != values {
        return Err(format!("a {h}x{w} map holds {values} values, not {len}"));
    }
    if [(out_h, out_w), (h, out_w), (out_h, h), (out_w, w)].iter().any(|&(a, b)| product(a, b).is_none()) {
        return Err(format!("a {h}x{w} map resized to {out_h}x{out_w} needs more than {MAX_MAP_VALUES} values"));
    }
    Ok(())
}

/// [`resize_map`] of sizes that came from outside (the page, a file): refused with the reason
/// ([`check_resize`]) rather than a panic or a wrapped size.
pub fn try_resize_map(map: &[f32], h: usize, w: usize, out_h: usize, out_w: usize) -> Result<Vec<f32>, String> {
    check_resize(map.len(), h, w, out_h, out_w)?;
    Ok(resize_unchecked(map, h, w, out_h, out_w))
}

/// Resizes one `h x w` map to `out_h x out_w` on the host. Sizes the caller made itself (a
/// model's map to its input); panics with [`check_resize`]'s reason on others: use
/// [`try_resize_map`] for those.
pub fn resize_map(map: &[f32], h: usize, w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    try_resize_map(map, h, w, out_h, out_w).unwrap_or_else(|e| panic!("resize_map: {e}"))
}

fn resize_unchecked(map: &[f32], h: usize, w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    let rh = bilinear_matrix(h, out_h, false);
    let rw = bilinear_matrix(w, out_w, false);
    // rows first: tmp[i][x] = sum_j map[i][j] * rw[x][j], over the (at most two) non-zero taps
    // in order: the same sum as the dense one (a zero term changes no finite sum), without the
    // h * out_w * w multiplications that made drawing a 448 px heatmap take 70 ms in the page.
    let taps: Vec<Vec<(usize, f32)>> = (0..out_w).map(|x| (0..w).filter_map(|j| Some((j, rw[x * w + j])).filter(|t| t.1 != 0.0)).collect()).collect();
    let mut tmp = vec![0f32; h * out_w];
    for i in 0..h {
        let row = &map[i * w..(i + 1) * w];
        for (x, t) in taps.iter().enumerate() {
            tmp[i * out_w + x] = t.iter().map(|&(j, weight)| row[j] * weight).sum();
        }
    }
    let mut out = vec![0f32; out_h * out_w];
    for y in 0..out_h {
        let col = &rh[y * h..(y + 1) * h];
        for (i, weight) in col.iter().enumerate().filter(|(_, v)| **v != 0.0) {
            for x in 0..out_w {
                out[y * out_w + x] += weight * tmp[i * out_w + x];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_pytorch_on_a_known_case() {
        // torch: F.interpolate(torch.tensor([[[[0., 1.]]]]), size=(1, 4), mode="bilinear") -> 0, .25, .75, 1
        let out = resize_map(&[0.0, 1.0], 1, 2, 1, 4);
        assert_eq!(out, vec![0.0, 0.25, 0.75, 1.0]);
    }

    #[test]
    fn align_corners_hits_both_ends() {
        // torch: nn.UpsamplingBilinear2d(size=(1, 4))(tensor([[[[0., 3.]]]])) -> 0, 1, 2, 3
        let m = bilinear_matrix(2, 4, true);
        let out: Vec<f32> = m.chunks(2).map(|r| r[1] * 3.0).collect();
        assert_eq!(out, vec![0.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn rows_sum_to_one_and_constants_stay_constant() {
        for align_corners in [false, true] {
            let m = bilinear_matrix(7, 224, align_corners);
            for row in m.chunks(7) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            }
        }
        let out = resize_map(&[3.5; 49], 7, 7, 224, 224);
        assert!(out.iter().all(|v| (v - 3.5).abs() < 1e-5));
    }

    /// Sizes from the page (`renderHeatmap`, `resizeMap`) or a file: a map of 65536 x 65536 with
    /// no values (65536^2 wraps to 0 on wasm32) or of 2^32 x 2^32 (wraps natively), a size of 0,
    /// a product past 2^28: each refused with its reason, not a panic or a huge allocation
    /// (issue 35, 12).
    #[test]
    fn outside_sizes_are_refused_not_wrapped() {
        let cases: [(&[f32], [usize; 4], &str); 8] = [
            (&[], [65536, 65536, 16, 16], "larger than 268435456 values"),
            (&[0.0; 3], [2, 2, 4, 4], "holds 4 values, not 3"),
            (&[], [1 << 32, 1 << 32, 16, 16], "larger than"),
            (&[], [usize::MAX, 2, 16, 16], "larger than"),
            (&[1.0], [1, 1, 0, 4], "at least 1"),
            (&[], [0, 0, 4, 4], "at least 1"),
            (&[1.0], [1, 1, 1 << 16, 1 << 16], "needs more than"),
            (&[1.0; 4], [2, 2, 1, usize::MAX], "needs more than"),
        ];
        for (map, [h, w, oh, ow], says) in cases {
            let err = try_resize_map(map, h, w, oh, ow).unwrap_err();
            assert!(err.contains(says), "{h}x{w} -> {oh}x{ow}: {err}");
        }
        assert_eq!(try_resize_map(&[0.0, 1.0], 1, 2, 1, 4).unwrap(), [0.0, 0.25, 0.75, 1.0]);
        assert_eq!(try_resize_map(&[2.0], 1, 1, 1 << 14, 1 << 14).unwrap().len(), 1 << 28);
    }
}
