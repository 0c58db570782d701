//! atlas-artifacts (to be written)
