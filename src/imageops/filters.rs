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

#[cfg(test)]
mod tests {
    use super::*;

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
