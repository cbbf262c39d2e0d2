//! The paper's tables (Table 1: Average Drop / Increase, Table 2: deletion / insertion, Table 3:
//! energy pointing game) from evaluation records, as markdown, CSV and JSON, with the mean
//! deletion and insertion curves as an SVG plot. With a reference run (the PyTorch script's
//! records), every cell shows ours / reference and an agreement table follows.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{legacy_map_file_name, map_file_name, Record};
use crate::npy::read_npy;
use crate::cam::Method;
use crate::error::{Error, Result};
use crate::metrics::pearson;

/// Mean and count of one column for one method.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Mean {
    pub mean: f64,
    pub n: usize,
}

/// Per method: column means and mean curves.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub images: usize,
    /// The (image, method) pairs recorded as failed (an unreadable image, a label outside the
    /// model's classes), left out of every mean.
    pub failed: usize,
    pub methods: BTreeMap<String, MethodSummary>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MethodSummary {
    pub columns: BTreeMap<String, Mean>,
    pub curves: BTreeMap<String, Vec<f64>>,
    pub seconds_per_image: f64,
    pub forwards_per_image: f64,
}

pub fn summarise(records: &[Record]) -> Summary {
    let mut by_method: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    let mut images = std::collections::HashSet::new();
    // a resumed run can hold a pair twice: the last line wins
    let mut latest: BTreeMap<(String, String), &Record> = BTreeMap::new();
    for r in records {
        latest.insert((r.image.clone(), r.key()), r);
    }
    let failed = latest.values().filter(|r| r.error.is_some()).count();
    for r in latest.values().filter(|r| r.error.is_none()) {
        images.insert(r.image.clone());
        by_method.entry(r.key()).or_default().push(r);
    }
    let methods = by_method
        .into_iter()
        .map(|(name, rs)| {
            let mut sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
            let mut curves: BTreeMap<String, (Vec<f64>, usize)> = BTreeMap::new();
            for r in &rs {
                for (k, v) in &r.scores {
                    let e = sums.entry(k.clone()).or_default();
                    e.0 += v;
                    e.1 += 1;
                }
                for (k, c) in &r.curves {
                    let e = curves.entry(k.clone()).or_insert_with(|| (vec![0.0; c.len()], 0));
                    if e.0.len() == c.len() {
                        e.0.iter_mut().zip(c).for_each(|(s, v)| *s += *v as f64);
                        e.1 += 1;
                    }
                }
            }
            let n = rs.len() as f64;
            let summary = MethodSummary {
                columns: sums.into_iter().map(|(k, (s, n))| (k, Mean { mean: s / n as f64, n })).collect(),
                curves: curves.into_iter().map(|(k, (s, n))| (k, s.into_iter().map(|v| v / n as f64).collect())).collect(),
                seconds_per_image: rs.iter().map(|r| r.seconds).sum::<f64>() / n,
                forwards_per_image: rs.iter().map(|r| r.forwards as f64).sum::<f64>() / n,
            };
            (name, summary)
        })
        .collect();
    Summary { images: images.len(), failed, methods }
}

/// Drops the records whose (image, method) pair the other run lacks.
pub fn keep_common(ours: &mut Vec<Record>, theirs: &mut Vec<Record>) {
    let key = |r: &Record| (r.image.clone(), r.key());
    let a: std::collections::HashSet<_> = ours.iter().map(key).collect();
    let b: std::collections::HashSet<_> = theirs.iter().map(key).collect();
    ours.retain(|r| b.contains(&key(r)));
    theirs.retain(|r| a.contains(&key(r)));
}

/// The rows of the three tables: (table, row label, column, decimals).
const ROWS: [(u8, &str, &str, usize); 7] = [
    (1, "Average Drop (%) ↓ — library protocol: input × map", "ad_ai_library_drop", 2),
    (1, "Average Increase (%) ↑ — library protocol: input × map", "ad_ai_library_increase", 2),
    (1, "Average Drop (%) ↓ — paper protocol: 50% most salient pixels kept", "ad_ai_paper_drop", 2),
    (1, "Average Increase (%) ↑ — paper protocol: 50% most salient pixels kept", "ad_ai_paper_increase", 2),
    (2, "Deletion AUC ↓", "deletion_auc", 4),
    (2, "Insertion AUC ↑", "insertion_auc", 4),
    (3, "Energy-based pointing game (%) ↑", "pointing_game_energy", 2),
];

