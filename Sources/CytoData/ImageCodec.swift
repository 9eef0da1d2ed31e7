import CImageCodecs
import CytoSupport
import Foundation

/// The file formats CytoCL reads, recognised by their first bytes.
public enum ImageFormat: String, Sendable, CaseIterable {
    case png = "PNG"
    case tiff = "TIFF"
    case jpeg = "JPEG"

    /// The format whose signature starts `bytes`, or nil. File names are not
    /// trusted: real sets contain JPEGs named .tif and text files named .tif.
    public static func sniff<C: Collection>(_ bytes: C) -> ImageFormat? where C.Element == UInt8 {
        let b = Array(bytes.prefix(8))
        if b.count >= 8, b == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] { return .png }
        if b.count >= 4,
            (b[0] == 0x49 && b[1] == 0x49 && b[2] == 0x2A && b[3] == 0x00)
                || (b[0] == 0x4D && b[1] == 0x4D && b[2] == 0x00 && b[3] == 0x2A)
                || (b[0] == 0x49 && b[1] == 0x49 && b[2] == 0x2B && b[3] == 0x00)  // BigTIFF
                || (b[0] == 0x4D && b[1] == 0x4D && b[2] == 0x00 && b[3] == 0x2B)
        {
            return .tiff
        }
        if b.count >= 3, b[0] == 0xFF, b[1] == 0xD8, b[2] == 0xFF { return .jpeg }
        return nil
    }
}

/// Size and format of an image file, read from its header.
public struct ImageInfo: Equatable, Sendable {
    public var format: ImageFormat
    public var width: Int
    public var height: Int
    /// Colour channels stored in the file (1 grey, 3 RGB, 4 with alpha, ...), where known.
    public var channels: Int
    /// Bits per sample, where known.
    public var bitsPerSample: Int
    /// Pages (TIFF directories) in the file; only the first is read.
    public var pages: Int = 1
    /// The EXIF / TIFF orientation (1-8, `ImageOrientation`), already applied to `width`
    /// and `height` (they are the decoded image's, as a viewer shows it).
    public var orientation: Int = 1

    /// Bytes the decoded samples take before conversion to 8-bit RGB.
    public var decodedBytes: UInt64 {
        UInt64(width) * UInt64(height) * UInt64(max(3, channels)) * UInt64(max(1, (bitsPerSample + 7) / 8))
    }
}

/// TIFF compression schemes the writer supports (all of them the reader handles).
public enum TIFFCompression: String, Sendable, CaseIterable {
    case none, lzw, deflate, packbits, jpeg

    var code: UInt16 {
        switch self {
        case .none: return UInt16(COMPRESSION_NONE)
        case .lzw: return UInt16(COMPRESSION_LZW)
        case .deflate: return UInt16(COMPRESSION_ADOBE_DEFLATE)
        case .packbits: return UInt16(COMPRESSION_PACKBITS)
        case .jpeg: return UInt16(COMPRESSION_JPEG)
        }
    }
}

/// A low-level description of a TIFF to write, for tests and tools that need
/// pixel formats other than 8-bit RGB (grey, palette, 16-bit, alpha, float, tiles).
public struct TIFFSpec: Sendable {
    public enum Photometric: UInt16, Sendable { case minIsBlack = 1, rgb = 2, palette = 3 }
    public var width: Int
    public var height: Int
    public var samplesPerPixel: Int
    public var bitsPerSample: Int = 8
    public var photometric: Photometric = .rgb
    public var compression: TIFFCompression = .none
    public var floatSamples = false
    public var horizontalPredictor = false
    /// 0: none, 1: unassociated alpha, 2: associated alpha as the last sample.
    public var alpha = 0
    public var rowsPerStrip = 0
    /// Tiles of this size (a multiple of 16) instead of strips when > 0.
    public var tileSize = 0
    public var jpegQuality = 90
    /// For palettes: 3 * 2^bitsPerSample 16-bit entries, all reds, then greens, then blues.
    public var colormap: [UInt16] = []
    /// The Orientation tag recorded (1-8, `ImageOrientation`).
    public var orientation = 1

    public init(width: Int, height: Int, samplesPerPixel: Int) {
        self.width = width; self.height = height; self.samplesPerPixel = samplesPerPixel
    }
}

