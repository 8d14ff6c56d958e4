//! `opti simulate`: writes a synthetic YOLO dataset, or streams simulated camera images
//! to a running service (`--target`) while keeping the ground truth aside.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use opti_sim::{
    encode_image, generate, write_dataset, DatasetSpec, Drift, GroundTruthRecord, ImageFormat,
    ProductKind, SimParams, STREAM_CLEAN_FRACTION,
};

/// Arguments of `opti simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Number of images to generate (or to send with --target).
    #[arg(long)]
    pub count: u64,
    /// Stream seed; the same seed, index and knobs always give the same image.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Dataset folder to write (images/, labels/, data.yaml, manifest.json). With
    /// --target, where the ground truth goes if --ground-truth is not given.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Share of images in the val split (the last indices); 1 for an evaluation-only set.
    #[arg(long, default_value_t = 0.15)]
    pub val_fraction: f32,
    /// Share of clean parts [default: 0.4 for a dataset, 0.85 for a stream].
    #[arg(long)]
    pub clean_fraction: Option<f32>,
    /// Most defects on one part.
    #[arg(long, default_value_t = 3)]
    pub max_defects: u32,
    /// Image width in pixels.
    #[arg(long, default_value_t = 640)]
    pub width: u32,
    /// Image height in pixels.
    #[arg(long, default_value_t = 640)]
    pub height: u32,
    /// Product kinds, comma separated (plate, tile, board).
    #[arg(long, value_delimiter = ',', default_value = "plate,tile,board")]
    pub products: Vec<String>,
    /// Write lossless PNG instead of JPEG.
    #[arg(long)]
    pub png: bool,
    /// JPEG quality (1-100).
    #[arg(long, default_value_t = 92)]
    pub jpeg_quality: u8,

    /// Drift: exposure change as a fraction (0.3 = 30 % brighter, -0.3 darker).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub illumination_shift: f32,
    /// Drift: extra blur sigma in pixels (camera wear, lost focus).
    #[arg(long, default_value_t = 0.0)]
    pub blur_sigma: f32,
    /// Drift: extra sensor noise, standard deviation on the 0..1 scale.
    #[arg(long, default_value_t = 0.0)]
    pub noise_sigma: f32,
    /// Drift: 0..1 towards a new supplier's material colour and texture.
    #[arg(long, default_value_t = 0.0)]
    pub material_shift: f32,
    /// Drift: 0..1 towards a new defect appearance (thinner cracks, fainter scratches).
    #[arg(long, default_value_t = 0.0)]
    pub defect_shift: f32,
    /// Drift: camera moved, product shifted by this fraction of the width.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub camera_offset_x: f32,
    /// Drift: camera moved, product shifted by this fraction of the height.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub camera_offset_y: f32,

    /// Stream to this upload URL (e.g. http://127.0.0.1:8080/upload/) instead of writing a dataset.
    #[arg(long)]
    pub target: Option<String>,
    /// Images per second when streaming.
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
    /// Bearer token for the upload (a camera user's token).
    #[arg(long, env = "OPTI_TOKEN")]
    pub token: Option<String>,
    /// Camera id sent with each upload.
    #[arg(long)]
    pub camera_id: Option<String>,
    /// JSONL file for the streamed images' ground truth
    /// [default: OUT/ground_truth.jsonl or ./stream_ground_truth.jsonl].
    #[arg(long)]
    pub ground_truth: Option<PathBuf>,
    /// First sample index of the stream (to continue an earlier stream).
    #[arg(long, default_value_t = 0)]
    pub start_index: u64,
}

