//! Making a variant: decode (scaled on load), resize with `fast_image_resize` (Lanczos3, SIMD), encode.

use std::io::Cursor;

use fast_image_resize::{PixelType, ResizeAlg, ResizeOptions, Resizer, images::Image};
use image::{DynamicImage, ImageEncoder};

use super::decode::decode;
use super::variant::{Format, Resize, Variant};

/// A variant made from an original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The encoded file.
    pub bytes: Vec<u8>,
    /// Its width in pixels.
    pub width: u32,
    /// Its height in pixels.
    pub height: u32,
    /// Its content type.
    pub content_type: &'static str,
}

/// Make `variant` from the original `bytes` (JPEG, PNG, GIF or WebP), refusing originals of more than
/// `max_pixels` before decoding them. `Err` says why, in words for the log.
pub fn render(bytes: &[u8], variant: &Variant, max_pixels: u64) -> Result<Rendered, String> {
    let resize = variant.resize();
    let decoded = decode(bytes, max_pixels, |w, h| match resize {
        // Decode at least as large as the output (at least as large as the covering size for a fill).
        Resize::Fill { width, height } => {
            let cover = (f64::from(width) / f64::from(w)).max(f64::from(height) / f64::from(h));
            ((f64::from(w) * cover).ceil() as u32, (f64::from(h) * cover).ceil() as u32)
        }
        other => other.output_size(w, h),
    })?;
    let (out_w, out_h) = resize.output_size(decoded.original.0, decoded.original.1);
    let alpha = decoded.image.color().has_alpha() && variant.output_format() != Format::Jpeg;
    let source = if alpha {
        DynamicImage::ImageRgba8(decoded.image.into_rgba8())
    } else if decoded.image.color().has_alpha() {
        DynamicImage::ImageRgb8(on_white(decoded.image.into_rgba8()))
    } else {
        DynamicImage::ImageRgb8(decoded.image.into_rgb8())
    };
    let (pixel_type, channels) = if alpha { (PixelType::U8x4, 4) } else { (PixelType::U8x3, 3) };
    let (src_w, src_h) = (source.width(), source.height());
    let mut options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(fast_image_resize::FilterType::Lanczos3));
    if let Resize::Fill { .. } = resize {
        options = options.fit_into_destination(Some((0.5, 0.5)));
    }
    let pixels = if (src_w, src_h) == (out_w, out_h) {
        source.into_bytes()
    } else {
        let src = Image::from_vec_u8(src_w, src_h, source.into_bytes(), pixel_type).map_err(|e| e.to_string())?;
        let mut dst = Image::new(out_w, out_h, pixel_type);
        Resizer::new().resize(&src, &mut dst, &options).map_err(|e| format!("resizing failed ({e})"))?;
        dst.into_vec()
    };
    debug_assert_eq!(pixels.len(), (out_w * out_h * channels) as usize);
    let bytes = encode(&pixels, out_w, out_h, alpha, variant)?;
    Ok(Rendered { bytes, width: out_w, height: out_h, content_type: variant.output_format().content_type() })
}

/// Lay transparent pixels on white (JPEG has no alpha).
fn on_white(rgba: image::RgbaImage) -> image::RgbImage {
    let (w, h) = rgba.dimensions();
    let rgb = rgba
        .into_raw()
        .chunks_exact(4)
        .flat_map(|p| {
            let a = u32::from(p[3]);
            [p[0], p[1], p[2]].map(|c| ((u32::from(c) * a + 255 * (255 - a)) / 255) as u8)
        })
        .collect();
    image::RgbImage::from_raw(w, h, rgb).expect("same size")
}

fn encode(pixels: &[u8], width: u32, height: u32, alpha: bool, variant: &Variant) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let color = if alpha { image::ExtendedColorType::Rgba8 } else { image::ExtendedColorType::Rgb8 };
    match variant.output_format() {
        Format::Jpeg => {
            let (w, h) = (
                u16::try_from(width).map_err(|_| "too wide for JPEG")?,
                u16::try_from(height).map_err(|_| "too tall for JPEG")?,
            );
            let mut encoder = jpeg_encoder::Encoder::new(&mut out, variant.jpeg_quality());
            encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
            encoder
                .encode(pixels, w, h, jpeg_encoder::ColorType::Rgb)
                .map_err(|e| format!("JPEG encoding failed ({e})"))?;
        }
        Format::Png => image::codecs::png::PngEncoder::new(Cursor::new(&mut out))
            .write_image(pixels, width, height, color)
            .map_err(|e| format!("PNG encoding failed ({e})"))?,
        Format::WebP => image::codecs::webp::WebPEncoder::new_lossless(Cursor::new(&mut out))
            .write_image(pixels, width, height, color)
            .map_err(|e| format!("WebP encoding failed ({e})"))?,
    }
    Ok(out)
}
