//! atlas-tokenizer (to be written)
