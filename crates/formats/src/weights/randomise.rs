//! Cascading randomisation of a network's weights (Adebayo et al., "Sanity Checks for Saliency
//! Maps", 2018): the layers re-initialised from the top (logits) down, one more layer (VGG, an
//! imported graph's nodes) or block (EfficientNet) per stage. An imported graph's constants
//! (`nodes.N.value`: GELU's 1/sqrt(2), a mean's divisor) are part of its arithmetic, not learned,
//! and stay. `scorecam sanity` and the page's sanity stepper both use
//! [`Cascade`], so a seed gives the same weights in both.

use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

use super::NamedTensors;

/// Position of a layer group in the forward order (stem first, classifier last).
fn forward_rank(group: &str) -> (u8, usize, usize) {
    let parts: Vec<&str> = group.split('.').collect();
    let num = |i: usize| parts.get(i).and_then(|p| p.parse().ok()).unwrap_or(0);
    match parts[0] {
        "conv_stem" => (0, 0, 0),
        "features" | "blocks" | "nodes" => (1, num(1), num(2)),
        "conv_head" => (2, 0, 0),
        _ => (3, num(1), 0),
    }
}

/// The group a tensor belongs to: a whole block for EfficientNet (`blocks.s.j`), else its layer.
fn group_of(name: &str) -> String {
    let parts: Vec<&str> = name.split('.').collect();
    if parts[0] == "blocks" && parts.len() > 3 { parts[..3].join(".") } else { parts[..parts.len() - 1].join(".") }
}

/// Layer groups from the top of the network down (the tensors kept int8 included).
pub fn groups_top_down(tensors: &NamedTensors) -> Vec<String> {
    let names = tensors.tensors.keys().chain(tensors.int8.keys());
    let mut groups: Vec<String> = names.filter(|n| !n.ends_with(".value")).map(|n| group_of(n)).collect();
    groups.sort_by_key(|g| std::cmp::Reverse(forward_rank(g)));
    groups.dedup();
    groups
}

/// Re-initialises every tensor of `group`: weights He-normal (std sqrt(2 / fan_in)), biases 0.
/// A tensor the decoder kept int8 becomes f32 (random values are not int8 rows); the others
/// stay int8, so the intact part of a large model is never decoded to f32. The tensors are
/// drawn in name order whichever way they were kept, so a seed gives the same weights as on a
/// model decoded wholly to f32 (`scorecam sanity`'s).
fn randomise(tensors: &mut NamedTensors, group: &str, rng: &mut rand::rngs::StdRng) {
    let kept: Vec<String> = tensors.int8.keys().filter(|n| group_of(n) == group).cloned().collect();
    for name in kept {
        let (shape, _) = tensors.int8.remove(&name).expect("listed above");
        let len = shape.iter().product();
        tensors.insert(name, super::HostTensor::new(shape, vec![0.0; len]));
    }
    for (name, t) in tensors.tensors.iter_mut().filter(|(n, _)| group_of(n) == group) {
        if name.ends_with("bias") || name.ends_with(".shift") {
            t.data.iter_mut().for_each(|v| *v = 0.0);
        } else {
            let fan_in: usize = t.shape[1..].iter().product::<usize>().max(1);
            let normal = Normal::new(0.0f32, (2.0 / fan_in as f32).sqrt()).expect("positive std");
            t.data.iter_mut().for_each(|v| *v = normal.sample(rng));
        }
    }
}


/// The weights at each stage of the cascade: [`Cascade::advance`] randomises the next group.
pub struct Cascade {
    groups: Vec<String>,
    rng: rand::rngs::StdRng,
    tensors: NamedTensors,
    stage: usize,
}

impl Cascade {
    /// Stage 0: the weights as given.
    pub fn new(tensors: NamedTensors, seed: u64) -> Self {
        Self { groups: groups_top_down(&tensors), rng: rand::rngs::StdRng::seed_from_u64(seed), tensors, stage: 0 }
    }

    /// The layer groups in the order they are randomised (stage `s` randomised `groups[..s]`).
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    pub fn stage(&self) -> usize {
        self.stage
    }

