//! The importer on graphs built here, node by node, as exporters write them: what it plans, and
//! a clear error for every kind of bad file. (Real exporters' files: tests/onnx.rs.)

use onnx_ir::{AttributeProto, AttributeType, GraphProto, Message, ModelProto, NodeProto, TensorProto, ValueInfoProto};

use super::*;
use crate::graph::{FusedActivation, Op};

fn f32_tensor(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.dims = dims.to_vec();
    t.data_type = 1;
    t.raw_data = data.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>().into();
    t
}

fn i64_tensor(name: &str, data: &[i64]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.dims = vec![data.len() as i64];
    t.data_type = 7;
    t.int64_data = data.to_vec();
    t
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INTS.into();
    a.ints = v.to_vec();
    a
}

fn int(name: &str, v: i64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INT.into();
    a.i = v;
    a
}

fn node(op: &str, name: &str, inputs: &[&str], output: &str, attrs: Vec<AttributeProto>) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.into();
    n.name = name.into();
    n.input = inputs.iter().map(|s| s.to_string()).collect();
    n.output = vec![output.into()];
    n.attribute = attrs;
    n
}

/// A value of float32 elements; `None` dims are symbolic ("N").
fn value(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    let t = v.type_.mut_or_insert_default().mut_tensor_type();
    t.elem_type = 1;
    let shape = t.shape.mut_or_insert_default();
    for d in dims {
        shape.dim.push(Default::default());
        let dim = shape.dim.last_mut().expect("pushed");
        match d {
            Some(d) => dim.set_dim_value(*d),
            None => dim.set_dim_param("N".into()),
        }
    }
    v
}

fn model(nodes: Vec<NodeProto>, initializers: Vec<TensorProto>, input: ValueInfoProto, opset: i64) -> Vec<u8> {
    let mut g = GraphProto::new();
    g.node = nodes;
    g.initializer = initializers;
    g.input = vec![input];
    g.output = vec![value("logits", &[None, Some(5)])];
    let mut m = ModelProto::new();
    m.ir_version = 8;
    m.opset_import.push(Default::default());
    m.opset_import[0].version = opset;
    m.graph = Some(g).into();
    m.write_to_bytes().expect("serialises")
}

fn weights(n: usize, seed: u32) -> Vec<f32> {
    (0..n).map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed * 40503) >> 8) as f32 / (1u32 << 24) as f32) - 0.5).collect()
}

/// conv-bn-relu, conv, + the first relu's output, relu, global pool, flatten, gemm: ResNet's
/// shape in miniature, batch symbolic.
fn resnet_like(flatten: NodeProto, batch: Option<i64>, extra: Vec<TensorProto>) -> Vec<u8> {
    let pads = || vec![ints("pads", &[1, 1, 1, 1]), ints("kernel_shape", &[3, 3])];
    let nodes = vec![
        node("Conv", "conv1", &["x", "w1", "b1"], "c1", pads()),
        node("BatchNormalization", "bn1", &["c1", "g", "beta", "mean", "var"], "n1", vec![]),
        node("Relu", "relu1", &["n1"], "r1", vec![]),
        node("Conv", "conv2", &["r1", "w2"], "c2", pads()),
        node("Add", "add", &["c2", "r1"], "s", vec![]),
        node("Relu", "relu2", &["s"], "r2", vec![]),
        node("GlobalAveragePool", "pool", &["r2"], "p", vec![]),
        flatten,
        node("Gemm", "fc", &["f", "wf", "bf"], "logits", vec![int("transB", 1)]),
    ];
    let mut inits = vec![
        f32_tensor("w1", &[4, 3, 3, 3], &weights(108, 1)),
        f32_tensor("b1", &[4], &[0.1, -0.1, 0.2, 0.0]),
        f32_tensor("g", &[4], &[1.0, 2.0, 0.5, 1.0]),
        f32_tensor("beta", &[4], &[0.0, 0.1, 0.2, 0.3]),
        f32_tensor("mean", &[4], &[0.1, 0.0, -0.1, 0.0]),
        f32_tensor("var", &[4], &[1.0, 0.5, 2.0, 1.0]),
        f32_tensor("w2", &[4, 4, 3, 3], &weights(144, 2)),
        f32_tensor("wf", &[5, 4], &weights(20, 3)),
        f32_tensor("bf", &[5], &[0.0; 5]),
    ];
    inits.extend(extra);
    model(nodes, inits, value("x", &[batch, Some(3), Some(8), Some(8)]), 13)
}

