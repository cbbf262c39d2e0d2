//! A labelled image folder laid out like `shared/data/imagenet-val`: `labels.csv` with `file`,
//! `class_index`, and optionally `bboxes` (`x1 y1 x2 y2` in the stored image's pixels, several
//! separated by `;`) with the image's `width` and `height` (read from the image's header when
//! the columns are missing).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::metrics::BoundingBox;

#[derive(Debug, Clone)]
pub struct Sample {
    /// Position in labels.csv (what `--shard` and `--limit` count).
    pub index: usize,
    /// The path as written in labels.csv (the record key).
    pub file: String,
    pub path: PathBuf,
    pub label: usize,
    /// Boxes in the stored image's pixels, and that image's size.
    pub boxes: Vec<BoundingBox>,
    pub width: f64,
    pub height: f64,
}

pub fn read_labels(dir: &Path) -> Result<Vec<Sample>> {
    let path = dir.join("labels.csv");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(path.display(), e))?;
    parse_labels(&text, dir)
}

/// The rows of `dir/labels.csv`, whose text is `text` (images are read only for the size of
/// one with boxes and no `width`/`height`).
pub fn parse_labels(text: &str, dir: &Path) -> Result<Vec<Sample>> {
    let path = dir.join("labels.csv");
    let bad = |msg: String| Error::Invalid(format!("{}: {msg}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (fi, ci) = (col("file").ok_or_else(|| bad("no `file` column".into()))?, col("class_index").ok_or_else(|| bad("no `class_index` column".into()))?);
    let (wi, hi, bi) = (col("width"), col("height"), col("bboxes"));
    let mut out = Vec::new();
    for (index, line) in lines.filter(|l| !l.trim().is_empty()).enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let cell = |i: usize| cells.get(i).copied().ok_or_else(|| bad(format!("row {} has too few columns", index + 2)));
        let number = |i: Option<usize>| -> Result<Option<f64>> {
            match i {
                Some(i) => cell(i)?.trim().parse::<f64>().ok().filter(|v| v.is_finite()).map(Some).ok_or_else(|| bad(format!("row {}: not a number", index + 2))),
                None => Ok(None),
            }
        };
        let file = cell(fi)?.to_string();
        let path = dir.join(&file);
        let label = cell(ci)?.trim().parse().map_err(|_| bad(format!("row {}: bad class_index", index + 2)))?;
        let boxes = match bi {
            Some(i) => parse_boxes(cell(i)?).map_err(|m| bad(format!("row {}: {m}", index + 2)))?,
            None => Vec::new(),
        };
        // Boxes are scaled by the image's size: without the columns, its header tells.
        let (width, height) = match (number(wi)?, number(hi)?) {
            (Some(w), Some(h)) if w > 0.0 && h > 0.0 => (w, h),
            _ if boxes.is_empty() => (0.0, 0.0),
            _ => {
                let (w, h) = image::image_dimensions(&path)
                    .map_err(|e| bad(format!("row {}: it has boxes but no width/height, and {} gives no size: {e}", index + 2, path.display())))?;
                (w as f64, h as f64)
            }
        };
        out.push(Sample { index, path, file, label, boxes, width, height });
    }
    Ok(out)
}

pub fn parse_boxes(cell: &str) -> std::result::Result<Vec<BoundingBox>, String> {
    cell.split(';')
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            let v: Vec<f64> = b.split_whitespace().map(|x| x.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| format!("bad box {b:?}"))).collect::<std::result::Result<_, _>>()?;
            match v[..] {
                [x1, y1, x2, y2] => Ok(BoundingBox { x1, y1, x2, y2 }),
                _ => Err(format!("a box needs 4 numbers: {b:?}")),
            }
        })
        .collect()
}

