//! Symmetric int8 quantisation with one scale per output channel (row = first dimension).

/// An int8 tensor with one f32 scale per row (output channel).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedRows {
    pub values: Vec<i8>,
    pub scales: Vec<f32>,
}

/// Quantises `data` viewed as `rows` rows: q = round(w / s), s = max|w_row| / 127.
pub fn quantize_rows(data: &[f32], rows: usize) -> QuantizedRows {
    assert!(rows > 0 && data.len().is_multiple_of(rows), "data must split into whole rows");
    let cols = data.len() / rows;
    let mut values = Vec::with_capacity(data.len());
    let mut scales = Vec::with_capacity(rows);
    for row in data.chunks_exact(cols) {
        let max_abs = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        // An all-zero row keeps scale 0 (dequantises to exact zeros).
        let scale = max_abs / 127.0;
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        values.extend(row.iter().map(|v| (v * inv).round().clamp(-127.0, 127.0) as i8));
        scales.push(scale);
    }
    QuantizedRows { values, scales }
}

/// The inverse of [`quantize_rows`]: w = q * s.
pub fn dequantize_rows(values: &[i8], scales: &[f32]) -> Vec<f32> {
    let cols = values.len() / scales.len().max(1);
    // Row by row into one allocation: a flat_map would grow the vector as it went (fc6: 411 MB).
    let mut out = Vec::with_capacity(values.len());
    for (row, &s) in values.chunks_exact(cols.max(1)).zip(scales) {
        out.extend(row.iter().map(|&q| q as f32 * s));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_error_is_at_most_half_a_step() {
        let data: Vec<f32> = (0..64).map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.013).collect();
        let q = quantize_rows(&data, 4);
        assert_eq!(q.scales.len(), 4);
        let back = dequantize_rows(&q.values, &q.scales);
        for (row, (a, b)) in data.chunks(16).zip(back.chunks(16)).enumerate() {
            let step = q.scales[row];
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() <= step * 0.5 + 1e-7, "{x} vs {y}");
            }
            // the largest magnitude maps to +-127 exactly
            assert_eq!(q.values[row * 16..(row + 1) * 16].iter().map(|v| v.unsigned_abs()).max(), Some(127));
        }
    }

    #[test]
    fn zero_rows_stay_zero() {
        let q = quantize_rows(&[0.0; 8], 2);
        assert_eq!(q.scales, vec![0.0, 0.0]);
        assert!(dequantize_rows(&q.values, &q.scales).iter().all(|v| *v == 0.0));
    }
}