/// Methods in the paper's column order, then any others.
fn method_order(summary: &Summary) -> Vec<String> {
    let mut order: Vec<String> = ["gradient", "smoothgrad", "integrated-gradients", "mask", "rise", "gradcam", "gradcampp", "scorecam", "scorecam-gradcam-lib"]
        .iter()
        .map(|s| s.to_string())
        .filter(|m| summary.methods.contains_key(m))
        .collect();
    // Then every other method in the registry's order, each score after its method.
    for spec in crate::cam::METHODS {
        let mut keys: Vec<&String> = summary.methods.keys().filter(|k| !order.contains(k) && k.split('@').next() == Some(spec.name)).collect();
        keys.sort_by_key(|k| k.contains('@'));
        order.extend(keys.into_iter().cloned());
    }
    let rest: Vec<String> = summary.methods.keys().filter(|m| !order.contains(m)).cloned().collect();
    order.extend(rest);
    order
}

/// A record key's name in the tables: the method's display name, and a score that is not its own.
fn display(key: &str) -> String {
    let (method, target) = key.split_once('@').map_or((key, None), |(m, t)| (m, Some(t)));
    let name = Method::from_name(method).map(|m| m.display_name().to_string()).unwrap_or_else(|_| method.to_string());
    match target {
        Some(t) => format!("{name} ({t})"),
        None => name,
    }
}

/// Agreement of ours with the reference for one method.
#[derive(Debug, Clone, Serialize)]
pub struct Agreement {
    /// |ours - reference| of each column mean.
    pub column_diffs: BTreeMap<String, f64>,
    /// Pearson correlation of our map with the reference's, over the images both saved.
    pub map_pearson_mean: Option<f64>,
    pub map_pearson_min: Option<f64>,
    pub maps_compared: usize,
}

pub fn agreement(ours: &Summary, reference: &Summary, ours_dir: &Path, reference_dir: &Path, records: &[Record]) -> Result<BTreeMap<String, Agreement>> {
    let mut out = BTreeMap::new();
    for (method, o) in &ours.methods {
        let Some(r) = reference.methods.get(method) else { continue };
        let column_diffs = o.columns.iter().filter_map(|(k, v)| r.columns.get(k).map(|w| (k.clone(), (v.mean - w.mean).abs()))).collect();
        let mut pearsons = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for rec in records.iter().filter(|r| &r.key() == method) {
            if !seen.insert(rec.image.clone()) {
                continue;
            }
            let name = map_file_name(&rec.image, method);
            // A reference saved before maps were named by their whole path has stems only.
            let theirs = match read_npy(&reference_dir.join("maps").join(&name))? {
                None => read_npy(&reference_dir.join("maps").join(legacy_map_file_name(&rec.image, method)))?,
                found => found,
            };
            if let (Some(a), Some(b)) = (read_npy(&ours_dir.join("maps").join(&name))?, theirs)
                && a.len() == b.len()
            {
                // identical maps agree fully, also constant ones (where Pearson is undefined)
                pearsons.push(if a == b { 1.0 } else { pearson(&a, &b) });
            }
        }
        let n = pearsons.len();
        out.insert(
            method.clone(),
            Agreement {
                column_diffs,
                map_pearson_mean: (n > 0).then(|| pearsons.iter().sum::<f64>() / n as f64),
                map_pearson_min: pearsons.iter().copied().reduce(f64::min),
                maps_compared: n,
            },
        );
    }
    Ok(out)
}

