//! `scorecam`: convert weights, explain images, measure accuracy and speed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use scorecam::cam::{self, Method, Progress, ScoreCamOptions};
use scorecam::models::{Architecture, Model};
use scorecam::render::{self, Colormap};
use scorecam::weights::Manifest;
use scorecam::{backend, convert, eval, image_input};

#[derive(Parser)]
#[command(name = "scorecam", version, about = "Score-CAM explanations for CNNs (VGG16, EfficientNet-Lite0)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum TargetArg {
    Predicted,
    Label,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a PyTorch state_dict (.pth/.pt or .safetensors) into the app's int8 weight file + manifest.
    Convert {
        input: PathBuf,
        /// Output .safetensors; the manifest is written beside it as .json.
        #[arg(long, short)]
        out: PathBuf,
        /// vgg16, efficientnet_lite0 or vgg_tiny (default: detected from the keys).
        #[arg(long)]
        arch: Option<String>,
    },
    /// Explain an image: print the top-5, write the overlay PNG and optionally the raw map.
    Explain {
        image: PathBuf,
        /// The model's manifest (.json) or weight file (.safetensors, manifest beside it).
        #[arg(long, short)]
        model: PathBuf,
        /// Class index to explain (default: the top-1 class).
        #[arg(long)]
        class: Option<usize>,
        /// scorecam (official), scorecam-gradcam-lib (pytorch-grad-cam's variant), gradcam,
        /// gradcampp, rise, gradient, smoothgrad, integrated-gradients or mask.
        #[arg(long, default_value = "scorecam")]
        method: String,
        /// Faster-Score-CAM: score only the k channels of largest variance.
        #[arg(long)]
        top_k: Option<usize>,
        #[arg(long, default_value_t = 16)]
        batch_size: usize,
        #[arg(long, default_value = "flex")]
        backend: String,
        /// jet, turbo or viridis.
        #[arg(long, default_value = "jet")]
        colormap: String,
        /// Heatmap opacity in the overlay.
        #[arg(long, default_value_t = 0.5)]
        alpha: f32,
        /// Overlay PNG at the photo's own size.
        #[arg(long, default_value = "overlay.png")]
        out: PathBuf,
        /// Raw saliency map as .npy, float32, input size (224x224) [default: the overlay's name with .npy].
        #[arg(long)]
        map_out: Option<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Top-1 accuracy on a labelled folder (labels.csv with file,class_index), int8 and optionally f32.
    Accuracy {
        #[arg(long, short)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
        /// The original state_dict: also measure the unquantised (f32) model.
        #[arg(long)]
        source: Option<PathBuf>,
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long, default_value = "flex")]
        backend: String,
    },
    /// The paper's evaluation: methods x metrics over a labelled folder (labels.csv with
    /// class_index and bboxes), written as tables (results.md/.csv/.json) and curves (curves.svg).
    /// Resumable (records.jsonl), shardable (--shard I/N, then run once more without it or with
    /// --report-only to merge).
    Eval {
        #[arg(long, short)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
        /// Comma-separated: scorecam, gradcam, gradcampp, rise, gradient, smoothgrad, integrated-gradients, mask.
        #[arg(long, value_delimiter = ',', default_value = "gradcam,gradcampp,scorecam")]
        methods: Vec<String>,
        /// Comma-separated: ad-ai-library, ad-ai-paper, deletion, insertion, pointing-game.
        #[arg(long, value_delimiter = ',', default_value = "ad-ai-library,ad-ai-paper,deletion,insertion,pointing-game")]
        metrics: Vec<String>,
        #[arg(long, short, default_value = "eval-out")]
        out: PathBuf,
        /// Only the first N images of labels.csv.
        #[arg(long)]
        limit: Option<usize>,
        /// I/N: only the images whose row index is I modulo N (records-I-of-N.jsonl).
        #[arg(long)]
        shard: Option<scorecam::eval::dataset::Shard>,
        #[arg(long, default_value_t = 16)]
        batch_size: usize,
        #[arg(long, default_value = "flex")]
        backend: String,
        /// Explain the predicted (top-1) class or the ground-truth label.
        #[arg(long, value_enum, default_value = "predicted")]
        target: TargetArg,
        /// Save every map as maps/<image>__<method>.npy (for the cross-check).
        #[arg(long)]
        save_maps: bool,
        /// RISE masks (default 8000, the paper's; fewer for a quick look).
        #[arg(long)]
        rise_masks: Option<usize>,
        /// A reference run's folder (scripts/eval_reference.py): tables show ours / reference.
        #[arg(long)]
        reference: Option<PathBuf>,
        /// Only rebuild the tables from the records in --out.
        #[arg(long)]
        report_only: bool,
        /// The original state_dict: evaluate the unquantised (f32) model built from it instead of
        /// the int8 file (what the cross-check against PyTorch uses).
        #[arg(long)]
        source: Option<PathBuf>,
    },
    /// Sanity check (Adebayo et al. 2018): cascading randomisation of the layers from the top;
    /// per stage, the Spearman rank correlation of each method's map with the original one, and
    /// a grid image of the maps.
    Sanity {
        #[arg(long, short)]
        model: PathBuf,
        /// Images to average over (the first is drawn in the grid).
        #[arg(required = true)]
        images: Vec<PathBuf>,
        #[arg(long, value_delimiter = ',', default_value = "gradcam,gradcampp,scorecam")]
        methods: Vec<String>,
        #[arg(long, short, default_value = "sanity-out")]
        out: PathBuf,
        #[arg(long, default_value_t = 16)]
        batch_size: usize,
        #[arg(long, default_value = "flex")]
        backend: String,
        /// Seed of the random weights.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Forward throughput at batch 1 and 16, and the time of one full Score-CAM.
    Bench {
        #[arg(long, short)]
        model: PathBuf,
        /// Image for the Score-CAM run (default: mid-grey).
        #[arg(long)]
        image: Option<PathBuf>,
        #[arg(long, default_value = "flex")]
        backend: String,
        /// Batch for the throughput measurement and Score-CAM (capped by the model's binding limit).
        #[arg(long, default_value_t = 16)]
        batch_size: usize,
        /// Timed repetitions of each forward measurement.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Time Faster-Score-CAM with k channels instead of the full Score-CAM (for slow backends).
        #[arg(long)]
        top_k: Option<usize>,
        #[arg(long)]
        json: bool,
    },
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Convert { input, out, arch } => {
            let arch = arch.map(|a| Architecture::from_name(&a)).transpose()?;
            let c = convert::convert(&input, &out, arch)?;
            let dir = out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let index = convert::write_model_index(dir)?;
            println!(
                "{}: {} -> {} ({:.1} MB) + {}",
                c.arch.display_name(),
                input.display(),
                c.weights_path.display(),
                c.manifest.weights.bytes as f64 / 1e6,
                c.manifest_path.display()
            );
            println!("model list for the browser app: {}", index.display());
        }
        Command::Explain { image, model, class, method, top_k, batch_size, backend, colormap, alpha, out, map_out, json } => {
            let cmap = Colormap::from_name(&colormap).with_context(|| format!("unknown colormap {colormap:?} (jet, turbo, viridis)"))?;
            let model = load_model(&model, &backend)?;
            let photo = image_input::read(&image)?;
            let input = image_input::to_input(&photo, model.input_size(), &model.manifest.normalisation);
            let method = match Method::from_name(&method)?.with_batch_size(batch_size) {
                Method::ScoreCam(o) => Method::ScoreCam(ScoreCamOptions { top_k, ..o }),
                other => other,
            };
            let bar = progress_bar("forwards");
            let t0 = Instant::now();
            let exp = pollster::block_on(cam::explain(&model, &input, class, &method, &mut |p: &Progress| {
                bar.set_length(p.total as u64);
                bar.set_position(p.done as u64);
                true
            }))?;
            bar.finish_and_clear();
            let seconds = t0.elapsed().as_secs_f64();
            let (w, h) = photo.dimensions();
            let full = render::map_to_image_size(&exp.map, exp.size, w, h);
            render::overlay(&photo, &full, cmap, alpha).save(&out).with_context(|| format!("writing {}", out.display()))?;
            let map_out = map_out.unwrap_or_else(|| out.with_extension("npy"));
            eval::write_npy(&map_out, &exp.map, exp.size)?;
            let names = &model.manifest;
            if json {
                let top5: Vec<_> = exp.top5.iter().map(|(i, p)| json!({"class": i, "name": names.class_name(*i), "probability": p})).collect();
                let o = json!({
                    "image": image.display().to_string(),
                    "model": model.arch.name(),
                    "top5": top5,
                    "explained": {"class": exp.class, "name": names.class_name(exp.class), "probability": exp.class_probability},
                    "method": format!("{method:?}"),
                    "forwards": exp.stats.forwards,
                    "skipped_constant_channels": exp.stats.skipped_constant,
                    "seconds": seconds,
                    "files": {"overlay": out.display().to_string(), "map": map_out.display().to_string()},
                });
                println!("{o}");
            } else {
                println!("top-5 ({}):", model.manifest.name);
                for (i, p) in &exp.top5 {
                    println!("  {:>5.1}%  {:>4}  {}", p * 100.0, i, names.class_name(*i));
                }
                println!("explained: {} {} ({:.1}%)", exp.class, names.class_name(exp.class), exp.class_probability * 100.0);
                println!(
                    "{} masked forwards ({} constant channels skipped) in {:.1} s; overlay -> {}",
                    exp.stats.forwards,
                    exp.stats.skipped_constant,
                    seconds,
                    out.display()
                );
                println!("map -> {}", map_out.display());
            }
        }
        Command::Accuracy { model, data, source, limit, backend } => {
            let model = load_model(&model, &backend)?;
            let f32_model = source
                .map(|s| -> Result<Model> {
                    Ok(model.with_tensors(convert::canonical_tensors(convert::read_state_dict(&s)?, &model.arch)?)?)
                })
                .transpose()?;
            let samples = eval::dataset::select(eval::dataset::read_labels(&data)?, limit, None);
            let bar = progress_bar("images");
            bar.set_length(samples.len() as u64);
            let (mut int8, mut f32c, mut agree, mut max_diff, mut max_rel) = (0usize, 0usize, 0usize, 0f32, 0f32);
            let mut constant_maps = 0usize;
            for sample in &samples {
                let (path, label) = (&sample.path, &sample.label);
                let x = image_input::to_input(&image_input::read(path)?, model.input_size(), &model.manifest.normalisation);
                let forwarded = pollster::block_on(cam::forward_image(&model, &x))?;
                constant_maps += (0..forwarded.maps.channels).filter(|&k| forwarded.maps.is_constant(k)).count();
                let a = forwarded.logits;
                int8 += (argmax(&a) == *label) as usize;
                if let Some(m) = &f32_model {
                    let b = forward_logits(m, &x)?;
                    f32c += (argmax(&b) == *label) as usize;
                    agree += (argmax(&a) == argmax(&b)) as usize;
                    let diff = a.iter().zip(&b).fold(0f32, |d, (p, q)| d.max((p - q).abs()));
                    max_diff = max_diff.max(diff);
                    max_rel = max_rel.max(diff / b.iter().fold(0f32, |m, v| m.max(v.abs())));
                }
                bar.inc(1);
            }
            bar.finish_and_clear();
            let n = samples.len() as f64;
            println!("{} images, {}", samples.len(), model.manifest.name);
            println!("int8 top-1: {:.2}%", 100.0 * int8 as f64 / n);
            let channels = model.arch.target_shape()[0];
            println!(
                "constant target-layer maps (masked forwards the official Score-CAM skips): {:.1} of {channels} per image ({:.1}%)",
                constant_maps as f64 / n,
                100.0 * constant_maps as f64 / (n * channels as f64)
            );
            if f32_model.is_some() {
                println!("f32  top-1: {:.2}%", 100.0 * f32c as f64 / n);
                println!("int8/f32 top-1 agreement: {:.2}%", 100.0 * agree as f64 / n);
                println!("max |logit int8 - f32|: {max_diff:.4} ({:.2}% of the largest |logit|)", 100.0 * max_rel);
            }
        }
        Command::Eval { model, data, methods, metrics, out, limit, shard, batch_size, backend, target, save_maps, rise_masks, reference, report_only, source } => {
            let mut methods = methods.iter().map(|m| Ok(Method::from_name(m.trim())?.with_batch_size(batch_size))).collect::<Result<Vec<_>>>()?;
            for m in &mut methods {
                if let (Method::Rise(o), Some(n)) = (m, rise_masks) {
                    o.masks = n;
                }
            }
            let metrics = metrics.iter().map(|m| scorecam::metrics::Metric::from_name(m.trim())).collect::<Result<Vec<_>, _>>()?;
            let target = match target {
                TargetArg::Predicted => eval::Target::Predicted,
                TargetArg::Label => eval::Target::Label,
            };
            let mut model = load_model(&model, &backend)?;
            if let Some(source) = source {
                model = model.with_tensors(convert::canonical_tensors(convert::read_state_dict(&source)?, &model.arch)?)?;
            }
            if !report_only {
                let opts = eval::EvalOptions { methods, metrics, out: out.clone(), limit, shard, batch_size, target, save_maps };
                let bar = progress_bar("image x method");
                let path = pollster::block_on(eval::run(&model, &data, &opts, &mut |done, total, what| {
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                    if !what.is_empty() {
                        bar.set_message(what.to_string());
                    }
                }))?;
                bar.finish_and_clear();
                println!("records -> {}", path.display());
            }
            let mut records = eval::load_records(&out)?;
            let title = format!("Evaluation of {} on {}", model.manifest.name, data.display());
            let written = match &reference {
                Some(dir) => {
                    // Compare like with like: only the (image, method) pairs both runs hold.
                    let mut theirs = eval::load_records(dir)?;
                    eval::report::keep_common(&mut records, &mut theirs);
                    let ours = eval::report::summarise(&records);
                    let theirs = eval::report::summarise(&theirs);
                    let agree = eval::report::agreement(&ours, &theirs, &out, dir, &records)?;
                    eval::report::write(&out, &title, &ours, Some((&theirs, &agree)))?
                }
                None => eval::report::write(&out, &title, &eval::report::summarise(&records), None)?,
            };
            for p in written {
                println!("-> {}", p.display());
            }
        }
        Command::Sanity { model, images, methods, out, batch_size, backend, seed } => {
            let methods = methods.iter().map(|m| Ok(Method::from_name(m.trim())?.with_batch_size(batch_size))).collect::<Result<Vec<_>>>()?;
            let model_path = model;
            let model = load_model(&model_path, &backend)?;
            // the int8 file beside the manifest, as load_model found it
            let weights_path = model_path.with_file_name(&model.manifest.weights.file);
            let weights = std::fs::read(&weights_path).with_context(|| format!("reading {}", weights_path.display()))?;
            let inputs = images
                .iter()
                .map(|p| Ok(image_input::to_input(&image_input::read(p)?, model.input_size(), &model.manifest.normalisation)))
                .collect::<Result<Vec<_>>>()?;
            let bar = progress_bar("stages");
            let result = pollster::block_on(eval::sanity::cascading_randomisation(&model, &weights, &inputs, &methods, batch_size, seed, &mut |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            }))?;
            bar.finish_and_clear();
            for p in eval::sanity::write(&out, &result, &image_input::read(&images[0])?)? {
                println!("-> {}", p.display());
            }
        }
        Command::Bench { model, image, backend, batch_size, runs, top_k, json } => bench(&model, image.as_deref(), &backend, batch_size, runs, top_k, json)?,
    }
    Ok(())
}

