//! Short, stable content hashes for labels.

use sha2::{Digest, Sha256};

/// First 16 hex digits of the SHA-256 of the parts, each length-prefixed so that
/// `["ab", "c"]` and `["a", "bc"]` differ.
pub fn short_hash(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(&hasher.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::short_hash;

    #[test]
    fn parts_are_delimited() {
        assert_ne!(short_hash(&["ab", "c"]), short_hash(&["a", "bc"]));
        assert_eq!(short_hash(&["x"]).len(), 16);
    }
}
