//! `scorecam explain`: the top-5, the overlay PNG and the raw map of one image; `--json` prints
//! the same serde types the wasm API returns.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use scorecam::cam::{Progress, Reporter};
use scorecam::render::{self, Colormap};
use scorecam::session::{ExplainRequest, ExplanationSummary, PreparedImage};
use scorecam::{image_input, npy};

use crate::args::{colormap_names, parse_method, methods_help, progress_bar, MethodArgs, ModelArgs};

/// Explain an image: print the top-5, write the overlay PNG and the raw map.
#[derive(clap::Args)]
pub struct Args {
    image: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    /// Class index to explain (default: the top-1 class).
    #[arg(long)]
    class: Option<usize>,
    #[arg(long, default_value = "scorecam", value_parser = parse_method, long_help = methods_help())]
    method: String,
    #[command(flatten)]
    method_args: MethodArgs,
    #[arg(long, default_value = "jet", value_parser = colormap_names())]
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
}

#[derive(Serialize)]
struct Report<'a> {
    image: String,
    backend: String,
    /// "f32" or "int8", the bytes the weights take on the device, and the convolutions' kernels.
    device_weights: &'static str,
    weight_bytes_on_device: usize,
    conv_kernels: String,
    #[serde(flatten)]
    explanation: &'a ExplanationSummary,
    seconds: f64,
    files: Files,
}

#[derive(Serialize)]
struct Files {
    overlay: String,
    map: String,
}

pub fn run(a: Args) -> Result<()> {
    let cmap = Colormap::from_name(&a.colormap)?;
    let spec = scorecam::cam::registry::spec(&a.method)?;
    let request = ExplainRequest { class: a.class, method: spec.name.to_string(), options: a.method_args.values(spec), target: a.method_args.target };
    // A flag the method does not take, or a target it takes none of, fails before any work.
    request.method()?.spec().resolve_target(request.target)?;
    let (mut session, model) = a.model.session()?;
    let photo = image_input::read(&a.image)?;
    session.set_image(pollster::block_on(PreparedImage::new(model.clone(), &photo))?)?;
    let bar = progress_bar("forwards");
    let mut on_progress = |p: &Progress| {
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
        true
    };
    let t0 = Instant::now();
    let (exp, summary) = pollster::block_on(session.explainer(&request)?.run(&mut Reporter::new(&mut on_progress)))?;
    bar.finish_and_clear();
    let seconds = t0.elapsed().as_secs_f64();
    let (w, h) = photo.dimensions();
    let full = render::map_to_image_size(&exp.map, exp.size, w, h);
    render::overlay(&photo, &full, cmap, a.alpha).save(&a.out).with_context(|| format!("writing {}", a.out.display()))?;
    let map_out = a.map_out.unwrap_or_else(|| a.out.with_extension("npy"));
    npy::write_npy(&map_out, &exp.map, exp.size)?;
    if a.json {
        let report = Report {
            image: a.image.display().to_string(),
            backend: session.backend().name.to_string(),
            device_weights: model.weights.name(),
            weight_bytes_on_device: model.weight_bytes_on_device(),
            conv_kernels: model.conv_kernel_summary(),
            explanation: &summary,
            seconds,
            files: Files { overlay: a.out.display().to_string(), map: map_out.display().to_string() },
        };
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("top-5 ({}):", model.manifest.name);
        for t in &summary.top5 {
            println!("  {:>5.1}%  {:>4}  {}", t.probability * 100.0, t.class, t.name);
        }
        let e = &summary.explained;
        let target = summary.target.map_or(String::new(), |t| format!(", its {t}"));
        println!("explained: {} {} ({:.1}%) with {}{target}", e.class, e.name, e.probability * 100.0, spec.display_name);
        let st = &summary.stats;
        println!(
            "{} forwards, {} head passes, {} backwards ({} constant channels skipped) in {seconds:.1} s; overlay -> {}",
            st.forwards,
            st.head_forwards,
            st.backwards,
            st.skipped_constant,
            a.out.display()
        );
        println!("map -> {}", map_out.display());
    }
    Ok(())
}
