//! Errors of the crate: every problem with user input is reported, never panicked on.

/// What can go wrong when building inputs or applying a corruption.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Corrupt3dError {
    /// Severity outside `1..=5`.
    #[error("severity {0} is out of range: 3DCC severities are 1..=5")]
    SeverityOutOfRange(u8),
    /// The corruption needs a guide map (depth or reshading) and none was given.
    #[error("corruption `{corruption}` needs a {guide} map, but none was given")]
    MissingGuide {
        /// The corruption's name.
        corruption: &'static str,
        /// What kind of map it needs (`depth` or `reshading`).
        guide: &'static str,
    },
    /// The guide map's size differs from the image's.
    #[error(
        "{guide} map is {map_width}x{map_height} (WxH) but the image is {image_width}x{image_height}"
    )]
    SizeMismatch {
        /// What kind of map (`depth` or `reshading`).
        guide: &'static str,
        /// Width of the map.
        map_width: usize,
        /// Height of the map.
        map_height: usize,
        /// Width of the image.
        image_width: usize,
        /// Height of the image.
        image_height: usize,
    },
    /// A buffer's length does not match `width * height * channels`.
    #[error("buffer has {got} values, expected {expected} ({width}x{height}x{channels})")]
    BadBufferLength {
        /// Values given.
        got: usize,
        /// Values expected.
        expected: usize,
        /// Width.
        width: usize,
        /// Height.
        height: usize,
        /// Channels per pixel.
        channels: usize,
    },
    /// Zero width or height.
    #[error("image or map is empty ({width}x{height})")]
    Empty {
        /// Width.
        width: usize,
        /// Height.
        height: usize,
    },
    /// A map value is not usable (NaN, infinite, or outside the allowed range).
    #[error("{guide} value {value} at index {index} is invalid: {reason}")]
    InvalidValue {
        /// What kind of map.
        guide: &'static str,
        /// Flat index of the value.
        index: usize,
        /// The value.
        value: f32,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// The explicit noise field is shorter than `width * height * 3`.
    #[error("noise field has {got} values per array, the image needs {expected}")]
    NoiseTooShort {
        /// Length of the shorter of the two arrays.
        got: usize,
        /// `width * height * 3`.
        expected: usize,
    },
    /// A defocus blur radius too large to build its kernel (a depth quantile near zero).
    #[error(
        "defocus blur radius {radius} needs more than {max_taps} kernel taps: \
         the depth map has values too close to zero for its range"
    )]
    BlurTooLarge {
        /// The blur radius (Gaussian standard deviation, pixels).
        radius: f64,
        /// [`crate::MAX_KERNEL_TAPS`].
        max_taps: usize,
    },
    /// A corruption name that [`crate::Corruption::from_str`](std::str::FromStr) does not know.
    #[error("unknown 3DCC corruption `{0}`")]
    UnknownCorruption(String),
    /// A known 3DCC family that this crate does not implement (see the crate docs for why).
    #[error("3DCC corruption `{0}` is not an image transform of this crate: {1}")]
    NotImplemented(&'static str, &'static str),
    /// ffmpeg or ffprobe is missing or unusable (the message says how to fix it).
    #[error("ffmpeg: {0}")]
    FfmpegMissing(String),
    /// An ffmpeg / ffprobe run failed: the command line and the tail of its stderr.
    #[error("`{command}` failed: {reason}")]
    Ffmpeg {
        /// The command line.
        command: String,
        /// Exit status and stderr tail, or why it did not start.
        reason: String,
    },
    /// A video-codec corruption could not be computed (bad input frames, temporary files).
    #[error("video codec corruption: {0}")]
    Codec(String),
}
