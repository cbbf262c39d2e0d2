//! PyTorch checkpoints (what `torch.save(model.state_dict(), path)` writes), read from bytes in
//! memory (the page has no files) into f32 tensors, without running any of the pickle's code.
//!
//! Both containers torchvision's and timm's files come in:
//!
//! - the zip archive of PyTorch >= 1.6: `<root>/data.pkl` (the pickle), `<root>/data/<key>` (each
//!   storage's raw bytes, stored uncompressed), `<root>/byteorder` ("little" or "big", optional);
//! - the legacy stream of PyTorch < 1.6 (and of torchvision's `vgg16-397923af.pth`): pickled magic
//!   number, protocol version (1001) and system info, the main pickle, the pickled list of storage
//!   keys, then each storage as an i64 element count and its raw bytes.
//!
//! The pickle is run by a small stack machine that knows only the opcodes torch writes and
//! resolves only the globals a state dict needs (`collections.OrderedDict`, torch's tensor and
//! parameter rebuilders, its storage types, and a few inert data types, such as the
//! `argparse.Namespace` training scripts save beside the weights); any other global is refused by
//! name. Containers live in an arena and are referred to by index, so that a hostile pickle can
//! neither build cycles nor nest values deep enough to overflow the stack when they are dropped.
//!
//! Hostile bytes give an error, never a panic: every length, offset, stride and product is
//! checked, the pickle's stack and marks are bounded, every tensor must lie inside its storage,
//! and the tensors together may not have more elements than the file has bytes (so views that
//! share or repeat a storage cannot multiply the memory a small file takes). Zip entries are read
//! in place (no copy) and their CRCs are not checked: the values are checked for NaN and infinity.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use half::{bf16, f16};

use crate::error::{Error, Result};
use crate::weights::{HostTensor, NamedTensors};

/// The most elements one tensor may have (4 GiB as f32).
const MAX_ELEMENTS: usize = 1 << 30;
/// The most dimensions a tensor may have (torch's state dicts use at most 5 or 6).
const MAX_DIMS: usize = 16;
/// The most values the pickle's stack may hold (a state dict's pickle needs about 2,000: torch
/// sets items 1,000 at a time).
const MAX_STACK: usize = 1 << 16;
/// The most marks that may be open at once (a state dict's pickle nests 3 or 4).
const MAX_MARKS: usize = 1 << 10;
/// How deep `_rebuild_from_type_v2` may call rebuilders that call rebuilders.
const MAX_CALL_DEPTH: usize = 4;
/// How many `state_dict` / `model` levels a checkpoint may nest its state dict under.
const MAX_NESTING: usize = 4;
/// The magic number that opens a legacy checkpoint, little-endian.
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
/// The only legacy protocol version there is.
const LEGACY_PROTOCOL: i64 = 1001;
/// The keys a checkpoint nests its state dict under, in order of preference.
const NESTING_KEYS: [&str; 3] = ["state_dict", "model", "model_state_dict"];

/// The floating-point tensors of a PyTorch checkpoint (a state dict, possibly nested under
/// `state_dict` / `model` keys, possibly with a `module.` prefix — leave prefixes as they are, the
/// caller strips them), each as f32 with its shape; integer tensors (num_batches_tracked) skipped.
/// `file` names the file in errors.
pub fn read_state_dict(bytes: &[u8], file: &str) -> Result<NamedTensors> {
    read(bytes).map_err(|message| Error::weights(file, message)).map(|tensors| {
        let mut named = NamedTensors::new(file);
        for (name, tensor) in tensors {
            named.insert(name, tensor);
        }
        named
    })
}

/// A failure, as the message [`Error::weights`] carries.
type Fallible<T> = std::result::Result<T, String>;

fn read(bytes: &[u8]) -> Fallible<BTreeMap<String, HostTensor>> {
    if bytes.starts_with(b"PK") {
        read_zip(bytes)
    } else if bytes.first() == Some(&PROTO) {
        read_legacy(bytes)
    } else if bytes.is_empty() {
        Err("empty file (truncated)".into())
    } else {
        Err("not a PyTorch checkpoint: neither a zip archive (PyTorch >= 1.6) nor a legacy pickle stream".into())
    }
}

// ---------------------------------------------------------------------------------------------
// Containers
// ---------------------------------------------------------------------------------------------

fn read_zip(bytes: &[u8]) -> Fallible<BTreeMap<String, HostTensor>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a complete zip archive (truncated or corrupt): {e}"))?;
    // torch writes every entry under one folder, named after the file it saved to (or `archive`).
    let pickles: Vec<Vec<u8>> = archive
        .file_names_raw()
        .filter(|name| name.ends_with(b"/data.pkl") && name.iter().filter(|&&b| b == b'/').count() == 1)
        .map(<[u8]>::to_vec)
        .take(2)
        .collect();
    let pkl = match pickles.as_slice() {
        [one] => one.as_slice(),
        [] => return Err("a zip archive without a `<folder>/data.pkl` entry: not a PyTorch checkpoint".into()),
        _ => return Err("a zip archive with several `data.pkl` entries".into()),
    };
    let root = pkl.strip_suffix(b"data.pkl").unwrap_or_default();
    let entry_name = |tail: &[u8]| [root, tail].concat();
    let order = match zip_entry(&mut archive, bytes, &entry_name(b"byteorder"))? {
        None | Some(b"little") => ByteOrder::Little,
        Some(b"big") => ByteOrder::Big,
        Some(other) => return Err(format!("the byteorder entry holds {:?}, not \"little\" or \"big\"", short(&String::from_utf8_lossy(other)))),
    };
    let pickle_bytes = zip_entry(&mut archive, bytes, pkl)?.ok_or("data.pkl is missing")?;
    let pickle = Unpickler::new(pickle_bytes, true).load().map_err(|e| format!("{}: {e}", short(&String::from_utf8_lossy(pkl))))?;
    let mut storages: HashMap<Rc<str>, &[u8]> = HashMap::new();
    for key in pickle.kinds.keys() {
        let name = entry_name(format!("data/{key}").as_bytes());
        let data = zip_entry(&mut archive, bytes, &name)?;
        let data = data.ok_or_else(|| format!("storage entry `{}` is missing", short(&String::from_utf8_lossy(&name))))?;
        storages.insert(key.clone(), data);
    }
    tensors(&pickle, &storages, order, bytes.len())
}

