//! atlas-report (to be written)
