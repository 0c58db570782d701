//! atlas-metrics (to be written)
