//! Renders a contact sheet. `contact_sheet OUT.png` : one row per split (12 images each);
//! `contact_sheet OUT.png SPLIT [n] [cols]` : the first `n` images of one split.
//! `cargo run -p atlas-world --example contact_sheet -- OUT.png [SPLIT n cols]`

use atlas_world::{Split, WorldConfig, contact_sheet, render, sample_spec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args.next().unwrap_or_else(|| "contact_sheet.png".into());
    let config = WorldConfig::default();
    let mut images = Vec::new();
    let cols = match args.next() {
        None => {
            for split in Split::ALL {
                for i in 0..12 {
                    images.push(render(&sample_spec(split, i * 13 + 1, &config))?);
                }
            }
            12
        }
        Some(split) => {
            let split: Split = split.parse()?;
            let n: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(48);
            let cols: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(12);
            for i in 0..n {
                images.push(render(&sample_spec(split, i, &config))?);
            }
            cols
        }
    };
    let sheet = contact_sheet(&images, cols, 2).ok_or("no images")?;
    sheet.save(&out)?;
    println!("wrote {out}");
    Ok(())
}
