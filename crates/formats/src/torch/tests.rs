//! The reader against checkpoints torch wrote (scripts/torch_fixtures.py), each beside the values
//! it must give as safetensors; and against hostile bytes, which must give errors, never panics.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use super::*;
use crate::weights::transpose;

/// Every fixture: NAME.pth beside NAME.safetensors.
const FIXTURES: [&str; 9] = ["tiny", "tiny_legacy", "checkpoint", "model_key", "dtypes", "dtypes_legacy", "strided", "strided_legacy", "module"];

fn fixture_path(name: &str, ext: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch").join(format!("{name}.{ext}"))
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name, "pth")).unwrap()
}

fn expected(name: &str) -> BTreeMap<String, HostTensor> {
    let bytes = std::fs::read(fixture_path(name, "safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), safetensors::Dtype::F32);
            let data = view.data().as_chunks::<4>().0.iter().map(|b| f32::from_le_bytes(*b)).collect();
            (name, HostTensor::new(view.shape().to_vec(), data))
        })
        .collect()
}

/// Exactly the same names, shapes and values (bit for bit).
fn assert_same(what: &str, got: &BTreeMap<String, HostTensor>, want: &BTreeMap<String, HostTensor>) {
    let names = |m: &BTreeMap<String, HostTensor>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(got), names(want), "{what}: names");
    for (name, want) in want {
        let got = &got[name];
        assert_eq!(got.shape, want.shape, "{what}: shape of {name}");
        let bits = |t: &HostTensor| t.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(got), bits(want), "{what}: values of {name}");
    }
}

#[test]
fn every_fixture_reads_to_exactly_its_expected_tensors() {
    for name in FIXTURES {
        let got = read_state_dict(&fixture(name), name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.file, name);
        assert!(got.int8.is_empty());
        assert_same(name, &got.tensors, &expected(name));
    }
}

#[test]
fn the_fixtures_hold_what_the_generator_meant() {
    let tiny = ["bn.bias", "bn.running_mean", "bn.running_var", "bn.weight", "conv.bias", "conv.weight", "fc.bias", "fc.weight"];
    for name in ["tiny", "tiny_legacy", "checkpoint", "model_key"] {
        let got = read_state_dict(&fixture(name), name).unwrap();
        // num_batches_tracked (int64) is skipped; a nested state dict is found under its key.
        assert_eq!(got.tensors.keys().map(String::as_str).collect::<Vec<_>>(), tiny, "{name}");
        assert_eq!(got.tensors["conv.weight"].shape, [4, 3, 3, 3]);
        assert_eq!(got.tensors["fc.weight"].shape, [5, 4]);
    }
    // The two containers give the same tensors.
    let zip = read_state_dict(&fixture("tiny"), "tiny").unwrap();
    let legacy = read_state_dict(&fixture("tiny_legacy"), "tiny_legacy").unwrap();
    assert_same("tiny vs tiny_legacy", &zip.tensors, &legacy.tensors);

    let module = read_state_dict(&fixture("module"), "module").unwrap();
    assert!(module.tensors.keys().all(|k| k.starts_with("module.")), "{:?}", module.tensors.keys());
    assert!(module.contains("module.param") && module.contains("module.tagged") && module.contains("module.conv.weight"));

    let dtypes = read_state_dict(&fixture("dtypes"), "dtypes").unwrap();
    assert_eq!(dtypes.tensors.keys().map(String::as_str).collect::<Vec<_>>(), ["bf16", "double", "empty", "half", "scalar"]);
    assert_eq!(dtypes.tensors["scalar"], HostTensor::new(vec![], vec![2.5]));
    assert_eq!(dtypes.tensors["empty"], HostTensor::new(vec![0, 3], vec![]));

    let strided = read_state_dict(&fixture("strided"), "strided").unwrap();
    let (base, transposed) = (&strided.tensors["base"], &strided.tensors["transposed"]);
    assert_eq!((base.shape.as_slice(), transposed.shape.as_slice()), ([4, 6].as_slice(), [6, 4].as_slice()));
    assert_eq!(transposed.data, transpose(&base.data, 4, 6));
    assert_eq!(strided.tensors["rows"].data, base.data[6..18]);
    let columns: Vec<f32> = (0..4).flat_map(|r| base.data[r * 6 + 2..r * 6 + 5].to_vec()).collect();
    assert_eq!(strided.tensors["columns"].data, columns);
}

