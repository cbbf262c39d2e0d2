//! The Gaussian blur RISE's evaluation uses for insertion (and Meaningful Perturbation for its
//! perturbation): `gkern(klen=11, nsig=5)`, i.e. scipy's `gaussian_filter` of an 11x11 delta with
//! sigma 5 (truncate 4, `reflect` edges), applied per channel with zero padding.

/// The `klen x klen` kernel, row-major; it sums to 1.
pub fn rise_kernel(klen: usize, sigma: f64) -> Vec<f32> {
    let radius = (4.0 * sigma + 0.5) as i64;
    let weights: Vec<f64> = (-radius..=radius).map(|x| (-0.5 * (x * x) as f64 / (sigma * sigma)).exp()).collect();
    let total: f64 = weights.iter().sum();
    let n = klen as i64;
    // scipy's `reflect` mode: (d c b a | a b c d | d c b a), period 2n
    let reflect = |i: i64| {
        let m = i.rem_euclid(2 * n);
        if m < n { m } else { 2 * n - 1 - m }
    };
    let centre = n / 2;
    let k1: Vec<f64> = (0..n)
        .map(|i| (-radius..=radius).filter(|j| reflect(i + j) == centre).map(|j| weights[(j + radius) as usize] / total).sum())
        .collect();
    let mut k = Vec::with_capacity(klen * klen);
    for a in &k1 {
        for b in &k1 {
            k.push((a * b) as f32);
        }
    }
    k
}

/// Blurs each `size x size` plane of `image` with `kernel` (`klen x klen`), zero-padded.
pub fn blur_planes(image: &[f32], size: usize, kernel: &[f32]) -> Vec<f32> {
    let klen = (kernel.len() as f64).sqrt() as usize;
    let r = (klen / 2) as isize;
    let s = size as isize;
    let mut out = vec![0f32; image.len()];
    for (plane, dst) in image.chunks_exact(size * size).zip(out.chunks_exact_mut(size * size)) {
        for y in 0..s {
            for x in 0..s {
                let mut acc = 0f32;
                for ky in 0..klen as isize {
                    let yy = y + ky - r;
                    if !(0..s).contains(&yy) {
                        continue;
                    }
                    for kx in 0..klen as isize {
                        let xx = x + kx - r;
                        if (0..s).contains(&xx) {
                            acc += kernel[(ky * klen as isize + kx) as usize] * plane[(yy * s + xx) as usize];
                        }
                    }
                }
                dst[(y * s + x) as usize] = acc;
            }
        }
    }
    out
}

/// RISE's insertion substrate: `blur_planes` with `rise_kernel(11, 5)`.
pub fn rise_blur(image: &[f32], size: usize) -> Vec<f32> {
    blur_planes(image, size, &rise_kernel(11, 5.0))
}

/// kornia's `get_gaussian_kernel1d(ksize, sigma)`: `exp(-x² / 2σ²)` at `x = i - ksize / 2`
/// (shifted by half a pixel for an even size), normalised to sum 1.
pub fn gaussian_kernel1d(ksize: usize, sigma: f64) -> Vec<f32> {
    let half = (ksize / 2) as f64;
    let even = if ksize.is_multiple_of(2) { 0.5 } else { 0.0 };
    let g: Vec<f64> = (0..ksize).map(|i| i as f64 - half + even).map(|x| (-x * x / (2.0 * sigma * sigma)).exp()).collect();
    let total: f64 = g.iter().sum();
    g.into_iter().map(|v| (v / total) as f32).collect()
}

/// Blurs each `size x size` plane of `image` with the separable kernel `k1` along both axes,
/// `reflect`-padded as torch's `F.pad(mode="reflect")` (the edge not repeated): kornia's
/// `gaussian_blur2d` with its default border (Group-CAM's blur).
pub fn blur_planes_reflect(image: &[f32], size: usize, k1: &[f32]) -> Vec<f32> {
    let r = (k1.len() / 2) as isize;
    let s = size as isize;
    let reflect = |i: isize| -> usize {
        let period = 2 * (s - 1).max(1);
        let m = i.rem_euclid(period);
        (if m < s { m } else { period - m }) as usize
    };
    let mut out = vec![0f32; image.len()];
    let mut rows = vec![0f32; size * size];
    for (plane, dst) in image.chunks_exact(size * size).zip(out.chunks_exact_mut(size * size)) {
        for y in 0..size {
            let row = &plane[y * size..(y + 1) * size];
            for x in 0..s {
                rows[y * size + x as usize] = k1.iter().enumerate().map(|(t, w)| w * row[reflect(x + t as isize - r)]).sum();
            }
        }
        for y in 0..s {
            for x in 0..size {
                dst[y as usize * size + x] = k1.iter().enumerate().map(|(t, w)| w * rows[reflect(y + t as isize - r) * size + x]).sum();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_padding_mirrors_without_the_edge() {
        // [1, 2, 3] with a 3-tap box: edges see 2, 1, 2 and 2, 3, 2 (torch's reflect)
        let k = [1.0 / 3.0; 3];
        let out = blur_planes_reflect(&[1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0], 3, &k);
        assert!((out[0] - 5.0 / 3.0).abs() < 1e-6 && (out[2] - 7.0 / 3.0).abs() < 1e-6, "{out:?}");
        let g = gaussian_kernel1d(51, 50.0);
        assert!((g.iter().sum::<f32>() - 1.0).abs() < 1e-6 && (g[0] - g[50]).abs() < 1e-9 && g[25] > g[0]);
    }

    #[test]
    fn kernel_sums_to_one_and_is_symmetric() {
        let k = rise_kernel(11, 5.0);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!((k[0] - k[120]).abs() < 1e-9 && (k[5] - k[55]).abs() < 1e-9);
        // reflect mode folds the tails back, so the kernel is flatter than a truncated Gaussian
        assert!(k[60] > k[0] && k[0] > 0.0);
    }

    #[test]
    fn blur_keeps_a_constant_interior_and_darkens_zero_padded_edges() {
        let img = vec![1f32; 32 * 32];
        let b = rise_blur(&img, 32);
        assert!((b[16 * 32 + 16] - 1.0).abs() < 1e-5);
        assert!(b[0] < 0.5);
    }
}