/// The bytes of the zip entry `name` in place, or `None` if there is no such entry.
fn zip_entry<'a>(archive: &mut zip::ZipArchive<std::io::Cursor<&'a [u8]>>, bytes: &'a [u8], name: &[u8]) -> Fallible<Option<&'a [u8]>> {
    let Some(index) = archive.index_for_name_raw(name) else { return Ok(None) };
    let name = short(&String::from_utf8_lossy(name));
    let entry = archive.by_index_raw(index).map_err(|e| format!("entry `{name}`: {e} (truncated or corrupt)"))?;
    if entry.encrypted() {
        return Err(format!("entry `{name}` is encrypted"));
    }
    if entry.compression() != zip::CompressionMethod::Stored {
        return Err(format!("entry `{name}` is compressed ({}): torch.save stores its entries uncompressed", entry.compression()));
    }
    if entry.size() != entry.compressed_size() {
        return Err(format!("entry `{name}` is stored with two different sizes"));
    }
    let start = entry.data_start().ok_or_else(|| format!("entry `{name}` has no data"))?;
    let range = usize::try_from(start).ok().zip(usize::try_from(entry.size()).ok()).and_then(|(start, len)| Some(start..start.checked_add(len)?));
    range
        .and_then(|range| bytes.get(range))
        .map(Some)
        .ok_or_else(|| format!("entry `{name}` runs past the end of the file (truncated)"))
}

fn read_legacy(bytes: &[u8]) -> Fallible<BTreeMap<String, HostTensor>> {
    let magic = Unpickler::at(bytes, 0, false).load().map_err(|e| format!("legacy checkpoint's magic number: {e}"))?;
    let is_magic = match &magic.root {
        Value::BigInt(digits) => trim_sign_extension(digits) == LEGACY_MAGIC,
        _ => false,
    };
    if !is_magic {
        return Err("a pickle that does not start with PyTorch's magic number: not a PyTorch checkpoint".into());
    }
    let version = Unpickler::at(bytes, magic.end, false).load().map_err(|e| format!("legacy checkpoint's protocol version: {e}"))?;
    match version.root {
        Value::Int(LEGACY_PROTOCOL) => {}
        Value::Int(other) => return Err(format!("legacy protocol version {other}, expected {LEGACY_PROTOCOL}")),
        _ => return Err("legacy protocol version is not an integer".into()),
    }
    let info = Unpickler::at(bytes, version.end, false).load().map_err(|e| format!("legacy checkpoint's system info: {e}"))?;
    let order = match info.root {
        Value::Dict(id) => match info.get(id, "little_endian") {
            Some(Value::Bool(false)) => ByteOrder::Big,
            _ => ByteOrder::Little,
        },
        _ => return Err("legacy checkpoint's system info is not a dict".into()),
    };
    let main = Unpickler::at(bytes, info.end, true).load().map_err(|e| format!("legacy checkpoint's pickle: {e}"))?;
    let keys = Unpickler::at(bytes, main.end, false).load().map_err(|e| format!("legacy checkpoint's storage keys: {e}"))?;
    let key_list = match keys.root {
        Value::List(id) => keys.seqs.get(id).map(Vec::as_slice).unwrap_or_default(),
        _ => return Err("legacy checkpoint's storage keys are not a list".into()),
    };
    // Then each storage in that order: its element count (i64) and its bytes.
    let mut storages: HashMap<Rc<str>, &[u8]> = HashMap::new();
    let mut pos = keys.end;
    for key in key_list {
        let key = storage_key(key).ok_or("legacy checkpoint's storage keys are not all strings")?;
        let kind = main.kinds.get(&key).ok_or_else(|| format!("storage `{}` is listed but no tensor uses it", short(&key)))?;
        let header = bytes.get(pos..pos.saturating_add(8)).and_then(|h| <[u8; 8]>::try_from(h).ok());
        let header = header.ok_or_else(|| format!("storage `{}`: truncated before its size", short(&key)))?;
        let count = match order {
            ByteOrder::Little => i64::from_le_bytes(header),
            ByteOrder::Big => i64::from_be_bytes(header),
        };
        let len = usize::try_from(count).ok().and_then(|count| count.checked_mul(kind.element_size()));
        let len = len.ok_or_else(|| format!("storage `{}` declares {count} elements", short(&key)))?;
        let start = pos.saturating_add(8);
        let data = start.checked_add(len).and_then(|end| bytes.get(start..end));
        let data = data.ok_or_else(|| format!("storage `{}`: truncated ({len} bytes declared, {} left)", short(&key), bytes.len().saturating_sub(start)))?;
        if storages.insert(key.clone(), data).is_some() {
            return Err(format!("storage `{}` is listed twice", short(&key)));
        }
        pos = start.saturating_add(len);
    }
    tensors(&main, &storages, order, bytes.len())
}

