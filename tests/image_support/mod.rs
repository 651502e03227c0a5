//! Image fixtures made in the test: encoded images, EXIF orientation segments, metadata padding, PNGs
//! that declare any size (bombs), animated GIFs and CMYK JPEGs.

#![allow(dead_code)]

use std::io::Cursor;

use image::{ImageFormat, Rgb, RgbImage};

pub fn encode(image: &image::DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    image.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

pub fn gradient(width: u32, height: u32) -> image::DynamicImage {
    RgbImage::from_fn(width, height, |x, y| Rgb([(x * 7) as u8, (y * 5) as u8, 90])).into()
}

/// A JPEG segment: marker, big-endian length (with itself), payload.
pub fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut s = vec![0xff, marker];
    s.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    s.extend_from_slice(payload);
    s
}

/// `jpeg` with `segments` inserted right after its SOI marker.
pub fn with_segments(jpeg: &[u8], segments: &[Vec<u8>]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    for s in segments {
        out.extend_from_slice(s);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// An APP1 Exif segment whose IFD0 holds one tag: Orientation = `orientation`.
pub fn exif_orientation(orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // count
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    segment(0xe1, &payload)
}

/// `count` comment segments of 60,000 bytes (metadata a camera or editor put before the frame header).
pub fn padding(count: usize) -> Vec<Vec<u8>> {
    (0..count).map(|_| segment(0xfe, &vec![b'x'; 60_000])).collect()
}

/// A PNG chunk with its CRC.
pub fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    c.extend_from_slice(&crc.sum().to_be_bytes());
    c
}

/// A PNG of a few hundred bytes whose header declares `width` x `height` (a decompression bomb when
/// large: the pixels would take gigabytes).
pub fn declared_png(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut zlib, &vec![0u8; 4096]).unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &zlib.finish().unwrap()));
    png.extend(chunk(b"IEND", &[]));
    png
}

pub fn animated_gif() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut out);
        let frames = (0..3).map(|i| {
            let frame = image::RgbaImage::from_pixel(30, 12, image::Rgba([i * 80, 0, 0, 255]));
            image::Frame::new(frame)
        });
        encoder.encode_frames(frames).unwrap();
    }
    out
}

pub fn cmyk_jpeg(width: u16, height: u16) -> Vec<u8> {
    let pixels: Vec<u8> =
        (0..u32::from(width) * u32::from(height)).flat_map(|i| [(i % 255) as u8, 40, 80, 0]).collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 85).encode(&pixels, width, height, jpeg_encoder::ColorType::Cmyk).unwrap();
    out
}

/// An animated WebP of `frames` frames on a `width` x `height` canvas (VP8X, ANIM and ANMF chunks around
/// lossless frames), as browsers and phones send them.
pub fn animated_webp(width: u32, height: u32, frames: u8) -> Vec<u8> {
    fn riff_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = kind.to_vec();
        c.extend_from_slice(&(data.len() as u32).to_le_bytes());
        c.extend_from_slice(data);
        if data.len() % 2 == 1 {
            c.push(0);
        }
        c
    }
    let u24 = |v: u32| v.to_le_bytes()[..3].to_vec();
    let mut body = b"WEBP".to_vec();
    let mut vp8x = vec![0x02, 0, 0, 0]; // animation
    vp8x.extend(u24(width - 1));
    vp8x.extend(u24(height - 1));
    body.extend(riff_chunk(b"VP8X", &vp8x));
    body.extend(riff_chunk(b"ANIM", &[255, 255, 255, 255, 0, 0]));
    for i in 0..frames {
        let frame = image::RgbaImage::from_pixel(width, height, image::Rgba([i.wrapping_mul(60), 0, 0, 255]));
        let still = encode(&frame.into(), ImageFormat::WebP);
        // The still file's only chunk (VP8L) becomes the frame's data.
        let vp8l = &still[12..];
        let mut anmf = u24(0);
        anmf.extend(u24(0));
        anmf.extend(u24(width - 1));
        anmf.extend(u24(height - 1));
        anmf.extend(u24(100));
        anmf.push(0);
        anmf.extend_from_slice(vp8l);
        body.extend(riff_chunk(b"ANMF", &anmf));
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}