/// Every prefix of every fixture (every 7th length, and the last 40) is an error that says it is
/// truncated, never a panic nor a partial read.
#[test]
fn truncations_are_errors() {
    for name in FIXTURES {
        let bytes = fixture(name);
        let lengths = (0..bytes.len()).step_by(7).chain(bytes.len().saturating_sub(40)..bytes.len());
        for len in lengths {
            let err = read_state_dict(&bytes[..len], name).err().unwrap_or_else(|| panic!("{name} cut to {len} bytes read"));
            let message = err.to_string();
            assert!(message.contains("truncated") && message.contains(name), "{name} cut to {len}: {message}");
        }
    }
}

/// A small deterministic generator for the mutations below.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Any byte changed to any of a few values gives an error or tensors (a changed value), never a
/// panic; and so do a few thousand random multi-byte corruptions of each fixture.
#[test]
fn corrupted_bytes_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let (mut ok, mut err) = (0usize, 0usize);
    let mut count = |result: Result<NamedTensors>| match result {
        Ok(tensors) => {
            assert!(tensors.tensors.values().all(|t| t.data.len() == t.shape.iter().product::<usize>()));
            ok += 1
        }
        Err(_) => err += 1,
    };
    for name in FIXTURES {
        let bytes = fixture(name);
        for at in 0..bytes.len() {
            for value in [bytes[at] ^ 0xff, bytes[at] ^ 0x01, bytes[at] ^ 0x80, 0x00, 0xff, 0x7f] {
                let mut corrupt = bytes.clone();
                corrupt[at] = value;
                count(read_state_dict(&corrupt, name));
            }
        }
        for _ in 0..3000 {
            let mut corrupt = bytes.clone();
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(corrupt.len());
                corrupt[at] = rng.next() as u8;
            }
            // Sometimes also cut it short, or splice a stretch of it elsewhere.
            match rng.below(4) {
                0 => corrupt.truncate(rng.below(corrupt.len())),
                1 => {
                    let (from, to, len) = (rng.below(corrupt.len()), rng.below(corrupt.len()), rng.below(64));
                    let piece: Vec<u8> = corrupt.iter().skip(from).take(len).copied().collect();
                    for (i, b) in piece.into_iter().enumerate() {
                        if let Some(slot) = corrupt.get_mut(to + i) {
                            *slot = b;
                        }
                    }
                }
                _ => {}
            }
            count(read_state_dict(&corrupt, name));
        }
    }
    assert!(ok > 0 && err > 0, "{ok} read, {err} refused");
}

// ---------------------------------------------------------------------------------------------
// Hand-made pickles
// ---------------------------------------------------------------------------------------------

/// A protocol-2 pickle, opcode by opcode.
struct P(Vec<u8>);

impl P {
    fn new() -> Self {
        P(vec![0x80, 2])
    }
    fn op(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }
    fn global(self, module: &str, name: &str) -> Self {
        self.op(b"c").op(module.as_bytes()).op(b"\n").op(name.as_bytes()).op(b"\n")
    }
    fn str(self, s: &str) -> Self {
        self.op(b"X").op(&(s.len() as u32).to_le_bytes()).op(s.as_bytes())
    }
    fn int(self, i: i32) -> Self {
        self.op(b"J").op(&i.to_le_bytes())
    }
    fn ints(self, values: &[i64]) -> Self {
        let mut p = self.op(b"(");
        for &v in values {
            p = p.op(&[0x8a, 8]).op(&v.to_le_bytes());
        }
        p.op(b"t")
    }
    /// `_rebuild_tensor_v2(('storage', torch.<kind>, key, 'cpu', numel), offset, shape, stride,
    /// False, OrderedDict())` on the stack.
    fn tensor(self, kind: &str, key: &str, numel: i64, offset: i64, shape: &[i64], stride: &[i64]) -> Self {
        self.global("torch._utils", "_rebuild_tensor_v2")
            .op(b"((")
            .str("storage")
            .global("torch", kind)
            .str(key)
            .str("cpu")
            .op(&[0x8a, 8])
            .op(&numel.to_le_bytes())
            .op(b"tQ")
            .op(&[0x8a, 8])
            .op(&offset.to_le_bytes())
            .ints(shape)
            .ints(stride)
            .op(&[0x89])
            .global("collections", "OrderedDict")
            .op(b")Rt")
            .op(b"R")
    }
    fn stop(self) -> Vec<u8> {
        self.op(b".").0
    }
}

