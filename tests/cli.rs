//! The command-line tool end to end on the tiny model: convert, explain (--json, --map-out),
//! and clear errors for bad weight files and bad images.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn scorecam(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scorecam")).args(args).output().expect("runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A scratch directory for one test, removed when it is dropped (at the test's end, or as a
/// failed assertion unwinds).
fn tmp(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("scorecam-cli-{name}-")).tempdir().unwrap()
}

fn convert_fixture(dir: &Path) -> PathBuf {
    let src = repo().join("tests/fixtures/vgg_tiny/weights.safetensors");
    let out = dir.join("tiny.safetensors");
    let o = scorecam(&["convert", src.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    out
}

#[test]
fn convert_then_explain_writes_overlay_map_and_json() {
    let scratch = tmp("explain");
    let dir = scratch.path();
    let weights = convert_fixture(dir);
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("tiny.json")).unwrap()).unwrap();
    assert_eq!(manifest["arch"], "vgg_tiny");
    assert_eq!(manifest["target_layer"], "features.9");
    assert_eq!(manifest["weights"]["bytes"].as_u64().unwrap(), std::fs::metadata(&weights).unwrap().len());

    let (overlay, map) = (dir.join("overlay.png"), dir.join("map.npy"));
    let image = repo().join("tests/fixtures/vgg_tiny/input.png");
    let o = scorecam(&[
        "explain", image.to_str().unwrap(), "--model", weights.to_str().unwrap(), "--json",
        "--out", overlay.to_str().unwrap(), "--map-out", map.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object on stdout");
    assert_eq!(json["top5"].as_array().unwrap().len(), 5);
    assert_eq!(json["explained"]["class"], json["top5"][0]["class"]);
    // the registry's name, not a Rust Debug form; the same field names as the wasm API
    assert_eq!(json["method"], "scorecam");
    assert_eq!(json["stats"]["skipped_constant"], 5);
    assert_eq!(json["stats"]["forwards"], 11);
    assert_eq!(json["size"], 32);
    let p: f64 = json["top5"].as_array().unwrap().iter().map(|t| t["probability"].as_f64().unwrap()).sum();
    assert!(p > 0.0 && p <= 1.0 + 1e-6);
    let (shape, values) = read_npy(&map);
    assert_eq!(shape, vec![32, 32]);
    assert!(values.iter().all(|v| (0.0..=1.0).contains(v)) && values.contains(&1.0));
    let png = image::open(&overlay).unwrap();
    assert_eq!((png.width(), png.height()), (32, 32));
}

#[test]
fn bad_weight_files_give_clear_errors() {
    let scratch = tmp("bad-weights");
    let dir = scratch.path();
    let weights = convert_fixture(dir);
    let image = repo().join("tests/fixtures/vgg_tiny/input.png");
    let bytes = std::fs::read(&weights).unwrap();

    // truncated download: caught by size before parsing
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let o = scorecam(&["explain", image.to_str().unwrap(), "--model", weights.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("tiny.safetensors") && stderr(&o).contains("truncated"), "{}", stderr(&o));

    // same size, one byte changed: checksum
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0xff;
    std::fs::write(&weights, &flipped).unwrap();
    let o = scorecam(&["explain", image.to_str().unwrap(), "--model", weights.to_str().unwrap()]);
    assert!(stderr(&o).contains("sha256"), "{}", stderr(&o));

    // a state_dict with a tensor missing: convert names it
    let src = scorecam::convert::read_state_dict(&repo().join("tests/fixtures/vgg_tiny/weights.safetensors")).unwrap();
    let mut views = Vec::new();
    let owned: Vec<(String, Vec<usize>, Vec<u8>)> = src
        .tensors
        .iter()
        .filter(|(k, _)| k.as_str() != "features.6.bias")
        .map(|(k, t)| (k.clone(), t.shape.clone(), t.data.iter().flat_map(|v| v.to_le_bytes()).collect()))
        .collect();
    for (k, s, b) in &owned {
        views.push((k.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap()));
    }
    let broken = dir.join("broken.safetensors");
    std::fs::write(&broken, safetensors::serialize(views, None).unwrap()).unwrap();
    let o = scorecam(&["convert", broken.to_str().unwrap(), "--out", dir.join("x.safetensors").to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("features.6.bias") && stderr(&o).contains("broken.safetensors"), "{}", stderr(&o));

    // not a checkpoint at all
    let junk = dir.join("junk.pth");
    std::fs::write(&junk, b"this is not a checkpoint").unwrap();
    let o = scorecam(&["convert", junk.to_str().unwrap(), "--out", dir.join("y.safetensors").to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("junk.pth"), "{}", stderr(&o));
}

/// A manifest names a weight file beside it and nothing else: `../` or an absolute path is
/// refused before anything is read, even where the file it names exists and would load (issue
/// 35, 14; the page allows only `^[\w.-]+$` too).
#[test]
fn a_manifest_naming_a_file_outside_its_folder_is_refused() {
    let scratch = tmp("manifest-path");
    let dir = scratch.path();
    let weights = convert_fixture(dir);
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("tiny.json")).unwrap()).unwrap();
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let image = repo().join("tests/fixtures/vgg_tiny/input.png");
    for (name, file) in [("beside", "tiny.safetensors".to_string()), ("up", "../tiny.safetensors".to_string()), ("absolute", weights.display().to_string()), ("dot", ".".to_string())] {
        let mut m = manifest.clone();
        m["weights"]["file"] = file.clone().into();
        let path = sub.join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_string(&m).unwrap()).unwrap();
        let o = scorecam(&["explain", image.to_str().unwrap(), "--model", path.to_str().unwrap()]);
        if name == "beside" {
            // sub/ holds no tiny.safetensors: the read fails, after the name was accepted
            assert!(!o.status.success() && stderr(&o).contains("weights") && !stderr(&o).contains("plain file name"), "{}", stderr(&o));
            continue;
        }
        assert!(!o.status.success() && stderr(&o).contains("a weight file must be a plain file name beside the manifest") && stderr(&o).contains(&format!("{file:?}")), "{file}: {}", stderr(&o));
    }
}

#[test]
fn convert_makes_the_output_folder_and_says_a_write_error_once() {
    let scratch = tmp("convert-out");
    let dir = scratch.path();
    let src = repo().join("tests/fixtures/vgg_tiny/weights.safetensors");
    let out = dir.join("new/folder/tiny.safetensors");
    let o = scorecam(&["convert", src.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.exists() && out.with_extension("json").exists());

    // a folder that cannot be made (a file is in the way): the path and the cause, said once
    std::fs::write(dir.join("a-file"), b"").unwrap();
    let blocked = dir.join("a-file/tiny.safetensors");
    let o = scorecam(&["convert", src.to_str().unwrap(), "--out", blocked.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("a-file") && err.matches("Not a directory").count() + err.matches("File exists").count() == 1, "{err}");
}

#[test]
fn an_option_the_method_does_not_take_is_an_error() {
    let scratch = tmp("options");
    let dir = scratch.path();
    let weights = convert_fixture(dir);
    let image = repo().join("tests/fixtures/vgg_tiny/input.png");
    let explain = |extra: &[&str]| {
        let out = dir.join("o.png");
        scorecam(&[&["explain", image.to_str().unwrap(), "--model", weights.to_str().unwrap(), "--out", out.to_str().unwrap()][..], extra].concat())
    };
    let o = explain(&["--method", "gradcam", "--top-k", "4"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("gradcam has no option \"top_k\""), "{}", stderr(&o));
    let o = explain(&["--method", "rise", "-o", "masks=0"]);
    assert!(!o.status.success() && stderr(&o).contains("masks must be a whole number of at least 1"), "{}", stderr(&o));
    let o = explain(&["--method", "rise", "-o", "masks=32", "-o", "grid=4", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((json["method"].as_str(), json["stats"]["forwards"].as_u64()), (Some("rise"), Some(32)));
    let o = explain(&["--method", "lime"]);
    assert!(!o.status.success() && stderr(&o).contains("unknown method"), "{}", stderr(&o));
}

#[test]
fn unreadable_image_is_a_clear_error() {
    let scratch = tmp("bad-image");
    let dir = scratch.path();
    let weights = convert_fixture(dir);
    let bad = dir.join("cat.jpg");
    std::fs::write(&bad, b"\xff\xd8\xff\xe0 truncated jpeg").unwrap();
    let o = scorecam(&["explain", bad.to_str().unwrap(), "--model", weights.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("cat.jpg"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

#[test]
fn convert_writes_the_model_index_and_the_checked_in_int8_fixture_is_current() {
    let scratch = tmp("index");
    let dir = scratch.path();
    let weights = convert_fixture(dir);
    let index: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).unwrap()).unwrap();
    let models = index["models"].as_array().unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0]["name"], "tiny");
    assert_eq!(models[0]["manifest"], "tiny.json");
    assert_eq!(models[0]["arch"], "vgg_tiny");
    // tests/web.rs (wasm) embeds this converted copy: it must be what convert writes today.
    let committed = std::fs::read(repo().join("tests/fixtures/vgg_tiny/int8/vgg_tiny.safetensors")).unwrap();
    assert!(committed == std::fs::read(&weights).unwrap(), "re-run: scorecam convert tests/fixtures/vgg_tiny/weights.safetensors --arch vgg_tiny --out tests/fixtures/vgg_tiny/int8/vgg_tiny.safetensors");
}

/// A labelled folder like shared/data/imagenet-val: three 32x32 images, one with a single small
/// box (the pointing game's case), one with a box over most of the image, one with two boxes.
fn tiny_dataset(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("images")).unwrap();
    let img = image::open(repo().join("tests/fixtures/vgg_tiny/input.png")).unwrap();
    img.save(data.join("images/a.png")).unwrap();
    img.fliph().save(data.join("images/b.png")).unwrap();
    img.rotate180().save(data.join("images/c.png")).unwrap();
    std::fs::write(
        data.join("labels.csv"),
        "file,class_index,width,height,bboxes\nimages/a.png,5,32,32,4 4 20 20\nimages/b.png,3,32,32,0 0 31 31\nimages/c.png,1,32,32,0 0 8 8;20 20 30 30\n",
    )
    .unwrap();
    data
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn eval_writes_the_paper_tables_resumes_and_shards() {
    let scratch = tmp("eval");
    let dir = scratch.path();
    let weights = convert_fixture(dir);
    let data = tiny_dataset(dir);
    let out = dir.join("out");
    let args = |out: &Path| -> Vec<String> {
        ["eval", "--model", weights.to_str().unwrap(), "--data", data.to_str().unwrap(), "--methods", "gradcam,scorecam,rise", "--rise-masks", "40", "--out", out.to_str().unwrap(), "--save-maps"]
            .map(String::from)
            .to_vec()
    };
    let run = |extra: &[&str], out: &Path| {
        let mut a = args(out);
        a.extend(extra.iter().map(|s| s.to_string()));
        let o = Command::new(env!("CARGO_BIN_EXE_scorecam")).args(&a).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    };
    run(&[], &out);
    let records = lines(&out.join("records.jsonl"));
    assert_eq!(records.len(), 9, "3 images x 3 methods");
    for r in &records {
        let s = &r["scores"];
        for key in ["ad_ai_library_drop", "ad_ai_paper_drop", "ad_ai_library_increase"] {
            assert!((0.0..=100.0).contains(&s[key].as_f64().unwrap()), "{key}: {s}");
        }
        for key in ["deletion_auc", "insertion_auc"] {
            assert!((0.0..=1.0).contains(&s[key].as_f64().unwrap()), "{key}: {s}");
        }
        // 32x32 pixels, 224 a step: 5 steps, 6 points per curve
        assert_eq!(r["curves"]["deletion"].as_array().unwrap().len(), 6);
        // only a.png has a single box under half of the image
        assert_eq!(s.get("pointing_game_energy").is_some(), r["image"] == "images/a.png", "{r}");
    }
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    for part in ["Table 1", "Table 2", "Table 3", "library protocol", "paper protocol", "Grad-CAM", "RISE", "Score-CAM"] {
        assert!(md.contains(part), "results.md lacks {part:?}:\n{md}");
    }
    assert!(std::fs::read_to_string(out.join("curves.svg")).unwrap().contains("<svg"));
    assert!(std::fs::read_to_string(out.join("results.csv")).unwrap().starts_with("method,column,mean,n"));
    assert_eq!(std::fs::read_dir(out.join("maps")).unwrap().count(), 9);

    // Resumed: nothing is redone.
    run(&[], &out);
    assert_eq!(lines(&out.join("records.jsonl")).len(), 9);

    // Shard 1 of 2 takes the second image only.
    let sharded = dir.join("sharded");
    run(&["--shard", "1/2"], &sharded);
    let part = lines(&sharded.join("records-1-of-2.jsonl"));
    assert_eq!(part.len(), 3);
    assert!(part.iter().all(|r| r["image"] == "images/b.png"));

    // The same shard as task 2 of a Slurm job array `--array=1-2`: the index from the scheduler.
    let slurm = dir.join("slurm");
    let mut a = args(&slurm);
    a.extend(["--shard", "2"].map(String::from));
    let o = Command::new(env!("CARGO_BIN_EXE_scorecam")).args(&a).env("SLURM_ARRAY_TASK_ID", "2").env("SLURM_ARRAY_TASK_MIN", "1").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(lines(&slurm.join("records-1-of-2.jsonl")).iter().map(|r| r["image"].clone()).collect::<Vec<_>>(), part.iter().map(|r| r["image"].clone()).collect::<Vec<_>>());

    // Against itself as the reference: every difference 0, every map identical.
    run(&["--report-only", "--reference", out.to_str().unwrap()], &out);
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    for (method, a) in json["agreement"].as_object().unwrap() {
        assert!(a["column_diffs"].as_object().unwrap().values().all(|v| v.as_f64().unwrap() == 0.0), "{method}");
        assert_eq!(a["maps_compared"], 3, "{method}");
        assert!((a["map_pearson_min"].as_f64().unwrap() - 1.0).abs() < 1e-9, "{method}");
    }
}

/// `eval` over a folder a kill, a careless copy and a bad row have been at (issue 35, 13): the
/// records end in a torn line, two images share a stem (`images/a.png`, `other/a.png`), one
/// file is not an image and one label is outside the model's 10 classes. Every record is read
/// back, each image keeps its map, the two bad rows are recorded as failed and the run goes on;
/// a resume redoes nothing.
#[test]
fn eval_goes_on_past_torn_lines_shared_stems_and_bad_rows() {
    let scratch = tmp("eval-hostile");
    let dir = scratch.path();
    let weights = convert_fixture(dir);
    let data = tiny_dataset(dir);
    std::fs::create_dir_all(data.join("other")).unwrap();
    image::open(data.join("images/b.png")).unwrap().save(data.join("other/a.png")).unwrap();
    std::fs::write(data.join("images/junk.png"), b"not a png").unwrap();
    std::fs::write(
        data.join("labels.csv"),
        "file,class_index\nimages/a.png,5\nimages/junk.png,3\nother/a.png,2\nimages/c.png,99\n",
    )
    .unwrap();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    // what a kill mid-write leaves: half a record, no newline
    std::fs::write(out.join("records.jsonl"), "{\"image\":\"images/c.png\",\"ind").unwrap();
    let args = ["eval", "--model", weights.to_str().unwrap(), "--data", data.to_str().unwrap(), "--methods", "gradcam", "--metrics", "deletion", "--class", "label", "--out", out.to_str().unwrap(), "--save-maps"];
    let o = scorecam(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(out.join("records.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = text.lines().skip(1).map(|l| serde_json::from_str(l).unwrap()).collect();
    let images: Vec<&str> = records.iter().map(|r| r["image"].as_str().unwrap()).collect();
    assert_eq!(images, ["images/a.png", "images/junk.png", "other/a.png", "images/c.png"], "{text}");
    let error = |i: usize| records[i]["error"].as_str().unwrap_or("").to_string();
    assert!(error(1).contains("junk.png"), "{}", error(1));
    assert!(error(3).contains("label 99") && error(3).contains("10 classes"), "{}", error(3));
    assert!(records[0].get("error").is_none() && records[2].get("error").is_none());
    let mut maps: Vec<String> = std::fs::read_dir(out.join("maps")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    maps.sort();
    assert_eq!(maps, ["images%2Fa.png__gradcam.npy", "other%2Fa.png__gradcam.npy"]);
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains("2 images") && md.contains("2 (image, method) pairs failed"), "{md}");
    // Resumed: every pair is there, failed ones included.
    let o = scorecam(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(out.join("records.jsonl")).unwrap(), text);
}

#[test]
fn eval_rejects_unknown_methods_and_bad_shards() {
    let scratch = tmp("eval-bad");
    let dir = scratch.path();
    let weights = convert_fixture(dir);
    let data = tiny_dataset(dir);
    let out = dir.join("o");
    let base = ["eval", "--model", weights.to_str().unwrap(), "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let o = scorecam(&[&base[..], &["--methods", "lime"]].concat());
    assert!(!o.status.success() && stderr(&o).contains("unknown method"), "{}", stderr(&o));
    let o = scorecam(&[&base[..], &["--shard", "2/2"]].concat());
    assert!(!o.status.success() && stderr(&o).contains("shard"), "{}", stderr(&o));
    // a count without an index from Slurm or Kubernetes
    let o = Command::new(env!("CARGO_BIN_EXE_scorecam")).args([&base[..], &["--shard", "2"]].concat()).env_remove("SLURM_ARRAY_TASK_ID").env_remove("JOB_COMPLETION_INDEX").output().unwrap();
    assert!(!o.status.success() && stderr(&o).contains("SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX"), "{}", stderr(&o));
    let o = scorecam(&["eval", "--model", weights.to_str().unwrap(), "--data", dir.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("labels.csv"), "{}", stderr(&o));
}

/// `bench --json` reports where the weights live and the kernels; device options that cannot
/// apply say why instead of being ignored.
#[test]
fn bench_reports_device_weights_and_refuses_what_cannot_apply() {
    let model = repo().join("tests/fixtures/vgg_tiny/int8/vgg_tiny.json");
    let m = model.to_str().unwrap();
    let o = scorecam(&["bench", "-m", m, "--runs", "1", "--json", "--conv", "matmul"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let b: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(b["device_weights"], "f32");
    assert_eq!(b["weight_bytes_on_device"].as_u64().unwrap(), 4 * 9498);
    assert_eq!(b["conv_kernels"], "4 matmul");
    assert!(b["gmacs_per_forward"].as_f64().unwrap() > 0.0);
    let int8 = scorecam(&["bench", "-m", m, "--device-weights", "int8"]);
    assert!(!int8.status.success() && stderr(&int8).contains("needs a GPU backend"), "{}", stderr(&int8));
    let browser = scorecam(&["bench", "-m", m, "--kernels", "browser"]);
    assert!(!browser.status.success() && stderr(&browser).contains("--backend wgpu"), "{}", stderr(&browser));
}

/// An ONNX model on the command line: explained as it is, its layers listed, another layer and
/// labels chosen, converted to the app's int8 file (which carries its graph) and explained from
/// that with the same map; bad labels, a bad layer and a file that is not ONNX get their
/// message.
#[test]
fn onnx_models_explain_list_their_layers_and_convert() {
    let scratch = tmp("onnx");
    let dir = scratch.path();
    let model = repo().join("tests/fixtures/onnx/tiny_resnet/tiny_resnet.dynamo.dynamic.onnx");
    let model = model.to_str().unwrap();
    let image = repo().join("tests/fixtures/onnx/input.png");
    let image = image.to_str().unwrap();
    let labels = dir.join("labels.txt");
    std::fs::write(&labels, (0..10).map(|i| format!("thing {i}\n")).collect::<String>()).unwrap();
    let labels = labels.to_str().unwrap();
    let explain = |model: &str, extra: &[&str]| {
        let out = dir.join("o.png");
        let mut args = vec!["explain", image, "--model", model, "--json", "--out", out.to_str().unwrap()];
        args.extend(extra);
        let o = scorecam(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (json, read_npy(&out.with_extension("npy")).1)
    };
    let (json, direct) = explain(model, &["--labels", labels]);
    assert_eq!(json["model"], "tiny_resnet.dynamo.dynamic");
    assert!(json["explained"]["name"].as_str().unwrap().starts_with("thing "));
    let o = scorecam(&["info", "--model", model, "--json"]);
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(info["target_layer"], "relu_4");
    let layers: Vec<&str> = info["layers"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(layers.last(), Some(&"relu_4"));
    assert_eq!(info["layers"][0]["shape"], serde_json::json!([8, 32, 32]));
    // Another layer: its channels.
    let (json, _) = explain(model, &["--layer", layers[0]]);
    assert_eq!(json["channels"].as_array().unwrap().len(), 8);
    // Converted, then explained from the int8 file: the same map up to int8's rounding.
    let out = dir.join("tiny.safetensors");
    let o = scorecam(&["convert", model, "--out", out.to_str().unwrap(), "--labels", labels, "--name", "Tiny ResNet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("tiny.json")).unwrap()).unwrap();
    assert_eq!((manifest["arch"].as_str(), manifest["name"].as_str(), manifest["target_layer"].as_str()), (Some("onnx"), Some("Tiny ResNet"), Some("relu_4")));
    let index = std::fs::read_to_string(dir.join("index.json")).unwrap();
    assert!(index.contains("\"name\": \"tiny\""), "{index}");
    let (json, converted) = explain(out.to_str().unwrap(), &[]);
    assert!(json["explained"]["name"].as_str().unwrap().starts_with("thing "));
    assert!(pearson(&converted, &direct) > 0.99);
    let (json, _) = explain(out.to_str().unwrap(), &["--layer", layers[0]]);
    assert_eq!(json["channels"].as_array().unwrap().len(), 8);
    // Bad input, clear messages.
    let fail = |args: &[&str]| {
        let o = scorecam(args);
        assert!(!o.status.success());
        stderr(&o)
    };
    std::fs::write(dir.join("five.txt"), "a\nb\nc\nd\ne\n").unwrap();
    let e = fail(&["explain", image, "--model", model, "--labels", dir.join("five.txt").to_str().unwrap()]);
    assert!(e.contains("the labels name 5 classes, the model has 10"), "{e}");
    let e = fail(&["explain", image, "--model", model, "--layer", "fc"]);
    assert!(e.contains("no layer called \"fc\"") && e.contains("relu_4 (16x8x8)"), "{e}");
    let not_onnx = dir.join("photo.onnx");
    std::fs::copy(image, &not_onnx).unwrap();
    let e = fail(&["explain", image, "--model", not_onnx.to_str().unwrap()]);
    assert!(e.contains("photo.onnx") && e.contains("not an ONNX model"), "{e}");
    let e = fail(&["explain", image, "--model", repo().join("tests/fixtures/vgg_tiny/int8/vgg_tiny.json").to_str().unwrap(), "--layer", "features.3"]);
    assert!(e.contains("explains features.9 only") && e.contains("ONNX"), "{e}");
}
