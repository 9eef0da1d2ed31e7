/// The EXIF / TIFF Orientation tag (274): how stored pixels are turned for display (a
/// JPEG's APP1 EXIF block, a PNG's eXIf chunk, a TIFF's own tag).
///
/// Phones and some microscope cameras store a photograph as the sensor read it and
/// record the turn in this tag; every viewer, the browser showing the label page and the
/// file manager a user checks a cell in apply it. Read as stored, an orientation-6
/// JPEG of 369x366 came out 366x369 and lying on its side: `dataset inspect` listed
/// another size than the viewer, a heatmap of `explain` did not lie over the picture
/// the user sees, and the near-duplicate and overlap checks compared other pixels than
/// the ones on screen. CytoCL applies the tag, as the viewers do. (PIL's `Image.open`
/// does not, unless `ImageOps.exif_transpose` is called: a Python pipeline fed the same
/// phone photographs sees them turned; the network, trained with rotations, barely cares.)
///
/// Values: 1 as stored, 2 mirrored left-right, 3 turned 180 degrees, 4 mirrored top-bottom,
/// 5 transposed (mirrored along the main diagonal), 6 to be turned 90 degrees clockwise,
/// 7 transversed (mirrored along the other diagonal), 8 to be turned 90 degrees
/// counter-clockwise. Any other value is read as 1.
public enum ImageOrientation {
    /// Whether orientation `o` swaps width and height (the transposing ones, 5 to 8).
    public static func swapsAxes(_ o: Int) -> Bool { (5...8).contains(o) }

    /// `image` (the pixels as stored) as the viewer shows it under orientation `o`.
    public static func apply(_ o: Int, to image: RGBImage) -> RGBImage {
        guard (2...8).contains(o) else { return image }
        let w = image.width, h = image.height
        let (ow, oh) = swapsAxes(o) ? (h, w) : (w, h)
        var out = [UInt8](repeating: 0, count: w * h * 3)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        // The stored pixel that lands at (ox, oy) on screen.
                        let sx: Int, sy: Int
                        switch o {
                        case 2: sx = w - 1 - ox; sy = oy
                        case 3: sx = w - 1 - ox; sy = h - 1 - oy
                        case 4: sx = ox; sy = h - 1 - oy
                        case 5: sx = oy; sy = ox
                        case 6: sx = oy; sy = h - 1 - ox
                        case 7: sx = w - 1 - oy; sy = h - 1 - ox
                        default: sx = w - 1 - oy; sy = ox  // 8
                        }
                        let s = (sy * w + sx) * 3, d = (oy * ow + ox) * 3
                        dst[d] = src[s]; dst[d + 1] = src[s + 1]; dst[d + 2] = src[s + 2]
                    }
                }
            }
        }
        return RGBImage(width: ow, height: oh, pixels: out)
    }

    /// The orientation in a JPEG's EXIF block (the APP1 segment starting `Exif\0\0`), or
    /// nil when it has none. Only the segments before the first scan are looked at.
    public static func jpegOrientation(_ b: [UInt8]) -> Int? {
        guard b.count >= 4, b[0] == 0xFF, b[1] == 0xD8 else { return nil }
        var i = 2
        while i + 4 <= b.count {
            guard b[i] == 0xFF else { return nil }
            let marker = b[i + 1]
            if marker == 0xFF { i += 1; continue }  // fill byte
            if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) { i += 2; continue }
            if marker == 0xDA || marker == 0xD9 { return nil }  // start of scan, end of image
            let length = Int(b[i + 2]) << 8 | Int(b[i + 3])
            guard length >= 2, i + 2 + length <= b.count else { return nil }
            let body = i + 4, end = i + 2 + length
            if marker == 0xE1, end - body >= 14, Array(b[body..<body + 6]) == [0x45, 0x78, 0x69, 0x66, 0, 0] {
                return tiffOrientation(b, start: body + 6, end: end)
            }
            i = end
        }
        return nil
    }

    /// The orientation in a PNG's eXIf chunk (a TIFF structure, as after a JPEG's
    /// `Exif\0\0`; a leading `Exif\0\0`, which some writers wrongly keep, is skipped), or
    /// nil when it has none. Phones and browsers' "save image" write it since PNG took
    /// EXIF (2017). Only the chunks before the first IDAT are looked at, as the PNG
    /// specification places eXIf and as browsers read it.
    public static func pngOrientation(_ b: [UInt8]) -> Int? {
        guard b.count >= 8, b[0..<8].elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else { return nil }
        var i = 8
        while i + 8 <= b.count {
            let length = Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3])
            let type = b[i + 4..<i + 8]
            let body = i + 8, end = body + length
            guard length < 1 << 31, end <= b.count else { return nil }
            if type.elementsEqual("IDAT".utf8) || type.elementsEqual("IEND".utf8) { return nil }
            if type.elementsEqual("eXIf".utf8) {
                let exifHeader: [UInt8] = [0x45, 0x78, 0x69, 0x66, 0, 0]
                let start = end - body >= 6 && b[body..<body + 6].elementsEqual(exifHeader) ? body + 6 : body
                return tiffOrientation(b, start: start, end: end)
            }
            i = end + 4  // the CRC
        }
        return nil
    }

    /// The Orientation entry of the first image directory of the TIFF structure in
    /// `b[start..<end]` (an EXIF block is one), or nil.
    static func tiffOrientation(_ b: [UInt8], start: Int, end: Int) -> Int? {
        guard end - start >= 8 else { return nil }
        let little: Bool
        switch (b[start], b[start + 1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return nil
        }
        func u16(_ o: Int) -> Int? {
            guard o >= 0, start + o + 2 <= end else { return nil }
            let a = Int(b[start + o]), c = Int(b[start + o + 1])
            return little ? a | c << 8 : a << 8 | c
        }
        func u32(_ o: Int) -> Int? {
            guard let lo = u16(little ? o : o + 2), let hi = u16(little ? o + 2 : o) else { return nil }
            return hi << 16 | lo
        }
        guard u16(2) == 42, let ifd = u32(4), let n = u16(ifd) else { return nil }
        for k in 0..<min(n, 1000) {
            let entry = ifd + 2 + 12 * k
            guard let tag = u16(entry) else { return nil }
            if tag == 274 {
                // SHORT (type 3), one value, held in the first two bytes of the value field.
                guard u16(entry + 2) == 3, let v = u16(entry + 8), (1...8).contains(v) else { return nil }
                return v
            }
        }
        return nil
    }
}
