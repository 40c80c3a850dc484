//! Photos of incidents: the type is read from the content (never the file name), and
//! metadata that can locate a person (EXIF with GPS, XMP, text chunks) is removed before
//! anything is stored, so no one downstream can leak it.

/// An image type civicgrid accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageType {
    Jpeg,
    Png,
    Webp,
}

impl ImageType {
    pub fn mime(self) -> &'static str {
        match self {
            ImageType::Jpeg => "image/jpeg",
            ImageType::Png => "image/png",
            ImageType::Webp => "image/webp",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhotoError {
    #[error("not a JPEG, PNG or WebP image")]
    UnsupportedType,
    #[error("the image is damaged: {0}")]
    Damaged(&'static str),
}

/// The type, from the first bytes.
pub fn sniff(b: &[u8]) -> Option<ImageType> {
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageType::Jpeg)
    } else if b.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some(ImageType::Png)
    } else if b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Some(ImageType::Webp)
    } else {
        None
    }
}

/// The image without its metadata, and its type.
pub fn strip_metadata(b: &[u8]) -> Result<(ImageType, Vec<u8>), PhotoError> {
    let t = sniff(b).ok_or(PhotoError::UnsupportedType)?;
    let out = match t {
        ImageType::Jpeg => strip_jpeg(b)?,
        ImageType::Png => strip_png(b)?,
        ImageType::Webp => strip_webp(b)?,
    };
    Ok((t, out))
}

/// Drop APP1 (EXIF, XMP) and COM segments; everything from the start of scan is kept as is.
fn strip_jpeg(b: &[u8]) -> Result<Vec<u8>, PhotoError> {
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..2]);
    let mut i = 2;
    loop {
        if i + 4 > b.len() || b[i] != 0xFF {
            return Err(PhotoError::Damaged("a JPEG segment is cut short"));
        }
        let marker = b[i + 1];
        if marker == 0xDA {
            // Start of scan: the compressed image and the end follow.
            out.extend_from_slice(&b[i..]);
            return Ok(out);
        }
        let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
        if len < 2 || i + 2 + len > b.len() {
            return Err(PhotoError::Damaged("a JPEG segment runs past the end"));
        }
        if marker != 0xE1 && marker != 0xFE {
            out.extend_from_slice(&b[i..i + 2 + len]);
        }
        i += 2 + len;
    }
}

/// Drop eXIf and the text chunks (tEXt, zTXt, iTXt), which can carry anything.
fn strip_png(b: &[u8]) -> Result<Vec<u8>, PhotoError> {
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..8]);
    let mut i = 8;
    while i < b.len() {
        if i + 12 > b.len() {
            return Err(PhotoError::Damaged("a PNG chunk is cut short"));
        }
        let len = u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
        let end = i.checked_add(12 + len).filter(|e| *e <= b.len()).ok_or(PhotoError::Damaged("a PNG chunk runs past the end"))?;
        let kind = &b[i + 4..i + 8];
        if !matches!(kind, b"eXIf" | b"tEXt" | b"zTXt" | b"iTXt") {
            out.extend_from_slice(&b[i..end]);
        }
        i = end;
    }
    Ok(out)
}

