//! Image variants (feature `images`): named, resized copies of an image upload, made from its pixels.
//!
//! * [`Variant`]: a name, a [`Resize`] (limit, fit or fill a box) and a [`Format`] (JPEG at a quality,
//!   PNG, lossless WebP). EXIF, GPS, XMP and ICC metadata are never copied: a variant is written from
//!   pixels, with the original's EXIF orientation applied to them.
//! * [`render`]: make one variant from an original's bytes. JPEGs are decoded by libjpeg-turbo (the
//!   `mozjpeg` crate) scaled down by their DCT (1/2, 1/4 or 1/8) to no less than the output needs; other
//!   formats by the `image` crate; resizing is Lanczos3 by `fast_image_resize`; JPEG output by
//!   `jpeg-encoder`. An original over the pixel limit is refused before its pixels are decoded. libjpeg
//!   reports corrupt files by unwinding, which `render` catches: keep the default `panic = "unwind"`.
//! * On a blob field, [`BlobFieldSpec::variant`](crate::field::BlobFieldSpec::variant): made once by a
//!   task queued in the save's own transaction, recorded in the row, deleted with the original; URLs from
//!   [`Blobs::variant_url`](crate::Blobs::variant_url). With the app handle and the `tasks` feature; the
//!   protocol is in `docs/images.md`.
//!
//! ```
//! use sea_gcp::images::{Variant, render};
//! # let png = {
//! #     let mut out = Vec::new();
//! #     image::RgbImage::new(800, 600)
//! #         .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
//! #         .unwrap();
//! #     out
//! # };
//! let thumb = Variant::limit("thumb", 400, 400);
//! let made = render(&png, &thumb, 100_000_000).unwrap();
//! assert_eq!((made.width, made.height, made.content_type), (400, 300, "image/jpeg"));
//! ```

pub(crate) mod backfill;
pub(crate) mod decode;
pub(crate) mod generate;
mod render;
mod variant;

pub use render::{Rendered, render};
pub use variant::{Format, Resize, Variant};
