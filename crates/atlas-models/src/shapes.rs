//! Tensor shapes the towers see on each device.
//!
//! A GPU backend compiles (and autotunes) kernels per input shape, and a new shape costs seconds;
//! the CPU backend has no such cost. So on GPU devices a [`LoadedClip`](crate::LoadedClip)
//! keeps shapes few:
//! - image batches are padded to the widest batch the model has run (the last, short batch of a
//!   dataset, or a batch with corrupt images taken out, reuses the full batch's kernels);
//! - text batches likewise, and the sequence (cut after the batch's last end-of-text token) is
//!   rounded up to a multiple of [`GPU_SEQ_MULTIPLE`] tokens (at most the context length).
//!
//! Padding rows are zeros and their outputs are dropped; each row of a tower is computed on its
//! own (no batch statistics), so the kept rows are the same function of the same input. Padding
//! tokens sit after the end-of-text token, which a causal text tower never reads. On the CPU
//! ([`ShapePolicy::Exact`]) shapes are the input's.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::device::DeviceKind;

/// Text sequences on a GPU are rounded up to a multiple of this many tokens.
pub const GPU_SEQ_MULTIPLE: usize = 16;

/// How a loaded model shapes its tower inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShapePolicy {
    /// The input's own shapes (the CPU backend: no per-shape compilation).
    Exact,
    /// Batches padded to the widest seen, sequences to a multiple of `seq_multiple` (GPU).
    Fixed { seq_multiple: usize },
}

impl ShapePolicy {
    /// `Exact` on the CPU, `Fixed` on GPU backends (`kind` resolved: not `Auto`).
    pub fn for_device(kind: DeviceKind) -> Self {
        match kind {
            DeviceKind::Wgpu | DeviceKind::Cuda => Self::Fixed {
                seq_multiple: GPU_SEQ_MULTIPLE,
            },
            DeviceKind::Cpu | DeviceKind::Auto => Self::Exact,
        }
    }
}

/// A [`ShapePolicy`] and the widest batches a model has run so far.
#[derive(Debug)]
pub struct Shapes {
    policy: ShapePolicy,
    widest_images: AtomicUsize,
    widest_texts: AtomicUsize,
}

impl Shapes {
    pub fn new(policy: ShapePolicy) -> Self {
        Self {
            policy,
            widest_images: AtomicUsize::new(0),
            widest_texts: AtomicUsize::new(0),
        }
    }

    pub fn policy(&self) -> ShapePolicy {
        self.policy
    }

    /// The rows an image batch of `batch` runs with (`>= batch`).
    pub fn image_rows(&self, batch: usize) -> usize {
        self.rows(&self.widest_images, batch)
    }

    /// `(rows, tokens)` a text batch of `rows` prompts, cut to `len` tokens, runs with; the
    /// tokens never exceed `max(len, context)`.
    pub fn text_shape(&self, rows: usize, len: usize, context: usize) -> (usize, usize) {
        let rows = self.rows(&self.widest_texts, rows);
        match self.policy {
            ShapePolicy::Exact => (rows, len),
            ShapePolicy::Fixed { seq_multiple } => {
                let m = seq_multiple.max(1);
                (
                    rows,
                    len.div_ceil(m).saturating_mul(m).min(context).max(len),
                )
            }
        }
    }

    fn rows(&self, widest: &AtomicUsize, batch: usize) -> usize {
        match self.policy {
            ShapePolicy::Exact => batch,
            ShapePolicy::Fixed { .. } => widest.fetch_max(batch, Ordering::Relaxed).max(batch),
        }
    }
}

impl Default for Shapes {
    fn default() -> Self {
        Self::new(ShapePolicy::Exact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_keeps_every_shape() {
        let s = Shapes::new(ShapePolicy::for_device(DeviceKind::Cpu));
        assert_eq!(s.image_rows(64), 64);
        assert_eq!(s.image_rows(3), 3);
        assert_eq!(s.text_shape(5, 9, 77), (5, 9));
    }

    #[test]
    fn fixed_pads_batches_to_the_widest_and_rounds_sequences() {
        let s = Shapes::new(ShapePolicy::for_device(DeviceKind::Cuda));
        assert_eq!(s.image_rows(3), 3);
        assert_eq!(s.image_rows(64), 64);
        assert_eq!(s.image_rows(17), 64);
        assert_eq!(s.image_rows(80), 80);
        assert_eq!(s.image_rows(1), 80);
        // Text rows are tracked on their own.
        assert_eq!(s.text_shape(8, 9, 77), (8, 16));
        assert_eq!(s.text_shape(2, 16, 77), (8, 16));
        assert_eq!(s.text_shape(2, 17, 77), (8, 32));
        // Never past the context; a SigLIP row (len == context) stays as it is.
        assert_eq!(s.text_shape(2, 70, 77), (8, 77));
        assert_eq!(s.text_shape(2, 64, 64), (8, 64));
    }
}
