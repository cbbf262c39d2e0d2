//! Whether one int8-on-the-device matmul runs on the wgpu backend: `W x X` with W [rows, k] as
//! CubeCL's quantized tensor (one scale per block of `block` values, the file's int8 rows as
//! `layers::conv::quantized_rows` uploads them) and X [k, m] (or a batch of `batch` of them, as
//! the convolutions' im2col gives). One shape per process, because a kernel that panics takes the
//! device's thread with it. How `scale_block`'s rule for autotuning builds was found:
//!
//!   for s in "10 32 1" "16 64 49" "16 128 1"; do
//!     CUBECL_AUTOTUNE_LEVEL=minimal cargo run --release --example q8probe -- $s; done
//!
//! Args: rows k m [batch (0: 2-D)] [block (default: the widest of 128..4 dividing k)].
use burn::tensor::quantization::{QuantScheme, QuantStore, QuantValue, ScaleDtype};
use burn::tensor::{Tensor, TensorData};

fn main() {
    let a: Vec<usize> = std::env::args().skip(1).map(|s| s.parse().expect("numbers")).collect();
    let (rows, k, m, batch) = (a[0], a[1], a[2], a.get(3).copied().unwrap_or(0));
    let block = a.get(4).copied().unwrap_or_else(|| [128usize, 64, 32, 16, 8, 4].into_iter().find(|b| k % b == 0).expect("k a multiple of 4"));
    let backend = scorecam::backend::Backend::start("wgpu").expect("a wgpu device");
    let device = backend.build_options().device;
    let values: Vec<i8> = (0..rows * k).map(|i| ((i * 37) % 200) as i32 - 100).map(|v| v as i8).collect();
    let scales = vec![0.01f32; rows * (k / block)];
    let scheme = QuantScheme::default().with_value(QuantValue::Q8S).with_store(QuantStore::PackedU32(0)).per_block([block as u8], ScaleDtype::F32);
    let w: Tensor<2> = Tensor::from_data(TensorData::quantized(values, [rows, k], scheme, &scales, None), &device);
    let sum = if batch > 0 {
        let x: Tensor<3> = Tensor::from_data(TensorData::new(vec![0.5f32; batch * k * m], [batch, k, m]), &device);
        w.unsqueeze::<3>().matmul(x).sum()
    } else {
        let x: Tensor<2> = Tensor::from_data(TensorData::new(vec![0.5f32; m * k], [m, k]), &device);
        w.matmul(x.transpose()).sum()
    };
    let v = pollster::block_on(sum.into_data_async()).expect("read back").try_to_vec::<f32>().expect("f32");
    println!("ok: rows {rows}, k {k} (blocks of {block}), m {m}, batch {batch}: sum {}", v[0]);
}
