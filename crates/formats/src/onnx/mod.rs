//! ONNX classification models imported as programs the interpreter runs ([`Program`]).
//!
//! The bytes are parsed with tracel-ai's `onnx-ir` (its generated protobuf types); the graph is
//! planned here ([`plan`]), not by onnx-ir's own IR pipeline, because that pipeline renames
//! every node and value (`conv2d3`, `relu5_out1`: the names Netron shows, which `--layer` takes,
//! are lost), folds `Shape` chains with the batch the model was exported with (scorecam runs
//! batches of masked inputs), turns some Reshapes into Transposes in its simplifier, and panics
//! on constants that broadcast there. The planner reads the opsets exporters write (13 to 18
//! tested, both of PyTorch's exporters), folds every computation on constants, and plans the
//! graph twice, for a batch of one and of two images: a graph whose shapes do not differ only in
//! the batch between the two (a batch of one written into a reshape where no exporter writes
//! one) is refused, instead of explaining the wrong thing.

mod fold;
mod plan;
mod proto;

use crate::error::{brief, Error, Result};
use crate::graph::Program;
use crate::weights::NamedTensors;

/// What to import: the input size where the file leaves it open, and the layer to explain.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The input side, for a model whose file does not fix it (default: the file's
    /// `scorecam.input_size` metadata, else 224).
    pub input_size: Option<usize>,
    /// The layer to explain (a value's name); default: the last one before the network pools
    /// its positions away ([`Program::default_target`]).
    pub layer: Option<String>,
}

/// What an ONNX file says about itself beyond its graph: the exporter and opset, and the
/// preprocessing and labels an exporter (or `scripts/onnx_zoo.py`) wrote into its metadata as
/// `scorecam.mean`, `scorecam.std` ("0.485,0.456,0.406"), `scorecam.input_size` and
/// `scorecam.labels` (a JSON list, or one class a line).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    pub producer: String,
    pub opset: i64,
    pub mean: Option<[f32; 3]>,
    pub std: Option<[f32; 3]>,
    pub input_size: Option<usize>,
    pub labels: Option<Vec<String>>,
}

/// An imported model: the program, its f32 tensors and what the file says about itself.
#[derive(Debug, Clone)]
pub struct Imported {
    pub program: Program,
    pub tensors: NamedTensors,
    pub metadata: Metadata,
}

/// The first bytes of every ONNX file: field 1 of `ModelProto` (ir_version), a varint.
pub fn looks_like_onnx(bytes: &[u8]) -> bool {
    bytes.first() == Some(&0x08)
}

/// Imports the ONNX model in `bytes` (`file` names it in errors): parsed, planned, checked.
pub fn import(bytes: Vec<u8>, file: &str, options: &ImportOptions) -> Result<Imported> {
    let model = proto::parse(bytes, file)?;
    let metadata = read_metadata(&model, file)?;
    let input = plan::input_spec(&model, file)?;
    let size = match (input.size, options.input_size) {
        (Some(fixed), Some(asked)) if fixed != asked => return Err(Error::model(file, format!("the model takes {fixed}x{fixed} images, not {asked}"))),
        (Some(fixed), _) => fixed,
        (None, asked) => asked.or(metadata.input_size).unwrap_or(224),
    };
    if !(8..=1024).contains(&size) {
        return Err(Error::model(file, format!("an input of {size} pixels (scorecam explains 8 to 1024)")));
    }
    let (program, tensors) = plan::plan(&model, file, &input, size, 1)?;
    let (twice, _) = plan::plan(&model, file, &input, size, 2)?;
    drop(model);
    only_the_batch_differs(&program, &twice).map_err(|m| Error::model(file, m))?;
    let program = match &options.layer {
        Some(layer) => program.with_target(layer),
        None => match program.default_target() {
            Some(target) => Ok(Program { target, ..program }),
            None => Err(Error::model(file, "no layer to explain: no 4-D value with more than one position from which the rest of the network is computed alone (is it a CNN classifier?)")),
        },
    }
    .map_err(|e| match e {
        Error::Model { message, .. } => Error::model(file, message),
        other => other,
    })?;
    program.check().map_err(|e| Error::model(file, e))?;
    Ok(Imported { program, tensors, metadata })
}

/// The plans for one image and for two agree in everything but the batch.
fn only_the_batch_differs(one: &Program, two: &Program) -> std::result::Result<(), String> {
    if one.nodes.len() != two.nodes.len() || one.values.len() != two.values.len() {
        return Err("the graph changes with the batch size; export it with a batch axis (or batch 1) that the whole graph follows".into());
    }
    for (a, b) in one.values.iter().zip(&two.values) {
        let mut expected = a.shape.dims.clone();
        if a.shape.batched {
            expected[0] = 2;
        }
        if a.shape.batched != b.shape.batched || expected != b.shape.dims {
            return Err(format!(
                "`{}` is {} for one image but {} for two: the graph mixes the batch into other axes (a batch size written into a reshape?); export it with a dynamic batch axis",
                a.name, brief(&a.shape.dims), brief(&b.shape.dims)
            ));
        }
    }
    Ok(())
}

fn read_metadata(model: &onnx_ir::ModelProto, file: &str) -> Result<Metadata> {
    let props = proto::metadata(model);
    let fail = |key: &str, m: String| Error::model(file, format!("metadata {key}: {m}"));
    let three = |key: &str| -> Result<Option<[f32; 3]>> {
        let Some(text) = props.get(key) else { return Ok(None) };
        let values: Vec<f32> = text.trim_matches(|c| c == '[' || c == ']').split(',').map(|v| v.trim().parse::<f32>()).collect::<std::result::Result<_, _>>().map_err(|e| fail(key, format!("{text:?}: {e}")))?;
        match values[..] {
            [a, b, c] if values.iter().all(|v| v.is_finite()) => Ok(Some([a, b, c])),
            _ => Err(fail(key, format!("{text:?} is not three numbers"))),
        }
    };
    let input_size = props.get("scorecam.input_size").map(|v| v.trim().parse::<usize>().map_err(|e| fail("scorecam.input_size", e.to_string()))).transpose()?;
    let labels = props.get("scorecam.labels").map(|text| crate::labels::parse(text).map_err(|e| fail("scorecam.labels", e.to_string()))).transpose()?;
    Ok(Metadata { producer: model.producer_name.clone(), opset: proto::opset(model), mean: three("scorecam.mean")?, std: three("scorecam.std")?, input_size, labels })
}

#[cfg(test)]
mod tests;
