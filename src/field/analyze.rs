//! Image analysis at promotion: the width and height a browser will show (EXIF orientation applied),
//! read from the file's header in the same bounded read that identifies its type, and a pixel limit
//! that refuses decompression bombs before anything is decoded.
//!
//! Headers are parsed by the `image` crate's decoders (JPEG through `zune-jpeg`, PNG, GIF, WebP); only
//! the header is read, never the pixels. A JPEG's header can sit behind large EXIF or XMP segments, so
//! the first read is [`ANALYSIS_BYTES`] and a header that ends past it gets one more read of at most
//! [`MAX_HEADER_BYTES`].

use std::io::Cursor;

use image::{ImageDecoder, ImageFormat, ImageReader, Limits, metadata::Orientation};

use crate::images::decode::{check_pixels, turned};

/// The first read when a field analyses images: the type signature, the markup check and, for nearly
/// every image, the whole header with its EXIF block.
pub(crate) const ANALYSIS_BYTES: u64 = 64 * 1024;

/// The most bytes read to find an image's header (a JPEG with a very large EXIF thumbnail or XMP).
pub(crate) const MAX_HEADER_BYTES: u64 = 1024 * 1024;

/// The most a decoder may allocate while reading a header.
const HEADER_ALLOC_LIMIT: u64 = 64 * 1024 * 1024;

/// The default pixel limit: 100 megapixels (a 12,000 x 8,000 photograph fits; a 50,000 x 50,000 bomb
/// does not).
pub(crate) const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

/// Width and height as displayed (EXIF orientation applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dimensions {
    pub(crate) width: u32,
    pub(crate) height: u32,
}

/// What the header said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Analysis {
    /// An image of these dimensions.
    Image(Dimensions),
    /// The header runs past the bytes read: read more (up to [`MAX_HEADER_BYTES`]).
    NeedMore,
    /// Not an image format analysed here (PDF, text, ...): nothing to record.
    NotAnImage,
}

/// Formats whose header is read.
fn analysed(format: ImageFormat) -> bool {
    matches!(format, ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP)
}

/// Read the header in `bytes` (the start of the file; `complete` when it is the whole file) and check
/// its pixel count against `max_pixels`. `Err(why)`: refuse the upload (a bomb, a header that cannot be
/// read).
pub(crate) fn analyze(bytes: &[u8], complete: bool, max_pixels: u64) -> Result<Analysis, String> {
    let Ok(format) = image::guess_format(bytes) else { return Ok(Analysis::NotAnImage) };
    if !analysed(format) {
        return Ok(Analysis::NotAnImage);
    }
    let name = format.to_mime_type();
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    // The pixel count is checked below; this bounds what a decoder may allocate for the header itself
    // (compressed text and profile chunks).
    let mut limits = Limits::no_limits();
    limits.max_alloc = Some(HEADER_ALLOC_LIMIT);
    reader.limits(limits);
    let mut decoder = match reader.into_decoder() {
        Ok(decoder) => decoder,
        Err(e) if !complete && is_truncation(&e) => return Ok(Analysis::NeedMore),
        Err(e) => return Err(format!("the file starts like `{name}` but its header cannot be read ({e})")),
    };
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(format!("the `{name}` header declares an empty image ({width} x {height})"));
    }
    check_pixels(width, height, max_pixels)?;
    // An orientation that cannot be read from the bytes at hand (EXIF after the pixels) counts as none.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let (width, height) = if turned(orientation) { (height, width) } else { (width, height) };
    Ok(Analysis::Image(Dimensions { width, height }))
}

/// An error that more bytes could cure.
fn is_truncation(e: &image::ImageError) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    match e {
        image::ImageError::IoError(io) => io.kind() == std::io::ErrorKind::UnexpectedEof,
        _ => ["eof", "end of file", "not enough", "no more bytes", "unexpected end", "exhausted"]
            .iter()
            .any(|needle| text.contains(needle)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        image::RgbImage::new(width, height).write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
        out
    }

    #[test]
    fn dimensions_of_a_small_png() {
        assert_eq!(
            analyze(&png(3, 2), true, DEFAULT_MAX_PIXELS),
            Ok(Analysis::Image(Dimensions { width: 3, height: 2 }))
        );
    }

    #[test]
    fn a_cut_header_asks_for_more_unless_the_file_is_whole() {
        let whole = png(3, 2);
        assert_eq!(analyze(&whole[..20], false, DEFAULT_MAX_PIXELS), Ok(Analysis::NeedMore));
        assert!(analyze(&whole[..20], true, DEFAULT_MAX_PIXELS).is_err());
    }

    #[test]
    fn not_images_are_left_alone() {
        assert_eq!(analyze(b"%PDF-1.7\n", true, DEFAULT_MAX_PIXELS), Ok(Analysis::NotAnImage));
        assert_eq!(analyze(b"plain text", true, DEFAULT_MAX_PIXELS), Ok(Analysis::NotAnImage));
    }
}