/// Decoding and encoding through libpng, libtiff and libjpeg-turbo.
///
/// The C calls that need setjmp live in the CImageCodecs C target; this type turns their
/// status codes into `DataError`s that name the file. All functions are safe to
/// call from several threads at once.
public enum ImageCodec {
    /// Decoders refuse images above this many pixels, so that a damaged header
    /// claiming 60000x60000 cannot exhaust memory (cells are < 2000x2000).
    public static let maxPixels: UInt64 = 40_000_000
    /// Decoders refuse images whose samples would take more than this many bytes
    /// (width x height x channels x bytes per sample, from the header, checked before
    /// any pixel is decoded).
    public static let maxDecodedBytes: UInt64 = 256 << 20
    /// What the decoders return, for caches of decoded pixels (`ImageCache`): 2 turns
    /// images by their EXIF / TIFF orientation and reads CMYK JPEGs; 3 turns PNGs by the
    /// orientation of their eXIf chunk. Caches built before hold other pixels for those
    /// files and are rebuilt.
    public static let decoderVersion = 3

    /// Decodes the file at `path` to 8-bit RGB. The format is taken from the first bytes.
    public static func decode(path: String) throws -> RGBImage {
        let bytes = try FileBytes.read(path)
        return try decode(bytes: bytes, name: path)
    }

    /// Decodes an in-memory file; `name` is used in error messages.
    public static func decode(bytes: [UInt8], name: String) throws -> RGBImage {
        if bytes.isEmpty { throw DataError.emptyFile(path: name) }
        guard let format = ImageFormat.sniff(bytes) else { throw notAnImage(bytes, name) }
        // The header's claims, checked before the decoder allocates anything. A header
        // that cannot be read is left to the decoder, whose message is more specific.
        if let info = try? readInfo(bytes: bytes, name: name) {
            if UInt64(info.width) * UInt64(info.height) > maxPixels {
                throw DataError.tooLarge(path: name, detail: "\(info.width)x\(info.height) pixels is above the limit of \(maxPixels)")
            }
            if info.decodedBytes > maxDecodedBytes {
                throw DataError.tooLarge(
                    path: name,
                    detail: "\(info.width)x\(info.height) pixels x \(max(3, info.channels)) channels x "
                        + "\(info.bitsPerSample) bits would take \(info.decodedBytes >> 20) MB, above the limit of \(maxDecodedBytes >> 20) MB"
                )
            }
        }
        var out = cyto_rgb()
        var msg = [CChar](repeating: 0, count: 512)
        let status: cyto_status = bytes.withUnsafeBufferPointer { buf in
            switch format {
            case .png: return cyto_png_decode(buf.baseAddress, buf.count, maxPixels, &out, &msg, msg.count)
            case .jpeg: return cyto_jpeg_decode(buf.baseAddress, buf.count, maxPixels, &out, &msg, msg.count)
            case .tiff: return cyto_tiff_decode(buf.baseAddress, buf.count, maxPixels, &out, &msg, msg.count)
            }
        }
        guard status == CYTO_OK, let p = out.pixels else {
            free(out.pixels)
            throw error(status, format, name, String(nulTerminated: msg))
        }
        defer { free(p) }
        let w = Int(out.width), h = Int(out.height)
        let pixels = [UInt8](UnsafeBufferPointer(start: p, count: w * h * 3))
        // Turned as every viewer shows the file (`ImageOrientation`).
        let orientation: Int
        switch format {
        case .jpeg: orientation = ImageOrientation.jpegOrientation(bytes) ?? 1
        case .png: orientation = ImageOrientation.pngOrientation(bytes) ?? 1
        case .tiff: orientation = Int(out.orientation)
        }
        return ImageOrientation.apply(orientation, to: RGBImage(width: w, height: h, pixels: pixels))
    }

    /// Format, size and sample layout from the header only (the pixels are not decoded).
    public static func readInfo(path: String) throws -> ImageInfo {
        let bytes = try FileBytes.read(path)
        return try readInfo(bytes: bytes, name: path)
    }

