//! The safetensors header, checked before any tensor is touched.
//!
//! A safetensors file is `u64 header length (LE) | JSON header | tensor data`. The header maps each
//! tensor to `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets into the data section).
//! [`parse_header`] checks every claim the header makes against the file before the loader
//! slices the memory map by it, and names the tensor whose entry lies:
//!
//! - a header length above [`MAX_HEADER_BYTES`] or past the end of the file (no buffer is sized by
//!   it: the header is read in place from the map);
//! - an entry whose `shape x dtype` size differs from its offsets, whose offsets are reversed,
//!   overlap another tensor or lie past the end of the file;
//! - data bytes that no tensor claims (the file is longer than its tensors).
//!
//! Then `safetensors::SafeTensors::read_metadata` parses it once more (the same rules), so the
//! loader and the crate agree on the layout.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::tensor::TensorInfo;
use serde_json::Value;

use crate::error::{ModelError, Result};

/// Largest JSON header accepted (100 MB, the `safetensors` crate's own cap; real headers of
/// 1000-tensor checkpoints are ~100 kB).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

fn bad(path: &Path, message: String) -> ModelError {
    ModelError::Safetensors {
        path: path.to_path_buf(),
        message,
    }
}

/// Bytes per element of a safetensors dtype name (`None`: unknown name). Sub-byte types count
/// bits.
fn dtype_bits(name: &str) -> Option<u64> {
    Some(match name {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 8,
        "F4" => 4,
        "F6_E2M3" | "F6_E3M2" => 6,
        "I16" | "U16" | "F16" | "BF16" => 16,
        "I32" | "U32" | "F32" => 32,
        "I64" | "U64" | "F64" | "C64" => 64,
        _ => return None,
    })
}

