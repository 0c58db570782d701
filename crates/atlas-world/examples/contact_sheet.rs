//! Renders a contact sheet: one row per split (`per` images each), 3x zoom.
//! `cargo run -p atlas-world --example contact_sheet -- OUT.png [per] [seed]`

use atlas_world::{Split, WorldConfig, contact_sheet, render, sample_spec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args.next().unwrap_or_else(|| "contact_sheet.png".into());
    let per: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(12);
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(0);
    let config = WorldConfig {
        seed,
        ..WorldConfig::default()
    };
    let mut images = Vec::new();
    for split in Split::ALL {
        for i in 0..per {
            let spec = sample_spec(split, i * 13 + 1, &config);
            images.push(render(&spec)?);
        }
    }
    let sheet = contact_sheet(&images, per as usize, 3).ok_or("no images")?;
    sheet.save(&out)?;
    println!("wrote {out}");
    Ok(())
}