    public static func readInfo(bytes: [UInt8], name: String) throws -> ImageInfo {
        if bytes.isEmpty { throw DataError.emptyFile(path: name) }
        guard let format = ImageFormat.sniff(bytes) else { throw notAnImage(bytes, name) }
        var msg = [CChar](repeating: 0, count: 512)
        switch format {
        case .png:
            // IHDR is always the first chunk: width, height, depth, colour type at fixed offsets.
            guard bytes.count >= 33 else { throw DataError.truncated(path: name, format: "PNG", detail: "the file ends inside the header") }
            guard bytes[12...15].elementsEqual("IHDR".utf8) else {
                throw DataError.corrupt(path: name, format: "PNG", detail: "the first chunk is not IHDR")
            }
            func be32(_ o: Int) -> Int { Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3]) }
            let ctype = Int(bytes[25])
            let channels = [0: 1, 2: 3, 3: 3, 4: 2, 6: 4][ctype] ?? 0
            let o = ImageOrientation.pngOrientation(bytes) ?? 1
            let turned = ImageOrientation.swapsAxes(o)
            return ImageInfo(
                format: .png, width: be32(turned ? 20 : 16), height: be32(turned ? 16 : 20), channels: channels,
                bitsPerSample: Int(bytes[24]), orientation: o)
        case .jpeg:
            var w: UInt32 = 0, h: UInt32 = 0, comps: Int32 = 0
            let st = bytes.withUnsafeBufferPointer { cyto_jpeg_info($0.baseAddress, $0.count, &w, &h, &comps, &msg, msg.count) }
            guard st == CYTO_OK else { throw error(st, .jpeg, name, String(nulTerminated: msg)) }
            let o = ImageOrientation.jpegOrientation(bytes) ?? 1
            let turned = ImageOrientation.swapsAxes(o)
            return ImageInfo(
                format: .jpeg, width: Int(turned ? h : w), height: Int(turned ? w : h), channels: Int(comps), bitsPerSample: 8,
                orientation: o)
        case .tiff:
            var info = cyto_tiff_info_t()
            let st = bytes.withUnsafeBufferPointer { cyto_tiff_info($0.baseAddress, $0.count, &info, &msg, msg.count) }
            guard st == CYTO_OK else { throw error(st, .tiff, name, String(nulTerminated: msg)) }
            let o = Int(info.orientation)
            let turned = ImageOrientation.swapsAxes(o)
            return ImageInfo(
                format: .tiff, width: Int(turned ? info.height : info.width), height: Int(turned ? info.width : info.height),
                channels: Int(info.samples_per_pixel), bitsPerSample: Int(info.bits_per_sample),
                pages: max(1, Int(info.pages)), orientation: (1...8).contains(o) ? o : 1)
        }
    }

    // MARK: - Writing

    /// Encodes `image` as an 8-bit RGB PNG in memory.
    public static func encodePNG(_ image: RGBImage, level: Int = 6) throws -> [UInt8] {
        try image.pixels.withUnsafeBytes { raw in
            try encodePNG(
                raw: raw.baseAddress!, width: image.width, height: image.height,
                colorType: Int(PNG_COLOR_TYPE_RGB), bitDepth: 8, level: level, name: "PNG")
        }
    }

    /// Encodes raw samples as a PNG. `colorType` is a PNG colour type (0 grey, 2 RGB,
    /// 3 palette, 4 grey+alpha, 6 RGBA); 16-bit samples are native-endian UInt16.
    public static func encodePNG(
        raw: UnsafeRawPointer, width: Int, height: Int, colorType: Int, bitDepth: Int,
        palette: [UInt8] = [], level: Int = 6, name: String = "PNG"
    ) throws -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>? = nil
        var size = 0
        var msg = [CChar](repeating: 0, count: 512)
        let st = palette.withUnsafeBufferPointer { pal in
            cyto_png_encode(
                raw, UInt32(width), UInt32(height), Int32(colorType), Int32(bitDepth), pal.baseAddress,
                Int32(palette.count / 3), Int32(level), &out, &size, &msg, msg.count)
        }
        guard st == CYTO_OK, let p = out else {
            free(out)
            throw DataError.writeFailed(path: name, reason: String(nulTerminated: msg))
        }
        defer { free(p) }
        return [UInt8](UnsafeBufferPointer(start: p, count: size))
    }

    /// Encodes `image` as a baseline JPEG in memory (test images and fuzz seeds).
    public static func encodeJPEG(_ image: RGBImage, quality: Int = 90) throws -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        var msg = [CChar](repeating: 0, count: 512)
        let st = image.pixels.withUnsafeBufferPointer {
            cyto_jpeg_encode($0.baseAddress, UInt32(image.width), UInt32(image.height), Int32(quality), &out, &size, &msg, msg.count)
        }
        guard st == CYTO_OK, let p = out else {
            free(out)
            throw DataError.writeFailed(path: "JPEG", reason: String(nulTerminated: msg))
        }
        defer { free(p) }
        return [UInt8](UnsafeBufferPointer(start: p, count: Int(size)))
    }

    /// Encodes 8-bit CMYK samples (4 per pixel, interleaved, stored as given) as a JPEG
    /// with an Adobe marker, as Photoshop writes print files: for tests of the CMYK reader.
    public static func encodeCMYKJPEG(_ cmyk: [UInt8], width: Int, height: Int, quality: Int = 95) throws -> [UInt8] {
        precondition(cmyk.count == width * height * 4, "CMYK: \(cmyk.count) bytes for \(width)x\(height)x4")
        var out: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        var msg = [CChar](repeating: 0, count: 512)
        let st = cmyk.withUnsafeBufferPointer {
            cyto_jpeg_encode_cmyk($0.baseAddress, UInt32(width), UInt32(height), Int32(quality), &out, &size, &msg, msg.count)
        }
        guard st == CYTO_OK, let p = out else {
            free(out)
            throw DataError.writeFailed(path: "JPEG", reason: String(nulTerminated: msg))
        }
        defer { free(p) }
        return [UInt8](UnsafeBufferPointer(start: p, count: Int(size)))
    }

    /// Writes `image` as an RGB PNG, atomically (temporary file, then rename).
    public static func writePNG(_ image: RGBImage, to url: URL, level: Int = 6) throws {
        let bytes = try encodePNG(image, level: level)
        try bytes.withUnsafeBytes { try FileBytes.writeAtomically($0, to: url) }
    }

    /// Writes `image` as a baseline RGB JPEG, atomically.
    public static func writeJPEG(_ image: RGBImage, to url: URL, quality: Int = 90) throws {
        let bytes = try encodeJPEG(image, quality: quality)
        try bytes.withUnsafeBytes { try FileBytes.writeAtomically($0, to: url) }
    }

    /// Writes `image` as an RGB TIFF, atomically.
    public static func writeTIFF(_ image: RGBImage, to url: URL, compression: TIFFCompression = .none) throws {
        var spec = TIFFSpec(width: image.width, height: image.height, samplesPerPixel: 3)
        spec.compression = compression
        if compression == .jpeg { spec.rowsPerStrip = 16 }
        try image.pixels.withUnsafeBytes { try writeTIFF(spec: spec, samples: $0.baseAddress!, to: url) }
    }

    /// Writes any TIFF layout described by `spec`; `samples` holds `height` rows of
    /// `width * samplesPerPixel` samples of `bitsPerSample` bits (native endian).
    public static func writeTIFF(spec: TIFFSpec, samples: UnsafeRawPointer, to url: URL) throws {
        var c = cyto_tiff_spec()
        c.width = UInt32(spec.width); c.height = UInt32(spec.height)
        c.samples_per_pixel = UInt16(spec.samplesPerPixel); c.bits_per_sample = UInt16(spec.bitsPerSample)
        c.photometric = spec.photometric.rawValue
        c.compression = spec.compression.code
        c.sample_format = UInt16(spec.floatSamples ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT)
        c.predictor = spec.horizontalPredictor ? 2 : 1
        c.extra_alpha = UInt16(spec.alpha)
        c.rows_per_strip = UInt32(spec.rowsPerStrip)
        c.tile_width = UInt32(spec.tileSize); c.tile_height = UInt32(spec.tileSize)
        c.jpeg_quality = Int32(spec.jpegQuality)
        c.orientation = UInt16(spec.orientation)
        var msg = [CChar](repeating: 0, count: 512)
        do {
            // libtiff opens the file by name: it rewrites the temporary file AtomicFile made.
            try AtomicFile.write(to: url) { _, tmp in
                let st: cyto_status = spec.colormap.withUnsafeBufferPointer { cm in
                    c.colormap = cm.isEmpty ? nil : cm.baseAddress
                    return FileSystemPath.withCString(tmp) { cyto_tiff_write($0, &c, samples, &msg, msg.count) }
                }
                guard st == CYTO_OK else { throw DataError.writeFailed(path: url.path, reason: String(nulTerminated: msg)) }
            }
        } catch let e as CytoError {
            if case .io(_, let reason) = e { throw DataError.writeFailed(path: url.path, reason: reason) }
            throw DataError.writeFailed(path: url.path, reason: e.description)
        }
    }

    // MARK: - Errors

    static func notAnImage(_ bytes: [UInt8], _ name: String) -> DataError {
        let head = bytes.prefix(12)
        let printable = head.allSatisfy { ($0 >= 32 && $0 < 127) || $0 == 9 || $0 == 10 || $0 == 13 }
        let shown: String
        if printable {
            shown =
                "it starts with the text \""
                + String(decoding: head, as: UTF8.self)
                .replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r") + "\""
        } else {
            shown = "it starts with bytes " + head.prefix(8).map { String(format: "%02X", $0) }.joined(separator: " ")
        }
        return .notAnImage(path: name, detail: "\(shown), not a PNG, TIFF or JPEG signature")
    }

    static func error(_ status: cyto_status, _ format: ImageFormat, _ name: String, _ msg: String) -> DataError {
        let detail = msg.isEmpty ? "unknown error" : msg
        switch status {
        case CYTO_TRUNCATED: return .truncated(path: name, format: format.rawValue, detail: detail)
        case CYTO_UNSUPPORTED: return .unsupportedPixelFormat(path: name, format: format.rawValue, detail: detail)
        case CYTO_TOO_LARGE: return .tooLarge(path: name, detail: detail)
        case CYTO_NO_MEMORY: return .unreadable(path: name, reason: "out of memory: \(detail)")
        default: return .corrupt(path: name, format: format.rawValue, detail: detail)
        }
    }
}
