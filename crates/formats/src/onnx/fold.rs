//! Constants computed at import: the `Shape` / `Gather` / `Unsqueeze` / `Concat` / `Constant`
//! chains exporters write to compute reshape targets (with the batch the plan is made for), and
//! whatever else only reads constants. Small n-dimensional arrays of f32 or i64.

use super::proto::{Data, Tensor};

/// The most elements a constant computed at import may have (2^24, 64 MB of f32): shape
/// arithmetic needs a handful, and a file that asks for more is refused, not allocated (found by
/// the fuzz harness: a ConstantOfShape of 2^58 elements).
pub(super) const MAX_FOLDED: usize = 1 << 24;

/// The elements of a constant of shape `dims`, where they are at most [`MAX_FOLDED`].
pub(super) fn folded_elements(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).filter(|&n| n <= MAX_FOLDED)
}

/// Row-major strides of `dims`.
fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// The flat index of each element of `out` read from a tensor of `dims` broadcast to `out`.
fn broadcast_index(dims: &[usize], out: &[usize]) -> Vec<usize> {
    let rank = out.len();
    let pad = rank - dims.len();
    let (s, so) = (strides(dims), strides(out));
    let n: usize = out.iter().product();
    (0..n)
        .map(|flat| {
            (0..rank).fold(0, |acc, i| {
                let idx = flat / so[i] % out[i].max(1);
                if i < pad || dims[i - pad] == 1 { acc } else { acc + idx * s[i - pad] }
            })
        })
        .collect()
}

/// The numpy broadcast of two shapes (`None` also where it would have more than [`MAX_FOLDED`]
/// elements).
pub(super) fn broadcast_dims(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let at = |s: &[usize], i: usize| if i + s.len() >= rank { s[i + s.len() - rank] } else { 1 };
    (0..rank)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect::<Option<Vec<usize>>>()
        .filter(|dims| folded_elements(dims).is_some())
}

/// `f` applied elementwise to `a` and `b`, broadcast; both f32 or both i64 (an i64 meets an f32
/// as f32).
pub(super) fn binary(a: &Tensor, b: &Tensor, f32_op: impl Fn(f32, f32) -> f32, i64_op: impl Fn(i64, i64) -> Option<i64>) -> Option<Tensor> {
    let dims = broadcast_dims(&a.dims, &b.dims)?;
    let (ia, ib) = (broadcast_index(&a.dims, &dims), broadcast_index(&b.dims, &dims));
    let data = match (&a.data, &b.data) {
        (Data::I64(x), Data::I64(y)) => Data::I64(ia.iter().zip(&ib).map(|(&i, &j)| i64_op(x[i], y[j])).collect::<Option<Vec<_>>>()?),
        _ => {
            let (x, y) = (as_f32(a), as_f32(b));
            Data::F32(ia.iter().zip(&ib).map(|(&i, &j)| f32_op(x[i], y[j])).collect())
        }
    };
    Some(Tensor { dims, data })
}

/// The values as f32.
pub(super) fn as_f32(t: &Tensor) -> Vec<f32> {
    match &t.data {
        Data::F32(v) => v.clone(),
        Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
    }
}

/// The values as i64 (floats truncated).
pub(super) fn as_i64(t: &Tensor) -> Vec<i64> {
    match &t.data {
        Data::I64(v) => v.clone(),
        Data::F32(v) => v.iter().map(|&x| x as i64).collect(),
    }
}

/// Picks elements of `t` by flat index.
fn pick(t: &Tensor, dims: Vec<usize>, index: impl Iterator<Item = usize>) -> Tensor {
    let data = match &t.data {
        Data::F32(v) => Data::F32(index.map(|i| v[i]).collect()),
        Data::I64(v) => Data::I64(index.map(|i| v[i]).collect()),
    };
    Tensor { dims, data }
}

/// ONNX `Gather` along `axis` with `indices` (negative from the end).
pub(super) fn gather(t: &Tensor, axis: usize, indices: &Tensor) -> Option<Tensor> {
    let n = *t.dims.get(axis)?;
    let idx: Vec<usize> = as_i64(indices).into_iter().map(|i| if i < 0 { i + n as i64 } else { i }).map(|i| usize::try_from(i).ok().filter(|&i| i < n)).collect::<Option<_>>()?;
    let outer: usize = t.dims[..axis].iter().product();
    let inner: usize = t.dims[axis + 1..].iter().product();
    let mut dims = t.dims[..axis].to_vec();
    dims.extend(&indices.dims);
    dims.extend(&t.dims[axis + 1..]);
    let index = (0..outer).flat_map(|o| idx.iter().flat_map(move |&i| (0..inner).map(move |j| (o * n + i) * inner + j))).collect::<Vec<_>>();
    Some(pick(t, dims, index.into_iter()))
}

/// Elements `start..end` by `step` of `axis` (ONNX `Slice`'s clamping already applied).
pub(super) fn slice(t: &Tensor, axis: usize, range: &[usize]) -> Tensor {
    let n = t.dims[axis];
    let outer: usize = t.dims[..axis].iter().product();
    let inner: usize = t.dims[axis + 1..].iter().product();
    let mut dims = t.dims.clone();
    dims[axis] = range.len();
    let index: Vec<usize> = (0..outer).flat_map(|o| range.iter().flat_map(move |&i| (0..inner).map(move |j| (o * n + i) * inner + j))).collect();
    pick(t, dims, index.into_iter())
}

