//! A Merkle tree over the sorted measurement list, shaped as in RFC 9162
//! (Certificate Transparency 2.0), section 2.1. Leaves are hashed as
//! `H(0x00 || data)` and inner nodes as `H(0x01 || left || right)`. A tree
//! of n leaves splits at the largest power of two below n.
//!
//! The tree is built level by level: pairs are hashed and an unpaired last
//! node moves up unchanged, which gives the same root as the recursive split
//! and lets one build serve every inclusion proof.

use crate::digest::Algorithm;

const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

pub fn leaf_hash(algorithm: Algorithm, data: &[u8]) -> Vec<u8> {
    algorithm.hash_parts(&[&[LEAF_PREFIX], data])
}

fn node_hash(algorithm: Algorithm, left: &[u8], right: &[u8]) -> Vec<u8> {
    algorithm.hash_parts(&[&[NODE_PREFIX], left, right])
}

/// A built tree: `levels[0]` contains the leaf hashes, the last level the root.
#[derive(Debug, Clone)]
pub struct Tree {
    algorithm: Algorithm,
    levels: Vec<Vec<Vec<u8>>>,
}

impl Tree {
    /// Builds the tree over leaf hashes made by [`leaf_hash`].
    pub fn from_leaf_hashes(algorithm: Algorithm, leaves: Vec<Vec<u8>>) -> Tree {
        let mut levels = vec![leaves];
        while levels.last().map_or(0, Vec::len) > 1 {
            let below = levels.last().unwrap();
            let above = below
                .chunks(2)
                .map(|pair| match pair {
                    [left, right] => node_hash(algorithm, left, right),
                    [single] => single.clone(),
                    _ => unreachable!("chunks(2) yields one or two items"),
                })
                .collect();
            levels.push(above);
        }
        Tree { algorithm, levels }
    }

    pub fn size(&self) -> u64 {
        self.levels[0].len() as u64
    }

    /// Returns the root, or the hash of the empty string for an empty tree.
    pub fn root(&self) -> Vec<u8> {
        match self.levels.last().and_then(|level| level.first()) {
            Some(root) => root.clone(),
            None => self.algorithm.hash_parts(&[]),
        }
    }

    /// Returns the audit path of leaf `index`, lowest sibling first, or None when
    /// `index` is outside the tree.
    pub fn inclusion_proof(&self, index: u64) -> Option<Vec<Vec<u8>>> {
        if index >= self.size() {
            return None;
        }
        let mut proof = Vec::new();
        let mut position = index as usize;
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = position ^ 1;
            if sibling < level.len() {
                proof.push(level[sibling].clone());
            }
            position /= 2;
        }
        Some(proof)
    }
}