/// `I/N`: this process takes the samples whose index is I modulo N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// `I/N`: shard I of N. Or `N` (or `auto`, N then being `SLURM_ARRAY_TASK_COUNT`) with I from
    /// the batch scheduler, read through `env`: a Slurm job array's `SLURM_ARRAY_TASK_ID`
    /// (counted from `SLURM_ARRAY_TASK_MIN`, so `--array=1-4` gives shards 0..3), else a
    /// Kubernetes Indexed Job's `JOB_COMPLETION_INDEX`.
    pub fn parse_with_env(s: &str, env: &dyn Fn(&str) -> Option<String>) -> std::result::Result<Self, String> {
        let (index, count) = match s.split_once('/') {
            Some((i, n)) => (i.parse().map_err(|_| format!("bad shard index {i:?}"))?, n.parse().map_err(|_| format!("bad shard count {n:?}"))?),
            None => {
                let number = |name: &str| -> std::result::Result<Option<usize>, String> {
                    env(name).map(|v| v.trim().parse().map_err(|_| format!("{name}={v:?} is not a number"))).transpose()
                };
                let count = match s {
                    "auto" => number("SLURM_ARRAY_TASK_COUNT")?.ok_or("--shard auto takes the shard count from SLURM_ARRAY_TASK_COUNT, which is not set: give it, --shard N")?,
                    n => n.parse().map_err(|_| "a shard is I/N (e.g. 0/4), or N or auto with the index from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX".to_string())?,
                };
                let index = match (number("SLURM_ARRAY_TASK_ID")?, number("JOB_COMPLETION_INDEX")?) {
                    (Some(id), _) => id.checked_sub(number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0)).ok_or("SLURM_ARRAY_TASK_ID is below SLURM_ARRAY_TASK_MIN")?,
                    (None, Some(index)) => index,
                    (None, None) => return Err(format!("--shard {s}: no shard index in the environment (SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX); give it, --shard I/{s}")),
                };
                (index, count)
            }
        };
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: need 0 <= I < N"));
        }
        Ok(Self { index, count })
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::parse_with_env(s, &|name| std::env::var(name).ok())
    }
}

/// The first `limit` samples, then this shard's share of them.
pub fn select(samples: Vec<Sample>, limit: Option<usize>, shard: Option<Shard>) -> Vec<Sample> {
    samples
        .into_iter()
        .take(limit.unwrap_or(usize::MAX))
        .filter(|s| shard.is_none_or(|sh| s.index % sh.count == sh.index))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_size_comes_from_the_image_when_the_columns_are_missing() {
        let scratch = tempfile::Builder::new().prefix("scorecam-labels-").tempdir().unwrap();
        let dir = scratch.path();
        image::RgbImage::new(40, 30).save(dir.join("a.png")).unwrap();
        std::fs::write(dir.join("labels.csv"), "file,class_index,bboxes\na.png,3,1 2 10 20\nb.png,4,\n").unwrap();
        let samples = read_labels(dir).unwrap();
        assert_eq!((samples[0].width, samples[0].height), (40.0, 30.0));
        assert_eq!((samples[1].width, samples[1].height, samples[1].boxes.len()), (0.0, 0.0, 0));
        // boxes, no size columns and no image: a clear error, not a silently dropped pointing game
        std::fs::write(dir.join("labels.csv"), "file,class_index,bboxes\nmissing.png,3,1 2 10 20\n").unwrap();
        let e = read_labels(dir).unwrap_err().to_string();
        assert!(e.contains("row 2") && e.contains("no width/height") && e.contains("missing.png"), "{e}");
    }

    #[test]
    fn boxes_and_shards_parse() {
        assert_eq!(parse_boxes("1 2 3 4;5 6 7 8").unwrap().len(), 2);
        assert!(parse_boxes("1 2 3").is_err());
        assert_eq!("1/4".parse::<Shard>().unwrap(), Shard { index: 1, count: 4 });
        assert!("4/4".parse::<Shard>().is_err() && "x".parse::<Shard>().is_err());
    }

    #[test]
    fn a_shard_index_comes_from_slurm_or_kubernetes() {
        let with = |vars: &'static [(&'static str, &'static str)]| move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
        let parse = |s: &str, vars: &'static [(&'static str, &'static str)]| Shard::parse_with_env(s, &with(vars));
        // a Slurm job array, --array=1-4: task 3 is shard 2 of 4
        let slurm: &[(&str, &str)] = &[("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_COUNT", "4")];
        assert_eq!(parse("4", slurm).unwrap(), Shard { index: 2, count: 4 });
        assert_eq!(parse("auto", slurm).unwrap(), Shard { index: 2, count: 4 });
        // a Kubernetes Indexed Job with completions: 8
        assert_eq!(parse("8", &[("JOB_COMPLETION_INDEX", "5")]).unwrap(), Shard { index: 5, count: 8 });
        // I/N on the command line wins over the environment
        assert_eq!(parse("0/2", slurm).unwrap(), Shard { index: 0, count: 2 });
        // nothing to read, or something wrong: a message that says what
        assert!(parse("4", &[]).unwrap_err().contains("SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX"));
        assert!(parse("auto", &[("JOB_COMPLETION_INDEX", "1")]).unwrap_err().contains("SLURM_ARRAY_TASK_COUNT"));
        assert!(parse("4", &[("JOB_COMPLETION_INDEX", "4")]).unwrap_err().contains("need 0 <= I < N"));
        assert!(parse("4", &[("SLURM_ARRAY_TASK_ID", "x")]).unwrap_err().contains("not a number"));
    }
}