fn trim_sign_extension(digits: &[u8]) -> &[u8] {
    let mut end = digits.len();
    while end > 0 && digits.get(end - 1) == Some(&0) {
        end -= 1;
    }
    digits.get(..end).unwrap_or_default()
}

fn storage_key(value: &Value) -> Option<Rc<str>> {
    match value {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string().into()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// From the pickle's value to f32 tensors
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ByteOrder {
    Little,
    Big,
}

/// The state dict in the pickle's value, decoded. `file_len` bounds the elements decoded.
fn tensors(pickle: &Pickle, storages: &HashMap<Rc<str>, &[u8]>, order: ByteOrder, file_len: usize) -> Fallible<BTreeMap<String, HostTensor>> {
    let mut dict = match pickle.root {
        Value::Dict(id) => id,
        ref other => return Err(format!("the checkpoint holds {}, not a state dict", other.describe())),
    };
    for _ in 0..MAX_NESTING {
        let nested = NESTING_KEYS.iter().find_map(|key| match pickle.get(dict, key) {
            Some(Value::Dict(id)) => Some(*id),
            _ => None,
        });
        match nested {
            Some(id) => dict = id,
            None => break,
        }
    }
    // Later entries replace earlier ones, as in Python.
    let mut found: BTreeMap<&str, &TensorRef> = BTreeMap::new();
    let mut skipped = 0usize;
    let mut keys = Vec::new();
    for (key, value) in pickle.dicts.get(dict).map(Vec::as_slice).unwrap_or_default() {
        if keys.len() < 5
            && let Value::Str(key) = key
        {
            keys.push(short(key));
        }
        let Value::Tensor(tensor) = value else { continue };
        let Value::Str(name) = key else { return Err(format!("a tensor under {}, not under a name", key.describe())) };
        match tensor.storage.kind {
            StorageKind::Float(_) => {
                found.insert(name, tensor);
            }
            StorageKind::Skipped { .. } => {
                found.remove(name.as_ref());
                skipped += 1;
            }
        }
    }
    if found.is_empty() {
        return Err(if skipped > 0 {
            format!("no floating-point tensors (only {skipped} integer or bool ones)")
        } else {
            format!("no tensors in the checkpoint's dict (keys: {})", keys.join(", "))
        });
    }
    let mut budget = file_len;
    let mut out = BTreeMap::new();
    for (name, tensor) in found {
        // Checked before decoding: a broadcast view of one element may declare 2^30 of them.
        let count = element_count(&tensor.shape)?;
        budget = budget.checked_sub(count).ok_or_else(|| {
            format!("tensor `{}`: the tensors add up to more elements than the file's {file_len} bytes can hold (views repeating a storage)", short(name))
        })?;
        let data = decode(tensor, storages, order).map_err(|e| format!("tensor `{}`: {e}", short(name)))?;
        if data.iter().any(|v| !v.is_finite()) {
            return Err(format!("tensor `{}` contains NaN or infinity", short(name)));
        }
        out.insert(name.to_string(), HostTensor::new(tensor.shape.clone(), data));
    }
    Ok(out)
}

/// A tensor's elements as f32, row-major, gathered from its storage by its strides.
fn decode(tensor: &TensorRef, storages: &HashMap<Rc<str>, &[u8]>, order: ByteOrder) -> Fallible<Vec<f32>> {
    let storage = &tensor.storage;
    let StorageKind::Float(dtype) = storage.kind else { return Err("not a floating-point tensor".into()) };
    let count = element_count(&tensor.shape)?;
    if count == 0 {
        return Ok(Vec::new());
    }
    let bytes = storages.get(&storage.key).ok_or_else(|| format!("storage `{}` is missing", short(&storage.key)))?;
    let size = dtype.size();
    // The storage as the pickle declares it (a legacy view starts `offset` elements into the data).
    let range = storage
        .offset
        .checked_mul(size)
        .and_then(|start| Some(start..start.checked_add(storage.numel.checked_mul(size)?)?));
    let data = range.and_then(|range| bytes.get(range)).ok_or_else(|| {
        format!(
            "storage `{}` has {} bytes, fewer than its {} {} elements (from element {}) take",
            short(&storage.key),
            bytes.len(),
            storage.numel,
            dtype.name(),
            storage.offset
        )
    })?;
    // The last element the tensor reads.
    let mut last = tensor.offset;
    for (&dim, &stride) in tensor.shape.iter().zip(&tensor.stride) {
        last = dim.checked_sub(1).and_then(|d| d.checked_mul(stride)).and_then(|reach| last.checked_add(reach)).ok_or("its strides overflow")?;
    }
    if last >= storage.numel {
        return Err(format!(
            "it reads element {last} of storage `{}`, which has {} elements (offset {}, shape {:?}, stride {:?})",
            short(&storage.key),
            storage.numel,
            tensor.offset,
            tensor.shape,
            tensor.stride
        ));
    }
    let view = View { offset: tensor.offset, shape: &tensor.shape, stride: &tensor.stride, count };
    Ok(match (dtype, order) {
        (Dtype::F32, ByteOrder::Little) => view.gather(data.as_chunks().0, f32::from_le_bytes)?,
        (Dtype::F32, ByteOrder::Big) => view.gather(data.as_chunks().0, f32::from_be_bytes)?,
        (Dtype::F64, ByteOrder::Little) => view.gather(data.as_chunks().0, |b| f64::from_le_bytes(b) as f32)?,
        (Dtype::F64, ByteOrder::Big) => view.gather(data.as_chunks().0, |b| f64::from_be_bytes(b) as f32)?,
        (Dtype::F16, ByteOrder::Little) => view.gather(data.as_chunks().0, |b| f16::from_le_bytes(b).to_f32())?,
        (Dtype::F16, ByteOrder::Big) => view.gather(data.as_chunks().0, |b| f16::from_be_bytes(b).to_f32())?,
        (Dtype::BF16, ByteOrder::Little) => view.gather(data.as_chunks().0, |b| bf16::from_le_bytes(b).to_f32())?,
        (Dtype::BF16, ByteOrder::Big) => view.gather(data.as_chunks().0, |b| bf16::from_be_bytes(b).to_f32())?,
    })
}

fn element_count(shape: &[usize]) -> Fallible<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| format!("shape {shape:?} has more than {MAX_ELEMENTS} elements"))
}

