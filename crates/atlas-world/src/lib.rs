//! atlas-world (to be written)
