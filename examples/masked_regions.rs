//! The masked forward that skips what a mask leaves at zero, with each mask's region as a
//! rectangle (rows and columns) against its rows only (docs/benchmarks.md, "Winograd tiles of
//! the reached columns"): a batch of 16 inputs, each non-zero in one `SIDE` x `SIDE` square.
//!
//!   GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1099511627776:glibc.malloc.arena_max=1 \
//!     cargo run --release --example masked_regions -- MODEL.json SIDE [ROUNDS]
//!
//! (The tunables keep freed memory in the heap, as the CLI's `keep_freed_memory` does.)

use burn::tensor::{Tensor, TensorData};
use scorecam::backend::Backend;
use scorecam::models::Region;
use scorecam::session::Session;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(model), Some(side)) = (args.get(1), args.get(2).and_then(|a| a.parse::<usize>().ok())) else {
        eprintln!("usage: masked_regions MODEL.json SIDE [ROUNDS]");
        std::process::exit(2);
    };
    let rounds = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(3);
    let mut session = Session::new(Backend::start("flex").expect("the CPU backend starts"));
    let model = session.load_model_file(std::path::Path::new(model), &Default::default()).expect("the model loads");
    let size = model.input_size();
    assert!(side > 0 && side < size, "SIDE must be between 1 and {}", size - 1);
    let n = 16;
    // Squares at spread positions, the input a pattern inside each.
    let regions: Vec<Region> = (0..n)
        .map(|i| {
            let (y, x) = ((i * 37) % (size - side), (i * 53) % (size - side));
            Region { rows: y..y + side, cols: x..x + side }
        })
        .collect();
    let mut pixels = vec![0f32; n * 3 * size * size];
    for (b, r) in regions.iter().enumerate() {
        for c in 0..3 {
            for y in r.rows.clone() {
                for x in r.cols.clone() {
                    pixels[((b * 3 + c) * size + y) * size + x] = ((y * 7 + x * 3 + c) % 17) as f32 / 17.0 - 0.5;
                }
            }
        }
    }
    let rows_only: Vec<Region> = regions.iter().map(|r| Region { rows: r.rows.clone(), cols: 0..size }).collect();
    let forward = |regions: &[Region]| {
        let batch = Tensor::<4>::from_data(TensorData::new(pixels.clone(), [n, 3, size, size]), &model.device);
        let t = std::time::Instant::now();
        let logits = model.network.forward_masked(batch, regions).into_data().try_to_vec::<f32>().expect("f32 logits");
        (t.elapsed().as_secs_f64(), logits)
    };
    forward(&regions); // the zero image's forward is recorded here
    for _ in 0..rounds {
        let (rows_s, by_rows) = forward(&rows_only);
        let (rect_s, by_rect) = forward(&regions);
        let diff = by_rows.iter().zip(&by_rect).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        println!("{side} px squares, batch {n}: rows only {rows_s:.3} s, rectangles {rect_s:.3} s ({:.3}x), logits max abs diff {diff:.1e}", rect_s / rows_s);
    }
}
