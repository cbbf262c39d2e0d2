//! Saliency maps as NumPy `.npy` files (float32), the format the reference scripts read and write.

use std::path::Path;

use crate::error::{Error, Result};

/// A `size x size` float32 map as `.npy`.
pub fn write_npy(path: &Path, map: &[f32], size: usize) -> Result<()> {
    use npyz::WriterBuilder;
    let io = |e: std::io::Error| Error::io(path.display(), e);
    let file = std::fs::File::create(path).map_err(io)?;
    let mut w = npyz::WriteOptions::new().default_dtype().shape(&[size as u64, size as u64]).writer(std::io::BufWriter::new(file)).begin_nd().map_err(io)?;
    w.extend(map.iter().copied()).map_err(io)?;
    w.finish().map_err(io)?;
    Ok(())
}

/// Reads a float32 `.npy` (any shape), or `None` if the file is missing.
pub fn read_npy(path: &Path) -> Result<Option<Vec<f32>>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path.display(), e)),
    };
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| Error::io(path.display(), e))?;
    Ok(Some(npy.into_vec::<f32>().map_err(|e| Error::io(path.display(), e))?))
}
