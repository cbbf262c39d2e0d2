//! Principal components of a stack of channel maps, as pytorch-grad-cam takes them: the first
//! principal component's projection (`get_2d_projection`: EigenCAM, EigenGradCAM and every
//! `eigen_smooth`) and sigmoid-kernel PCA's (`get_2d_projection_kernel`: KPCA-CAM, through
//! scikit-learn's `KernelPCA`). Computed in f64 on the host: the matrices are positions x
//! positions (49 x 49 for Lite0, 196 x 196 for VGG16).

/// The first principal component's score at each position of `stack` (`channels` maps of `n`
/// positions each, channel-major): positions are the samples and channels the features, each
/// channel centred over the positions. A principal direction has no sign (LAPACK's choice
/// decides it in pytorch-grad-cam); ours loads positively on the channels' sum (`Σ_k v_k >= 0`),
/// so the projection correlates positively with the centred sum of the maps.
pub fn first_component(stack: &[f32], channels: usize, n: usize) -> Vec<f32> {
    let x = centred(stack, channels, n);
    // Positions x positions (or channels x channels where fewer): the same leading direction.
    let (vector, value, by_positions) = if n <= channels {
        let gram = gram(&x, channels, n, true);
        let (value, vector) = top_eigen(gram, n);
        (vector, value, true)
    } else {
        let gram = gram(&x, channels, n, false);
        let (value, vector) = top_eigen(gram, channels);
        (vector, value, false)
    };
    let mut projection: Vec<f64> = if by_positions {
        // X v = sigma u, sigma = sqrt(lambda)
        let sigma = value.max(0.0).sqrt();
        vector.iter().map(|u| u * sigma).collect()
    } else {
        (0..n).map(|i| (0..channels).map(|k| x[k * n + i] * vector[k]).sum()).collect()
    };
    // The sign: v . 1 = u . (X 1) / sigma, i.e. the projection against the centred channel sum.
    let row_sums: Vec<f64> = (0..n).map(|i| (0..channels).map(|k| x[k * n + i]).sum()).collect();
    let dot: f64 = projection.iter().zip(&row_sums).map(|(p, s)| p * s).sum();
    if dot < 0.0 {
        projection.iter_mut().for_each(|p| *p = -*p);
    }
    projection.into_iter().map(|p| p as f32).collect()
}

/// scikit-learn's `KernelPCA(n_components=1, kernel="sigmoid", gamma, coef0=1)` fitted on the
/// centred positions (pytorch-grad-cam's KPCA-CAM): `K = tanh(gamma X Xᵀ + coef0)`, centred in
/// feature space, its largest eigenvector scaled by the square root of its eigenvalue, with
/// `svd_flip`'s sign (the entry of largest magnitude positive). `gamma`: `None` is 1 / channels.
pub fn kernel_component(stack: &[f32], channels: usize, n: usize, gamma: Option<f64>, coef0: f64) -> Vec<f32> {
    let x = centred(stack, channels, n);
    let gamma = gamma.unwrap_or(1.0 / channels as f64);
    let mut k = gram(&x, channels, n, true);
    k.iter_mut().for_each(|v| *v = (gamma * *v + coef0).tanh());
    // KernelCenterer: K - 1K - K1 + 1K1, 1 the n x n matrix of 1/n.
    let col_means: Vec<f64> = (0..n).map(|j| (0..n).map(|i| k[i * n + j]).sum::<f64>() / n as f64).collect();
    let all_mean = col_means.iter().sum::<f64>() / n as f64;
    for i in 0..n {
        for j in 0..n {
            // K is symmetric: row i's mean is column i's.
            k[i * n + j] += all_mean - col_means[i] - col_means[j];
        }
    }
    let (value, mut vector) = top_eigen(k, n);
    // `_check_psd_eigenvalues` sets a non-positive leading eigenvalue to zero.
    let scale = if value > 0.0 { value.sqrt() } else { 0.0 };
    let largest = vector.iter().copied().fold(0f64, |m, v| if v.abs() > m.abs() { v } else { m });
    if largest < 0.0 {
        vector.iter_mut().for_each(|v| *v = -*v);
    }
    vector.into_iter().map(|v| (v * scale) as f32).collect()
}

/// `stack` (channel-major, NaN as 0, as pytorch-grad-cam zeroes them) in f64, each channel's
/// mean over the positions subtracted.
fn centred(stack: &[f32], channels: usize, n: usize) -> Vec<f64> {
    let mut x: Vec<f64> = stack[..channels * n].iter().map(|v| if v.is_nan() { 0.0 } else { *v as f64 }).collect();
    for row in x.chunks_exact_mut(n) {
        let mean = row.iter().sum::<f64>() / n as f64;
        row.iter_mut().for_each(|v| *v -= mean);
    }
    x
}

/// `X Xᵀ` over positions (`n x n`) or `Xᵀ X` over channels, X being positions x channels.
fn gram(x: &[f64], channels: usize, n: usize, positions: bool) -> Vec<f64> {
    if positions {
        let mut g = vec![0f64; n * n];
        for row in x.chunks_exact(n) {
            for i in 0..n {
                let xi = row[i];
                if xi != 0.0 {
                    for j in i..n {
                        g[i * n + j] += xi * row[j];
                    }
                }
            }
        }
        symmetrise(&mut g, n);
        g
    } else {
        let mut g = vec![0f64; channels * channels];
        for a in 0..channels {
            for b in a..channels {
                g[a * channels + b] = x[a * n..(a + 1) * n].iter().zip(&x[b * n..(b + 1) * n]).map(|(p, q)| p * q).sum();
            }
        }
        symmetrise(&mut g, channels);
        g
    }
}

