import CytoCore
import Foundation

/// An RGB8 picture as plain pixels (row-major, 3 bytes per pixel), so CytoExplain needs
/// no image codec; the command encodes it as PNG.
public struct RGBPixels: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGBPixels: \(pixels.count) bytes for \(width)x\(height)")
        self.width = width; self.height = height; self.pixels = pixels
    }

    public init(width: Int, height: Int, fill: UInt8 = 255) {
        self.init(width: width, height: height, pixels: [UInt8](repeating: fill, count: width * height * 3))
    }
}

/// Colour maps for heatmaps.
public enum Colormap: String, Sendable, CaseIterable {
    /// Sequential, dark to bright (an inferno-like ramp), for non-negative maps (saliency).
    case sequential
    /// Diverging blue-white-red, symmetric about zero, for signed maps (LRP).
    case diverging

    static let inferno: [(Double, Double, Double)] = [
        (0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99), (212, 72, 66),
        (245, 125, 21), (250, 193, 39), (252, 255, 164),
    ]
    static let blueWhiteRed: [(Double, Double, Double)] = [
        (5, 48, 97), (33, 102, 172), (146, 197, 222), (255, 255, 255),
        (244, 165, 130), (178, 24, 43), (103, 0, 31),
    ]

    /// Colour of `t` in [0, 1] (diverging: 0.5 is white, i.e. a value of zero).
    public func color(_ t: Double) -> (UInt8, UInt8, UInt8) {
        let stops = self == .sequential ? Colormap.inferno : Colormap.blueWhiteRed
        let u = min(max(t.isFinite ? t : 0.5, 0), 1) * Double(stops.count - 1)
        let i = min(Int(u), stops.count - 2)
        let f = u - Double(i)
        let a = stops[i], b = stops[i + 1]
        func mix(_ x: Double, _ y: Double) -> UInt8 { UInt8(max(0, min(255, (x + (y - x) * f).rounded()))) }
        return (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }
}

/// Rendering of explanation maps: colour-mapped heatmaps, overlays and panels.
public enum Heatmap {
    /// The default scale of a map: max |v| (1 when the map is all zeros).
    public static func scale(of map: [Float]) -> Float {
        let m = map.reduce(Float(0)) { max($0, abs($1).isFinite ? abs($1) : 0) }
        return m > 0 ? m : 1
    }

    /// Normalised position of every value on the colour map: sequential v / scale,
    /// diverging 0.5 + v / (2 scale) (so zero is white and +-scale the ends).
    static func positions(_ map: [Float], colormap: Colormap, scale: Float?) -> [Double] {
        let s = Double(scale ?? Heatmap.scale(of: map))
        switch colormap {
        case .sequential: return map.map { Double($0) / s }
        case .diverging: return map.map { 0.5 + Double($0) / (2 * s) }
        }
    }

    /// The map ([height * width]) as a colour image.
    public static func colorize(
        _ map: [Float], width: Int, height: Int, colormap: Colormap,
        scale: Float? = nil
    ) -> RGBPixels {
        precondition(map.count == width * height)
        var out = [UInt8](repeating: 0, count: map.count * 3)
        for (k, t) in positions(map, colormap: colormap, scale: scale).enumerated() {
            let c = colormap.color(t)
            out[3 * k] = c.0; out[3 * k + 1] = c.1; out[3 * k + 2] = c.2
        }
        return RGBPixels(width: width, height: height, pixels: out)
    }

    /// The map blended over a greyed copy of the image: each pixel's opacity grows with
    /// |v| / scale up to `maxAlpha`, so unimportant regions show the cell itself.
    public static func overlay(
        _ map: [Float], on image: RGBPixels, colormap: Colormap,
        scale: Float? = nil, maxAlpha: Double = 0.75
    ) -> RGBPixels {
        precondition(map.count == image.width * image.height)
        let s = Double(scale ?? Heatmap.scale(of: map))
        let pos = positions(map, colormap: colormap, scale: scale)
        var out = image.pixels
        for k in 0..<map.count {
            let r = Double(image.pixels[3 * k]), g = Double(image.pixels[3 * k + 1]), b = Double(image.pixels[3 * k + 2])
            let grey = 0.6 * (0.299 * r + 0.587 * g + 0.114 * b) + 0.4 * 255
            let alpha = maxAlpha * min(1, abs(Double(map[k])) / s)
            let c = colormap.color(pos[k])
            out[3 * k] = UInt8(max(0, min(255, ((1 - alpha) * grey + alpha * Double(c.0)).rounded())))
            out[3 * k + 1] = UInt8(max(0, min(255, ((1 - alpha) * grey + alpha * Double(c.1)).rounded())))
            out[3 * k + 2] = UInt8(max(0, min(255, ((1 - alpha) * grey + alpha * Double(c.2)).rounded())))
        }
        return RGBPixels(width: image.width, height: image.height, pixels: out)
    }

