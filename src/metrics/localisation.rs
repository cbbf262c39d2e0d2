//! Energy-based pointing game (Score-CAM paper, Sec. 5.2): how much of the map's mass falls in
//! the object's box.

/// `x1 y1 x2 y2` in map pixels (continuous coordinates, x2/y2 exclusive edges).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    pub x1: f64,
    pub y1: f64,
    pub x2: f64,
    pub y2: f64,
}

impl BoundingBox {
    pub fn area(&self) -> f64 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }

    /// Scaled from an image of `from_w x from_h` to `to x to` pixels.
    pub fn scaled(&self, from_w: f64, from_h: f64, to: usize) -> Self {
        let (sx, sy) = (to as f64 / from_w, to as f64 / from_h);
        Self { x1: self.x1 * sx, y1: self.y1 * sy, x2: self.x2 * sx, y2: self.y2 * sy }
    }

    /// Whether the centre of pixel (x, y) lies inside.
    pub fn contains_pixel(&self, x: usize, y: usize) -> bool {
        let (cx, cy) = (x as f64 + 0.5, y as f64 + 0.5);
        cx >= self.x1 && cx < self.x2 && cy >= self.y1 && cy < self.y2
    }
}

/// `sum(map inside box) / sum(map)` (0 for an all-zero map).
pub fn energy_in_box(map: &[f32], size: usize, b: &BoundingBox) -> f64 {
    let (mut inside, mut total) = (0f64, 0f64);
    for y in 0..size {
        for x in 0..size {
            let v = map[y * size + x] as f64;
            total += v;
            if b.contains_pixel(x, y) {
                inside += v;
            }
        }
    }
    if total > 0.0 { inside / total } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_inside_the_box_scores_one_and_outside_zero() {
        let b = BoundingBox { x1: 2.0, y1: 2.0, x2: 6.0, y2: 6.0 };
        let mut map = vec![0f32; 100];
        map[3 * 10 + 3] = 1.0;
        map[5 * 10 + 4] = 0.5;
        assert_eq!(energy_in_box(&map, 10, &b), 1.0);
        let mut outside = vec![0f32; 100];
        outside[9 * 10 + 9] = 1.0;
        assert_eq!(energy_in_box(&outside, 10, &b), 0.0);
        // a uniform map scores the box's share of the image: 16 of 100 pixels
        assert!((energy_in_box(&[1.0; 100], 10, &b) - 0.16).abs() < 1e-12);
    }

    #[test]
    fn boxes_scale_with_the_image() {
        let b = BoundingBox { x1: 0.0, y1: 113.5, x2: 227.0, y2: 227.0 }.scaled(227.0, 227.0, 224);
        assert_eq!((b.y1, b.x2), (112.0, 224.0));
    }
}