/// Writes `results.md`, `results.csv`, `results.json` and `curves.svg` into `out`.
pub fn write(out: &Path, title: &str, ours: &Summary, reference: Option<(&Summary, &BTreeMap<String, Agreement>)>) -> Result<Vec<PathBuf>> {
    let methods = method_order(ours);
    let cell = |s: &Summary, m: &str, col: &str, d: usize| s.methods.get(m).and_then(|x| x.columns.get(col)).map(|v| format!("{:.*}", d, v.mean));
    let mut md = format!("# {title}\n\n{} images. ↓ lower is better, ↑ higher is better.", ours.images);
    if reference.is_some() {
        md.push_str(" Each cell: ours / reference (PyTorch).");
    }
    md.push('\n');
    if ours.failed > 0 {
        let _ = writeln!(md, "\n{} (image, method) pairs failed (an unreadable image, a label outside the model's classes) and are left out: see `error` in the records.", ours.failed);
    }
    for (table, heading) in [(1, "Table 1 — Average Drop and Average Increase"), (2, "Table 2 — Deletion and Insertion (AUC of the class probability)"), (3, "Table 3 — Localisation: energy-based pointing game")] {
        let rows: Vec<_> = ROWS.iter().filter(|r| r.0 == table && methods.iter().any(|m| cell(ours, m, r.2, 0).is_some())).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = write!(md, "\n## {heading}\n\n| |");
        for m in &methods {
            let _ = write!(md, " {} |", display(m));
        }
        md.push_str("\n|---|");
        md.push_str(&"---:|".repeat(methods.len()));
        md.push('\n');
        for (_, label, col, d) in rows {
            let _ = write!(md, "| {label} |");
            for m in &methods {
                let mine = cell(ours, m, col, *d).unwrap_or_else(|| "–".into());
                match reference {
                    Some((r, _)) => {
                        let theirs = cell(r, m, col, *d).unwrap_or_else(|| "–".into());
                        let _ = write!(md, " {mine} / {theirs} |");
                    }
                    None => {
                        let _ = write!(md, " {mine} |");
                    }
                }
            }
            md.push('\n');
        }
        if table == 3 {
            let n = methods.iter().filter_map(|m| ours.methods.get(m)?.columns.get("pointing_game_energy").map(|v| v.n)).max().unwrap_or(0);
            let _ = writeln!(md, "\nOver the {n} images with exactly one box covering less than half of the image.");
        }
    }
    if reference.is_none() && methods.len() > 4 {
        md.push_str(&by_method(ours, &methods));
    }
    let _ = write!(md, "\n## Cost\n\n| | seconds / image | forward passes / image (method + metrics) |\n|---|---:|---:|\n");
    for m in &methods {
        let s = &ours.methods[m];
        let _ = writeln!(md, "| {} | {:.2} | {:.0} |", display(m), s.seconds_per_image, s.forwards_per_image);
    }
    if let Some((_, agree)) = reference {
        md.push_str("\n## Agreement with the reference\n\n| method | max abs. difference, Average Drop/Increase (points) | max abs. difference, deletion/insertion AUC | max abs. difference, pointing game (points) | map Pearson mean (min) over n maps |\n|---|---:|---:|---:|---|\n");
        for m in &methods {
            let Some(a) = agree.get(m) else { continue };
            let max = |pred: &dyn Fn(&str) -> bool| a.column_diffs.iter().filter(|(k, _)| pred(k)).map(|(_, v)| *v).reduce(f64::max).map_or("–".into(), |v| format!("{v:.3}"));
            let pearson = match (a.map_pearson_mean, a.map_pearson_min) {
                (Some(mean), Some(min)) => format!("{mean:.4} ({min:.4}), n = {}", a.maps_compared),
                _ => "–".into(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                display(m),
                max(&|k| k.starts_with("ad_ai")),
                max(&|k| k.ends_with("_auc")),
                max(&|k| k.starts_with("pointing")),
                pearson
            );
        }
    }
    let mut written = Vec::new();
    let mut put = |name: &str, text: String| -> Result<()> {
        let p = out.join(name);
        std::fs::write(&p, text).map_err(|e| Error::io(p.display(), e))?;
        written.push(p);
        Ok(())
    };
    put("results.md", md)?;
    let mut csv = String::from("method,column,mean,n,reference_mean\n");
    for m in &methods {
        for (col, v) in &ours.methods[m].columns {
            let r = reference.and_then(|(r, _)| r.methods.get(m)?.columns.get(col)).map_or(String::new(), |w| w.mean.to_string());
            let _ = writeln!(csv, "{m},{col},{},{},{r}", v.mean, v.n);
        }
    }
    put("results.csv", csv)?;
    let json = serde_json::json!({
        "title": title,
        "ours": ours,
        "reference": reference.map(|(r, _)| r),
        "agreement": reference.map(|(_, a)| a),
    });
    put("results.json", serde_json::to_string_pretty(&json).map_err(|e| Error::Invalid(e.to_string()))?)?;
    let svg = out.join("curves.svg");
    plot_curves(&svg, ours, &methods)?;
    written.push(svg);
    Ok(written)
}

/// Every column in one table, one row per method (what many methods read best as), the best of
/// each column in bold.
fn by_method(summary: &Summary, methods: &[String]) -> String {
    const SHORT: [&str; 7] = ["AD lib. ↓", "AI lib. ↑", "AD paper ↓", "AI paper ↑", "Deletion ↓", "Insertion ↑", "Pointing ↑"];
    let value = |m: &str, col: &str| summary.methods.get(m).and_then(|x| x.columns.get(col)).map(|v| v.mean);
    let columns: Vec<(usize, &(u8, &str, &str, usize))> = ROWS.iter().enumerate().filter(|(_, r)| methods.iter().any(|m| value(m, r.2).is_some())).collect();
    let mut md = String::from("\n## Every method, one row each\n\nAD, AI: Average Drop and Increase (%) under the library protocol (input × map) and the paper's (the 50% most salient pixels kept); deletion and insertion AUC; the energy-based pointing game (%). Best in bold.\n\n| method |");
    for (i, _) in &columns {
        let _ = write!(md, " {} |", SHORT[*i]);
    }
    md.push_str(" s / image |\n|---|");
    md.push_str(&"---:|".repeat(columns.len() + 1));
    md.push('\n');
    let best: Vec<Option<f64>> = columns
        .iter()
        .map(|(_, r)| {
            let values = methods.iter().filter_map(|m| value(m, r.2));
            if r.1.contains('↓') { values.reduce(f64::min) } else { values.reduce(f64::max) }
        })
        .collect();
    for m in methods {
        let _ = write!(md, "| {} |", display(m));
        for ((_, r), b) in columns.iter().zip(&best) {
            match value(m, r.2) {
                Some(v) if Some(v) == *b => {
                    let _ = write!(md, " **{:.*}** |", r.3, v);
                }
                Some(v) => {
                    let _ = write!(md, " {:.*} |", r.3, v);
                }
                None => md.push_str(" – |"),
            }
        }
        let _ = writeln!(md, " {:.2} |", summary.methods[m].seconds_per_image);
    }
    md
}

/// Mean deletion and insertion curves, one panel each, one line per method.
fn plot_curves(path: &Path, summary: &Summary, methods: &[String]) -> Result<()> {
    use plotters::prelude::*;
    let fail = |e: &dyn std::fmt::Display| Error::Invalid(format!("plotting {}: {e}", path.display()));
    let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let panels = root.split_evenly((1, 2));
    for (panel, (metric, title)) in panels.iter().zip([("deletion", "Deletion (lower AUC is better)"), ("insertion", "Insertion (higher AUC is better)")]) {
        let mut chart = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(45)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(|e| fail(&e))?;
        chart.configure_mesh().x_desc("fraction of pixels deleted / inserted").y_desc("class probability").draw().map_err(|e| fail(&e))?;
        for (i, m) in methods.iter().enumerate() {
            let Some(curve) = summary.methods[m].curves.get(metric) else { continue };
            let n = curve.len().max(2) - 1;
            let colour = Palette99::pick(i).to_rgba();
            let auc = summary.methods[m].columns.get(&format!("{metric}_auc")).map_or(f64::NAN, |v| v.mean);
            chart
                .draw_series(LineSeries::new(curve.iter().enumerate().map(|(k, v)| (k as f64 / n as f64, *v)), colour.stroke_width(2)))
                .map_err(|e| fail(&e))?
                .label(format!("{} ({auc:.3})", display(m)))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
        }
        chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).position(SeriesLabelPosition::UpperRight).draw().map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}