    /// Lays out tiles in a grid (`rows[r][c]`), top-left aligned in equal cells of the
    /// largest tile size, separated by `gap` pixels of `background`. Missing tiles stay blank.
    public static func panel(_ rows: [[RGBPixels?]], gap: Int = 6, background: UInt8 = 255) -> RGBPixels {
        let tiles = rows.flatMap { $0 }.compactMap { $0 }
        let cw = tiles.map(\.width).max() ?? 1, ch = tiles.map(\.height).max() ?? 1
        let cols = rows.map(\.count).max() ?? 1
        let width = cols * cw + (cols + 1) * gap, height = rows.count * ch + (rows.count + 1) * gap
        var out = RGBPixels(width: width, height: height, fill: background)
        for (r, row) in rows.enumerated() {
            for (c, tile) in row.enumerated() {
                guard let t = tile else { continue }
                let x0 = gap + c * (cw + gap), y0 = gap + r * (ch + gap)
                for y in 0..<t.height {
                    let src = y * t.width * 3, dst = ((y0 + y) * width + x0) * 3
                    out.pixels.replaceSubrange(dst..<dst + t.width * 3, with: t.pixels[src..<src + t.width * 3])
                }
            }
        }
        return out
    }
}

/// NumPy `.npy` files (format version 1.0).
public enum NPY {
    /// A little-endian float32 array of the given shape, C order.
    public static func encode(_ values: [Float], shape: [Int]) -> Data {
        precondition(shape.reduce(1, *) == values.count, "npy: \(values.count) values for shape \(shape)")
        let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(dims), }"
        // magic (6) + version (2) + length (2) + header + "\n", padded to a multiple of 64.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let n = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(n & 0xff), UInt8(n >> 8)])
        data.append(contentsOf: Array(header.utf8))
        var bytes = [UInt8](repeating: 0, count: values.count * 4)
        for (i, v) in values.enumerated() {
            let b = v.bitPattern.littleEndian
            bytes[4 * i] = UInt8(b & 0xff); bytes[4 * i + 1] = UInt8((b >> 8) & 0xff)
            bytes[4 * i + 2] = UInt8((b >> 16) & 0xff); bytes[4 * i + 3] = UInt8(b >> 24)
        }
        data.append(contentsOf: bytes)
        return data
    }

    public static func write(_ values: [Float], shape: [Int], to url: URL) throws {
        try writeAtomically(encode(values, shape: shape), to: url)
    }

    /// Reads back a float32 little-endian C-order file written by `encode` (or NumPy).
    public static func decode(_ data: Data) throws -> (shape: [Int], values: [Float]) {
        let b = [UInt8](data)
        guard b.count >= 10, b[0] == 0x93, Array(b[1..<6]) == Array("NUMPY".utf8), b[6] == 1 else {
            throw CocoaError(.fileReadCorruptFile)
        }
        let n = Int(b[8]) | Int(b[9]) << 8
        guard b.count >= 10 + n, let header = String(bytes: b[10..<10 + n], encoding: .ascii),
            header.contains("'descr': '<f4'"), header.contains("'fortran_order': False"),
            let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")")
        else { throw CocoaError(.fileReadCorruptFile) }
        let shape = header[open.upperBound..<close].split(separator: ",")
            .compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let count = shape.reduce(1, *)
        guard b.count == 10 + n + 4 * count else { throw CocoaError(.fileReadCorruptFile) }
        var values = [Float](repeating: 0, count: count)
        for i in 0..<count {
            let o = 10 + n + 4 * i
            values[i] = Float(bitPattern: UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24)
        }
        return (shape, values)
    }
}
