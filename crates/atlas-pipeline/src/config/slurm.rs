//! `[slurm]`: how `cargo xtask slurm` asks the cluster for workers (all optional).

use serde::Deserialize;

/// The resources of each worker task of the Slurm array, and of the dependent finishing job.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmConfig {
    /// Worker tasks in the array (each claims units from the store until none is left).
    pub workers: usize,
    /// `--partition` (none: the cluster's default).
    pub partition: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// `--gpus-per-task` of each worker (0: none; the run's `device` should then be `cpu`).
    pub gpus_per_task: usize,
    pub cpus_per_task: usize,
    /// `--mem` per worker, e.g. `"32G"`.
    pub mem: Option<String>,
    /// `--time` per worker, e.g. `"04:00:00"`.
    pub time: Option<String>,
    /// Extra `#SBATCH` options, verbatim (e.g. `"--qos=normal"`, `"--constraint=a100"`).
    pub sbatch: Vec<String>,
    /// Lease of each worker's claims in seconds: a killed worker's unit is retaken after it.
    pub lease_s: f64,
}

impl Default for SlurmConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            partition: None,
            account: None,
            gpus_per_task: 0,
            cpus_per_task: 4,
            mem: None,
            time: None,
            sbatch: Vec::new(),
            lease_s: 120.0,
        }
    }
}