/// `{"w": tensor}` with one FloatStorage "0" of `numel` elements.
fn one_tensor(numel: i64, offset: i64, shape: &[i64], stride: &[i64]) -> Vec<u8> {
    P::new().op(b"}(").str("w").tensor("FloatStorage", "0", numel, offset, shape, stride).op(b"u").stop()
}

/// A legacy checkpoint: magic, version, system info, `main`, the keys, each storage's bytes
/// (after its element count).
fn legacy(main: &[u8], storages: &[(&str, i64, &[u8])]) -> Vec<u8> {
    let mut out = P::new().op(&[0x8a, 10]).op(&LEGACY_MAGIC).stop();
    out.extend(P::new().op(b"M").op(&1001u16.to_le_bytes()).stop());
    out.extend(P::new().op(b"}(").str("little_endian").op(&[0x88]).op(b"u").stop());
    out.extend_from_slice(main);
    let mut keys = P::new().op(b"(");
    for (key, _, _) in storages {
        keys = keys.str(key);
    }
    out.extend(keys.op(b"l").stop());
    for (_, count, bytes) in storages {
        out.extend(count.to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// A zip checkpoint under `archive/`, every entry stored.
fn zipped(pickle: &[u8], storages: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut entries = vec![("archive/data.pkl".to_string(), pickle), ("archive/byteorder".to_string(), b"little".as_slice())];
    entries.extend(storages.iter().map(|(key, bytes)| (format!("archive/data/{key}"), *bytes)));
    entries.push(("archive/version".to_string(), b"3\n"));
    for (name, bytes) in entries {
        writer.start_file(name, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn floats(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn error(bytes: &[u8]) -> String {
    read_state_dict(bytes, "hostile.pth").err().map(|e| e.to_string()).unwrap_or_else(|| panic!("read"))
}

#[test]
fn hand_made_checkpoints_read_in_both_containers() {
    let data = floats(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let main = one_tensor(6, 0, &[2, 3], &[3, 1]);
    let want = HostTensor::new(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    for bytes in [legacy(&main, &[("0", 6, &data)]), zipped(&main, &[("0", &data)])] {
        assert_eq!(read_state_dict(&bytes, "t").unwrap().tensors["w"], want);
    }
    // A transposed view with an offset: elements 1.. as a 2 x 2, column-major.
    let main = one_tensor(6, 1, &[2, 2], &[1, 2]);
    let got = read_state_dict(&zipped(&main, &[("0", &data)]), "t").unwrap();
    assert_eq!(got.tensors["w"], HostTensor::new(vec![2, 2], vec![2.0, 4.0, 3.0, 5.0]));
    // A broadcast (stride 0) within the file's size reads.
    let main = one_tensor(6, 5, &[3], &[0]);
    let got = read_state_dict(&zipped(&main, &[("0", &data)]), "t").unwrap();
    assert_eq!(got.tensors["w"].data, [6.0, 6.0, 6.0]);
}

#[test]
fn refuses_globals_outside_the_list_by_name() {
    let payload = P::new().global("os", "system").str("echo pwned").op(&[0x85]).op(b"R").stop();
    for bytes in [zipped(&payload, &[]), legacy(&payload, &[])] {
        let message = error(&bytes);
        assert!(message.contains("`os.system`") && message.contains("refuses"), "{message}");
    }
    let stacked = P::new().str("builtins").str("eval").op(&[0x93]).stop();
    assert!(error(&zipped(&stacked, &[])).contains("`builtins.eval`"));
}

#[test]
fn a_storage_entry_shorter_than_its_tensor_is_an_error() {
    let data = floats(&[1.0, 2.0, 3.0, 4.0, 5.0]);
    let message = error(&zipped(&one_tensor(6, 0, &[2, 3], &[3, 1]), &[("0", &data)]));
    assert!(message.contains("storage `0` has 20 bytes"), "{message}");
    // And in torch's own file: conv.weight's storage cut by 4 bytes.
    let bytes = fixture("tiny");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.as_slice())).unwrap();
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.name().unwrap().to_string();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
        if name.ends_with("/data/0") {
            content.truncate(content.len() - 4);
        }
        writer.start_file(name, options).unwrap();
        writer.write_all(&content).unwrap();
    }
    let message = error(&writer.finish().unwrap().into_inner());
    assert!(message.contains("storage `0` has 428 bytes") && message.contains("conv.weight"), "{message}");
    // A missing storage entry.
    assert!(error(&zipped(&one_tensor(6, 0, &[6], &[1]), &[])).contains("storage entry `archive/data/0` is missing"));
}

#[test]
fn tensors_outside_their_storage_are_errors() {
    let data = floats(&[1.0; 6]);
    let check = |main: Vec<u8>, count: i64, expect: &str| {
        let message = error(&legacy(&main, &[("0", count, &data)]));
        assert!(message.contains(expect), "{expect:?}: {message}");
    };
    // The view reaches past the declared storage, or the declared storage past the data.
    check(one_tensor(6, 1, &[6], &[1]), 6, "reads element 6 of storage `0`");
    check(one_tensor(6, 0, &[3, 2], &[2, 3]), 6, "reads element 7");
    check(one_tensor(7, 0, &[7], &[1]), 6, "has 24 bytes, fewer than its 7 float32");
    // Strides whose reach overflows, and sizes whose product does.
    check(one_tensor(6, 0, &[3, 3], &[i64::MAX, i64::MAX]), 6, "strides overflow");
    check(one_tensor(6, 0, &[1 << 31, 1 << 31], &[1, 1]), 6, "more than 1073741824 elements");
    check(one_tensor(6, 0, &[i64::MAX, 4], &[1, 1]), 6, "more than 1073741824 elements");
    // Negative numbers, mismatched ranks, too many dimensions.
    check(one_tensor(6, -1, &[6], &[1]), 6, "storage offset is not a non-negative integer");
    check(one_tensor(6, 0, &[6], &[-1]), 6, "stride is not a tuple of non-negative integers");
    check(one_tensor(-6, 0, &[6], &[1]), 6, "storage size");
    check(one_tensor(6, 0, &[6, 1], &[1]), 6, "2 sizes and 1 strides");
    check(one_tensor(6, 0, &[1; 17], &[1; 17]), 6, "size is not a tuple");
    // A storage's element count larger than the file (legacy).
    let message = error(&legacy(&one_tensor(6, 0, &[6], &[1]), &[("0", 1 << 40, &data)]));
    assert!(message.contains("truncated"), "{message}");
    let message = error(&legacy(&one_tensor(6, 0, &[6], &[1]), &[("0", i64::MAX, &data)]));
    assert!(message.contains("declares"), "{message}");
}

/// Views that repeat a storage may not decode to more elements than the file has bytes.
#[test]
fn views_cannot_multiply_memory() {
    let data = floats(&[1.0]);
    let bomb = one_tensor(1, 0, &[1 << 29], &[0]);
    let message = error(&zipped(&bomb, &[("0", &data)]));
    assert!(message.contains("more elements than the file's"), "{message}");
    // The same tensor under many names: within the budget it reads, far beyond it does not.
    let repeated = |numel: i64, names: usize| {
        let mut p = P::new().tensor("FloatStorage", "0", numel, 0, &[numel], &[1]).op(b"q\x000}(");
        for i in 0..names {
            p = p.str(&format!("w{i}")).op(b"h\x00");
        }
        zipped(&p.op(b"u").stop(), &[("0", &floats(&vec![1.0; numel as usize]))])
    };
    assert_eq!(read_state_dict(&repeated(64, 10), "t").unwrap().tensors.len(), 10);
    let message = error(&repeated(8192, 2000));
    assert!(message.contains("more elements than the file's"), "{message}");
}

#[test]
fn hostile_pickles_are_errors() {
    let check = |pickle: Vec<u8>, expect: &str| {
        for bytes in [zipped(&pickle, &[]), legacy(&pickle, &[])] {
            let message = error(&bytes);
            assert!(message.contains(expect), "{expect:?}: {message}");
        }
    };
    // Nesting a million tuples deep builds and drops without recursion.
    let mut deep = P::new().op(b"N");
    deep.0.extend(std::iter::repeat_n(0x85, 1_000_000));
    check(deep.stop(), "not a state dict");
    // A million lists, each appended into the next through the memo.
    let mut lists = P::new().op(b"]q\x00");
    for _ in 0..200_000 {
        lists = lists.op(b"]q\x010h\x00h\x01a0h\x01q\x000");
    }
    check(lists.stop(), "a list, not a state dict");
    // A dict that holds itself.
    check(P::new().op(b"}q\x00").str("me").op(b"h\x00s").stop(), "no tensors in the checkpoint's dict (keys: me)");
    // The stack and the marks are bounded.
    let mut wide = P::new();
    wide.0.extend(std::iter::repeat_n(b'N', MAX_STACK + 1));
    check(wide.stop(), "stack holds more than");
    let mut marks = P::new();
    marks.0.extend(std::iter::repeat_n(b'(', MAX_MARKS + 1));
    check(marks.stop(), "marks open");
    // Lengths past the end, in every width.
    check(P::new().op(b"X\xff\xff\xff\xff").stop(), "truncated");
    check(P::new().op(&[0x8d]).op(&u64::MAX.to_le_bytes()).stop(), "truncated");
    check(P::new().op(&[0x8e]).op(&(1u64 << 40).to_le_bytes()).stop(), "truncated");
    check(P::new().op(b"T\xff\xff\xff\xff").stop(), "negative length");
    check(P::new().op(&[0x8b, 0xff, 0xff, 0xff, 0x7f]).stop(), "truncated");
    check(P::new().op(b"cos\nsys").0, "truncated inside a GLOBAL");
    check(P::new().op(b"}").0, "truncated");
    // Underflows, a missing memo entry, an unknown opcode, odd dict items.
    check(P::new().op(b"s").stop(), "stack underflow");
    check(P::new().op(b"N(N").op(&[0x86]).stop(), "stack underflow");
    check(P::new().op(b"N(").op(b"0").stop(), "stack underflow");
    check(P::new().op(b"1").stop(), "no mark to pop to");
    check(P::new().op(b"j\xff\xff\xff\xff").stop(), "memo entry 4294967295 is missing");
    check(P::new().op(b"I1\n").stop(), "unsupported pickle opcode 0x49");
    check(P::new().op(b"(N").op(b"d").stop(), "odd number of dict items");
    check(P::new().op(b"NNNs").stop(), "setting items on None, not a dict");
    check(P::new().op(b"}Na").stop(), "appending to a dict, not a list");
    check(P::new().op(b"X\x02\x00\x00\x00\xff\xfe").stop(), "not UTF-8");
    check(P::new().op(b".").0, "stack underflow");
    // Calls: of non-callables, with the wrong arguments, rebuilders nested too deep.
    check(P::new().op(b"N)R").stop(), "cannot call None");
    check(P::new().global("collections", "OrderedDict").op(b"N").op(b"R").stop(), "expected a tuple");
    check(P::new().global("torch._utils", "_rebuild_tensor_v2").op(b"(NNNNt").op(b"R").stop(), "not a storage");
    check(P::new().global("torch._utils", "_rebuild_tensor_v2").op(b")R").stop(), "with 0 arguments");
    check(P::new().global("torch._utils", "_rebuild_parameter").op(b"(NNNt").op(b"R").stop(), "_rebuild_parameter needs");
    check(P::new().global("torch", "FloatStorage").op(b")R").stop(), "cannot call");
    // _rebuild_from_type_v2(_rebuild_from_type_v2, Tensor, (_rebuild_from_type_v2, Tensor, (...), None), None)
    let mut nested = P::new().global("torch._tensor", "_rebuild_from_type_v2").op(b"q\x00").global("torch", "Tensor").op(b"q\x010)");
    for _ in 0..10 {
        nested = nested.op(b"q\x020(h\x00h\x01h\x02Nt");
    }
    check(nested.op(b"R").stop(), "rebuilders nested more than 4 deep");
    // Persistent ids: outside the main pickle, malformed, one storage read as two types.
    let pid = |kind: &str| P::new().op(b"(").str("storage").global("torch", kind).str("0").str("cpu").int(1).op(b"tQ");
    check(pid("FloatStorage").op(b"0").op(b"(").str("storage").op(b"tQ").stop(), "persistent id that is not");
    let mut twice = pid("FloatStorage").op(b"0");
    twice.0.extend(pid("HalfStorage").0.iter().skip(2)); // (without its PROTO)
    check(twice.stop(), "read as two different types");
    check(P::new().op(b"(").str("tensor").global("torch", "FloatStorage").str("0").str("cpu").int(1).op(b"tQ").stop(), "of kind \"tensor\"");
    let message = error(&legacy(&P::new().stop(), &[]));
    assert!(message.contains("stack underflow"), "{message}");
    let in_info = {
        let mut out = P::new().op(&[0x8a, 10]).op(&LEGACY_MAGIC).stop();
        out.extend(P::new().op(b"M").op(&1001u16.to_le_bytes()).stop());
        out.extend(pid("FloatStorage").stop());
        out
    };
    assert!(error(&in_info).contains("persistent id outside the checkpoint's main pickle"));
}

/// Random programs of the opcodes the machine knows, with plausible operands (the storage tuple's
/// strings, the globals it resolves, small ints and memo slots), in both containers: errors or
/// tensors, never a panic; and some of them must read, or the programs are not plausible enough.
#[test]
fn random_pickles_never_panic() {
    const STRINGS: [&str; 8] = ["storage", "0", "1", "cpu", "w", "state_dict", "model", "FloatStorage"];
    const GLOBALS: [(&str, &str); 9] = [
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_tensor"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch._tensor", "_rebuild_from_type_v2"),
        ("collections", "OrderedDict"),
        ("torch", "FloatStorage"),
        ("torch", "HalfStorage"),
        ("torch", "LongStorage"),
        ("argparse", "Namespace"),
    ];
    const SIMPLE: &[u8] = b"(}])tldNsuaeRbQ0122\x85\x86\x87\x88\x89\x81\x94";
    let data = floats(&[0.5; 16]);
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut read = 0;
    for _ in 0..20_000 {
        let mut p = P::new();
        for _ in 0..1 + rng.below(60) {
            p = match rng.below(10) {
                0..=2 => p.op(&[SIMPLE[rng.below(SIMPLE.len())]]),
                3 => p.op(&[b'K', [0, 1, 2, 3, 4, 6, 16, 255][rng.below(8)]]),
                4 => p.op(&[[b'q', b'h'][rng.below(2)], rng.below(4) as u8]),
                5 | 6 => p.str(STRINGS[rng.below(STRINGS.len())]),
                7 => {
                    let (module, name) = GLOBALS[rng.below(GLOBALS.len())];
                    p.global(module, name)
                }
                8 => p.op(&[0x8a, 8]).op(&[0i64, -1, 1 << 40, i64::MAX, i64::MIN, 7][rng.below(6)].to_le_bytes()),
                _ => p.int([0, 1, 2, 3, -1, 1 << 30][rng.below(6)]),
            };
        }
        // Often a tensor dict around it, so that the rebuilders are reached with real storages.
        let pickle = if rng.below(2) == 0 {
            let shape = [rng.below(5) as i64, rng.below(5) as i64];
            let stride = [rng.below(6) as i64, rng.below(3) as i64];
            let mut q = P::new().op(b"}(").str("w").tensor("FloatStorage", "0", rng.below(20) as i64, rng.below(8) as i64, &shape, &stride);
            q.0.extend(p.0.iter().skip(2));
            q.op(b"u").stop()
        } else {
            p.stop()
        };
        for bytes in [zipped(&pickle, &[("0", &data), ("1", &data[..8])]), legacy(&pickle, &[("0", 16, &data)])] {
            if let Ok(tensors) = read_state_dict(&bytes, "random") {
                assert!(tensors.tensors.values().all(|t| t.data.len() == t.shape.iter().product::<usize>()));
                read += 1;
            }
        }
    }
    assert!(read > 100, "only {read} random pickles read");
}

#[test]
fn not_checkpoints_are_errors() {
    assert!(error(b"").contains("empty file (truncated)"));
    assert!(error(b"hello").contains("not a PyTorch checkpoint"));
    // A pickle without the magic number, a wrong protocol version, a zip without data.pkl.
    assert!(error(&P::new().op(b"}").stop()).contains("does not start with PyTorch's magic number"));
    let mut wrong = P::new().op(&[0x8a, 10]).op(&LEGACY_MAGIC).stop();
    wrong.extend(P::new().op(b"M").op(&1000u16.to_le_bytes()).stop());
    assert!(error(&wrong).contains("legacy protocol version 1000"));
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer.start_file("readme.txt", zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored)).unwrap();
    let message = error(&writer.finish().unwrap().into_inner());
    assert!(message.contains("without a `<folder>/data.pkl`"), "{message}");
    // Only integer tensors; a list at the top.
    let ints = P::new().op(b"}(").str("n").tensor("LongStorage", "0", 1, 0, &[], &[]).op(b"u").stop();
    assert!(error(&zipped(&ints, &[("0", &[0; 8])])).contains("no floating-point tensors (only 1 integer or bool ones)"));
    assert!(error(&zipped(&P::new().op(b"]").stop(), &[])).contains("holds a list, not a state dict"));
}

#[test]
fn nan_and_infinity_are_errors() {
    for bad in [f32::NAN, f32::INFINITY] {
        let message = error(&zipped(&one_tensor(2, 0, &[2], &[1]), &[("0", &floats(&[1.0, bad]))]));
        assert!(message.contains("tensor `w` contains NaN or infinity"), "{message}");
    }
    // A float64 beyond f32's range becomes infinity.
    let main = P::new().op(b"}(").str("w").tensor("DoubleStorage", "0", 1, 0, &[1], &[1]).op(b"u").stop();
    let message = error(&zipped(&main, &[("0", &1e300f64.to_le_bytes())]));
    assert!(message.contains("NaN or infinity"), "{message}");
}

#[test]
fn big_endian_files_read() {
    let main = one_tensor(2, 0, &[2], &[1]);
    let data: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|v| v.to_be_bytes()).collect();
    // little_endian False in the system info, and the counts big-endian too.
    let mut bytes = Vec::new();
    bytes.extend(P::new().op(&[0x8a, 10]).op(&LEGACY_MAGIC).stop());
    bytes.extend(P::new().op(b"M").op(&1001u16.to_le_bytes()).stop());
    bytes.extend(P::new().op(b"}(").str("little_endian").op(&[0x89]).op(b"u").stop());
    bytes.extend(&main);
    bytes.extend(P::new().op(b"(").str("0").op(b"l").stop());
    bytes.extend(2i64.to_be_bytes());
    bytes.extend(&data);
    assert_eq!(read_state_dict(&bytes, "be").unwrap().tensors["w"].data, [1.5, -2.0]);
}

/// The same fixture files through an independent reader (Burn's pytorch-reader), compared name by
/// name, shape by shape and value by value.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn agrees_with_pytorch_reader() {
    use pytorch_reader::{DType, PytorchReader};
    for name in FIXTURES {
        let path = fixture_path(name, "pth");
        let reader = match name {
            "checkpoint" => PytorchReader::with_top_level_key(&path, "state_dict"),
            "model_key" => PytorchReader::with_top_level_key(&path, "model"),
            _ => PytorchReader::new(&path),
        }
        .unwrap_or_else(|e| panic!("{name}: pytorch-reader: {e}"));
        let mut theirs = BTreeMap::new();
        for (key, tensor) in reader.tensors() {
            let bytes = tensor.read().unwrap();
            let data: Vec<f32> = match tensor.dtype() {
                DType::F32 => bytes.as_chunks::<4>().0.iter().map(|b| f32::from_ne_bytes(*b)).collect(),
                DType::F64 => bytes.as_chunks::<8>().0.iter().map(|b| f64::from_ne_bytes(*b) as f32).collect(),
                DType::F16 => bytes.as_chunks::<2>().0.iter().map(|b| f16::from_ne_bytes(*b).to_f32()).collect(),
                DType::BF16 => bytes.as_chunks::<2>().0.iter().map(|b| bf16::from_ne_bytes(*b).to_f32()).collect(),
                _ => continue,
            };
            theirs.insert(key.clone(), HostTensor::new(tensor.shape().to_vec(), data));
        }
        let ours = read_state_dict(&std::fs::read(&path).unwrap(), name).unwrap();
        assert_same(&format!("{name} against pytorch-reader"), &ours.tensors, &theirs);
    }
}
