//! Variants made from originals (`sea_gcp::images::render`): sizes, EXIF orientation applied to the
//! pixels, metadata stripped, the formats and colour models that arrive from browsers and cameras, and
//! refusals before decoding.

mod image_support;

use image::{GenericImageView, ImageFormat, Rgb, RgbImage, Rgba};
use image_support::*;
use sea_gcp::images::{Format, Variant, render};

const LIMIT: u64 = 100_000_000;

/// An image whose left half is red and right half blue: orientation shows in where red ends up.
fn halves(width: u32, height: u32) -> image::DynamicImage {
    RgbImage::from_fn(width, height, |x, _| if x < width / 2 { Rgb([255, 0, 0]) } else { Rgb([0, 0, 255]) }).into()
}

fn decode(bytes: &[u8]) -> image::DynamicImage {
    image::load_from_memory(bytes).unwrap()
}

fn reddish(p: Rgba<u8>) -> bool {
    p[0] > 180 && p[2] < 80
}

#[test]
fn sizes_follow_the_resize_and_never_enlarge_a_limit() {
    let jpeg = encode(&gradient(800, 450), ImageFormat::Jpeg);
    for (variant, expected) in [
        (Variant::limit("thumb", 400, 400), (400, 225)),
        (Variant::fit("fit", 1600, 1600), (1600, 900)),
        (Variant::limit("big", 1600, 1600), (800, 450)),
        (Variant::fill("square", 128, 128), (128, 128)),
    ] {
        let made = render(&jpeg, &variant, LIMIT).unwrap();
        assert_eq!((made.width, made.height), expected, "{}", variant.name());
        assert_eq!(decode(&made.bytes).dimensions(), expected, "{}: the file agrees", variant.name());
        assert_eq!(made.content_type, "image/jpeg");
    }
}

#[test]
fn exif_orientation_is_applied_to_the_pixels_and_metadata_is_not_copied() {
    let jpeg = encode(&halves(400, 200), ImageFormat::Jpeg);
    // Orientation 6: the camera was turned; shown rotated 90 degrees clockwise, red on top.
    let turned = with_segments(&jpeg, &[exif_orientation(6)]);
    let made = render(&turned, &Variant::limit("thumb", 100, 100), LIMIT).unwrap();
    assert_eq!((made.width, made.height), (50, 100));
    let out = decode(&made.bytes);
    assert!(reddish(out.get_pixel(25, 10)), "top is red: {:?}", out.get_pixel(25, 10));
    assert!(!reddish(out.get_pixel(25, 90)), "bottom is blue: {:?}", out.get_pixel(25, 90));
    assert!(!made.bytes.windows(4).any(|w| w == b"Exif"), "no EXIF block in a variant");
    assert!(!made.bytes.windows(2).any(|w| w == [0xff, 0xe1]), "no APP1 segment in a variant");
}

#[test]
fn browser_and_camera_formats_render() {
    let png16: image::DynamicImage =
        image::ImageBuffer::<Rgb<u16>, _>::from_fn(64, 32, |x, _| Rgb([x as u16 * 1000, 0, 65535])).into();
    let transparent: image::DynamicImage = image::RgbaImage::from_pixel(40, 40, Rgba([0, 0, 0, 0])).into();
    let cases = [
        ("cmyk", cmyk_jpeg(64, 32), (32, 16)),
        ("png16", encode(&png16, ImageFormat::Png), (32, 16)),
        ("gif", animated_gif(), (30, 12)),
        ("webp", encode(&gradient(64, 32), ImageFormat::WebP), (32, 16)),
        ("animated webp", animated_webp(64, 32, 3), (32, 16)),
        ("alpha", encode(&transparent, ImageFormat::Png), (32, 32)),
    ];
    for (what, bytes, expected) in cases {
        let made = render(&bytes, &Variant::limit("t", 32, 32), LIMIT).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!((made.width, made.height), expected, "{what}");
        let out = decode(&made.bytes);
        if what == "alpha" {
            assert_eq!(out.get_pixel(16, 16), Rgba([255, 255, 255, 255]), "transparency is laid on white in a JPEG");
        }
    }
    // PNG and WebP keep transparency.
    for format in [Format::Png, Format::WebP] {
        let made = render(&encode(&transparent, ImageFormat::Png), &Variant::limit("t", 20, 20).format(format), LIMIT)
            .unwrap();
        assert_eq!(made.content_type, format.content_type());
        assert_eq!(decode(&made.bytes).get_pixel(5, 5)[3], 0, "{format:?} keeps alpha");
    }
}

#[test]
fn bombs_and_non_images_are_refused_before_decoding() {
    let started = std::time::Instant::now();
    let e = render(&declared_png(50_000, 50_000), &Variant::limit("t", 400, 400), LIMIT).unwrap_err();
    assert!(e.contains("50000 x 50000") && e.contains("100.0 megapixels"), "{e}");
    // Refused from the header: decoding 2.5 gigapixels would take minutes and gigabytes.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(render(b"%PDF-1.7\n", &Variant::limit("t", 4, 4), LIMIT).is_err());
    let cut = &encode(&gradient(64, 32), ImageFormat::Jpeg)[..60];
    assert!(render(cut, &Variant::limit("t", 4, 4), LIMIT).is_err());
}
