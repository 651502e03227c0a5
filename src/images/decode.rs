//! Decoding an original for a variant: no more pixels than the variant needs, EXIF orientation applied,
//! and a pixel limit checked before anything is allocated.
//!
//! JPEGs are decoded by libjpeg-turbo (the `mozjpeg` crate, built from source) with DCT scaling: an
//! 18-megapixel photograph wanted at 400 x 225 is decoded at 1/8 of its size, which is most of the
//! difference between a thumbnailer that takes a second and one that takes a tenth (libvips'
//! shrink-on-load and Pillow's `draft` do the same, with the same library). Other formats are decoded by
//! the `image` crate (the first frame of an animation).

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

/// An original decoded at a size the variant can be made from, oriented as displayed.
pub(crate) struct Decoded {
    pub(crate) image: DynamicImage,
    /// The original's full size as displayed (before any scaling on load).
    pub(crate) original: (u32, u32),
}

/// True when `orientation` turns the image a quarter (width and height swap as displayed).
pub(crate) fn turned(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
    )
}

/// Refuse an image of more than `max_pixels` pixels, from its header's size.
pub(crate) fn check_pixels(width: u32, height: u32, max_pixels: u64) -> Result<(), String> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(format!(
            "the image is {width} x {height} pixels ({:.1} megapixels); at most {:.1} megapixels are allowed",
            pixels as f64 / 1e6,
            max_pixels as f64 / 1e6
        ));
    }
    Ok(())
}

/// Decode `bytes` for an output of at least `want(displayed width, displayed height)` pixels.
pub(crate) fn decode(bytes: &[u8], max_pixels: u64, want: impl Fn(u32, u32) -> (u32, u32)) -> Result<Decoded, String> {
    let format = image::guess_format(bytes).map_err(|_| "the file is not an image this crate can read".to_string())?;
    match format {
        // libjpeg reports a corrupt file by unwinding out of its error handler (`resume_unwind`, so no
        // panic hook runs); it is caught here and becomes a refusal like any other unreadable file.
        ImageFormat::Jpeg => {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode_jpeg(bytes, max_pixels, want)))
                .unwrap_or_else(|_| Err("the JPEG is corrupt or cut short".to_string()))
        }
        ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP => decode_other(bytes, format, max_pixels),
        other => Err(format!("{} images are not supported for variants", other.to_mime_type())),
    }
}

fn decode_jpeg(bytes: &[u8], max_pixels: u64, want: impl Fn(u32, u32) -> (u32, u32)) -> Result<Decoded, String> {
    let unreadable = |e: std::io::Error| format!("the JPEG cannot be read ({e})");
    let mut decoder =
        mozjpeg::Decompress::with_markers(&[mozjpeg::Marker::APP(1)]).from_mem(bytes).map_err(unreadable)?;
    let (w, h) = (decoder.width() as u32, decoder.height() as u32);
    check_pixels(w, h, max_pixels)?;
    let orientation = decoder
        .markers()
        .filter_map(|m| m.data.strip_prefix(b"Exif\0\0".as_slice()))
        .find_map(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let original = if turned(orientation) { (h, w) } else { (w, h) };
    let (tw, th) = want(original.0, original.1);
    let (tw, th) = if turned(orientation) { (th, tw) } else { (tw, th) };
    // The smallest of 1/8, 2/8, 4/8 and 8/8 that still covers the output.
    let eighths = [1u8, 2, 4, 8]
        .into_iter()
        .find(|n| w * u32::from(*n) / 8 >= tw.min(w) && h * u32::from(*n) / 8 >= th.min(h))
        .unwrap_or(8);
    decoder.scale(eighths);
    let short = || "the JPEG decoded to fewer pixels than its header declares".to_string();
    let mut image = match decoder.image().map_err(unreadable)? {
        mozjpeg::decompress::Format::RGB(mut started) => {
            let (sw, sh) = (started.width() as u32, started.height() as u32);
            let pixels = started.read_scanlines::<u8>().map_err(unreadable)?;
            started.finish().map_err(unreadable)?;
            DynamicImage::ImageRgb8(RgbImage::from_raw(sw, sh, pixels).ok_or_else(short)?)
        }
        mozjpeg::decompress::Format::Gray(mut started) => {
            let (sw, sh) = (started.width() as u32, started.height() as u32);
            let pixels = started.read_scanlines::<u8>().map_err(unreadable)?;
            started.finish().map_err(unreadable)?;
            DynamicImage::ImageLuma8(GrayImage::from_raw(sw, sh, pixels).ok_or_else(short)?)
        }
        mozjpeg::decompress::Format::CMYK(mut started) => {
            let (sw, sh) = (started.width() as u32, started.height() as u32);
            let pixels = started.read_scanlines::<u8>().map_err(unreadable)?;
            started.finish().map_err(unreadable)?;
            // Adobe writes CMYK JPEGs inverted (255 = no ink); naive CMYK to RGB, no ICC profile: enough
            // for a thumbnail's colours.
            let rgb: Vec<u8> = pixels
                .chunks_exact(4)
                .flat_map(|p| {
                    let k = u32::from(p[3]);
                    [p[0], p[1], p[2]].map(|c| (u32::from(c) * k / 255) as u8)
                })
                .collect();
            DynamicImage::ImageRgb8(RgbImage::from_raw(sw, sh, rgb).ok_or_else(short)?)
        }
    };
    image.apply_orientation(orientation);
    Ok(Decoded { image, original })
}

fn decode_other(bytes: &[u8], format: ImageFormat, max_pixels: u64) -> Result<Decoded, String> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    // Room for the largest allowed image at 16 bits per channel with alpha, plus the decoder's own.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| format!("the image cannot be read ({e})"))?;
    let (w, h) = decoder.dimensions();
    check_pixels(w, h, max_pixels)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| format!("the image cannot be decoded ({e})"))?;
    image.apply_orientation(orientation);
    let original = (image.width(), image.height());
    Ok(Decoded { image, original })
}
