//! `scorecam compare`: every CAM method on one photo and class, each with its time, passes,
//! deletion and insertion AUC and Average Drop (the library's `Explainer::compare`, the page's
//! compare view's code): a table sorted by a column (markdown and JSON) and a grid image.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::ValueEnum;
use serde::Serialize;

use scorecam::cam::{Progress, Reporter, METHODS};
use scorecam::render::{self, Colormap};
use scorecam::session::{Comparison, CurveCache, ExplainRequest, PreparedImage};
use scorecam::image_input;

use crate::args::{colormap_names, expand_sets, methods_help, parse_method_or_set, progress_bar, MethodArgs, ModelArgs};

/// Compare every CAM method on one photo: a grid of maps with their time, forward passes,
/// deletion and insertion AUC and Average Drop (as `scorecam eval` computes them), and the
/// table sorted by a column. By default the methods that are not costly; `--methods all` adds
/// SS-CAM and IS-CAM (thousands of passes each), whose expected time is printed otherwise.
#[derive(clap::Args)]
pub struct Args {
    image: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    /// Comma-separated method names, `cam-family` (every CAM method that is not costly) or `all`
    /// (every CAM method).
    #[arg(long, value_delimiter = ',', default_value = "cam-family", value_parser = parse_method_or_set, long_help = methods_help())]
    methods: Vec<String>,
    /// Class index to explain (default: the top-1 class).
    #[arg(long)]
    class: Option<usize>,
    #[command(flatten)]
    method_args: MethodArgs,
    /// The column the table is sorted by (best first).
    #[arg(long, value_enum, default_value = "method")]
    sort: SortBy,
    /// Pixels deleted or inserted per point of the deletion and insertion curves: 224 is
    /// `scorecam eval`'s (RISE's, 225 points on 224 x 224); 896 scores 57 points, a quarter of
    /// the passes, with AUCs of a coarser trapezoid (what the page's Compare view does unless
    /// asked for full curves).
    #[arg(long, default_value_t = scorecam::metrics::Metric::CAUSAL_STEP)]
    curve_step: usize,
    /// Where the grid (grid.svg, one overlay PNG per method) and the tables (compare.md,
    /// compare.json) go.
    #[arg(long, short, default_value = "compare-out")]
    out: PathBuf,
    #[arg(long, default_value = "jet", value_parser = colormap_names())]
    colormap: String,
    /// Print the records as one JSON array instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SortBy {
    /// The registry's order.
    Method,
    /// Deletion AUC, lowest first.
    Deletion,
    /// Insertion AUC, highest first.
    Insertion,
    /// Average Drop, lowest first.
    Drop,
    /// The method's time, shortest first.
    Seconds,
    /// Forward passes, fewest first.
    Forwards,
}

/// One row: a method's comparison, or why it did not run (CAM on a head it cannot read, ...).
#[derive(Serialize)]
#[serde(untagged)]
enum Row {
    Ran(Comparison),
    Failed { method: String, error: String },
}

impl Row {
    fn comparison(&self) -> Option<&Comparison> {
        match self {
            Row::Ran(c) => Some(c),
            Row::Failed { .. } => None,
        }
    }
}

pub fn run(a: Args) -> Result<()> {
    let cmap = Colormap::from_name(&a.colormap)?;
    let names = expand_sets(&a.methods);
    let (mut session, model) = a.model.session()?;
    let photo = image_input::read(&a.image)?;
    session.set_image(pollster::block_on(PreparedImage::new(model.clone(), &photo))?)?;
    let channels = session.image()?.maps.channels;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let size = model.input_size();
    let thumbnail = image::imageops::resize(&photo, size as u32, size as u32, image::imageops::FilterType::Triangle);
    let mut rows = Vec::new();
    let mut maps = Vec::new();
    let mut curves = CurveCache::default();
    for name in &names {
        let spec = scorecam::cam::registry::spec(name)?;
        let mut options = a.method_args.values(spec);
        options.retain(|k, _| spec.has_option(k));
        // A target goes to the methods that take one; the others explain as they do.
        let target = spec.target.and(a.method_args.target);
        let request = ExplainRequest { class: a.class, method: spec.name.to_string(), options, target };
        let bar = progress_bar("passes");
        bar.set_message(spec.display_name.to_string());
        let mut on_progress = |p: &Progress| {
            bar.set_length(p.total as u64);
            bar.set_position(p.done as u64);
            true
        };
        let result = session.explainer(&request).and_then(|e| pollster::block_on(e.compare_with(&mut Reporter::new(&mut on_progress), a.curve_step, &mut curves)));
        bar.finish_and_clear();
        match result {
            Ok((e, c)) => {
                eprintln!("{:<28} {:>7.2} s  {:>6} forwards  deletion {:.4}  insertion {:.4}  drop {:.2}%", c.display_name, c.seconds, c.forwards, c.deletion_auc, c.insertion_auc, c.average_drop);
                let tile = render::overlay(&thumbnail, &e.map, cmap, 0.5);
                tile.save(a.out.join(format!("{}.png", spec.name))).with_context(|| format!("writing the {} overlay", spec.name))?;
                maps.push((spec.name, tile));
                rows.push(Row::Ran(c));
            }
            Err(e) => {
                eprintln!("{:<28} not run: {e}", spec.display_name);
                rows.push(Row::Failed { method: spec.name.to_string(), error: e.to_string() });
            }
        }
    }
    sort(&mut rows, a.sort);
    // The costly methods left out, with what they would take at this run's seconds per pass.
    let per_forward = rows.iter().filter_map(Row::comparison).filter(|c| c.forwards > 100).map(|c| c.seconds / c.forwards as f64).next();
    let left_out: Vec<String> = METHODS
        .iter()
        .filter(|s| s.kind == scorecam::cam::MethodKind::Cam && s.costly && !names.iter().any(|n| n == s.name))
        .map(|s| {
            let passes = s.passes(channels, &Default::default());
            let time = per_forward.map_or(String::new(), |t| format!(", about {:.0} s at this run's {:.1} ms a forward", t * passes.forwards as f64, 1000.0 * t));
            format!("{} ({}): {} forwards{time}", s.display_name, s.name, passes.forwards)
        })
        .collect();
    let title = format!("{} on {}", model.manifest.name, a.image.display());
    let md = markdown(&title, &rows, &left_out);
    std::fs::write(a.out.join("compare.md"), &md).context("writing compare.md")?;
    let json = serde_json::to_string_pretty(&rows)?;
    std::fs::write(a.out.join("compare.json"), &json).context("writing compare.json")?;
    std::fs::write(a.out.join("grid.svg"), grid_svg(&rows, &maps)?).context("writing grid.svg")?;
    if a.json {
        println!("{}", serde_json::to_string(&rows)?);
    } else {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{md}")?;
        writeln!(out, "-> {}", a.out.join("grid.svg").display())?;
    }
    Ok(())
}

