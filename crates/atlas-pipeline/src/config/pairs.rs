//! `[[dataset]] pairs_format`: which layout a correspondence dataset's `pairs` path has. Left
//! out, the layout decides (`PairAnnotation/` → SPair-71k, `test.npz` + `intrinsics.npz` →
//! ScanNet pairs, `<object>/wild_set/` → NAVI, a file → atlas-pairs JSON); an unknown value is
//! refused with its line.

use super::{ConfigError, DatasetEntry, LoadedConfig};

/// A pair-annotation layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairsFormat {
    /// `pairs.json` (`atlas_artifacts::pairs::PairSetFile`).
    AtlasPairs,
    /// SPair-71k's root (`PairAnnotation/test`, `ImageAnnotation/`).
    Spair71k,
    /// Probe3D's `scannet_test_1500` root.
    ScanNetPairs,
    /// NAVI's `navi_v1` root.
    Navi,
}

impl PairsFormat {
    /// Every format by its config name.
    pub const ALL: [(&'static str, PairsFormat); 4] = [
        ("atlas-pairs", PairsFormat::AtlasPairs),
        ("spair-71k", PairsFormat::Spair71k),
        ("scannet-pairs", PairsFormat::ScanNetPairs),
        ("navi", PairsFormat::Navi),
    ];

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("", |(n, _)| n)
    }
}

pub(super) fn check_pairs_format(cfg: &LoadedConfig, d: &DatasetEntry) -> Result<(), ConfigError> {
    if let Some(f) = &d.pairs_format
        && PairsFormat::from_name(f.get_ref()).is_none()
    {
        let known: Vec<&str> = PairsFormat::ALL.iter().map(|(n, _)| *n).collect();
        return Err(cfg.error_at(
            f,
            format!(
                "unknown pairs_format `{}`: use one of {}",
                f.get_ref(),
                known.join(", ")
            ),
        ));
    }
    Ok(())
}
