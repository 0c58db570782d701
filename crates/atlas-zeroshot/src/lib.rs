//! atlas-zeroshot (to be written)
