//! `scorecam eval`: every method x metric over a labelled folder, one JSON line per (image,
//! method) so a run can stop and resume, and be split into shards; [`report`] turns the lines
//! into the paper's tables and the deletion/insertion curves.

pub mod accuracy;
pub mod dataset;
pub mod report;
pub mod sanity;

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::cam::{self, Method, Reporter, Target};
use crate::error::{Error, Result};
use crate::image_input;
use crate::metrics::{Metric, ModelScorer, Sample as MetricSample};
use crate::models::Model;
use crate::npy::write_npy;
use dataset::{Sample, Shard};

/// Which class each image's map explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassChoice {
    /// The network's top-1 class (RISE's and pytorch-grad-cam's default).
    Predicted,
    /// The ground-truth label.
    Label,
}

#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub methods: Vec<Method>,
    pub metrics: Vec<Metric>,
    pub out: PathBuf,
    pub limit: Option<usize>,
    pub shard: Option<Shard>,
    pub batch_size: usize,
    pub class: ClassChoice,
    /// The score each method explains (`None`: each method's own; a method that takes no target
    /// explains as it does).
    pub target: Option<Target>,
    /// Also write every map as `maps/<image>__<method>.npy` (float32, input size squared).
    pub save_maps: bool,
}

/// One (image, method) result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub image: String,
    pub index: usize,
    pub label: usize,
    pub class: usize,
    pub probability: f32,
    pub method: String,
    /// The score explained (absent for a method that takes none, and in records from before
    /// targets were a choice: then the method's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    pub seconds: f64,
    pub forwards: usize,
    pub scores: BTreeMap<String, f64>,
    #[serde(default)]
    pub curves: BTreeMap<String, Vec<f32>>,
    /// The metrics that ran (a resumed run with more metrics redoes the record).
    pub metrics: Vec<String>,
}

impl Record {
    /// The (method, score) pair's name in the tables ([`record_key`]).
    pub fn key(&self) -> String {
        record_key(&self.method, self.target)
    }
}

/// Where this process appends its records.
pub fn records_path(out: &Path, shard: Option<Shard>) -> PathBuf {
    match shard {
        Some(s) => out.join(format!("records-{}-of-{}.jsonl", s.index, s.count)),
        None => out.join("records.jsonl"),
    }
}

/// Every record in `dir/records*.jsonl` (all shards). A torn last line (a killed run) is skipped.
pub fn load_records(dir: &Path) -> Result<Vec<Record>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir.display(), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("records") && n.ends_with(".jsonl")))
        .collect();
    files.sort();
    let mut records = Vec::new();
    for f in files {
        let file = std::fs::File::open(&f).map_err(|e| Error::io(f.display(), e))?;
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(|e| Error::io(f.display(), e))?;
            if let Ok(r) = serde_json::from_str::<Record>(&line) {
                records.push(r);
            }
        }
    }
    Ok(records)
}

/// The file name a map is saved under: `<image stem>__<method>.npy` (the method's record key).
pub fn map_file_name(image: &str, method: &str) -> String {
    let stem = Path::new(image).file_stem().and_then(|s| s.to_str()).unwrap_or(image);
    format!("{stem}__{method}.npy")
}

/// The score `method` explains when `requested` is asked for: the request where the method takes
/// a score, else none.
pub fn method_target(method: &Method, requested: Option<Target>) -> Option<Target> {
    let spec = method.spec();
    spec.target.map(|own| requested.unwrap_or(own))
}

/// The name a record's (method, score) pair goes by in the tables: the method's name, with the
/// score after an `@` where it is not the method's own (`scorecam@logit`).
pub fn record_key(method: &str, target: Option<Target>) -> String {
    let own = cam::registry::spec(method).ok().and_then(|s| s.target);
    match target {
        Some(t) if Some(t) != own => format!("{method}@{t}"),
        _ => method.to_string(),
    }
}