/// A checked strided view: every element it reads is below the storage's length.
struct View<'a> {
    offset: usize,
    shape: &'a [usize],
    stride: &'a [usize],
    count: usize,
}

impl View<'_> {
    fn gather<const N: usize>(&self, elements: &[[u8; N]], convert: impl Fn([u8; N]) -> f32) -> Fallible<Vec<f32>> {
        const OUTSIDE: &str = "it reads outside its storage";
        let contiguous = {
            let mut expected = 1usize;
            let mut ok = true;
            for (&dim, &stride) in self.shape.iter().zip(self.stride).rev() {
                ok &= dim == 1 || stride == expected;
                expected = expected.saturating_mul(dim);
            }
            ok
        };
        if contiguous {
            let end = self.offset.checked_add(self.count).ok_or(OUTSIDE)?;
            let run = elements.get(self.offset..end).ok_or(OUTSIDE)?;
            return Ok(run.iter().map(|&b| convert(b)).collect());
        }
        // Odometer over the outer dimensions, a run along the innermost at each step. (A scalar is
        // contiguous, so there is an innermost dimension here.)
        let (Some((&inner, outer_shape)), Some((&inner_stride, outer_stride))) = (self.shape.split_last(), self.stride.split_last()) else {
            return Err(OUTSIDE.into());
        };
        let mut out = Vec::with_capacity(self.count);
        let mut index = vec![0usize; outer_shape.len()];
        let mut base = self.offset;
        loop {
            let mut at = base;
            for _ in 0..inner {
                out.push(convert(*elements.get(at).ok_or(OUTSIDE)?));
                at = at.saturating_add(inner_stride);
            }
            // Next outer index; the sums stay below the last element, checked before.
            let mut dim = outer_shape.len();
            loop {
                let Some(d) = dim.checked_sub(1) else { return Ok(out) };
                dim = d;
                let (Some(i), Some(&size), Some(&stride)) = (index.get_mut(d), outer_shape.get(d), outer_stride.get(d)) else {
                    return Err(OUTSIDE.into());
                };
                if *i + 1 < size {
                    *i += 1;
                    base = base.checked_add(stride).ok_or(OUTSIDE)?;
                    break;
                }
                base = stride.checked_mul(*i).and_then(|back| base.checked_sub(back)).ok_or(OUTSIDE)?;
                *i = 0;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The pickle machine
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dtype {
    F64,
    F32,
    F16,
    BF16,
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::F64 => 8,
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::BF16 => 2,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Dtype::F64 => "float64",
            Dtype::F32 => "float32",
            Dtype::F16 => "float16",
            Dtype::BF16 => "bfloat16",
        }
    }
}

/// What a storage holds: floats (read), or integers and bools (skipped; the size is still needed
/// to step over a legacy file's storage).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StorageKind {
    Float(Dtype),
    Skipped { size: usize },
}

impl StorageKind {
    fn element_size(self) -> usize {
        match self {
            StorageKind::Float(dtype) => dtype.size(),
            StorageKind::Skipped { size } => size,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "FloatStorage" => StorageKind::Float(Dtype::F32),
            "DoubleStorage" => StorageKind::Float(Dtype::F64),
            "HalfStorage" => StorageKind::Float(Dtype::F16),
            "BFloat16Storage" => StorageKind::Float(Dtype::BF16),
            "LongStorage" => StorageKind::Skipped { size: 8 },
            "IntStorage" => StorageKind::Skipped { size: 4 },
            "ShortStorage" => StorageKind::Skipped { size: 2 },
            "CharStorage" | "ByteStorage" | "BoolStorage" | "UntypedStorage" => StorageKind::Skipped { size: 1 },
            _ => return None,
        })
    }
}

/// The globals the pickle may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Global {
    OrderedDict,
    RebuildTensor,
    RebuildTensorV2,
    RebuildParameter,
    RebuildParameterWithState,
    RebuildFromTypeV2,
    Storage(StorageKind),
    /// `torch.Tensor`, `torch.nn.Parameter`: the type argument of `_rebuild_from_type_v2`.
    TensorType,
    /// Data types a checkpoint may carry beside its state dict (argparse.Namespace, numpy
    /// scalars): building one gives an opaque value, and runs nothing.
    Inert,
}