fn flatten() -> NodeProto {
    node("Flatten", "flat", &["p"], "f", vec![int("axis", 1)])
}

#[test]
fn a_small_resnet_plans_with_its_batch_norm_folded_and_relu_fused() {
    let imported = import(resnet_like(flatten(), None, vec![]), "tiny.onnx", &ImportOptions::default()).unwrap();
    let p = &imported.program;
    let ops: Vec<&str> = p.nodes.iter().map(|n| n.op.name()).collect();
    assert_eq!(ops, ["Conv", "Conv", "Add", "Relu", "GlobalAveragePool", "Reshape", "Linear (Gemm/MatMul)"]);
    assert!(matches!(p.nodes[0].op, Op::Conv { activation: FusedActivation::Relu, .. }));
    assert!(matches!(p.nodes[1].op, Op::Conv { activation: FusedActivation::None, .. }));
    // The folded conv's value is the relu's.
    assert_eq!(p.values[p.nodes[0].output].name, "r1");
    let layers: Vec<String> = p.layers().into_iter().map(|l| l.name).collect();
    assert_eq!(layers, ["r1", "s", "r2"]);
    assert_eq!(p.values[p.target].name, "r2");
    assert_eq!((p.input_size(), p.classes()), (8, 5));
    // Batch norm folded: w1 scaled per output channel by g / sqrt(var + 1e-5).
    let w = &imported.tensors.tensors["nodes.0.weight"].data;
    let s1 = 2.0 / (0.5f32 + 1e-5).sqrt();
    assert!((w[27] - weights(108, 1)[27] * s1).abs() < 1e-6);
    let b = &imported.tensors.tensors["nodes.0.bias"].data;
    assert!((b[1] - ((-0.1 - 0.0) * s1 + 0.1)).abs() < 1e-6);
    assert_eq!(imported.tensors.tensors.len(), 6, "conv1, conv2 (a zero bias), fc: weight and bias each");
    // Another layer on request; a name that is none gives the list.
    let other = import(resnet_like(flatten(), None, vec![]), "tiny.onnx", &ImportOptions { layer: Some("r1".into()), ..Default::default() }).unwrap();
    assert_eq!(other.program.values[other.program.target].name, "r1");
    let layer = |name: &str| import(resnet_like(flatten(), None, vec![]), "tiny.onnx", &ImportOptions { layer: Some(name.into()), ..Default::default() }).unwrap_err().to_string();
    let e = layer("c2");
    assert!(e.contains("tiny.onnx") && e.contains("`c2` cannot be explained alone: `add` after it also reads `r1`"), "{e}");
    let e = layer("zz");
    assert!(e.contains("no layer called \"zz\"") && e.contains("r1 (4x8x8), s (4x8x8), r2 (4x8x8)"), "{e}");
}