    /// Randomises the next group and returns its name; `None` once every group is random.
    pub fn advance(&mut self) -> Option<&str> {
        let group = self.groups.get(self.stage)?;
        randomise(&mut self.tensors, group, &mut self.rng);
        self.stage += 1;
        Some(group)
    }

    pub fn tensors(&self) -> &NamedTensors {
        &self.tensors
    }

    pub fn into_tensors(self) -> NamedTensors {
        self.tensors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_run_from_the_top_down() {
        let mut t = NamedTensors::new("x");
        for n in ["conv_stem.weight", "blocks.0.0.conv_dw.weight", "blocks.1.1.conv_pw.weight", "blocks.1.0.conv_pwl.bias", "conv_head.weight", "classifier.weight"] {
            t.insert(n, crate::weights::HostTensor::new(vec![1], vec![0.0]));
        }
        assert_eq!(groups_top_down(&t), ["classifier", "conv_head", "blocks.1.1", "blocks.1.0", "blocks.0.0", "conv_stem"]);
        let mut v = NamedTensors::new("v");
        for n in ["features.0.weight", "features.28.weight", "features.5.bias", "classifier.0.weight", "classifier.6.bias"] {
            v.insert(n, crate::weights::HostTensor::new(vec![1], vec![0.0]));
        }
        assert_eq!(groups_top_down(&v), ["classifier.6", "classifier.0", "features.28", "features.5", "features.0"]);
        // An imported graph's nodes, by number; its constants are not layers.
        let mut g = NamedTensors::new("g");
        for n in ["nodes.3.weight", "nodes.3.bias", "nodes.12.weight", "nodes.7.value", "nodes.30.weight"] {
            g.insert(n, crate::weights::HostTensor::new(vec![1], vec![0.0]));
        }
        assert_eq!(groups_top_down(&g), ["nodes.30", "nodes.12", "nodes.3"]);
    }

    /// The page's sanity stepper keeps the intact linear layers int8 (issue 35, item 7): the
    /// cascade must draw the same weights as on the wholly f32 tensors `scorecam sanity` uses.
    #[test]
    fn tensors_kept_int8_randomise_as_their_f32_twins() {
        use crate::weights::{HostTensor, dequantize_rows, quantize_rows};
        let matrix: Vec<f32> = (0..24).map(|i| (i as f32 - 11.0) / 7.0).collect();
        let rows = quantize_rows(&matrix, 4);
        let mut kept = NamedTensors::new("k");
        let mut f32s = NamedTensors::new("f");
        for (n, len) in [("features.0.weight", 6), ("features.0.bias", 2), ("classifier.0.bias", 4), ("classifier.3.weight", 8), ("classifier.3.bias", 2)] {
            let t = HostTensor::new(vec![len], (0..len).map(|i| i as f32 * 0.5 - 1.0).collect());
            kept.insert(n, t.clone());
            f32s.insert(n, t);
        }
        kept.int8.insert("classifier.0.weight".into(), (vec![4, 6], rows.clone()));
        f32s.insert("classifier.0.weight", HostTensor::new(vec![4, 6], dequantize_rows(&rows.values, &rows.scales)));
        let (mut a, mut b) = (Cascade::new(kept, 3), Cascade::new(f32s, 3));
        assert_eq!(a.groups(), b.groups());
        assert_eq!(a.groups(), ["classifier.3", "classifier.0", "features.0"]);
        // Stage 1: the int8 matrix is intact and still int8.
        assert_eq!(a.advance(), b.advance());
        assert!(a.tensors().int8.contains_key("classifier.0.weight"));
        while a.stage() < 3 {
            assert_eq!(a.advance(), b.advance());
            assert!(a.tensors().int8.is_empty());
            for (name, t) in &b.tensors().tensors {
                assert_eq!(a.tensors().tensors[name].data, t.data, "{name} at stage {}", a.stage());
            }
        }
        assert_eq!(a.tensors().tensors.len(), b.tensors().tensors.len());
    }
}