impl Global {
    fn resolve(module: &str, name: &str) -> Fallible<Self> {
        Ok(match (module, name) {
            ("collections", "OrderedDict") => Global::OrderedDict,
            ("torch._utils", "_rebuild_tensor") => Global::RebuildTensor,
            ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
            ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
            ("torch._utils", "_rebuild_parameter_with_state") => Global::RebuildParameterWithState,
            ("torch._tensor", "_rebuild_from_type_v2") => Global::RebuildFromTypeV2,
            ("torch", "Tensor") | ("torch.nn.parameter", "Parameter" | "Buffer") => Global::TensorType,
            ("torch" | "torch.cuda", storage) if let Some(kind) = StorageKind::from_name(storage) => Global::Storage(kind),
            ("argparse", "Namespace")
            | ("_codecs", "encode")
            | ("numpy", "dtype" | "ndarray")
            | ("numpy.core.multiarray" | "numpy._core.multiarray", "scalar" | "_reconstruct") => Global::Inert,
            _ => {
                // A class (torch.save(model) pickles the model's): the state dict is what can be read.
                let hint = if name.starts_with(|c: char| c.is_ascii_uppercase()) { "; to read a whole pickled model, save its state_dict() instead" } else { "" };
                return Err(format!(
                    "refuses the global `{}.{}`: a state dict needs only tensors, storages and OrderedDict (nothing in the file is run){hint}",
                    short(module),
                    short(name)
                ));
            }
        })
    }
}

/// A storage a persistent id names: `numel` elements of `kind` from element `offset` of the data
/// stored under `key` (the offset is not 0 only for the storage views of old legacy files).
#[derive(Debug)]
struct StorageRef {
    key: Rc<str>,
    kind: StorageKind,
    offset: usize,
    numel: usize,
}

#[derive(Debug)]
struct TensorRef {
    storage: Rc<StorageRef>,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

/// A pickled value. Containers are indices into the machine's arena, so values never nest.
#[derive(Clone, Debug)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer too large for i64, as its little-endian two's complement bytes.
    BigInt(Rc<[u8]>),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(usize),
    List(usize),
    Dict(usize),
    Global(Global),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
    /// An instance of an inert type.
    Opaque,
}

impl Value {
    fn describe(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(b) => format!("the bool {b}"),
            Value::Int(i) => format!("the integer {i}"),
            Value::BigInt(_) => "a large integer".into(),
            Value::Float(f) => format!("the float {f}"),
            Value::Str(s) => format!("the string {:?}", short(s)),
            Value::Bytes(b) => format!("{} bytes", b.len()),
            Value::Tuple(_) => "a tuple".into(),
            Value::List(_) => "a list".into(),
            Value::Dict(_) => "a dict".into(),
            Value::Global(g) => format!("the global {g:?}"),
            Value::Storage(_) => "a storage".into(),
            Value::Tensor(_) => "a tensor".into(),
            Value::Opaque => "an object".into(),
        }
    }
}

/// What a pickle unpickled to: its value, the arena its containers are in, the storages its
/// persistent ids named (key to kind), and the byte after its STOP.
struct Pickle {
    root: Value,
    seqs: Vec<Vec<Value>>,
    dicts: Vec<Vec<(Value, Value)>>,
    kinds: HashMap<Rc<str>, StorageKind>,
    end: usize,
}

impl Pickle {
    /// The value of the last `key` entry of dict `id` (Python keeps the last).
    fn get(&self, id: usize, key: &str) -> Option<&Value> {
        let entries = self.dicts.get(id)?;
        entries.iter().rev().find(|(k, _)| matches!(k, Value::Str(s) if &**s == key)).map(|(_, v)| v)
    }
}

const PROTO: u8 = 0x80;

struct Unpickler<'a> {
    data: &'a [u8],
    pos: usize,
    /// Whether BINPERSID may name storages (the main pickle only).
    persistent: bool,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    seqs: Vec<Vec<Value>>,
    dicts: Vec<Vec<(Value, Value)>>,
    kinds: HashMap<Rc<str>, StorageKind>,
}

impl<'a> Unpickler<'a> {
    fn new(data: &'a [u8], persistent: bool) -> Self {
        Self::at(data, 0, persistent)
    }

    fn at(data: &'a [u8], pos: usize, persistent: bool) -> Self {
        Self {
            data,
            pos,
            persistent,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            seqs: Vec::new(),
            dicts: Vec::new(),
            kinds: HashMap::new(),
        }
    }

    fn load(mut self) -> Fallible<Pickle> {
        loop {
            let at = self.pos;
            let op = self.byte()?;
            if op == b'.' {
                let root = self.pop()?;
                return Ok(Pickle { root, seqs: self.seqs, dicts: self.dicts, kinds: self.kinds, end: self.pos });
            }
            self.step(op).map_err(|e| format!("{e} (opcode 0x{op:02x} at byte {at})"))?;
        }
    }

