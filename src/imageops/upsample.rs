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

/// Resizes one `h x w` map to `out_h x out_w` on the host.
pub fn resize_map(map: &[f32], h: usize, w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
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
}