fn progress_bar(unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(&format!("{{bar:40}} {{pos}}/{{len}} {unit} [{{elapsed_precise}} < {{eta}}]")).expect("valid template"),
    );
    bar
}

/// Loads a model from its manifest (.json) or weight file (.safetensors with the manifest beside it).
fn load_model(path: &Path, backend_name: &str) -> Result<Model> {
    let manifest_path = if path.extension().is_some_and(|e| e == "json") { path.to_path_buf() } else { path.with_extension("json") };
    let text = std::fs::read_to_string(&manifest_path).with_context(|| format!("reading manifest {}", manifest_path.display()))?;
    let manifest = Manifest::from_json(&text, &manifest_path.display().to_string())?;
    let weights_path = manifest_path.with_file_name(&manifest.weights.file);
    let bytes = std::fs::read(&weights_path).with_context(|| format!("reading weights {}", weights_path.display()))?;
    let backend = backend::backend(backend_name)?;
    let mut model = Model::from_bytes(manifest, &bytes, &backend.device)?;
    model.binding_limit = backend.binding_limit;
    Ok(model)
}

fn forward_logits(model: &Model, x: &[f32]) -> Result<Vec<f32>> {
    Ok(pollster::block_on(cam::forward_image(model, x))?.logits)
}

fn argmax(v: &[f32]) -> usize {
    cam::top_k(v, 1)[0].0
}

