//! A minimal reader for NumPy `.npz` archives (`np.savez` / `np.savez_compressed`): a zip of
//! `.npy` members, stored or deflated. Reads C-order little-endian numeric arrays (`<f8`, `<f4`,
//! `<i8`, `<i4`, `<i2`, `<u8`, `<u4`, `<u2`, `|u1`, `|i1`) as `f64` with their shape; everything else is an
//! error naming the file and member. Zip64 local headers (NumPy writes them with
//! `force_zip64=True`) are handled; sizes come from the central directory.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result, io_err};

/// One array: values in C order, and its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

fn invalid(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::Invalid {
        what: "npz archive",
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}

/// Every member of the archive at `path`, by name without the `.npy` suffix.
pub fn read_npz(path: &Path) -> Result<BTreeMap<String, NpyArray>> {
    let bytes = std::fs::read(path).map_err(io_err("reading", path))?;
    let bad = |r: &str| invalid(path, r.to_string());
    // End of central directory: signature 0x06054b50, searched backwards (comment <= 64 KiB).
    let min = bytes.len().saturating_sub(22 + 65535);
    let eocd = (min..=bytes.len().saturating_sub(22))
        .rev()
        .find(|&o| u32_at(&bytes, o) == Some(0x0605_4b50))
        .ok_or_else(|| bad("not a zip archive (no end-of-central-directory record)"))?;
    let entries = u16_at(&bytes, eocd + 10).ok_or_else(|| bad("truncated"))? as usize;
    let mut at = u32_at(&bytes, eocd + 16).ok_or_else(|| bad("truncated"))? as usize;
    let mut out = BTreeMap::new();
    for _ in 0..entries {
        if u32_at(&bytes, at) != Some(0x0201_4b50) {
            return Err(bad("corrupt central directory"));
        }
        let field = |o: usize| u32_at(&bytes, at + o).ok_or_else(|| bad("truncated"));
        let method = u16_at(&bytes, at + 10).ok_or_else(|| bad("truncated"))?;
        let csize = field(20)? as usize;
        let usize_ = field(24)? as usize;
        let name_len = u16_at(&bytes, at + 28).ok_or_else(|| bad("truncated"))? as usize;
        let extra_len = u16_at(&bytes, at + 30).ok_or_else(|| bad("truncated"))? as usize;
        let comment_len = u16_at(&bytes, at + 32).ok_or_else(|| bad("truncated"))? as usize;
        let local = field(42)? as usize;
        let name = bytes
            .get(at + 46..at + 46 + name_len)
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .ok_or_else(|| bad("truncated"))?;
        if csize == 0xFFFF_FFFF || usize_ == 0xFFFF_FFFF || local == 0xFFFF_FFFF {
            return Err(invalid(
                path,
                format!("member {name}: zip64 sizes (over 4 GiB) unsupported"),
            ));
        }
        at += 46 + name_len + extra_len + comment_len;
        if u32_at(&bytes, local) != Some(0x0403_4b50) {
            return Err(invalid(path, format!("member {name}: bad local header")));
        }
        let lname = u16_at(&bytes, local + 26).ok_or_else(|| bad("truncated"))? as usize;
        let lextra = u16_at(&bytes, local + 28).ok_or_else(|| bad("truncated"))? as usize;
        let start = local + 30 + lname + lextra;
        let raw = bytes
            .get(start..start + csize)
            .ok_or_else(|| invalid(path, format!("member {name}: truncated data")))?;
        let data = match method {
            0 => raw.to_vec(),
            8 => {
                let mut v = Vec::with_capacity(usize_);
                flate2::read::DeflateDecoder::new(raw)
                    .read_to_end(&mut v)
                    .map_err(|e| invalid(path, format!("member {name}: deflate: {e}")))?;
                v
            }
            m => {
                return Err(invalid(
                    path,
                    format!("member {name}: compression method {m} unsupported"),
                ));
            }
        };
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        let arr = parse_npy(&data).map_err(|r| invalid(path, format!("member {name}: {r}")))?;
        out.insert(key, arr);
    }
    Ok(out)
}

/// One `.npy` payload.
pub fn parse_npy(b: &[u8]) -> std::result::Result<NpyArray, String> {
    if b.get(..6) != Some(b"\x93NUMPY") {
        return Err("not an .npy array (bad magic)".into());
    }
    let major = *b.get(6).ok_or("truncated")?;
    let (hlen, hstart) = match major {
        1 => (u16_at(b, 8).ok_or("truncated")? as usize, 10),
        2 | 3 => (u32_at(b, 8).ok_or("truncated")? as usize, 12),
        v => return Err(format!("npy version {v} unsupported")),
    };
    let header = std::str::from_utf8(b.get(hstart..hstart + hlen).ok_or("truncated header")?)
        .map_err(|_| "header is not text")?;
    let value_of = |key: &str| -> Option<&str> {
        let i = header.find(&format!("'{key}'"))? + key.len() + 2;
        Some(header[i..].trim_start().strip_prefix(':')?.trim_start())
    };
    let descr = value_of("descr").ok_or("header without descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or("unreadable descr")?;
    if value_of("fortran_order").is_some_and(|v| v.starts_with("True")) {
        return Err("Fortran-order arrays unsupported".into());
    }
    let shape_s = value_of("shape").ok_or("header without shape")?;
    let shape_s = shape_s
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or("unreadable shape")?;
    let shape = shape_s
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad shape entry {s:?}"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let n: usize = shape.iter().product();
    let body = &b[hstart + hlen..];
    let (width, conv): (usize, fn(&[u8]) -> f64) = match descr {
        "<f8" => (8, |c| f64::from_le_bytes(c.try_into().unwrap())),
        "<f4" => (4, |c| f32::from_le_bytes(c.try_into().unwrap()) as f64),
        "<i8" => (8, |c| i64::from_le_bytes(c.try_into().unwrap()) as f64),
        "<i4" => (4, |c| i32::from_le_bytes(c.try_into().unwrap()) as f64),
        "<i2" => (2, |c| i16::from_le_bytes(c.try_into().unwrap()) as f64),
        "<u2" => (2, |c| u16::from_le_bytes(c.try_into().unwrap()) as f64),
        "<u4" => (4, |c| u32::from_le_bytes(c.try_into().unwrap()) as f64),
        "<u8" => (8, |c| u64::from_le_bytes(c.try_into().unwrap()) as f64),
        "|u1" => (1, |c| c[0] as f64),
        "|i1" => (1, |c| c[0] as i8 as f64),
        d => return Err(format!("dtype {d} unsupported")),
    };
    if body.len() < n * width {
        return Err(format!(
            "{} data bytes for {n} values of {descr}",
            body.len()
        ));
    }
    let data = body[..n * width].chunks_exact(width).map(conv).collect();
    Ok(NpyArray { shape, data })
}

/// `read_npz` with the path kept for messages about its members.
pub(crate) struct Npz {
    pub path: PathBuf,
    pub arrays: BTreeMap<String, NpyArray>,
}

impl Npz {
    pub fn open(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(DataError::MissingFile {
                path: path.to_path_buf(),
                expected: "a NumPy .npz archive".into(),
            });
        }
        Ok(Npz {
            path: path.to_path_buf(),
            arrays: read_npz(path)?,
        })
    }

    pub fn get(&self, key: &str) -> Result<&NpyArray> {
        self.arrays.get(key).ok_or_else(|| {
            invalid(
                &self.path,
                format!(
                    "no array {key:?} (members: {:?})",
                    self.arrays.keys().collect::<Vec<_>>()
                ),
            )
        })
    }

    pub fn invalid(&self, reason: impl Into<String>) -> DataError {
        invalid(&self.path, reason)
    }
}
