//! atlas-pipeline (to be written)