fn symmetrise(g: &mut [f64], m: usize) {
    for i in 0..m {
        for j in 0..i {
            g[i * m + j] = g[j * m + i];
        }
    }
}

/// The largest (algebraic) eigenvalue of the symmetric `m x m` matrix `a` and a unit
/// eigenvector: cyclic Jacobi rotations up to 400 x 400 (exact to rounding, whatever the gap to
/// the second eigenvalue), shifted power iteration beyond.
pub fn top_eigen(a: Vec<f64>, m: usize) -> (f64, Vec<f64>) {
    if m == 0 {
        return (0.0, Vec::new());
    }
    if m <= 400 { jacobi_top(a, m) } else { power_top(a, m) }
}

fn jacobi_top(mut a: Vec<f64>, m: usize) -> (f64, Vec<f64>) {
    let mut v = vec![0f64; m * m];
    (0..m).for_each(|i| v[i * m + i] = 1.0);
    let total: f64 = a.iter().map(|x| x * x).sum();
    for _sweep in 0..100 {
        let off: f64 = (0..m).flat_map(|i| (0..m).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| a[i * m + j] * a[i * m + j]).sum();
        if off <= 1e-30 * total.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..m {
            for q in p + 1..m {
                let apq = a[p * m + q];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let theta = (a[q * m + q] - a[p * m + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..m {
                    let (akp, akq) = (a[k * m + p], a[k * m + q]);
                    a[k * m + p] = c * akp - s * akq;
                    a[k * m + q] = s * akp + c * akq;
                }
                for k in 0..m {
                    let (apk, aqk) = (a[p * m + k], a[q * m + k]);
                    a[p * m + k] = c * apk - s * aqk;
                    a[q * m + k] = s * apk + c * aqk;
                }
                for k in 0..m {
                    let (vkp, vkq) = (v[k * m + p], v[k * m + q]);
                    v[k * m + p] = c * vkp - s * vkq;
                    v[k * m + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let best = (0..m).max_by(|&i, &j| a[i * m + i].total_cmp(&a[j * m + j])).unwrap_or(0);
    (a[best * m + best], (0..m).map(|k| v[k * m + best]).collect())
}

/// Power iteration on `a + shift I` (the shift, a bound on the spectral radius, makes the
/// largest algebraic eigenvalue the largest in magnitude).
fn power_top(mut a: Vec<f64>, m: usize) -> (f64, Vec<f64>) {
    let shift = (0..m).map(|i| (0..m).map(|j| a[i * m + j].abs()).sum::<f64>()).fold(0f64, f64::max);
    (0..m).for_each(|i| a[i * m + i] += shift);
    let mut x = vec![1.0 / (m as f64).sqrt(); m];
    let mut value = 0.0;
    for _ in 0..20_000 {
        let y: Vec<f64> = (0..m).map(|i| a[i * m..(i + 1) * m].iter().zip(&x).map(|(p, q)| p * q).sum()).collect();
        let norm = y.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm == 0.0 {
            break;
        }
        let next: Vec<f64> = y.iter().map(|v| v / norm).collect();
        let change: f64 = next.iter().zip(&x).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
        x = next;
        value = norm;
        if change < 1e-13 {
            break;
        }
    }
    (value - shift, x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_finds_the_largest_eigenpair() {
        // eigenvalues 5, 2, -7 (the largest algebraic is 5, not the largest in magnitude)
        let q = [[0.6f64, 0.8, 0.0], [-0.8, 0.6, 0.0], [0.0, 0.0, 1.0]];
        let d = [5.0, 2.0, -7.0];
        let mut a = vec![0f64; 9];
        for i in 0..3 {
            for j in 0..3 {
                a[i * 3 + j] = (0..3).map(|k| q[i][k] * d[k] * q[j][k]).sum();
            }
        }
        for (value, vector) in [jacobi_top(a.clone(), 3), power_top(a, 3)] {
            assert!((value - 5.0).abs() < 1e-9, "{value}");
            let dot: f64 = (0..3).map(|i| vector[i] * q[i][0]).sum();
            assert!((dot.abs() - 1.0).abs() < 1e-9, "{vector:?}");
        }
    }

    #[test]
    fn the_first_component_of_a_rank_one_stack_is_its_pattern() {
        // channel k = (k + 1) * pattern: centred, every channel is a multiple of the centred pattern
        let pattern = [0.0f32, 1.0, 3.0, 0.5];
        let stack: Vec<f32> = (0..3).flat_map(|k| pattern.iter().map(move |p| p * (k + 1) as f32)).collect();
        let p = first_component(&stack, 3, 4);
        let mean = pattern.iter().sum::<f32>() / 4.0;
        let centred: Vec<f32> = pattern.iter().map(|v| v - mean).collect();
        let r = crate::metrics::pearson(&p, &centred);
        assert!(r > 0.999999, "{r} {p:?}");
        // the same through the channels' Gram (more positions than channels)
        let wide: Vec<f32> = (0..2).flat_map(|k| pattern.iter().map(move |p| p * (k + 2) as f32)).collect();
        let q = first_component(&wide, 2, 4);
        assert!(crate::metrics::pearson(&q, &centred) > 0.999999);
    }
}
