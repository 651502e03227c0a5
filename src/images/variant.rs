//! A named variant: how to resize, which format and quality to write.

use crate::{Error, Result};

/// How a variant's size is reached from the original's (as displayed, EXIF orientation applied). The
/// aspect ratio is always kept; only [`Resize::Fill`] crops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// Shrink to fit inside the box; never enlarge (Active Storage's `resize_to_limit`, Pillow's
    /// `thumbnail`, `vipsthumbnail --size WxH>`).
    Limit {
        /// Box width in pixels.
        width: u32,
        /// Box height in pixels.
        height: u32,
    },
    /// Shrink or enlarge to fit inside the box (`resize_to_fit`).
    Fit {
        /// Box width in pixels.
        width: u32,
        /// Box height in pixels.
        height: u32,
    },
    /// Cover the box, then crop the overflow around the centre: exactly `width` x `height`
    /// (`resize_to_fill`, a square avatar).
    Fill {
        /// Output width in pixels.
        width: u32,
        /// Output height in pixels.
        height: u32,
    },
}

impl Resize {
    fn boxed(&self) -> (u32, u32) {
        match *self {
            Resize::Limit { width, height } | Resize::Fit { width, height } | Resize::Fill { width, height } => {
                (width, height)
            }
        }
    }

    /// The output size for an original of `width` x `height` (as displayed).
    pub(crate) fn output_size(&self, width: u32, height: u32) -> (u32, u32) {
        let (bw, bh) = self.boxed();
        let scaled = |scale: f64| {
            let w = (f64::from(width) * scale).round().max(1.0) as u32;
            let h = (f64::from(height) * scale).round().max(1.0) as u32;
            (w.min(bw.max(1)), h.min(bh.max(1)))
        };
        let fit = (f64::from(bw) / f64::from(width)).min(f64::from(bh) / f64::from(height));
        match self {
            Resize::Limit { .. } if width <= bw && height <= bh => (width, height),
            Resize::Limit { .. } | Resize::Fit { .. } => scaled(fit),
            Resize::Fill { .. } => (bw, bh),
        }
    }
}

/// The format a variant is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// JPEG (baseline, 4:2:0 chroma subsampling) at the variant's quality. Transparency is laid on white.
    #[default]
    Jpeg,
    /// PNG (lossless; quality is ignored).
    Png,
    /// WebP, lossless (the pure-Rust encoder writes lossless WebP only; quality is ignored).
    WebP,
}

impl Format {
    /// The content type written on the variant's object.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::WebP => "image/webp",
        }
    }

    /// The file extension of the variant's object name.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::WebP => "webp",
        }
    }
}

/// A named variant of an image field: `Variant::limit("thumb", 400, 400)` makes a JPEG at quality 80
/// that fits in 400 x 400. Metadata (EXIF, GPS, XMP, ICC) is never copied: a variant is written from
/// pixels, with the original's orientation applied to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    name: String,
    resize: Resize,
    format: Format,
    quality: u8,
}

/// The default JPEG quality.
pub(crate) const DEFAULT_QUALITY: u8 = 80;

impl Variant {
    /// A variant named `name` reached by `resize`, as JPEG at quality 80.
    pub fn new(name: impl Into<String>, resize: Resize) -> Self {
        Self { name: name.into(), resize, format: Format::Jpeg, quality: DEFAULT_QUALITY }
    }

    /// Shrink to fit inside `width` x `height`, never enlarging ([`Resize::Limit`]).
    pub fn limit(name: impl Into<String>, width: u32, height: u32) -> Self {
        Self::new(name, Resize::Limit { width, height })
    }

    /// Fit inside `width` x `height`, enlarging if smaller ([`Resize::Fit`]).
    pub fn fit(name: impl Into<String>, width: u32, height: u32) -> Self {
        Self::new(name, Resize::Fit { width, height })
    }

    /// Exactly `width` x `height`, cropped around the centre ([`Resize::Fill`]).
    pub fn fill(name: impl Into<String>, width: u32, height: u32) -> Self {
        Self::new(name, Resize::Fill { width, height })
    }

    /// The object name of this variant of `original` at `generation`, beside the original:
    /// `<original>.variants/<variant>-g<generation>.<ext>`. Deterministic, so a repeated run finds its
    /// own earlier write.
    pub(crate) fn object_name(&self, original: &str, generation: i64) -> String {
        format!("{original}.variants/{}-g{generation}.{}", self.name, self.format.extension())
    }

    /// Write the variant as `format` (default JPEG).
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// JPEG quality, 1 to 100 (default 80).
    pub fn quality(mut self, quality: u8) -> Self {
        self.quality = quality;
        self
    }

    /// The variant's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How it is resized.
    pub fn resize(&self) -> Resize {
        self.resize
    }

    /// Its output format.
    pub(crate) fn output_format(&self) -> Format {
        self.format
    }

    /// Its JPEG quality.
    pub(crate) fn jpeg_quality(&self) -> u8 {
        self.quality
    }

    /// Check the declaration: a name of 1 to 32 lower-case letters, digits, `-` or `_` (it becomes part
    /// of an object name), a box of at least 1 x 1 and at most 16,384 on a side, a quality of 1 to 100.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(format!("variant `{}`: {m}", self.name)));
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 32
            && self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return bad("the name must be 1 to 32 characters of a-z, 0-9, `-` and `_`".into());
        }
        let (w, h) = self.resize.boxed();
        if w == 0 || h == 0 || w > 16_384 || h > 16_384 {
            return bad(format!("the box {w} x {h} must be between 1 and 16384 pixels on each side"));
        }
        if !(1..=100).contains(&self.quality) {
            return bad(format!("quality {} must be between 1 and 100", self.quality));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_sizes() {
        let limit = Resize::Limit { width: 400, height: 400 };
        assert_eq!(limit.output_size(5640, 3172), (400, 225));
        assert_eq!(limit.output_size(3172, 5640), (225, 400));
        assert_eq!(limit.output_size(300, 200), (300, 200), "never enlarged");
        assert_eq!(Resize::Fit { width: 400, height: 400 }.output_size(300, 200), (400, 267));
        assert_eq!(Resize::Fill { width: 100, height: 100 }.output_size(5640, 3172), (100, 100));
        assert_eq!(limit.output_size(10_000, 1), (400, 1), "never zero");
    }

    #[test]
    fn declarations_are_checked() {
        assert!(Variant::limit("thumb", 400, 400).validate().is_ok());
        assert!(Variant::limit("Thumb/../x", 400, 400).validate().is_err());
        assert!(Variant::limit("t", 0, 400).validate().is_err());
        assert!(Variant::limit("t", 4, 4).quality(0).validate().is_err());
    }
}
