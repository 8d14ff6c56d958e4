//! Renders a few samples as PNG with their ground-truth boxes outlined, for a human to
//! look at: `cargo run -p opti-sim --example preview -- OUT_DIR [SEED] [COUNT]`.

use std::path::PathBuf;

use image::Rgb;
use opti_sim::{generate, SimParams};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().unwrap_or_else(|| "preview".into()));
    let seed: u64 = args.next().map_or(Ok(1), |s| s.parse())?;
    let count: u64 = args.next().map_or(Ok(8), |s| s.parse())?;
    std::fs::create_dir_all(&out)?;
    let colours = [
        Rgb([255, 40, 40]),
        Rgb([255, 200, 0]),
        Rgb([0, 200, 255]),
        Rgb([255, 0, 255]),
    ];
    for i in 0..count {
        let sample = generate(seed, i, &SimParams::default());
        let mut img = sample.image.clone();
        for d in &sample.defects {
            let [x1, y1, x2, y2] = d.bbox_px.map(|v| v as i32);
            let rect = imageproc::rect::Rect::at(x1, y1)
                .of_size((x2 - x1).max(1) as u32, (y2 - y1).max(1) as u32);
            imageproc::drawing::draw_hollow_rect_mut(&mut img, rect, colours[d.class_id]);
        }
        img.save(out.join(format!("{i:03}.png")))?;
        sample.image.save(out.join(format!("{i:03}_raw.png")))?;
        let kinds: Vec<_> = sample.defects.iter().map(|d| d.kind.as_str()).collect();
        println!("{i}: {} {:?}", sample.product.as_str(), kinds);
    }
    Ok(())
}
