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

/// Layer groups from the top of the network down.
pub fn groups_top_down(tensors: &NamedTensors) -> Vec<String> {
    let mut groups: Vec<String> = tensors.tensors.keys().filter(|n| !n.ends_with(".value")).map(|n| group_of(n)).collect();
    groups.sort_by_key(|g| std::cmp::Reverse(forward_rank(g)));
    groups.dedup();
    groups
}

/// Re-initialises every tensor of `group`: weights He-normal (std sqrt(2 / fan_in)), biases 0.
fn randomise(tensors: &mut NamedTensors, group: &str, rng: &mut rand::rngs::StdRng) {
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
}
