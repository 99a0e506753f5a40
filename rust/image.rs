//! Decoding photos (paths and bytes) into RGB pixels, and borrowed views over pixels that
//! callers already hold (numpy arrays in BGR, BGRA or gray), read in place.

use std::io::{Cursor, Read};
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use crate::error::{Error, Result};

/// Channel order of 3- and 4-channel pixel data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelOrder {
    /// Red, green, blue (and alpha): what decoders produce.
    Rgb,
    /// Blue, green, red (and alpha): what OpenCV produces.
    Bgr,
}

/// Default largest accepted width x height (40 megapixels).
pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;
/// Default largest accepted encoded size (256 MiB).
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// What a decoder may allocate while it reads a file's headers and metadata (ICC profiles,
/// EXIF, text chunks), before the dimensions are known: a PNG whose 995 KiB iCCP chunk inflated
/// to 1 GB cost the server 510 MiB under the image crate's default 512 MiB limit. Real
/// profiles and EXIF blocks are kilobytes.
pub const METADATA_ALLOC: u64 = 16 * 1024 * 1024;

/// Limits checked before any pixel memory is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted width x height, read from the file header.
    pub max_pixels: u64,
    /// Largest accepted encoded size in bytes.
    pub max_bytes: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits { max_pixels: DEFAULT_MAX_PIXELS, max_bytes: DEFAULT_MAX_BYTES }
    }
}

/// An owned, tightly packed RGB image.
#[derive(Debug, Clone)]
pub struct Image {
    data: Vec<u8>,
    width: usize,
    height: usize,
}

impl Image {
    /// Wraps packed RGB bytes (`width * height * 3` of them).
    pub fn from_rgb(data: Vec<u8>, width: usize, height: usize) -> Result<Self> {
        if width == 0 || height == 0 || data.len() != width * height * 3 {
            return Err(Error::image(
                "<rgb buffer>",
                format!("expected {width}x{height}x3 = {} bytes, got {}", width * height * 3, data.len()),
            ));
        }
        Ok(Image { data, width, height })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The packed RGB bytes, row by row.
    pub fn as_rgb(&self) -> &[u8] {
        &self.data
    }

    /// A borrowed view for the detector and the aligner.
    pub fn view(&self) -> ImageView<'_> {
        ImageView {
            data: &self.data,
            width: self.width,
            height: self.height,
            channels: 3,
            order: ChannelOrder::Rgb,
            row_stride: self.width * 3,
        }
    }
}

/// Pixels borrowed from the caller: 1 (gray), 3 or 4 channels of u8, rows `row_stride` bytes
/// apart, pixels packed within a row. An alpha channel is ignored, never blended.
#[derive(Debug, Clone, Copy)]
pub struct ImageView<'a> {
    data: &'a [u8],
    width: usize,
    height: usize,
    channels: usize,
    order: ChannelOrder,
    row_stride: usize,
}

impl<'a> ImageView<'a> {
    /// Checks the geometry against the buffer; `input` names the source in errors.
    pub fn new(
        data: &'a [u8],
        width: usize,
        height: usize,
        channels: usize,
        order: ChannelOrder,
        row_stride: usize,
        input: &str,
    ) -> Result<Self> {
        if !matches!(channels, 1 | 3 | 4) {
            return Err(Error::image(input, format!("expected 1, 3 or 4 channels, got {channels}")));
        }
        if width == 0 || height == 0 {
            return Err(Error::image(input, format!("image is empty ({width}x{height})")));
        }
        let row = width.checked_mul(channels).ok_or_else(|| Error::image(input, "width overflows"))?;
        let needed = row_stride
            .checked_mul(height - 1)
            .and_then(|n| n.checked_add(row))
            .ok_or_else(|| Error::image(input, "size overflows"))?;
        if row_stride < row || data.len() < needed {
            return Err(Error::image(
                input,
                format!("buffer of {} bytes is too small for {width}x{height}x{channels}", data.len()),
            ));
        }
        Ok(ImageView { data, width, height, channels, order, row_stride })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Runs `visitor` with a pixel reader specialised for this view's layout, so that the
    /// inner loops of resizing and warping carry no per-pixel branch on the layout.
    pub(crate) fn visit<V: PixelVisitor>(&self, visitor: V) -> V::Output {
        match (self.channels, self.order) {
            (1, _) => visitor.visit(&Reader::<1, false>(self)),
            (3, ChannelOrder::Rgb) => visitor.visit(&Reader::<3, false>(self)),
            (3, ChannelOrder::Bgr) => visitor.visit(&Reader::<3, true>(self)),
            (_, ChannelOrder::Rgb) => visitor.visit(&Reader::<4, false>(self)),
            (_, ChannelOrder::Bgr) => visitor.visit(&Reader::<4, true>(self)),
        }
    }
}

/// `v.round()` for a non-negative `v` below 2^23, without the libm call that `f32::round`
/// compiles to on baseline x86-64 (no SSE4.1): a third of the letterbox's time otherwise.
#[inline(always)]
pub(crate) fn round_half_up(v: f32) -> f32 {
    let whole = v as i32 as f32; // truncation: one instruction; exact in this range
    if v - whole >= 0.5 {
        whole + 1.0
    } else {
        whole
    }
}

/// Reads pixels as RGB floats; the caller keeps x < width and y < height.
pub(crate) trait Pixels {
    fn width(&self) -> usize;
    fn height(&self) -> usize;
    fn rgb(&self, x: usize, y: usize) -> [f32; 3];
}

/// Work that reads pixels, generic over the layout (see `ImageView::visit`).
pub(crate) trait PixelVisitor {
    type Output;
    fn visit<P: Pixels>(self, pixels: &P) -> Self::Output;
}

struct Reader<'v, 'a, const C: usize, const BGR: bool>(&'v ImageView<'a>);

impl<const C: usize, const BGR: bool> Pixels for Reader<'_, '_, C, BGR> {
    fn width(&self) -> usize {
        self.0.width
    }

