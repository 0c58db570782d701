//! atlas-data (to be written)
