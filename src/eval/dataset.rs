//! A labelled image folder laid out like `shared/data/imagenet-val`: `labels.csv` with `file`,
//! `class_index`, `width`, `height` and `bboxes` (`x1 y1 x2 y2`, several separated by `;`).

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
        let number = |i: Option<usize>| -> Result<f64> {
            match i {
                Some(i) => cell(i)?.trim().parse().map_err(|_| bad(format!("row {}: not a number", index + 2))),
                None => Ok(0.0),
            }
        };
        let file = cell(fi)?.to_string();
        let label = cell(ci)?.trim().parse().map_err(|_| bad(format!("row {}: bad class_index", index + 2)))?;
        let boxes = match bi {
            Some(i) => parse_boxes(cell(i)?).map_err(|m| bad(format!("row {}: {m}", index + 2)))?,
            None => Vec::new(),
        };
        out.push(Sample { index, path: dir.join(&file), file, label, boxes, width: number(wi)?, height: number(hi)? });
    }
    Ok(out)
}

fn parse_boxes(cell: &str) -> std::result::Result<Vec<BoundingBox>, String> {
    cell.split(';')
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            let v: Vec<f64> = b.split_whitespace().map(|x| x.parse::<f64>().map_err(|_| format!("bad box {b:?}"))).collect::<std::result::Result<_, _>>()?;
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

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (i, n) = s.split_once('/').ok_or("a shard is I/N, e.g. 0/4")?;
        let (index, count) = (i.parse().map_err(|_| "bad shard index")?, n.parse().map_err(|_| "bad shard count")?);
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: need 0 <= I < N"));
        }
        Ok(Self { index, count })
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
    fn boxes_and_shards_parse() {
        assert_eq!(parse_boxes("1 2 3 4;5 6 7 8").unwrap().len(), 2);
        assert!(parse_boxes("1 2 3").is_err());
        assert_eq!("1/4".parse::<Shard>().unwrap(), Shard { index: 1, count: 4 });
        assert!("4/4".parse::<Shard>().is_err() && "x".parse::<Shard>().is_err());
    }
}