    fn height(&self) -> usize {
        self.0.height
    }

    #[inline(always)]
    fn rgb(&self, x: usize, y: usize) -> [f32; 3] {
        let i = y * self.0.row_stride + x * C;
        let p = &self.0.data[i..i + C];
        if C == 1 {
            let v = f32::from(p[0]);
            [v, v, v]
        } else if BGR {
            [f32::from(p[2]), f32::from(p[1]), f32::from(p[0])]
        } else {
            [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])]
        }
    }
}

/// Reads and decodes an image file; `ImageNotFound` when it cannot be opened.
pub fn open(path: &Path, limits: &DecodeLimits) -> Result<Image> {
    let name = path.display().to_string();
    let not_found = |e: std::io::Error| Error::ImageNotFound { input: name.clone(), reason: e.to_string() };
    let file = std::fs::File::open(path).map_err(not_found)?;
    let meta = file.metadata().map_err(not_found)?;
    if meta.is_dir() {
        return Err(Error::ImageNotFound { input: name, reason: "is a directory".into() });
    }
    if meta.len() > limits.max_bytes {
        return Err(Error::ImageTooLarge {
            input: name,
            reason: format!("{} bytes, the limit is {}", meta.len(), limits.max_bytes),
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // Read at most one byte past the limit: a file growing while we read cannot exceed it.
    file.take(limits.max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::image(&name, format!("read failed: {e}")))?;
    decode(&bytes, &name, limits)
}

/// Decodes an encoded image (JPEG, PNG, WebP, BMP, TIFF, GIF) into RGB, applying EXIF
/// orientation. The pixel limit is checked from the header before any pixel is allocated.
pub fn decode(bytes: &[u8], input: &str, limits: &DecodeLimits) -> Result<Image> {
    if bytes.len() as u64 > limits.max_bytes {
        return Err(Error::ImageTooLarge {
            input: input.to_owned(),
            reason: format!("{} bytes, the limit is {}", bytes.len(), limits.max_bytes),
        });
    }
    if bytes.is_empty() {
        return Err(Error::image(input, "no data (0 bytes)"));
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::image(input, e.to_string()))?;
    let format = reader.format().ok_or_else(|| {
        Error::image(input, "not a recognised image format (expected JPEG, PNG, WebP, BMP, TIFF or GIF)")
    })?;
    let bad = |e: image::ImageError| Error::image(input, format!("{format:?} decoding failed: {e}"));
    // Tight limits from the first byte: the headers and metadata are read by into_decoder.
    let mut reader = reader;
    let mut header_limits = Limits::default();
    header_limits.max_alloc = Some(METADATA_ALLOC);
    reader.limits(header_limits);
    let mut decoder = reader.into_decoder().map_err(bad)?;
    if format == image::ImageFormat::Png && png_has_chunk(bytes, b"iCCP") {
        // The png crate skips an ICC profile over the limit instead of failing: a profile
        // that inflates past it is a bomb, not a photo, and is refused as one.
        if !matches!(decoder.icc_profile(), Ok(Some(_))) {
            return Err(Error::image(
                input,
                format!("Png decoding failed: its ICC profile inflates past {METADATA_ALLOC} bytes"),
            ));
        }
    }
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(Error::image(input, format!("image is empty ({w}x{h})")));
    }
    let pixels = u64::from(w) * u64::from(h);
    if pixels > limits.max_pixels {
        return Err(Error::ImageTooLarge {
            input: input.to_owned(),
            reason: format!("{w}x{h} = {pixels} pixels, the limit is {}", limits.max_pixels),
        });
    }
    let mut decode_limits = Limits::default();
    decode_limits.max_image_width = Some(w);
    decode_limits.max_image_height = Some(h);
    // The decoded buffer (at most 16-bit RGBA) plus the decoders' own working memory.
    decode_limits.max_alloc = Some(pixels * 8 + 64 * 1024 * 1024);
    decoder.set_limits(decode_limits).map_err(bad)?;
    if format == image::ImageFormat::Jpeg {
        check_jpeg_complete(bytes, input)?;
    }
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(bad)?;
    img.apply_orientation(orientation);
    let rgb = img.into_rgb8();
    let (width, height) = (rgb.width() as usize, rgb.height() as usize);
    Image::from_rgb(rgb.into_raw(), width, height)
}

/// Whether a PNG file holds a chunk of this type (its chunks read from their lengths, without
/// inflating anything).
fn png_has_chunk(bytes: &[u8], kind: &[u8; 4]) -> bool {
    let mut at = 8; // the signature
    while at + 8 <= bytes.len() {
        let length = u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        if &bytes[at + 4..at + 8] == kind {
            return true;
        }
        if &bytes[at + 4..at + 8] == b"IDAT" {
            return false; // metadata chunks come before the pixels
        }
        at = at.saturating_add(12).saturating_add(length);
    }
    false
}

/// A JPEG cut short still decodes into a picture whose missing part is grey; the
/// decoder only warns. A complete JPEG ends with the EOI marker (FF D9), possibly
/// followed by padding or trailing data, so look for it in the last bytes.
fn check_jpeg_complete(bytes: &[u8], input: &str) -> Result<()> {
    let tail = &bytes[bytes.len().saturating_sub(64 * 1024)..];
    if tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
        Ok(())
    } else {
        Err(Error::image(input, "JPEG data is truncated (no end-of-image marker)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_half_up_is_round_on_pixel_values() {
        for i in 0..=255 * 64 {
            let v = i as f32 / 64.0;
            assert_eq!(round_half_up(v), v.round(), "{v}");
        }
        for v in [0.49999997f32, 0.5, 254.5, 254.49998, 255.0] {
            assert_eq!(round_half_up(v), v.round(), "{v}");
        }
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).expect("encode png");
        out.into_inner()
    }

    #[test]
    fn decodes_png_pixels() {
        let img = decode(&png(5, 4), "t.png", &DecodeLimits::default()).expect("decode");
        assert_eq!((img.width(), img.height()), (5, 4));
        let i = (2 * 5 + 3) * 3;
        assert_eq!(&img.as_rgb()[i..i + 3], &[3, 2, 7]);
    }

    #[test]
    fn pixel_limit_is_checked_from_header() {
        let limits = DecodeLimits { max_pixels: 19, ..DecodeLimits::default() };
        let err = decode(&png(5, 4), "big.png", &limits).expect_err("over the limit");
        assert_eq!(err.code(), "image_too_large");
        assert!(err.to_string().contains("big.png"));
    }

    #[test]
    fn garbage_is_an_image_error() {
        let err = decode(b"certainly not a picture", "junk", &DecodeLimits::default()).expect_err("junk");
        assert_eq!(err.code(), "image_invalid");
        assert!(err.to_string().contains("junk"), "{err}");
    }

    #[test]
    fn truncated_jpeg_is_refused() {
        let img = image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 3, y as u8 * 3, 9]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Jpeg).expect("encode jpeg");
        let jpeg = out.into_inner();
        assert!(decode(&jpeg, "whole.jpg", &DecodeLimits::default()).is_ok());
        let err = decode(&jpeg[..jpeg.len() / 2], "cut.jpg", &DecodeLimits::default()).expect_err("cut");
        assert_eq!(err.code(), "image_invalid");
    }

    struct At(usize, usize);

    impl PixelVisitor for At {
        type Output = [f32; 3];
        fn visit<P: Pixels>(self, pixels: &P) -> [f32; 3] {
            pixels.rgb(self.0, self.1)
        }
    }

    #[test]
    fn view_reads_bgr_and_gray() {
        let bgr = [10u8, 20, 30, 40, 50, 60];
        let view = ImageView::new(&bgr, 2, 1, 3, ChannelOrder::Bgr, 6, "a").expect("view");
        assert_eq!(view.visit(At(1, 0)), [60.0, 50.0, 40.0]);
        let gray = [1u8, 2, 3, 4];
        let view = ImageView::new(&gray, 2, 2, 1, ChannelOrder::Bgr, 2, "g").expect("view");
        assert_eq!(view.visit(At(0, 1)), [3.0, 3.0, 3.0]);
    }

    #[test]
    fn view_rejects_short_buffers() {
        let err = ImageView::new(&[0u8; 5], 2, 1, 3, ChannelOrder::Bgr, 6, "short").expect_err("short");
        assert!(err.to_string().contains("short"));
    }
}