impl SimulateArgs {
    fn params(&self, streaming: bool) -> anyhow::Result<SimParams> {
        let products = self
            .products
            .iter()
            .map(|p| {
                ProductKind::parse(p.trim())
                    .with_context(|| format!("unknown product kind `{p}` (plate, tile, board)"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let default_clean = if streaming {
            STREAM_CLEAN_FRACTION
        } else {
            SimParams::default().clean_fraction
        };
        let params = SimParams {
            width: self.width,
            height: self.height,
            clean_fraction: self.clean_fraction.unwrap_or(default_clean),
            max_defects: self.max_defects,
            products,
            drift: Drift {
                illumination_shift: self.illumination_shift,
                blur_sigma: self.blur_sigma,
                noise_sigma: self.noise_sigma,
                material_shift: self.material_shift,
                defect_shift: self.defect_shift,
                camera_offset_x: self.camera_offset_x,
                camera_offset_y: self.camera_offset_y,
            },
        };
        params.validate()?;
        Ok(params)
    }

    fn image_format(&self) -> anyhow::Result<ImageFormat> {
        if self.png {
            return Ok(ImageFormat::Png);
        }
        if !(1..=100).contains(&self.jpeg_quality) {
            bail!("--jpeg-quality must be in 1..=100");
        }
        Ok(ImageFormat::Jpeg {
            quality: self.jpeg_quality,
        })
    }
}

/// Runs `opti simulate`.
pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    if args.count == 0 {
        bail!("--count must be at least 1");
    }
    match &args.target {
        Some(target) => stream(&args, target),
        None => dataset(&args),
    }
}

fn progress_bar(count: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(count);
    let style = ProgressStyle::with_template(&format!(
        "{what} {{bar:40}} {{pos}}/{{len}} [{{elapsed_precise}} < {{eta}}] {{per_sec}}"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

fn dataset(args: &SimulateArgs) -> anyhow::Result<()> {
    let out = args
        .out
        .as_ref()
        .context("--out DIR is required to write a dataset (or give --target URL to stream)")?;
    let spec = DatasetSpec {
        seed: args.seed,
        count: args.count,
        val_fraction: args.val_fraction,
        params: args.params(false)?,
        image_format: args.image_format()?,
    };
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let bar = progress_bar(args.count, "generating");
    let manifest = write_dataset(out, &spec, Some(command), &|| bar.inc(1))
        .with_context(|| format!("writing dataset to {}", out.display()))?;
    bar.finish();
    println!(
        "wrote {} train ({} clean) + {} val ({} clean) images to {}; boxes per class (train) {:?}",
        manifest.train.images,
        manifest.train.clean_images,
        manifest.val.images,
        manifest.val.clean_images,
        out.display(),
        manifest.train.boxes_per_class
    );
    println!("{}", out.join("data.yaml").display());
    Ok(())
}

/// A multipart/form-data body with a `file` part and an optional `camera_id` part.
pub fn multipart_body(
    boundary: &str,
    filename: &str,
    mime: &str,
    bytes: &[u8],
    camera_id: Option<&str>,
) -> Vec<u8> {
    let mut body = Vec::with_capacity(bytes.len() + 512);
    if let Some(camera) = camera_id {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"camera_id\"\r\n\r\n{camera}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: {mime}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

fn stream(args: &SimulateArgs, target: &str) -> anyhow::Result<()> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        bail!("--rate must be a positive number of images per second");
    }
    if !(target.starts_with("http://") || target.starts_with("https://")) {
        bail!("--target must be an http:// URL, got `{target}`");
    }
    let params = args.params(true)?;
    let format = args.image_format()?;
    let gt_path = match (&args.ground_truth, &args.out) {
        (Some(p), _) => p.clone(),
        (None, Some(dir)) => dir.join("ground_truth.jsonl"),
        (None, None) => PathBuf::from("stream_ground_truth.jsonl"),
    };
    if let Some(parent) = gt_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut gt = BufWriter::new(
        fs::File::create(&gt_path).with_context(|| format!("creating {}", gt_path.display()))?,
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();

    let period = Duration::from_secs_f64(1.0 / args.rate);
    let started = Instant::now();
    let bar = progress_bar(args.count, "streaming");
    let mut failures = 0u64;
    for k in 0..args.count {
        let index = args.start_index + k;
        let due = started + period.mul_f64(k as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let sample = generate(args.seed, index, &params);
        let filename = format!("sim_{}_{:06}.{}", args.seed, index, format.extension());
        let bytes = encode_image(&sample.image, format)?;
        let boundary = format!("opti-sim-{}-{index}", args.seed);
        let body = multipart_body(
            &boundary,
            &filename,
            format.mime(),
            &bytes,
            args.camera_id.as_deref(),
        );
        let mut request = agent.post(target).header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        );
        if let Some(token) = &args.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let (status, response) = match request.send(&body[..]) {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let text = resp.body_mut().read_to_string().unwrap_or_default();
                let json = serde_json::from_str::<serde_json::Value>(&text)
                    .unwrap_or(serde_json::Value::String(text));
                (Some(status), json)
            }
            Err(e) if k == 0 => {
                return Err(e).with_context(|| format!("cannot reach {target}"));
            }
            Err(e) => (None, serde_json::Value::String(e.to_string())),
        };
        if !status.is_some_and(|s| (200..300).contains(&s)) {
            failures += 1;
            bar.println(format!("upload {index} failed: {status:?} {response}"));
        }
        let record = GroundTruthRecord::from_sample(&sample, filename, "stream");
        let mut line = serde_json::to_value(&record)?;
        line["http_status"] = serde_json::json!(status);
        line["response"] = response;
        if let Some(camera) = &args.camera_id {
            line["camera_id"] = serde_json::json!(camera);
        }
        writeln!(gt, "{line}").with_context(|| format!("writing {}", gt_path.display()))?;
        gt.flush()?;
        bar.inc(1);
    }
    bar.finish();
    println!(
        "sent {} images to {target} ({failures} failed); ground truth in {}",
        args.count,
        gt_path.display()
    );
    if failures > 0 {
        bail!("{failures} of {} uploads failed", args.count);
    }
    Ok(())
}
