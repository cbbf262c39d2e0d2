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
    /// Why the pair could not be evaluated (the image unreadable, its label outside the model's
    /// classes): recorded so that a resumed run goes on past it; the tables leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Record {
    /// The record of a pair that failed for `why`.
    fn failed(sample: &Sample, method: &Method, metrics: &[Metric], why: String) -> Self {
        Self {
            image: sample.file.clone(),
            index: sample.index,
            label: sample.label,
            class: 0,
            probability: 0.0,
            method: method.name().to_string(),
            target: None,
            seconds: 0.0,
            forwards: 0,
            scores: BTreeMap::new(),
            curves: BTreeMap::new(),
            metrics: metrics.iter().map(|m| m.name().to_string()).collect(),
            error: Some(why),
        }
    }
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

/// Opens this shard's records for appending. A run killed mid-write leaves a torn last line
/// without its newline: one is added first, so that the next record starts a line of its own
/// (and only the torn one is lost, which [`load_records`] skips).
pub fn open_records(path: &Path) -> Result<std::fs::File> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |e| Error::io(path.display(), e);
    let mut file = std::fs::OpenOptions::new().create(true).read(true).append(true).open(path).map_err(io)?;
    if file.metadata().map_err(io)?.len() > 0 {
        let mut last = [0u8];
        file.seek(SeekFrom::End(-1)).and_then(|_| file.read_exact(&mut last)).map_err(io)?;
        if last[0] != b'\n' {
            file.write_all(b"\n").map_err(io)?;
        }
    }
    Ok(file)
}

/// The file name a map is saved under: `<image>__<method>.npy`, `<image>` being the path as
/// labels.csv writes it with every byte outside `[A-Za-z0-9._-]` as `%XX` (`images/a.png` ->
/// `images%2Fa.png`), so that two images never share a name (`a/x.jpg` and `b/x.jpg`, `x.jpg` and
/// `x.png`). scripts/eval_reference.py names its maps alike.
pub fn map_file_name(image: &str, method: &str) -> String {
    let mut name = String::with_capacity(image.len() + method.len() + 6);
    for b in image.bytes() {
        if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{name}__{method}.npy")
}

/// The name maps had before [`map_file_name`] (the image's stem only): a reference run saved
/// then is still read.
pub(crate) fn legacy_map_file_name(image: &str, method: &str) -> String {
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
        error: None,
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
    let mut file = open_records(&path)?;
    let mut append = |record: &Record| -> Result<()> {
        let line = serde_json::to_string(record).map_err(|e| Error::Invalid(e.to_string()))?;
        writeln!(file, "{line}").and_then(|_| file.flush()).map_err(|e| Error::io(path.display(), e))
    };
    let classes = model.num_classes();
    let total = samples.len() * opts.methods.len();
    let mut step = 0;
    for sample in &samples {
        let todo: Vec<&Method> = opts.methods.iter().filter(|m| !done.contains(&(sample.file.clone(), key(m)))).collect();
        step += opts.methods.len() - todo.len();
        if todo.is_empty() {
            on_step(step, total, "");
            continue;
        }
        // What is wrong with this image alone is recorded, and the run goes on.
        let image = match image_input::read(&sample.path) {
            Err(e) => Err(e.to_string()),
            Ok(_) if opts.class == ClassChoice::Label && sample.label >= classes => {
                Err(format!("{}: label {} is outside the model's {classes} classes", sample.file, sample.label))
            }
            Ok(image) => Ok(image),
        };
        let image = match image {
            Ok(image) => image,
            Err(why) => {
                for method in todo {
                    append(&Record::failed(sample, method, &opts.metrics, why.clone()))?;
                    step += 1;
                    on_step(step, total, "");
                }
                continue;
            }
        };
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
            append(&record)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Two images never share a map file (issue 35, 13): not `a/x.jpg` and `b/x.jpg`, nor
    /// `x.jpg` and `x.png`, nor names that only an escape would tell apart.
    #[test]
    fn map_file_names_are_unique() {
        let images = ["a/x.jpg", "b/x.jpg", "x.jpg", "x.png", "a%2Fx.jpg", "a\\x.jpg", "a x.jpg", "ä.jpg"];
        let names: std::collections::HashSet<String> = images.iter().map(|i| map_file_name(i, "scorecam")).collect();
        assert_eq!(names.len(), images.len(), "{names:?}");
        assert_eq!(map_file_name("images/a.png", "gradcam"), "images%2Fa.png__gradcam.npy");
        assert!(names.iter().all(|n| n.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-%".contains(&b))), "{names:?}");
    }

    /// A torn last line (a killed run) gets its newline before the next append, so the next
    /// record is read back, not glued onto it and dropped (issue 35, 13).
    #[test]
    fn appending_after_a_torn_line_starts_a_new_one() {
        let scratch = tempfile::Builder::new().prefix("scorecam-records-").tempdir().unwrap();
        let path = scratch.path().join("records.jsonl");
        let record = |image: &str| Record { image: image.into(), index: 0, label: 1, class: 1, probability: 0.5, method: "gradcam".into(), target: None, seconds: 0.1, forwards: 1, scores: BTreeMap::new(), curves: BTreeMap::new(), metrics: vec![], error: None };
        let whole = serde_json::to_string(&record("a.png")).unwrap();
        std::fs::write(&path, format!("{whole}\n{}", &whole[..whole.len() / 2])).unwrap();
        let mut file = open_records(&path).unwrap();
        writeln!(file, "{}", serde_json::to_string(&record("b.png")).unwrap()).unwrap();
        drop(file);
        let images: Vec<String> = load_records(scratch.path()).unwrap().into_iter().map(|r| r.image).collect();
        assert_eq!(images, ["a.png", "b.png"]);
        // A file that ends whole, or is empty, is left as it is.
        let before = std::fs::read(&path).unwrap();
        drop(open_records(&path).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), before);
        let empty = scratch.path().join("records-0-of-2.jsonl");
        drop(open_records(&empty).unwrap());
        assert_eq!(std::fs::read(&empty).unwrap(), b"");
    }
}