/// The tensors concatenated along `axis` (all of one kind, matching dims elsewhere).
pub(super) fn concat(parts: &[&Tensor], axis: usize) -> Option<Tensor> {
    let first = parts.first()?;
    let rank = first.dims.len();
    if axis >= rank || parts.iter().any(|p| p.dims.len() != rank || (0..rank).any(|i| i != axis && p.dims[i] != first.dims[i])) {
        return None;
    }
    let outer: usize = first.dims[..axis].iter().product();
    let mut dims = first.dims.clone();
    dims[axis] = parts.iter().map(|p| p.dims[axis]).sum();
    let all_i64 = parts.iter().all(|p| matches!(p.data, Data::I64(_)));
    let block = |p: &Tensor| p.dims[axis..].iter().product::<usize>();
    if all_i64 {
        let vals: Vec<Vec<i64>> = parts.iter().map(|p| as_i64(p)).collect();
        let data = (0..outer).flat_map(|o| parts.iter().zip(&vals).flat_map(move |(p, v)| v[o * block(p)..(o + 1) * block(p)].to_vec())).collect();
        Some(Tensor { dims, data: Data::I64(data) })
    } else {
        let vals: Vec<Vec<f32>> = parts.iter().map(|p| as_f32(p)).collect();
        let data = (0..outer).flat_map(|o| parts.iter().zip(&vals).flat_map(move |(p, v)| v[o * block(p)..(o + 1) * block(p)].to_vec())).collect();
        Some(Tensor { dims, data: Data::F32(data) })
    }
}

/// The axes permuted: output axis i is input axis `perm[i]`.
pub(super) fn transpose(t: &Tensor, perm: &[usize]) -> Tensor {
    let dims: Vec<usize> = perm.iter().map(|&p| t.dims[p]).collect();
    let (s, so) = (strides(&t.dims), strides(&dims));
    let n = t.len();
    let index: Vec<usize> = (0..n).map(|flat| (0..dims.len()).fold(0, |acc, i| acc + (flat / so[i] % dims[i].max(1)) * s[perm[i]])).collect();
    pick(t, dims, index.into_iter())
}

/// `t` broadcast to `dims`.
pub(super) fn expand(t: &Tensor, dims: &[usize]) -> Option<Tensor> {
    let out = broadcast_dims(&t.dims, dims)?;
    let index = broadcast_index(&t.dims, &out);
    Some(pick(t, out, index.into_iter()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A constant computed at import is at most MAX_FOLDED elements: a broadcast past it (or
    /// past usize) is refused, as a ConstantOfShape or Range past it is in the planner (found by
    /// fuzz::onnx_model_mutated: a ConstantOfShape of 2^58 elements aborted on allocation).
    #[test]
    fn folded_constants_are_bounded() {
        assert_eq!(folded_elements(&[1 << 12, 1 << 12]), Some(1 << 24));
        assert_eq!(folded_elements(&[1 << 12, 1 << 13]), None);
        assert_eq!(folded_elements(&[1 << 40, 1 << 40]), None);
        assert_eq!(broadcast_dims(&[1 << 13, 1], &[1, 1 << 12]), None);
        assert_eq!(broadcast_dims(&[4, 1], &[1, 3]), Some(vec![4, 3]));
        let t = ints(&[1], &[7]);
        assert!(expand(&t, &[usize::MAX, 2]).is_none());
    }

    fn ints(dims: &[usize], v: &[i64]) -> Tensor {
        Tensor { dims: dims.to_vec(), data: Data::I64(v.to_vec()) }
    }

    #[test]
    fn shape_chains_fold() {
        // Shape -> Gather(0) -> Unsqueeze -> Concat with [-1]: the reshape target of a flatten.
        let shape = ints(&[4], &[2, 1280, 1, 1]);
        let n = gather(&shape, 0, &ints(&[], &[0])).unwrap();
        assert_eq!(n, ints(&[], &[2]));
        let target = concat(&[&ints(&[1], &[2]), &ints(&[1], &[-1])], 0).unwrap();
        assert_eq!(target, ints(&[2], &[2, -1]));
        let prod = binary(&ints(&[2], &[3, 4]), &ints(&[], &[2]), |a, b| a * b, |a, b| a.checked_mul(b)).unwrap();
        assert_eq!(prod, ints(&[2], &[6, 8]));
        assert_eq!(gather(&shape, 0, &ints(&[1], &[-1])).unwrap(), ints(&[1], &[1]));
        assert!(gather(&shape, 0, &ints(&[1], &[4])).is_none());
    }

    #[test]
    fn arrays_slice_transpose_and_broadcast() {
        let t = ints(&[2, 3], &[0, 1, 2, 3, 4, 5]);
        assert_eq!(transpose(&t, &[1, 0]), ints(&[3, 2], &[0, 3, 1, 4, 2, 5]));
        assert_eq!(slice(&t, 1, &[2, 0]), ints(&[2, 2], &[2, 0, 5, 3]));
        assert_eq!(expand(&ints(&[3], &[7, 8, 9]), &[2, 3]).unwrap(), ints(&[2, 3], &[7, 8, 9, 7, 8, 9]));
        assert_eq!(concat(&[&t, &t], 1).unwrap(), ints(&[2, 6], &[0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5]));
    }
}