/// Checks the header of the safetensors bytes `file` (named `path` in errors) and returns the
/// header length and the tensors.
pub fn parse_header(path: &Path, file: &[u8]) -> Result<(usize, BTreeMap<String, TensorInfo>)> {
    let size = file.len() as u64;
    let Some(prefix) = file.get(..8) else {
        return Err(bad(
            path,
            format!("the file is {size} bytes, shorter than the 8-byte header length"),
        ));
    };
    let mut n = [0u8; 8];
    n.copy_from_slice(prefix);
    let n = u64::from_le_bytes(n);
    if n > MAX_HEADER_BYTES {
        return Err(bad(
            path,
            format!(
                "the header length field says {n} bytes, above the {MAX_HEADER_BYTES}-byte cap: \
                 not a safetensors file, or its first 8 bytes are corrupt"
            ),
        ));
    }
    if n > size - 8 {
        return Err(bad(
            path,
            format!(
                "the header length field says {n} bytes, but only {} follow",
                size - 8
            ),
        ));
    }
    let header = &file[8..8 + n as usize];
    let data_len = size - 8 - n;
    let text = std::str::from_utf8(header)
        .map_err(|e| bad(path, format!("the JSON header is not UTF-8 ({e})")))?;
    let json: serde_json::Map<String, Value> = serde_json::from_str(text).map_err(|e| {
        bad(
            path,
            format!("the JSON header does not parse as an object ({e})"),
        )
    })?;
    // (begin, end, name): checked for overlap once sorted.
    let mut spans: Vec<(u64, u64, &str)> = Vec::with_capacity(json.len());
    for (name, entry) in &json {
        if name == "__metadata__" {
            continue;
        }
        let tensor = |what: String| bad(path, format!("tensor `{name}`: {what}"));
        let dtype = entry
            .get("dtype")
            .and_then(Value::as_str)
            .ok_or_else(|| tensor("no string `dtype`".into()))?;
        let bits = dtype_bits(dtype).ok_or_else(|| tensor(format!("unknown dtype {dtype:?}")))?;
        let shape = entry
            .get("shape")
            .and_then(Value::as_array)
            .ok_or_else(|| tensor("no `shape` list".into()))?;
        let mut elements: u64 = 1;
        for d in shape {
            let d = d
                .as_u64()
                .ok_or_else(|| tensor(format!("shape {shape:?} has a non-integer dimension")))?;
            elements = elements
                .checked_mul(d)
                .ok_or_else(|| tensor(format!("shape {shape:?} overflows")))?;
        }
        let offsets = entry
            .get("data_offsets")
            .and_then(Value::as_array)
            .filter(|o| o.len() == 2)
            .and_then(|o| Some((o[0].as_u64()?, o[1].as_u64()?)))
            .ok_or_else(|| tensor("no `data_offsets: [begin, end]` of whole numbers".into()))?;
        let (begin, end) = offsets;
        if end < begin {
            return Err(tensor(format!(
                "data_offsets [{begin}, {end}] are reversed"
            )));
        }
        let bits = elements
            .checked_mul(bits)
            .ok_or_else(|| tensor(format!("shape {shape:?} x {dtype} overflows")))?;
        if bits % 8 != 0 {
            return Err(tensor(format!(
                "shape {shape:?} of {dtype} is {bits} bits, not a whole number of bytes"
            )));
        }
        let bytes = bits / 8;
        if end - begin != bytes {
            return Err(tensor(format!(
                "data_offsets [{begin}, {end}] span {} bytes, but shape {shape:?} of {dtype} \
                 needs {bytes}",
                end - begin
            )));
        }
        if end > data_len {
            return Err(tensor(format!(
                "data_offsets [{begin}, {end}] run past the {data_len} data bytes of the file \
                 (truncated?)"
            )));
        }
        spans.push((begin, end, name));
    }
    spans.sort_unstable();
    let mut covered = 0u64;
    for w in spans.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(bad(
                path,
                format!(
                    "tensors `{}` [{}, {}] and `{}` [{}, {}] overlap",
                    w[0].2, w[0].0, w[0].1, w[1].2, w[1].0, w[1].1
                ),
            ));
        }
    }
    for s in &spans {
        covered += s.1 - s.0;
    }
    if covered != data_len {
        return Err(bad(
            path,
            format!(
                "the tensors cover {covered} of the file's {data_len} data bytes (gaps or \
                 trailing bytes: a lying header or a damaged file)"
            ),
        ));
    }
    let (len, metadata) = safetensors::SafeTensors::read_metadata(file)
        .map_err(|e| bad(path, format!("{e:?} (file size {size} bytes)")))?;
    let tensors = metadata
        .tensors()
        .into_iter()
        .map(|(k, info)| (k, info.clone()))
        .collect();
    Ok((len, tensors))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of `header` with `data` bytes of tensor data, the length field set to `len` (or the
    /// header's true length).
    fn file(header: &str, data: usize, len: Option<u64>) -> Vec<u8> {
        let mut out = len.unwrap_or(header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.resize(out.len() + data, 0);
        out
    }

    fn err(bytes: &[u8]) -> String {
        parse_header(Path::new("m/model.safetensors"), bytes)
            .expect_err("must be refused")
            .to_string()
    }

    const GOOD: &str = r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F16","shape":[4],"data_offsets":[24,32]}}"#;

    #[test]
    fn a_valid_header_reads() {
        let (n, t) = parse_header(Path::new("x"), &file(GOOD, 32, None)).expect("valid");
        assert_eq!(n, GOOD.len());
        assert_eq!(t["a"].shape, vec![2, 3]);
        assert_eq!(t["b"].data_offsets, (24, 32));
    }

    #[test]
    fn what_the_safetensors_crate_writes_reads() {
        use safetensors::tensor::{Dtype, TensorView};
        let a = vec![7u8; 4 * 6];
        let b = vec![1u8; 2 * 5];
        let c = vec![2u8; 1];
        let tensors = [
            (
                "visual.a",
                TensorView::new(Dtype::F32, vec![2, 3], &a).expect("a"),
            ),
            ("b", TensorView::new(Dtype::BF16, vec![5], &b).expect("b")),
            ("c", TensorView::new(Dtype::U8, vec![1], &c).expect("c")),
        ];
        let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
        let bytes = safetensors::serialize(tensors, Some(meta)).expect("serialize");
        let (_, t) = parse_header(Path::new("x"), &bytes).expect("the crate's own output");
        assert_eq!(t.len(), 3);
        assert_eq!(t["b"].shape, vec![5]);
    }

    #[test]
    fn header_length_beyond_the_cap_or_the_file_is_refused_without_allocating() {
        let e = err(&file(GOOD, 32, Some(u64::MAX)));
        assert!(e.contains("m/model.safetensors"), "{e}");
        assert!(e.contains("above the 100000000-byte cap"), "{e}");
        let e = err(&file(GOOD, 32, Some(50_000_000)));
        assert!(e.contains("says 50000000 bytes, but only"), "{e}");
        assert!(err(&[1, 2, 3]).contains("shorter than the 8-byte header length"));
    }

    #[test]
    fn lying_offsets_and_sizes_name_the_tensor() {
        let cases = [
            (GOOD.replace("[0,24]", "[0,20]"), "tensor `a`", "needs 24"),
            (GOOD.replace("[24,32]", "[32,24]"), "tensor `b`", "reversed"),
            (
                GOOD.replace("[24,32]", "[16,24]"),
                "`a` [0, 24] and `b` [16, 24]",
                "overlap",
            ),
            (
                GOOD.replace("[4]", "[4000000000000,4000000000000]"),
                "tensor `b`",
                "overflows",
            ),
            (
                GOOD.replace("[24,32]", "[1000024,1000032]"),
                "tensor `b`",
                "run past",
            ),
            (
                GOOD.replace("\"F16\"", "\"Q4\""),
                "tensor `b`",
                "unknown dtype",
            ),
            (
                GOOD.replace("\"F16\",\"shape\":[4]", "\"F4\",\"shape\":[3]"),
                "tensor `b`",
                "bits",
            ),
        ];
        for (header, who, what) in cases {
            let e = err(&file(&header, 32, None));
            assert!(e.contains(who) && e.contains(what), "{header}: {e}");
            assert!(e.contains("m/model.safetensors"), "{e}");
        }
        // Data bytes no tensor claims: a lying header or a damaged file.
        let e = err(&file(GOOD, 40, None));
        assert!(e.contains("cover 32 of the file's 40"), "{e}");
        // Truncated data.
        let e = err(&file(GOOD, 30, None));
        assert!(
            e.contains("tensor `b`") && e.contains("run past the 30 data bytes"),
            "{e}"
        );
    }

    #[test]
    fn header_that_is_not_json_says_so() {
        assert!(err(&file("{\"a\": [", 0, None)).contains("does not parse"));
        let mut f = file("{}", 0, None);
        f[8] = 0xff;
        assert!(err(&f).contains("not UTF-8"));
    }
}
