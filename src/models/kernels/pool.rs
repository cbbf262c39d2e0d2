//! VGG's 2x2 max pool with stride 2 (Burn's flex pooling was a tenth of a VGG16 forward).

use super::{for_each_task, SharedOut};

/// 2x2 max pooling with stride 2 (VGG's) of `planes` planes h x w (odd edges dropped, as
/// PyTorch does).
pub fn max_pool_2x2(x: &[f32], planes: usize, [h, w]: [usize; 2]) -> Vec<f32> {
    let (oh, ow) = (h / 2, w / 2);
    assert_eq!(x.len(), planes * h * w, "input size does not match the pool");
    let mut out = vec![0f32; planes * oh * ow];
    let per_task = (1usize << 16).div_ceil(oh * ow).clamp(1, planes.max(1));
    let tasks = planes.div_ceil(per_task);
    let dst = SharedOut(out.as_mut_ptr().cast());
    for_each_task(tasks, |task| {
        let p0 = task * per_task;
        let count = per_task.min(planes - p0);
        // SAFETY: every task writes distinct planes.
        let out = unsafe { std::slice::from_raw_parts_mut(dst.at(p0 * oh * ow), count * oh * ow) };
        for (plane, out) in x[p0 * h * w..(p0 + count) * h * w].chunks_exact(h * w).zip(out.chunks_exact_mut(oh * ow)) {
            for (y, out_row) in out.chunks_exact_mut(ow).enumerate() {
                let (r0, r1) = (&plane[2 * y * w..][..2 * ow], &plane[(2 * y + 1) * w..][..2 * ow]);
                for ((o, a), b) in out_row.iter_mut().zip(r0.chunks_exact(2)).zip(r1.chunks_exact(2)) {
                    *o = a[0].max(a[1]).max(b[0].max(b[1]));
                }
            }
        }
    });
    out
}
