//! atlas-models (to be written)
