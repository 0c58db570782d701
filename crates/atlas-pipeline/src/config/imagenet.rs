//! `[[dataset]]` fields that only the ImageNet benchmarks read: `labels_file` (`imagenet`,
//! `imagenet-x`), `annotations` and `which_factor` (`imagenet-x`). Set on another dataset, each
//! is refused with its line, so a typo in `benchmark` does not silently drop them.

use atlas_data::{Benchmark, WhichFactor};

use super::{ConfigError, DatasetEntry, DatasetKind, LoadedConfig};

pub(super) fn check_imagenet_fields(
    cfg: &LoadedConfig,
    d: &DatasetEntry,
) -> Result<(), ConfigError> {
    let bench = d
        .benchmark
        .as_ref()
        .filter(|_| d.kind == DatasetKind::Benchmark)
        .and_then(|b| Benchmark::from_name(b.get_ref()).ok());
    let imagenet_x = bench == Some(Benchmark::ImageNetX);
    if let Some(p) = &d.labels_file
        && !(imagenet_x || bench == Some(Benchmark::ImageNet))
    {
        return Err(cfg.error_at(
            p,
            "`labels_file` is only read with kind = \"benchmark\", benchmark = \"imagenet\" or \
             \"imagenet-x\" (Kaggle's LOC_val_solution.csv for flat ILSVRC2012_val_*.JPEG files)"
                .into(),
        ));
    }
    if let Some(p) = &d.annotations
        && !imagenet_x
    {
        return Err(cfg.error_at(
            p,
            "`annotations` is only read with kind = \"benchmark\", benchmark = \"imagenet-x\" \
             (the folder of the imagenet-x package's annotation files)"
                .into(),
        ));
    }
    if let Some(w) = &d.which_factor {
        if !imagenet_x {
            return Err(cfg.error_at(
                w,
                "`which_factor` is only read with kind = \"benchmark\", benchmark = \"imagenet-x\""
                    .into(),
            ));
        }
        if WhichFactor::from_name(w.get_ref()).is_none() {
            return Err(cfg.error_at(
                w,
                format!(
                    "unknown which_factor `{}`: use \"top\" (one factor per image, ImageNet-X's \
                     default) or \"multi\"",
                    w.get_ref()
                ),
            ));
        }
    }
    Ok(())
}