/// Explains one image with one method (for `target`, see [`method_target`]) and runs every metric
/// on the map.
#[allow(clippy::too_many_arguments)]
pub async fn evaluate(model: &Model, forwarded: &cam::Forwarded, sample: &Sample, class: usize, method: &Method, target: Option<Target>, metrics: &[Metric], batch_size: usize) -> Result<(Record, Vec<f32>)> {
    let t0 = Instant::now();
    let target = method_target(method, target);
    let e = cam::explain_target(model, forwarded, Some(class), target, method, &mut Reporter::silent()).await?;
    let size = model.input_size();
    let boxes: Vec<_> = sample.boxes.iter().map(|b| b.scaled(sample.width, sample.height, size)).collect();
    let ms = MetricSample { image: &forwarded.image, size, map: &e.map, probability: e.class_probability, boxes: &boxes };
    let mut scorer = ModelScorer::new(model, class, batch_size);
    let (mut scores, mut curves) = (BTreeMap::new(), BTreeMap::new());
    for metric in metrics {
        if let Some(score) = metric.evaluate(&ms, &mut scorer).await? {
            scores.extend(score.values);
            if let Some(c) = score.curve {
                curves.insert(metric.name().to_string(), c);
            }
        }
    }
    let record = Record {
        image: sample.file.clone(),
        index: sample.index,
        label: sample.label,
        class,
        probability: e.class_probability,
        method: method.name().to_string(),
        target,
        seconds: t0.elapsed().as_secs_f64(),
        forwards: e.stats.forwards + scorer.forwards,
        scores,
        curves,
        metrics: metrics.iter().map(|m| m.name().to_string()).collect(),
    };
    Ok((record, e.map))
}

/// Runs the evaluation, appending to this shard's records file and skipping (image, method)
/// pairs it already holds. `on_step(done, total, label)` follows the (image, method) pairs.
pub async fn run(model: &Model, data: &Path, opts: &EvalOptions, on_step: &mut dyn FnMut(usize, usize, &str)) -> Result<PathBuf> {
    if opts.methods.is_empty() {
        return Err(Error::Invalid("no methods to evaluate".into()));
    }
    let samples = dataset::select(dataset::read_labels(data)?, opts.limit, opts.shard);
    std::fs::create_dir_all(&opts.out).map_err(|e| Error::io(opts.out.display(), e))?;
    let maps_dir = opts.out.join("maps");
    if opts.save_maps {
        std::fs::create_dir_all(&maps_dir).map_err(|e| Error::io(maps_dir.display(), e))?;
    }
    let wanted: Vec<String> = opts.metrics.iter().map(|m| m.name().to_string()).collect();
    let done: std::collections::HashSet<(String, String)> = load_records(&opts.out)?
        .into_iter()
        .filter(|r| wanted.iter().all(|m| r.metrics.contains(m)))
        .map(|r| (r.key(), r.image))
        .map(|(k, i)| (i, k))
        .collect();
    let key = |m: &Method| record_key(m.name(), method_target(m, opts.target));
    let path = records_path(&opts.out, opts.shard);
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(|e| Error::io(path.display(), e))?;
    let total = samples.len() * opts.methods.len();
    let mut step = 0;
    for sample in &samples {
        let todo: Vec<&Method> = opts.methods.iter().filter(|m| !done.contains(&(sample.file.clone(), key(m)))).collect();
        step += opts.methods.len() - todo.len();
        if todo.is_empty() {
            on_step(step, total, "");
            continue;
        }
        let image = image_input::read(&sample.path)?;
        let input = image_input::to_input(&image, model.input_size(), &model.manifest.normalisation);
        let forwarded = cam::forward_image(model, &input).await?;
        let class = match opts.class {
            ClassChoice::Predicted => cam::top_k(&forwarded.probabilities, 1)[0].0,
            ClassChoice::Label => sample.label,
        };
        for method in todo {
            on_step(step, total, &format!("{} {}", method.display_name(), sample.file));
            let (record, map) = evaluate(model, &forwarded, sample, class, method, opts.target, &opts.metrics, opts.batch_size).await?;
            if opts.save_maps {
                write_npy(&maps_dir.join(map_file_name(&sample.file, &record.key())), &map, model.input_size())?;
            }
            let line = serde_json::to_string(&record).map_err(|e| Error::Invalid(e.to_string()))?;
            writeln!(file, "{line}").and_then(|_| file.flush()).map_err(|e| Error::io(path.display(), e))?;
            step += 1;
            on_step(step, total, "");
        }
    }
    Ok(path)
}

/// The unquantised model from the original state_dict, on the same device and binding limit
/// (what `--source` evaluates, and accuracy compares with).
pub fn f32_model(model: &Model, source: &Path) -> Result<Model> {
    model.with_tensors(crate::convert::canonical_tensors(crate::convert::read_state_dict(source)?, model.arch)?)
}