/// Drop the EXIF and XMP chunks, clear their flags in VP8X, and fix the RIFF size.
fn strip_webp(b: &[u8]) -> Result<Vec<u8>, PhotoError> {
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..12]);
    let mut i = 12;
    while i < b.len() {
        if i + 8 > b.len() {
            return Err(PhotoError::Damaged("a WebP chunk is cut short"));
        }
        let len = u32::from_le_bytes([b[i + 4], b[i + 5], b[i + 6], b[i + 7]]) as usize;
        let padded = len + (len & 1);
        let end = i.checked_add(8 + padded).filter(|e| *e <= b.len()).ok_or(PhotoError::Damaged("a WebP chunk runs past the end"))?;
        let kind = &b[i..i + 4];
        match kind {
            b"EXIF" | b"XMP " => {}
            b"VP8X" if len >= 1 => {
                let start = out.len();
                out.extend_from_slice(&b[i..end]);
                // Flags: bit 3 EXIF, bit 2 XMP.
                out[start + 8] &= !0b0000_1100;
            }
            _ => out.extend_from_slice(&b[i..end]),
        }
        i = end;
    }
    let riff = u32::try_from(out.len() - 8).map_err(|_| PhotoError::Damaged("too large"))?;
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A minimal JPEG: SOI, an APP1 EXIF segment holding a GPS tag's text, a quantisation
    /// table, start of scan, image data, EOI.
    pub fn jpeg_with_exif() -> Vec<u8> {
        let exif = b"Exif\0\0GPSLatitude 27.24";
        let mut b = vec![0xFF, 0xD8, 0xFF, 0xE1];
        b.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
        b.extend_from_slice(exif);
        b.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x04, 0x01, 0x02]);
        b.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x02, 0x11, 0x22, 0x33, 0xFF, 0xD9]);
        b
    }

    fn contains(h: &[u8], n: &[u8]) -> bool {
        h.windows(n.len()).any(|w| w == n)
    }

    #[test]
    fn jpeg_loses_exif_and_keeps_the_image() {
        let b = jpeg_with_exif();
        let (t, out) = strip_metadata(&b).expect("strip");
        assert_eq!(t, ImageType::Jpeg);
        assert!(!contains(&out, b"Exif") && !contains(&out, b"GPSLatitude"));
        assert!(contains(&out, &[0xFF, 0xDB, 0x00, 0x04, 0x01, 0x02]) && out.ends_with(&[0x11, 0x22, 0x33, 0xFF, 0xD9]));
    }

    #[test]
    fn png_loses_exif_and_text() {
        let mut b = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        for (kind, data) in [(&b"IHDR"[..], &b"0123456789abc"[..]), (b"eXIf", b"GPS 27.24"), (b"tEXt", b"Author\0someone"), (b"IDAT", b"pixels"), (b"IEND", b"")] {
            b.extend_from_slice(&(data.len() as u32).to_be_bytes());
            b.extend_from_slice(kind);
            b.extend_from_slice(data);
            b.extend_from_slice(&[0, 0, 0, 0]);
        }
        let (t, out) = strip_metadata(&b).expect("strip");
        assert_eq!(t, ImageType::Png);
        assert!(!contains(&out, b"GPS") && !contains(&out, b"Author"));
        assert!(contains(&out, b"IHDR") && contains(&out, b"pixels") && contains(&out, b"IEND"));
    }

    #[test]
    fn webp_loses_exif_and_its_flag() {
        let mut chunks = Vec::new();
        for (kind, data) in [(&b"VP8X"[..], &[0b0000_1100u8, 0, 0, 0, 0, 0, 0, 0, 0, 0][..]), (b"VP8 ", b"frame"), (b"EXIF", b"GPS 27.24")] {
            chunks.extend_from_slice(kind);
            chunks.extend_from_slice(&(data.len() as u32).to_le_bytes());
            chunks.extend_from_slice(data);
            if data.len() % 2 == 1 {
                chunks.push(0);
            }
        }
        let mut b = b"RIFF".to_vec();
        b.extend_from_slice(&((chunks.len() + 4) as u32).to_le_bytes());
        b.extend_from_slice(b"WEBP");
        b.extend_from_slice(&chunks);
        let (t, out) = strip_metadata(&b).expect("strip");
        assert_eq!(t, ImageType::Webp);
        assert!(!contains(&out, b"GPS") && contains(&out, b"frame"));
        assert_eq!(out[20] & 0b0000_1100, 0, "the VP8X flags no longer promise EXIF or XMP");
        assert_eq!(u32::from_le_bytes([out[4], out[5], out[6], out[7]]) as usize, out.len() - 8);
    }

    #[test]
    fn names_do_not_decide_the_type() {
        assert_eq!(strip_metadata(b"GIF89a not accepted"), Err(PhotoError::UnsupportedType));
        assert_eq!(strip_metadata(b"<html>evil.jpg</html>"), Err(PhotoError::UnsupportedType));
        assert!(matches!(strip_metadata(&[0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF]), Err(PhotoError::Damaged(_))));
    }
}