    fn step(&mut self, op: u8) -> Fallible<()> {
        match op {
            PROTO => {
                self.byte()?;
            }
            0x95 => {
                // FRAME: a length hint.
                self.take(8)?;
            }
            b'(' => {
                if self.marks.len() >= MAX_MARKS {
                    return Err(format!("more than {MAX_MARKS} marks open"));
                }
                self.marks.push(self.stack.len());
            }
            b'0' => {
                self.pop()?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let top = self.top()?.clone();
                self.push(top)?;
            }
            b'}' => {
                let dict = self.new_dict(Vec::new());
                self.push(dict)?;
            }
            b']' => {
                let list = self.new_seq(Vec::new());
                self.push(Value::List(list))?;
            }
            b')' => {
                let tuple = self.new_seq(Vec::new());
                self.push(Value::Tuple(tuple))?;
            }
            b't' => {
                let items = self.pop_mark()?;
                let tuple = self.new_seq(items);
                self.push(Value::Tuple(tuple))?;
            }
            b'l' => {
                let items = self.pop_mark()?;
                let list = self.new_seq(items);
                self.push(Value::List(list))?;
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let at = self.stack.len().checked_sub(n).filter(|&at| at >= self.floor()).ok_or("stack underflow")?;
                let items = self.stack.split_off(at);
                let tuple = self.new_seq(items);
                self.push(Value::Tuple(tuple))?;
            }
            b'd' => {
                let items = self.pop_mark()?;
                let pairs = pairs(items)?;
                let dict = self.new_dict(pairs);
                self.push(dict)?;
            }
            b'J' => {
                let v = i32::from_le_bytes(self.array()?);
                self.push(Value::Int(v.into()))?;
            }
            b'K' => {
                let v = self.byte()?;
                self.push(Value::Int(v.into()))?;
            }
            b'M' => {
                let v = u16::from_le_bytes(self.array()?);
                self.push(Value::Int(v.into()))?;
            }
            0x8a => {
                let n = usize::from(self.byte()?);
                let digits = self.take(n)?;
                self.push(long(digits))?;
            }
            0x8b => {
                let n = i32::from_le_bytes(self.array()?);
                let n = usize::try_from(n).map_err(|_| "negative length")?;
                let digits = self.take(n)?;
                self.push(long(digits))?;
            }
            b'G' => {
                let v = f64::from_be_bytes(self.array()?);
                self.push(Value::Float(v))?;
            }
            b'N' => self.push(Value::None)?,
            0x88 => self.push(Value::Bool(true))?,
            0x89 => self.push(Value::Bool(false))?,
            // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
            b'X' | 0x8c | 0x8d => {
                let n = self.length(op)?;
                let text = std::str::from_utf8(self.take(n)?).map_err(|_| "a string that is not UTF-8")?;
                self.push(Value::Str(text.into()))?;
            }
            // BINSTRING, SHORT_BINSTRING (Python 2's str): text if it is UTF-8, as torch.load reads them.
            b'T' | b'U' => {
                let n = self.length(op)?;
                let raw = self.take(n)?;
                let value = match std::str::from_utf8(raw) {
                    Ok(text) => Value::Str(text.into()),
                    Err(_) => Value::Bytes(raw.into()),
                };
                self.push(value)?;
            }
            // BINBYTES, SHORT_BINBYTES, BINBYTES8
            b'B' | b'C' | 0x8e => {
                let n = self.length(op)?;
                let raw = self.take(n)?;
                self.push(Value::Bytes(raw.into()))?;
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                let global = Global::resolve(module, name)?;
                self.push(Value::Global(global))?;
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Value::Str(module), Value::Str(name)) = (&module, &name) else {
                    return Err("STACK_GLOBAL needs two strings".into());
                };
                let global = Global::resolve(module, name)?;
                self.push(Value::Global(global))?;
            }
            b'q' => {
                let index = self.byte()?.into();
                self.memoize(index)?;
            }
            b'r' => {
                let index = u32::from_le_bytes(self.array()?);
                self.memoize(index)?;
            }
            0x94 => {
                let index = u32::try_from(self.memo.len()).map_err(|_| "memo full")?;
                self.memoize(index)?;
            }
            b'h' => {
                let index = self.byte()?.into();
                self.recall(index)?;
            }
            b'j' => {
                let index = u32::from_le_bytes(self.array()?);
                self.recall(index)?;
            }
            b's' => {
                let value = self.pop()?;
                let key = self.pop()?;
                self.dict_mut()?.push((key, value));
            }
            b'u' => {
                let items = self.pop_mark()?;
                let pairs = pairs(items)?;
                self.dict_mut()?.extend(pairs);
            }
            b'a' => {
                let value = self.pop()?;
                self.list_mut()?.push(value);
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.list_mut()?.extend(items);
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let value = self.call(&callable, &args, 0)?;
                self.push(value)?;
            }
            0x81 => {
                // NEWOBJ: cls.__new__(cls, *args)
                let _args = self.pop()?;
                let class = self.pop()?;
                let value = match class {
                    Value::Global(Global::OrderedDict) => self.new_dict(Vec::new()),
                    Value::Global(Global::Inert) => Value::Opaque,
                    other => return Err(format!("cannot construct {}", other.describe())),
                };
                self.push(value)?;
            }
            b'b' => {
                // BUILD: the state of a dict (an OrderedDict's `_metadata`), a tensor or an inert
                // object; none of it is needed.
                self.pop()?;
                self.top()?;
            }
            b'Q' => {
                let pid = self.pop()?;
                let storage = self.persistent_load(&pid)?;
                self.push(storage)?;
            }
            _ => return Err(format!("unsupported pickle opcode 0x{op:02x}")),
        }
        Ok(())
    }

    // --- reading the stream ---

    fn take(&mut self, n: usize) -> Fallible<&'a [u8]> {
        let left = self.data.len().saturating_sub(self.pos);
        let end = self.pos.checked_add(n).filter(|&end| end <= self.data.len());
        let bytes = end.and_then(|end| self.data.get(self.pos..end).map(|bytes| (bytes, end)));
        let (bytes, end) = bytes.ok_or_else(|| format!("truncated: {n} bytes needed at byte {}, {left} left", self.pos))?;
        self.pos = end;
        Ok(bytes)
    }

    fn byte(&mut self) -> Fallible<u8> {
        let [b] = self.array()?;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Fallible<[u8; N]> {
        let bytes = self.take(N)?;
        <[u8; N]>::try_from(bytes).map_err(|_| "truncated".into())
    }

    /// The length operand of a string or bytes opcode.
    fn length(&mut self, op: u8) -> Fallible<usize> {
        let n: u64 = match op {
            0x8c | b'U' | b'C' => self.byte()?.into(),
            b'X' | b'B' => u32::from_le_bytes(self.array()?).into(),
            b'T' => u64::try_from(i32::from_le_bytes(self.array()?)).map_err(|_| "negative length")?,
            _ => u64::from_le_bytes(self.array()?),
        };
        usize::try_from(n).map_err(|_| format!("truncated: a length of {n} bytes"))
    }

    /// A newline-terminated line (GLOBAL's operands).
    fn line(&mut self) -> Fallible<&'a str> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let n = rest.iter().position(|&b| b == b'\n').ok_or("truncated inside a GLOBAL")?;
        let line = self.take(n)?;
        self.take(1)?;
        std::str::from_utf8(line).map_err(|_| "a GLOBAL that is not UTF-8".into())
    }

    // --- the stack ---

    /// The stack's bottom for the current mark: nothing below it may be popped.
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn push(&mut self, value: Value) -> Fallible<()> {
        if self.stack.len() >= MAX_STACK {
            return Err(format!("the pickle's stack holds more than {MAX_STACK} values"));
        }
        self.stack.push(value);
        Ok(())
    }

    fn pop(&mut self) -> Fallible<Value> {
        if self.stack.len() <= self.floor() {
            return Err("stack underflow".into());
        }
        self.stack.pop().ok_or_else(|| "stack underflow".into())
    }

    fn top(&self) -> Fallible<&Value> {
        if self.stack.len() <= self.floor() {
            return Err("stack underflow".into());
        }
        self.stack.last().ok_or_else(|| "stack underflow".into())
    }

    fn pop_mark(&mut self) -> Fallible<Vec<Value>> {
        let mark = self.marks.pop().ok_or("no mark to pop to")?;
        if mark > self.stack.len() {
            return Err("stack underflow".into());
        }
        Ok(self.stack.split_off(mark))
    }

    fn memoize(&mut self, index: u32) -> Fallible<()> {
        let top = self.top()?.clone();
        self.memo.insert(index, top);
        Ok(())
    }

    fn recall(&mut self, index: u32) -> Fallible<()> {
        let value = self.memo.get(&index).cloned().ok_or_else(|| format!("memo entry {index} is missing"))?;
        self.push(value)
    }

    // --- the arena ---

    fn new_seq(&mut self, items: Vec<Value>) -> usize {
        self.seqs.push(items);
        self.seqs.len() - 1
    }

    fn new_dict(&mut self, pairs: Vec<(Value, Value)>) -> Value {
        self.dicts.push(pairs);
        Value::Dict(self.dicts.len() - 1)
    }

    fn dict_mut(&mut self) -> Fallible<&mut Vec<(Value, Value)>> {
        match self.top()? {
            &Value::Dict(id) => self.dicts.get_mut(id).ok_or_else(|| "a dangling dict".into()),
            other => Err(format!("setting items on {}, not a dict", other.describe())),
        }
    }

    fn list_mut(&mut self) -> Fallible<&mut Vec<Value>> {
        match self.top()? {
            &Value::List(id) => self.seqs.get_mut(id).ok_or_else(|| "a dangling list".into()),
            other => Err(format!("appending to {}, not a list", other.describe())),
        }
    }

    fn tuple(&self, value: &Value) -> Fallible<&[Value]> {
        match value {
            &Value::Tuple(id) => self.seqs.get(id).map(Vec::as_slice).ok_or_else(|| "a dangling tuple".into()),
            other => Err(format!("expected a tuple, found {}", other.describe())),
        }
    }

    // --- torch ---

    /// REDUCE: `callable(*args)`, for the callables torch's pickles use.
    fn call(&mut self, callable: &Value, args: &Value, depth: usize) -> Fallible<Value> {
        let Value::Global(global) = callable else { return Err(format!("cannot call {}", callable.describe())) };
        let args = self.tuple(args)?;
        match global {
            Global::OrderedDict => {
                if !args.is_empty() {
                    return Err("OrderedDict(...) with arguments".into());
                }
                Ok(self.new_dict(Vec::new()))
            }
            Global::RebuildTensorV2 if (4..=7).contains(&args.len()) => self.rebuild_tensor(args),
            Global::RebuildTensor if args.len() == 4 => self.rebuild_tensor(args),
            Global::RebuildParameter | Global::RebuildParameterWithState => match args.first() {
                Some(tensor @ Value::Tensor(_)) if (3..=4).contains(&args.len()) => Ok(tensor.clone()),
                _ => Err("_rebuild_parameter needs (tensor, requires_grad, hooks[, state])".into()),
            },
            Global::RebuildFromTypeV2 => {
                let [func, _type, args, _state] = args else {
                    return Err("_rebuild_from_type_v2 needs (func, type, args, state)".into());
                };
                if depth >= MAX_CALL_DEPTH {
                    return Err(format!("rebuilders nested more than {MAX_CALL_DEPTH} deep"));
                }
                let (func, args) = (func.clone(), args.clone());
                self.call(&func, &args, depth + 1)
            }
            Global::Inert => Ok(Value::Opaque),
            Global::RebuildTensorV2 | Global::RebuildTensor => Err(format!("{global:?} with {} arguments", args.len())),
            Global::Storage(_) | Global::TensorType => Err(format!("cannot call {global:?}")),
        }
    }

    /// `_rebuild_tensor[_v2](storage, storage_offset, size, stride, ...)`: the rest (requires_grad,
    /// backward hooks, metadata) does not matter here.
    fn rebuild_tensor(&self, args: &[Value]) -> Fallible<Value> {
        let [storage, offset, shape, stride, ..] = args else { return Err("_rebuild_tensor needs 4 arguments".into()) };
        let Value::Storage(storage) = storage else { return Err(format!("a tensor on {}, not a storage", storage.describe())) };
        let offset = index(offset).ok_or("a tensor's storage offset is not a non-negative integer")?;
        let shape = self.indices(shape).ok_or("a tensor's size is not a tuple of non-negative integers")?;
        let stride = self.indices(stride).ok_or("a tensor's stride is not a tuple of non-negative integers")?;
        if shape.len() != stride.len() || shape.len() > MAX_DIMS {
            return Err(format!("a tensor with {} sizes and {} strides (at most {MAX_DIMS})", shape.len(), stride.len()));
        }
        element_count(&shape)?;
        Ok(Value::Tensor(Rc::new(TensorRef { storage: storage.clone(), offset, shape, stride })))
    }

    fn indices(&self, value: &Value) -> Option<Vec<usize>> {
        let items = self.tuple(value).ok()?;
        if items.len() > MAX_DIMS {
            return None;
        }
        items.iter().map(index).collect()
    }

    /// BINPERSID: `('storage', storage_type, key, location, numel[, view_metadata])`.
    fn persistent_load(&mut self, pid: &Value) -> Fallible<Value> {
        if !self.persistent {
            return Err("a persistent id outside the checkpoint's main pickle".into());
        }
        let fields = self.tuple(pid)?;
        let [Value::Str(tag), Value::Global(Global::Storage(kind)), key, _location, numel, view @ ..] = fields else {
            return Err("a persistent id that is not ('storage', type, key, location, size)".into());
        };
        if &**tag != "storage" {
            return Err(format!("a persistent id of kind {:?}, not 'storage'", short(tag)));
        }
        let kind = *kind;
        let key = storage_key(key).ok_or("a storage key that is not a string")?;
        let numel = index(numel).ok_or("a storage size that is not a non-negative integer")?;
        let (key, offset, numel) = match view {
            [] | [Value::None] => (key, 0, numel),
            // Old legacy files' storage views: (view_key, offset, size) into the storage `key`.
            [view @ Value::Tuple(_)] => match self.tuple(view)? {
                [_view_key, offset, size] => (
                    key,
                    index(offset).ok_or("a storage view's offset is not a non-negative integer")?,
                    index(size).ok_or("a storage view's size is not a non-negative integer")?,
                ),
                _ => return Err("a storage view that is not (key, offset, size)".into()),
            },
            _ => return Err("a persistent id with unexpected fields".into()),
        };
        match self.kinds.get(&key) {
            Some(&known) if known != kind => return Err(format!("storage `{}` is read as two different types", short(&key))),
            Some(_) => {}
            None => {
                self.kinds.insert(key.clone(), kind);
            }
        }
        Ok(Value::Storage(Rc::new(StorageRef { key, kind, offset, numel })))
    }
}

