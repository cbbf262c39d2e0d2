//! Decoding user images (JPEG/PNG/WebP, EXIF orientation honoured) into the network's input.

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage, imageops::FilterType};
use std::io::Cursor;

use crate::error::{Error, Result};
use crate::weights::Normalisation;

/// Images with more pixels than this are refused before decoding (decompression bombs).
pub const MAX_PIXELS: u64 = 100_000_000;

/// Decodes `bytes`, applies the EXIF orientation and returns RGB8. `name` labels errors.
pub fn decode(bytes: &[u8], name: &str) -> Result<RgbImage> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::image(name, e))?;
    if reader.format().is_none() {
        return Err(Error::image(name, "not a JPEG, PNG or WebP image"));
    }
    let mut decoder = reader.into_decoder().map_err(|e| Error::image(name, format!("cannot decode: {e}")))?;
    let (w, h) = decoder.dimensions();
    if (w as u64) * (h as u64) > MAX_PIXELS || w == 0 || h == 0 {
        return Err(Error::image(name, format!("{w}x{h} pixels is outside the supported size (at most {MAX_PIXELS} pixels)")));
    }
    let orientation = decoder.orientation().ok();
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| Error::image(name, format!("cannot decode: {e}")))?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(img.to_rgb8())
}

/// Wraps RGBA pixels (as a browser canvas gives them) as RGB, dropping alpha.
pub fn from_rgba(rgba: &[u8], width: u32, height: u32) -> Result<RgbImage> {
    let pixels = width as u64 * height as u64;
    if width == 0 || height == 0 || pixels > MAX_PIXELS {
        return Err(Error::image("image", format!("{width}x{height} pixels is outside the supported size")));
    }
    if rgba.len() as u64 != 4 * pixels {
        return Err(Error::image("image", format!("{} bytes of RGBA for {width}x{height} pixels", rgba.len())));
    }
    let rgb = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    RgbImage::from_raw(width, height, rgb).ok_or_else(|| Error::image("image", "inconsistent pixel buffer"))
}

/// Reads and decodes an image file.
pub fn read(path: &std::path::Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path.display(), e))?;
    decode(&bytes, &path.display().to_string())
}

/// Resizes to `size x size` (aspect ignored, as the reference pipeline does; a triangle filter
/// like PIL's bilinear) and normalises to a `[3, size, size]` planar f32 tensor.
pub fn to_input(img: &RgbImage, size: usize, norm: &Normalisation) -> Vec<f32> {
    let resized;
    let img = if img.width() as usize == size && img.height() as usize == size {
        img
    } else {
        resized = image::imageops::resize(img, size as u32, size as u32, FilterType::Triangle);
        &resized
    };
    let plane = size * size;
    let mut out = vec![0f32; 3 * plane];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (px[c] as f32 / 255.0 - norm.mean[c]) / norm.std[c];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgba_drops_alpha_and_checks_length() {
        let img = from_rgba(&[1, 2, 3, 255, 4, 5, 6, 0], 2, 1).unwrap();
        assert_eq!(img.as_raw(), &vec![1, 2, 3, 4, 5, 6]);
        assert!(from_rgba(&[0; 7], 2, 1).is_err());
        assert!(from_rgba(&[], 0, 0).is_err());
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let err = decode(b"definitely not an image", "notes.txt").unwrap_err().to_string();
        assert!(err.contains("notes.txt") && err.contains("not a JPEG"), "{err}");
        let mut png = Vec::new();
        RgbImage::new(4, 4).write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        let err = decode(&png[..png.len() / 2], "cut.png").unwrap_err().to_string();
        assert!(err.contains("cut.png"), "{err}");
    }

    /// A PNG whose header declares `w x h` pixels, followed by an empty IDAT.
    fn png_header_only(w: u32, h: u32) -> Vec<u8> {
        fn crc32(bytes: &[u8]) -> u32 {
            let mut crc = !0u32;
            for b in bytes {
                crc ^= *b as u32;
                for _ in 0..8 {
                    crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
                }
            }
            !crc
        }
        let chunk = |kind: &[u8], data: &[u8]| {
            let mut c = (data.len() as u32).to_be_bytes().to_vec();
            let body = [kind, data].concat();
            c.extend(&body);
            c.extend(crc32(&body).to_be_bytes());
            c
        };
        let ihdr = [w.to_be_bytes().as_slice(), h.to_be_bytes().as_slice(), &[8, 2, 0, 0, 0]].concat();
        [b"\x89PNG\r\n\x1a\n".as_slice(), &chunk(b"IHDR", &ihdr), &chunk(b"IDAT", &[]), &chunk(b"IEND", &[])].concat()
    }

    #[test]
    fn huge_images_are_refused_before_decoding() {
        let err = decode(&png_header_only(20_000, 20_000), "bomb.png").unwrap_err().to_string();
        assert!(err.contains("bomb.png") && err.contains("20000x20000"), "{err}");
    }

    #[test]
    fn exif_orientation_is_applied() {
        use image::ImageEncoder;
        // A 4x2 image whose EXIF says "rotate 90 degrees clockwise" (orientation 6).
        let mut img = RgbImage::from_pixel(4, 2, image::Rgb([0, 0, 0]));
        img.put_pixel(0, 0, image::Rgb([255, 255, 255]));
        // little-endian TIFF: header, IFD with one entry (0x0112 Orientation, SHORT, 1, value 6)
        let exif = [
            b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0,
        ];
        let mut jpeg = Vec::new();
        let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 100);
        enc.set_exif_metadata(exif.to_vec()).unwrap();
        enc.write_image(img.as_raw(), 4, 2, image::ExtendedColorType::Rgb8).unwrap();
        let out = decode(&jpeg, "rotated.jpg").unwrap();
        assert_eq!(out.dimensions(), (2, 4));
        // the top-left white pixel moves to the top-right after a clockwise quarter turn
        assert!(out.get_pixel(1, 0)[0] > 128 && out.get_pixel(0, 3)[0] < 128);
    }

    #[test]
    fn normalises_planar_rgb() {
        let img = RgbImage::from_pixel(2, 2, image::Rgb([255, 0, 127]));
        let x = to_input(&img, 2, &Normalisation::TFLITE);
        assert!((x[0] - 1.0).abs() < 1e-6 && (x[4] + 127.0 / 128.0).abs() < 1e-6 && x[8].abs() < 1e-6);
    }
}