/// A fixed-batch export writes its batch of one into the reshape target; `x.view(x.size(0), -1)`
/// exported with a dynamic batch computes it from the input's shape. Both run on batches.
#[test]
fn reshape_targets_with_the_batch_written_in_or_computed() {
    let literal = node("Reshape", "view", &["p", "shape"], "f", vec![]);
    let fixed = import(resnet_like(literal, Some(1), vec![i64_tensor("shape", &[1, -1])]), "fixed.onnx", &ImportOptions::default()).unwrap();
    let reshape = fixed.program.nodes.iter().find(|n| n.op == Op::Reshape).unwrap();
    assert_eq!(fixed.program.values[reshape.output].shape.dims, [1, 4]);
    // Shape -> Gather(0) -> Unsqueeze -> Concat([-1]) -> Reshape.
    let mut g = ModelProto::parse_from_bytes(&resnet_like(flatten(), None, vec![])).unwrap();
    let graph = g.graph.as_mut().unwrap();
    let at = graph.node.iter().position(|n| n.name == "flat").unwrap();
    graph.node.splice(
        at..at + 1,
        [
            node("Shape", "shape", &["p"], "sh", vec![]),
            node("Gather", "first", &["sh", "zero"], "n", vec![int("axis", 0)]),
            node("Unsqueeze", "un", &["n", "axes"], "n1", vec![]),
            node("Concat", "cat", &["n1", "minus"], "target", vec![int("axis", 0)]),
            node("Reshape", "view", &["p", "target"], "f", vec![]),
        ],
    );
    let mut zero = i64_tensor("zero", &[0]);
    zero.dims.clear();
    graph.initializer.extend([zero, i64_tensor("axes", &[0]), i64_tensor("minus", &[-1])]);
    let computed = import(g.write_to_bytes().unwrap(), "computed.onnx", &ImportOptions::default()).unwrap();
    assert_eq!(computed.program.nodes.iter().filter(|n| n.op == Op::Reshape).count(), 1, "the shape arithmetic folded away");
    // A reshape that moves the batch into another axis is refused, by name.
    let bad = node("Reshape", "view", &["p", "shape"], "f", vec![]);
    let e = import(resnet_like(bad, None, vec![i64_tensor("shape", &[1, -1])]), "bad.onnx", &ImportOptions::default()).unwrap_err().to_string();
    assert!(e.contains("bad.onnx") && e.contains("view"), "{e}");
}

#[test]
fn bad_files_get_clear_errors() {
    let err = |bytes: Vec<u8>| import(bytes, "m.onnx", &ImportOptions::default()).unwrap_err().to_string();
    let e = err(b"GIF89a this is no model".to_vec());
    assert!(e.contains("m.onnx") && e.contains("not an ONNX model"), "{e}");
    let good = resnet_like(flatten(), None, vec![]);
    let e = err(good[..good.len() / 2].to_vec());
    assert!(e.contains("not an ONNX model") || e.contains("truncated"), "{e}");
    // An operator the interpreter lacks: named, with its node.
    let mut g = ModelProto::parse_from_bytes(&good).unwrap();
    g.graph.as_mut().unwrap().node[5].op_type = "LRN".into();
    let e = err(g.write_to_bytes().unwrap());
    assert!(e.contains("`relu2` (LRN)") && e.contains("LRN is not supported"), "{e}");
    // Weights in an external file.
    let mut g = ModelProto::parse_from_bytes(&good).unwrap();
    let w = &mut g.graph.as_mut().unwrap().initializer[0];
    w.data_location = onnx_ir::TensorProto::new().data_location;
    w.external_data.push(Default::default());
    w.external_data[0].key = "location".into();
    w.external_data[0].value = "weights.bin".into();
    w.raw_data = Default::default();
    let e = err(g.write_to_bytes().unwrap());
    assert!(e.contains("initializer `w1`") && e.contains("external file"), "{e}");
    // A tensor that declares more values than it holds.
    let mut g = ModelProto::parse_from_bytes(&good).unwrap();
    g.graph.as_mut().unwrap().initializer[0].dims = vec![400, 3, 3, 3];
    let e = err(g.write_to_bytes().unwrap());
    assert!(e.contains("declares 10800 values") && e.contains("truncated"), "{e}");
    // A declared shape too large to allocate.
    let mut g = ModelProto::parse_from_bytes(&good).unwrap();
    g.graph.as_mut().unwrap().initializer[0].dims = vec![1 << 40, 1 << 30];
    assert!(err(g.write_to_bytes().unwrap()).contains("too large"));
    // No layer to explain: an MLP over the flattened image.
    let nodes = vec![node("Flatten", "flat", &["x"], "f", vec![]), node("Gemm", "fc", &["f", "w", "b"], "logits", vec![int("transB", 1)])];
    let inits = vec![f32_tensor("w", &[5, 192], &weights(960, 4)), f32_tensor("b", &[5], &[0.0; 5])];
    let e = err(model(nodes, inits, value("x", &[None, Some(3), Some(8), Some(8)]), 13));
    assert!(e.contains("no layer to explain"), "{e}");
    // Two inputs.
    let mut g = ModelProto::parse_from_bytes(&good).unwrap();
    g.graph.as_mut().unwrap().input.push(value("y", &[Some(1)]));
    assert!(err(g.write_to_bytes().unwrap()).contains("2 inputs"));
}