fn bench(model_path: &Path, image: Option<&Path>, backend_name: &str, batch_size: usize, runs: usize, top_k: Option<usize>, json: bool) -> Result<()> {
    use burn::tensor::Tensor;
    let t_load = Instant::now();
    let model = load_model(model_path, backend_name)?;
    let load_s = t_load.elapsed().as_secs_f64();
    let size = model.input_size();
    let forward = |batch: usize| -> Result<f64> {
        let x = Tensor::<4>::ones([batch, 3, size, size], &model.device);
        pollster::block_on(cam::read_f32(model.network.forward(x.clone())))?; // warm-up (autotune, allocation)
        let t = Instant::now();
        for _ in 0..runs {
            pollster::block_on(cam::read_f32(model.network.forward(x.clone())))?;
        }
        Ok(t.elapsed().as_secs_f64() / runs as f64)
    };
    let b1 = forward(1)?;
    let batch_size = batch_size.min(model.max_batch());
    let bn = forward(batch_size)?;
    let input = match image {
        Some(p) => image_input::to_input(&image_input::read(p)?, size, &model.manifest.normalisation),
        None => vec![0.0; 3 * size * size],
    };
    let method = Method::ScoreCam(ScoreCamOptions { batch_size, top_k, ..Default::default() });
    let t = Instant::now();
    let exp = pollster::block_on(cam::explain(&model, &input, None, &method, &mut |_: &Progress| true))?;
    let cam_s = t.elapsed().as_secs_f64();
    if json {
        println!(
            "{}",
            json!({"model": model.arch.name(), "backend": backend_name, "load_s": load_s, "forward_b1_s": b1,
                   "forward_batch": batch_size, "forward_bn_s": bn, "images_per_s_bn": batch_size as f64 / bn,
                   "scorecam_s": cam_s, "scorecam_top_k": top_k, "scorecam_forwards": exp.stats.forwards, "skipped_constant": exp.stats.skipped_constant})
        );
    } else {
        println!("{} on {backend_name}: load {load_s:.2} s", model.manifest.name);
        println!("forward batch 1: {:.3} s ({:.2} img/s)", b1, 1.0 / b1);
        println!("forward batch {batch_size}: {:.3} s ({:.2} img/s)", bn, batch_size as f64 / bn);
        println!("Score-CAM: {cam_s:.2} s, {} masked forwards, {} constant channels skipped", exp.stats.forwards, exp.stats.skipped_constant);
    }
    Ok(())
}