/// Checks that `leaf` sits at `index` in a tree of `tree_size` leaves whose
/// root is `root`, following RFC 9162 section 2.1.3.2.
pub fn verify_inclusion(
    algorithm: Algorithm,
    leaf: &[u8],
    index: u64,
    tree_size: u64,
    proof: &[Vec<u8>],
    root: &[u8],
) -> bool {
    if index >= tree_size {
        return false;
    }
    let mut first = index;
    let mut last = tree_size - 1;
    let mut hash = leaf.to_vec();
    for sibling in proof {
        if last == 0 {
            return false;
        }
        if first & 1 == 1 || first == last {
            hash = node_hash(algorithm, sibling, &hash);
            while first & 1 == 0 && first != 0 {
                first >>= 1;
                last >>= 1;
            }
        } else {
            hash = node_hash(algorithm, &hash, sibling);
        }
        first >>= 1;
        last >>= 1;
    }
    last == 0 && hash == root
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The leaf inputs and roots from the Certificate Transparency test
    /// vectors, as used by RFC 6962 implementations.
    const INPUTS: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn leaves(count: usize) -> Vec<Vec<u8>> {
        INPUTS[..count]
            .iter()
            .map(|input| leaf_hash(Algorithm::Sha256, &hex::decode(input).unwrap()))
            .collect()
    }

    /// Computes the root by the recursive definition in RFC 9162, to check
    /// the level build.
    fn recursive_root(leaves: &[Vec<u8>]) -> Vec<u8> {
        match leaves.len() {
            0 => Algorithm::Sha256.hash_parts(&[]),
            1 => leaves[0].clone(),
            n => {
                let mut split = 1;
                while split * 2 < n {
                    split *= 2;
                }
                node_hash(
                    Algorithm::Sha256,
                    &recursive_root(&leaves[..split]),
                    &recursive_root(&leaves[split..]),
                )
            }
        }
    }

    #[test]
    fn empty_tree_root_is_hash_of_nothing() {
        let tree = Tree::from_leaf_hashes(Algorithm::Sha256, Vec::new());
        assert_eq!(
            hex::encode(tree.root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(tree.inclusion_proof(0), None);
    }

    #[test]
    fn roots_match_known_vectors() {
        for (count, expected) in ROOTS.iter().enumerate().map(|(i, root)| (i + 1, root)) {
            let tree = Tree::from_leaf_hashes(Algorithm::Sha256, leaves(count));
            assert_eq!(
                hex::encode(tree.root()),
                *expected,
                "tree of {count} leaves"
            );
        }
    }

    #[test]
    fn proofs_match_known_vectors() {
        // (leaf index, tree size, audit path) from the same test vectors.
        let vectors: [(u64, usize, &[&str]); 4] = [
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (index, size, expected) in vectors {
            let leaves = leaves(size);
            let tree = Tree::from_leaf_hashes(Algorithm::Sha256, leaves.clone());
            let proof = tree.inclusion_proof(index).unwrap();
            let proof_hex: Vec<String> = proof.iter().map(hex::encode).collect();
            assert_eq!(proof_hex, expected, "leaf {index} of {size}");
            let root = hex::decode(ROOTS[size - 1]).unwrap();
            let verified = verify_inclusion(
                Algorithm::Sha256,
                &leaves[index as usize],
                index,
                size as u64,
                &proof,
                &root,
            );
            assert!(verified, "leaf {index} of {size}");
        }
    }

    #[test]
    fn level_build_matches_recursive_split() {
        for count in 0..70 {
            let leaves: Vec<Vec<u8>> = (0..count)
                .map(|i: u32| leaf_hash(Algorithm::Sha256, &i.to_be_bytes()))
                .collect();
            let tree = Tree::from_leaf_hashes(Algorithm::Sha256, leaves.clone());
            assert_eq!(
                tree.root(),
                recursive_root(&leaves),
                "tree of {count} leaves"
            );
        }
    }

    #[test]
    fn every_proof_verifies() {
        for count in 1..40u64 {
            let leaves: Vec<Vec<u8>> = (0..count)
                .map(|i| leaf_hash(Algorithm::Sha512, &i.to_be_bytes()))
                .collect();
            let tree = Tree::from_leaf_hashes(Algorithm::Sha512, leaves.clone());
            let root = tree.root();
            for index in 0..count {
                let proof = tree.inclusion_proof(index).unwrap();
                assert!(
                    verify_inclusion(
                        Algorithm::Sha512,
                        &leaves[index as usize],
                        index,
                        count,
                        &proof,
                        &root
                    ),
                    "leaf {index} of {count}"
                );
            }
        }
    }

    #[test]
    fn wrong_proofs_fail() {
        let leaves = leaves(7);
        let tree = Tree::from_leaf_hashes(Algorithm::Sha256, leaves.clone());
        let root = tree.root();
        let proof = tree.inclusion_proof(3).unwrap();
        let verify = |leaf: &[u8], index, size, proof: &[Vec<u8>], root: &[u8]| {
            verify_inclusion(Algorithm::Sha256, leaf, index, size, proof, root)
        };

        assert!(verify(&leaves[3], 3, 7, &proof, &root));
        assert!(!verify(&leaves[4], 3, 7, &proof, &root), "other leaf");
        assert!(!verify(&leaves[3], 2, 7, &proof, &root), "other index");
        // Sizes 5 to 8 give leaf 3 the same audit path, so only a size that
        // changes the path shape can fail; the answer check binds the size.
        assert!(!verify(&leaves[3], 3, 4, &proof, &root), "smaller size");
        let last_proof = tree.inclusion_proof(6).unwrap();
        assert!(verify(&leaves[6], 6, 7, &last_proof, &root));
        assert!(!verify(&leaves[6], 6, 8, &last_proof, &root), "larger size");
        assert!(
            !verify(&leaves[3], 7, 7, &proof, &root),
            "index past the end"
        );
        assert!(
            !verify(&leaves[3], 3, 7, &proof[..proof.len() - 1], &root),
            "short proof"
        );
        let mut long = proof.clone();
        long.push(root.clone());
        assert!(!verify(&leaves[3], 3, 7, &long, &root), "long proof");
        let mut flipped = proof.clone();
        flipped[0][0] ^= 1;
        assert!(
            !verify(&leaves[3], 3, 7, &flipped, &root),
            "altered sibling"
        );
    }
}
