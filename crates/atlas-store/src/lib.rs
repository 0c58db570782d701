//! atlas-store (to be written)
