//! atlas-embed (to be written)
