//! `scorecam eval`: methods x metrics over a labelled folder, resumable and shardable, written
//! as the paper's tables.

use std::path::PathBuf;

use anyhow::Result;
use clap::ValueEnum;
use scorecam::eval::{self, report};
use scorecam::metrics::Metric;

use crate::args::{expand_sets, methods_help, parse_method_or_set, progress_bar, MethodArgs, ModelArgs};

#[derive(Clone, Copy, ValueEnum)]
enum ClassArg {
    Predicted,
    Label,
}

/// The paper's evaluation: methods x metrics over a labelled folder (labels.csv with
/// class_index and bboxes), written as tables (results.md/.csv/.json) and curves (curves.svg).
/// Resumable (records.jsonl), shardable (--shard I/N, then run once more without it or with
/// --report-only to merge).
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    #[arg(long)]
    data: PathBuf,
    /// Comma-separated method names, or `cam-family` (every CAM method but the costly ones:
    /// SS-CAM, IS-CAM) or `all` (every CAM method).
    #[arg(long, value_delimiter = ',', default_value = "gradcam,gradcampp,scorecam", value_parser = parse_method_or_set, long_help = methods_help())]
    methods: Vec<String>,
    /// Comma-separated: ad-ai-library, ad-ai-paper, deletion, insertion, pointing-game.
    #[arg(long, value_delimiter = ',', default_value = "ad-ai-library,ad-ai-paper,deletion,insertion,pointing-game")]
    metrics: Vec<String>,
    #[arg(long, short, default_value = "eval-out")]
    out: PathBuf,
    /// Only the first N images of labels.csv.
    #[arg(long)]
    limit: Option<usize>,
    /// I/N: only the images whose row index is I modulo N (records-I-of-N.jsonl). N alone (or
    /// `auto`: N from SLURM_ARRAY_TASK_COUNT) takes I from a Slurm job array (SLURM_ARRAY_TASK_ID,
    /// from SLURM_ARRAY_TASK_MIN) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX).
    #[arg(long)]
    shard: Option<eval::dataset::Shard>,
    #[command(flatten)]
    method_args: MethodArgs,
    /// Explain the predicted (top-1) class or the ground-truth label.
    #[arg(long, value_enum, default_value = "predicted")]
    class: ClassArg,
    /// Save every map as maps/<image>__<method>.npy (for the cross-check).
    #[arg(long)]
    save_maps: bool,
    /// RISE masks (default 8000, the paper's; fewer for a quick look). Same as `-o masks=N`.
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
}

pub fn run(mut a: Args) -> Result<()> {
    if let Some(n) = a.rise_masks {
        a.method_args.options.push(("masks".into(), n as f64));
    }
    // Method-specific options go to the methods that take them; a shared flag may be absent from some.
    let methods = expand_sets(&a.methods)
        .iter()
        .map(|name| {
            let spec = scorecam::cam::registry::spec(name)?;
            let mut values = a.method_args.values(spec);
            values.retain(|k, _| spec.has_option(k));
            Ok(spec.with_options(&values)?)
        })
        .collect::<Result<Vec<_>>>()?;
    let metrics = a.metrics.iter().map(|m| Metric::from_name(m.trim())).collect::<Result<Vec<_>, _>>()?;
    let class = match a.class {
        ClassArg::Predicted => eval::ClassChoice::Predicted,
        ClassArg::Label => eval::ClassChoice::Label,
    };
    let (_session, mut model) = a.model.session()?;
    if let Some(source) = &a.source {
        model = std::sync::Arc::new(eval::f32_model(&model, source)?);
    }
    if !a.report_only {
        let opts = eval::EvalOptions { methods, metrics, out: a.out.clone(), limit: a.limit, shard: a.shard, batch_size: a.method_args.batch_size, class, target: a.method_args.target, save_maps: a.save_maps };
        let bar = progress_bar("image x method");
        let path = pollster::block_on(eval::run(&model, &a.data, &opts, &mut |done, total, what| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            if !what.is_empty() {
                bar.set_message(what.to_string());
            }
        }))?;
        bar.finish_and_clear();
        println!("records -> {}", path.display());
    }
    let mut records = eval::load_records(&a.out)?;
    let title = format!("Evaluation of {} on {}", model.manifest.name, a.data.display());
    let written = match &a.reference {
        Some(dir) => {
            // Compare like with like: only the (image, method) pairs both runs hold.
            let mut theirs = eval::load_records(dir)?;
            report::keep_common(&mut records, &mut theirs);
            let ours = report::summarise(&records);
            let theirs = report::summarise(&theirs);
            let agree = report::agreement(&ours, &theirs, &a.out, dir, &records)?;
            report::write(&a.out, &title, &ours, Some((&theirs, &agree)))?
        }
        None => report::write(&a.out, &title, &report::summarise(&records), None)?,
    };
    for p in written {
        println!("-> {}", p.display());
    }
    Ok(())
}