fn index(value: &Value) -> Option<usize> {
    match *value {
        Value::Int(i) => usize::try_from(i).ok(),
        _ => None,
    }
}

fn pairs(items: Vec<Value>) -> Fallible<Vec<(Value, Value)>> {
    if !items.len().is_multiple_of(2) {
        return Err("an odd number of dict items".into());
    }
    let mut pairs = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let (Some(key), Some(value)) = (items.next(), items.next()) {
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// LONG1 / LONG4's little-endian two's complement digits.
fn long(digits: &[u8]) -> Value {
    let negative = digits.last().is_some_and(|&b| b & 0x80 != 0);
    let fill = if negative { 0xff } else { 0 };
    let (low, high) = digits.split_at(digits.len().min(8));
    let mut bytes = [fill; 8];
    for (b, &d) in bytes.iter_mut().zip(low) {
        *b = d;
    }
    let value = i64::from_le_bytes(bytes);
    // It fits if the digits past 8 only extend the sign of the first 8.
    if high.iter().all(|&b| b == fill) && (value < 0) == negative {
        Value::Int(value)
    } else {
        Value::BigInt(digits.into())
    }
}

/// At most 80 characters of `s`, for messages.
fn short(s: &str) -> String {
    if s.chars().count() <= 80 { s.to_string() } else { format!("{}...", s.chars().take(77).collect::<String>()) }
}

#[cfg(test)]
mod tests;
