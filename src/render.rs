//! Drawing a saliency map: colormaps, resizing to the photo, alpha overlay.

use image::{Rgb, RgbImage};
use serde::Serialize;

use crate::imageops::upsample::{resize_map, try_resize_map};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Colormap {
    #[default]
    Jet,
    Turbo,
    Viridis,
}

/// A colormap as the front-ends list it.
#[derive(Debug, Serialize)]
pub struct ColormapSpec {
    pub name: &'static str,
    pub display_name: &'static str,
    #[serde(skip)]
    pub colormap: Colormap,
}

/// Every colormap: the CLI's `--colormap`, the wasm API's `colormaps()` (the page's list) and
/// share links read this.
pub static COLORMAPS: [ColormapSpec; 3] = [
    ColormapSpec { name: "jet", display_name: "jet", colormap: Colormap::Jet },
    ColormapSpec { name: "turbo", display_name: "turbo", colormap: Colormap::Turbo },
    ColormapSpec { name: "viridis", display_name: "viridis", colormap: Colormap::Viridis },
];

impl Colormap {
    pub fn from_name(name: &str) -> Result<Self> {
        COLORMAPS.iter().find(|c| c.name == name).map(|c| c.colormap).ok_or_else(|| {
            let names: Vec<_> = COLORMAPS.iter().map(|c| c.name).collect();
            Error::Invalid(format!("unknown colormap {name:?} ({})", names.join(", ")))
        })
    }

    /// Colour of `t` in [0, 1].
    pub fn color(self, t: f32) -> [u8; 3] {
        let t = t.clamp(0.0, 1.0);
        match self {
            // matplotlib's / OpenCV's jet: piecewise linear, dark blue -> red
            Self::Jet => {
                let channel = |offset: f32| round_u8((1.5 - (4.0 * t - offset).abs()).clamp(0.0, 1.0) * 255.0);
                [channel(3.0), channel(2.0), channel(1.0)]
            }
            Self::Turbo => rgb(colorous::TURBO.eval_continuous(t as f64)),
            Self::Viridis => rgb(colorous::VIRIDIS.eval_continuous(t as f64)),
        }
    }
}

/// `v` in [0, 255] rounded as `f32::round` does (half away from zero), as floor(v + 0.5) in f64:
/// exact for every such f32 (the sum needs at most 25 bits), and wasm has instructions for it,
/// where `round` is a call into libm, which made colouring a 448 px heatmap in the page about
/// twice as slow.
fn round_u8(v: f32) -> u8 {
    (f64::from(v) + 0.5).floor() as u8
}

fn rgb(c: colorous::Color) -> [u8; 3] {
    [c.r, c.g, c.b]
}

/// Resizes a square `size x size` map to the photo's size (bilinear).
pub fn map_to_image_size(map: &[f32], size: usize, width: u32, height: u32) -> Vec<f32> {
    resize_map(map, size, size, height as usize, width as usize)
}

/// A `size x size` map from outside (the page's `renderHeatmap`) resized to `width x height` and
/// coloured, as RGBA bytes: sizes refused with a reason ([`crate::imageops::upsample::check_resize`]), never wrapped.
pub fn heatmap_canvas(map: &[f32], size: usize, width: u32, height: u32, cmap: Colormap) -> Result<Vec<u8>> {
    let resized = try_resize_map(map, size, size, height as usize, width as usize).map_err(Error::Invalid)?;
    Ok(heatmap_rgba(&resized, cmap))
}

/// The map in colour, at the map's own size.
pub fn heatmap(map: &[f32], width: u32, height: u32, cmap: Colormap) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| Rgb(cmap.color(map[(y * width + x) as usize])))
}

/// The map in colour as the RGBA bytes (opaque) a canvas `ImageData` takes.
pub fn heatmap_rgba(map: &[f32], cmap: Colormap) -> Vec<u8> {
    let mut rgba = Vec::with_capacity(map.len() * 4);
    for &v in map {
        let [r, g, b] = cmap.color(v);
        rgba.extend_from_slice(&[r, g, b, 255]);
    }
    rgba
}

/// `alpha * heatmap + (1 - alpha) * photo`; `map` must be at the photo's size.
pub fn overlay(photo: &RgbImage, map: &[f32], cmap: Colormap, alpha: f32) -> RgbImage {
    let (w, h) = photo.dimensions();
    RgbImage::from_fn(w, h, |x, y| {
        let c = cmap.color(map[(y * w + x) as usize]);
        let p = photo.get_pixel(x, y);
        Rgb(std::array::from_fn(|i| (alpha * c[i] as f32 + (1.0 - alpha) * p[i] as f32).round() as u8))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `round_u8` is `f32::round` on every value a colour channel takes, including the halves
    /// and the floats just beside them.
    #[test]
    fn round_u8_rounds_as_f32_round() {
        let steps = (0..=255 * 4096).map(|i| i as f32 / 4096.0);
        for v in steps.flat_map(|v| [v, f32::from_bits(v.to_bits().saturating_sub(1)), f32::from_bits(v.to_bits() + 1)]).filter(|v| (0.0..=255.0).contains(v)) {
            assert_eq!(round_u8(v), v.round() as u8, "{v}");
        }
        assert_eq!(round_u8(f32::NAN), f32::NAN.round() as u8);
    }

    /// `renderHeatmap`'s sizes (issue 35, 12): a 65536 px map with no values (65536^2 is 0 in
    /// wasm32's usize), a 2^32 px one (0 natively), a canvas past 2^28 pixels: each an error.
    #[test]
    fn heatmap_canvas_refuses_sizes_that_wrap() {
        for (map, size, width, height) in [(&[][..], 65536, 16, 16), (&[], 1 << 32, 16, 16), (&[0.5; 4], 2, 1 << 15, 1 << 14), (&[0.5; 4], 2, 0, 4)] {
            let err = heatmap_canvas(map, size, width, height, Colormap::Jet).unwrap_err().to_string();
            assert!(err.contains("map"), "{size} -> {width}x{height}: {err}");
        }
        assert_eq!(heatmap_canvas(&[0.0, 0.0, 1.0, 1.0], 2, 3, 2, Colormap::Jet).unwrap().len(), 3 * 2 * 4);
    }

    #[test]
    fn colormap_ends() {
        assert_eq!(Colormap::Jet.color(0.0), [0, 0, 128]);
        assert_eq!(Colormap::Jet.color(1.0), [128, 0, 0]);
        assert_eq!(Colormap::Jet.color(0.5), [128, 255, 128]);
        let v = Colormap::Viridis.color(0.0);
        assert!(v[2] > v[0] && v[2] > v[1], "viridis starts purple: {v:?}");
    }

    #[test]
    fn overlay_blends() {
        let photo = RgbImage::from_pixel(2, 1, Rgb([0, 0, 0]));
        let out = overlay(&photo, &[1.0, 1.0], Colormap::Jet, 0.5);
        assert_eq!(out.get_pixel(0, 0).0, [64, 0, 0]);
    }
}