#[test]
fn metadata_gives_preprocessing_and_labels() {
    let mut g = ModelProto::parse_from_bytes(&resnet_like(flatten(), None, vec![])).unwrap();
    for (k, v) in [("scorecam.mean", "0.5, 0.5, 0.5"), ("scorecam.std", "[0.25,0.25,0.25]"), ("scorecam.labels", "[\"a\",\"b\",\"c\",\"d\",\"e\"]")] {
        g.metadata_props.push(Default::default());
        let p = g.metadata_props.last_mut().unwrap();
        p.key = k.into();
        p.value = v.into();
    }
    let m = import(g.write_to_bytes().unwrap(), "m.onnx", &ImportOptions::default()).unwrap().metadata;
    assert_eq!((m.mean, m.std, m.opset), (Some([0.5; 3]), Some([0.25; 3]), 13));
    assert_eq!(m.labels.unwrap(), ["a", "b", "c", "d", "e"]);
}

/// Pow by a constant 2, 0.5 or 1 (the legacy exporter's LayerNorm variance is `Pow(x - mean, 2)`)
/// becomes x·x, a square root or x itself: GPU shading languages leave pow() of a negative base
/// undefined (it gave NaN on Vulkan's lavapipe). Other exponents stay Pow.
#[test]
fn pow_by_two_half_and_one_is_planned_without_pow() {
    let graph = |cube: bool| {
        let nodes = vec![
            node("Conv", "conv", &["x", "w"], "c", vec![ints("kernel_shape", &[1, 1])]),
            node("Pow", "square", &["c", "two"], "sq", vec![]),
            node("Pow", "root", &["sq", "half"], "rt", vec![]),
            node("Pow", "same", &["rt", if cube { "three" } else { "one" }], "p1", vec![]),
            node("GlobalAveragePool", "pool", &["p1"], "p", vec![]),
            flatten(),
            node("Gemm", "fc", &["f", "wf", "bf"], "logits", vec![int("transB", 1)]),
        ];
        let inits = vec![
            f32_tensor("w", &[4, 3, 1, 1], &weights(12, 1)),
            f32_tensor("two", &[], &[2.0]),
            f32_tensor("half", &[1], &[0.5]),
            f32_tensor("one", &[], &[1.0]),
            f32_tensor("three", &[], &[3.0]),
            f32_tensor("wf", &[5, 4], &weights(20, 3)),
            f32_tensor("bf", &[5], &[0.0; 5]),
        ];
        model(nodes, inits, value("x", &[None, Some(3), Some(8), Some(8)]), 13)
    };
    let p = import(graph(false), "pow.onnx", &ImportOptions::default()).unwrap().program;
    let ops: Vec<&str> = p.nodes.iter().map(|n| n.op.name()).collect();
    assert_eq!(ops, ["Conv", "Mul", "Sqrt", "GlobalAveragePool", "Reshape", "Linear (Gemm/MatMul)"]);
    assert_eq!(p.nodes[1].inputs, [p.nodes[0].output, p.nodes[0].output]);
    let p = import(graph(true), "pow.onnx", &ImportOptions::default()).unwrap().program;
    let ops: Vec<&str> = p.nodes.iter().map(|n| n.op.name()).collect();
    assert_eq!(ops[..3], ["Conv", "Mul", "Sqrt"]);
    assert_eq!(ops.iter().filter(|&&o| o == "Pow").count(), 1, "{ops:?}");
}