fn sort(rows: &mut [Row], by: SortBy) {
    if by == SortBy::Method {
        return;
    }
    let key = |r: &Row| -> f64 {
        let Some(c) = r.comparison() else { return f64::INFINITY };
        match by {
            SortBy::Deletion => c.deletion_auc,
            SortBy::Insertion => -c.insertion_auc,
            SortBy::Drop => c.average_drop,
            SortBy::Seconds => c.seconds,
            SortBy::Forwards => c.forwards as f64,
            SortBy::Method => 0.0,
        }
    };
    rows.sort_by(|a, b| key(a).total_cmp(&key(b)));
}

fn markdown(title: &str, rows: &[Row], left_out: &[String]) -> String {
    let mut md = format!("# Compare: {title}\n\n| method | score | seconds | forwards | head passes | backwards | deletion AUC ↓ | insertion AUC ↑ | Average Drop (%) ↓ |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        match r {
            Row::Ran(c) => md.push_str(&format!(
                "| {} | {} | {:.2} | {} | {} | {} | {:.4} | {:.4} | {:.2} |\n",
                c.display_name,
                c.target.map_or("—".into(), |t| t.to_string()),
                c.seconds,
                c.forwards,
                c.head_forwards,
                c.backwards,
                c.deletion_auc,
                c.insertion_auc,
                c.average_drop
            )),
            Row::Failed { method, error } => md.push_str(&format!("| {method} | not run: {} | | | | | | | |\n", error.replace('|', "/"))),
        }
    }
    if let Some(c) = rows.iter().find_map(Row::comparison) {
        md.push_str(&format!("\nDeletion and insertion curves of {} points each (`--curve-step`; `scorecam eval`'s: 225 on 224 x 224).\n", c.curve_points));
    }
    if !left_out.is_empty() {
        md.push_str("\nCostly, not run (`--methods all`, or by name):\n");
        for l in left_out {
            md.push_str(&format!("- {l}\n"));
        }
    }
    md
}

/// The maps in a grid, each tile captioned with its numbers: one SVG with the overlays embedded
/// as PNG.
fn grid_svg(rows: &[Row], maps: &[(&str, image::RgbImage)]) -> Result<String> {
    let tiles: Vec<(&Comparison, &image::RgbImage)> = rows.iter().filter_map(Row::comparison).filter_map(|c| maps.iter().find(|(n, _)| *n == c.method).map(|(_, t)| (c, t))).collect();
    let side = tiles.first().map_or(224, |(_, t)| t.width());
    let cols = 5.min(tiles.len().max(1)) as u32;
    let rows_n = (tiles.len() as u32).div_ceil(cols);
    let (cell_w, cell_h) = (side + 16, side + 78);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        cols * cell_w,
        rows_n * cell_h
    );
    for (i, (c, tile)) in tiles.iter().enumerate() {
        let (x, y) = ((i as u32 % cols) * cell_w + 8, (i as u32 / cols) * cell_h + 8);
        let mut png = Vec::new();
        tile.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
        svg.push_str(&format!("<image x=\"{x}\" y=\"{y}\" width=\"{side}\" height=\"{side}\" href=\"data:image/png;base64,{}\"/>\n", base64(&png)));
        let lines = [
            format!("<tspan font-weight=\"bold\">{}</tspan>", escape(&c.display_name)),
            format!("{:.2} s, {} fwd, {} bwd", c.seconds, c.forwards, c.backwards),
            format!("del {:.3}  ins {:.3}", c.deletion_auc, c.insertion_auc),
            format!("Avg Drop {:.1}%", c.average_drop),
        ];
        for (k, line) in lines.iter().enumerate() {
            svg.push_str(&format!("<text x=\"{x}\" y=\"{}\">{line}</text>\n", y + side + 15 + 15 * k as u32));
        }
    }
    svg.push_str("</svg>\n");
    Ok(svg)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_has_its_padding() {
        assert_eq!(super::base64(b"Man"), "TWFu");
        assert_eq!(super::base64(b"Ma"), "TWE=");
        assert_eq!(super::base64(b"M"), "TQ==");
    }
}
