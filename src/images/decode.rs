//! Decoding an original for a variant: no more pixels than the variant needs, EXIF orientation applied,
//! and a pixel limit checked before anything is allocated.
//!
//! JPEGs are decoded by `jpeg-decoder` with DCT scaling: an 18-megapixel photograph wanted at 400 x 225
//! is decoded at 1/8 of its size, which is most of the difference between a thumbnailer that takes a
//! second and one that takes a tenth (libvips' shrink-on-load and Pillow's `draft` do the same). Other
//! formats are decoded by the `image` crate (the first frame of an animation).

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

/// An original decoded at a size the variant can be made from, oriented as displayed.
pub(crate) struct Decoded {
    pub(crate) image: DynamicImage,
    /// The original's full size as displayed (before any scaling on load).
    pub(crate) original: (u32, u32),
}

fn turned(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
    )
}

fn check_pixels(width: u32, height: u32, max_pixels: u64) -> Result<(), String> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(format!(
            "the image is {width} x {height} pixels; at most {:.1} megapixels are allowed",
            max_pixels as f64 / 1e6
        ));
    }
    Ok(())
}

/// Decode `bytes` for an output of at least `want(displayed width, displayed height)` pixels.
pub(crate) fn decode(bytes: &[u8], max_pixels: u64, want: impl Fn(u32, u32) -> (u32, u32)) -> Result<Decoded, String> {
    let format = image::guess_format(bytes).map_err(|_| "the file is not an image this crate can read".to_string())?;
    match format {
        ImageFormat::Jpeg => decode_jpeg(bytes, max_pixels, want),
        ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP => decode_other(bytes, format, max_pixels),
        other => Err(format!("{} images are not supported for variants", other.to_mime_type())),
    }
}

fn decode_jpeg(bytes: &[u8], max_pixels: u64, want: impl Fn(u32, u32) -> (u32, u32)) -> Result<Decoded, String> {
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.read_info().map_err(|e| format!("the JPEG cannot be read ({e})"))?;
    let info = decoder.info().ok_or("the JPEG has no frame header")?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    check_pixels(w, h, max_pixels)?;
    let orientation = decoder.exif_data().and_then(Orientation::from_exif_chunk).unwrap_or(Orientation::NoTransforms);
    let original = if turned(orientation) { (h, w) } else { (w, h) };
    let (tw, th) = want(original.0, original.1);
    let (tw, th) = if turned(orientation) { (th, tw) } else { (tw, th) };
    let clamp = |v: u32| v.clamp(1, u32::from(u16::MAX)) as u16;
    let (sw, sh) = decoder.scale(clamp(tw), clamp(th)).map_err(|e| format!("the JPEG cannot be scaled ({e})"))?;
    let pixels = decoder.decode().map_err(|e| format!("the JPEG cannot be decoded ({e})"))?;
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    let short = || "the JPEG decoded to fewer pixels than its header declares".to_string();
    let mut image = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => {
            DynamicImage::ImageLuma8(GrayImage::from_raw(sw, sh, pixels).ok_or_else(short)?)
        }
        jpeg_decoder::PixelFormat::L16 => {
            let wide: Vec<u16> = pixels.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            DynamicImage::ImageLuma16(image::ImageBuffer::from_raw(sw, sh, wide).ok_or_else(short)?)
        }
        jpeg_decoder::PixelFormat::RGB24 => {
            DynamicImage::ImageRgb8(RgbImage::from_raw(sw, sh, pixels).ok_or_else(short)?)
        }
        jpeg_decoder::PixelFormat::CMYK32 => {
            // Naive CMYK to RGB (no ICC profile): enough for a thumbnail's colours.
            let rgb: Vec<u8> = pixels
                .chunks_exact(4)
                .flat_map(|p| {
                    let k = 255 - u32::from(p[3]);
                    [p[0], p[1], p[2]].map(|c| ((255 - u32::from(c)) * k / 255) as u8)
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
