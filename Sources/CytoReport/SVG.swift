import Foundation

// A small, dependency-free SVG toolkit: escaping, a colour-blind-safe palette, nice
// axis ticks, and a canvas that collects SVG elements into one self-contained string.

/// Escapes `&`, `<`, `>`, `"` and `'` for XML / HTML text and attribute values, and drops
/// control characters that XML 1.0 forbids.
public func escapeXML(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for u in s.unicodeScalars {
        switch u {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        case "\t", "\n", "\r": out.unicodeScalars.append(u)
        default:
            if u.value < 0x20 || u.value == 0xFFFE || u.value == 0xFFFF { continue }
            out.unicodeScalars.append(u)
        }
    }
    return out
}

/// Colours that stay distinguishable with the common colour-vision deficiencies
/// (Okabe & Ito 2008), ordered so the first few contrast best on white.
public enum Palette {
    public static let okabeIto: [String] = [
        "#0072B2",  // blue
        "#E69F00",  // orange
        "#009E73",  // bluish green
        "#D55E00",  // vermillion
        "#CC79A7",  // reddish purple
        "#56B4E9",  // sky blue
        "#000000",  // black
        "#F0E442",  // yellow (last: weak on white)
    ]
    /// The i-th categorical colour (cycles after 8; use `marker(i)` to tell cycles apart).
    public static func color(_ i: Int) -> String { okabeIto[((i % okabeIto.count) + okabeIto.count) % okabeIto.count] }
    /// Marker shape for category i: circles for the first 8 colours, then squares, triangles, diamonds.
    public static func marker(_ i: Int) -> MarkerShape { MarkerShape.allCases[(max(i, 0) / okabeIto.count) % MarkerShape.allCases.count] }

    /// ColorBrewer "Blues", a sequential map readable in grey scale and by colour-blind readers.
    static let blues: [(Double, Double, Double)] = [
        (247, 251, 255), (222, 235, 247), (198, 219, 239), (158, 202, 225), (107, 174, 214),
        (66, 146, 198), (33, 113, 181), (8, 81, 156), (8, 48, 107),
    ]
    /// Sequential colour for `t` in [0, 1] (white to dark blue).
    public static func sequential(_ t: Double) -> String {
        let x = (t.isFinite ? min(max(t, 0), 1) : 0) * Double(blues.count - 1)
        let i = min(Int(x), blues.count - 2), f = x - Double(i)
        let a = blues[i], b = blues[i + 1]
        func c(_ u: Double, _ v: Double) -> Int { Int((u + (v - u) * f).rounded()) }
        return String(format: "#%02X%02X%02X", c(a.0, b.0), c(a.1, b.1), c(a.2, b.2))
    }
}

public enum MarkerShape: CaseIterable, Sendable { case circle, square, triangle, diamond }

/// How values map onto an axis.
public enum AxisScale: Sendable, Equatable { case linear, log10 }

/// Tick positions and labels.
public enum Ticks {
    /// A "nice" number near `x` (1, 2, 2.5 or 5 times a power of ten): rounded to the
    /// nearest when `round`, else the smallest nice number >= x.
    public static func niceNumber(_ x: Double, round: Bool) -> Double {
        guard x > 0, x.isFinite else { return 1 }
        let e = floor(Foundation.log10(x))
        let f = x / pow(10, e)
        let nf: Double
        if round {
            nf = f < 1.5 ? 1 : f < 2.25 ? 2 : f < 3.5 ? 2.5 : f < 7.5 ? 5 : 10
        } else {
            nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10
        }
        return nf * pow(10, e)
    }

    /// Evenly spaced nice ticks covering [lo, hi] (the first <= lo, the last >= hi),
    /// about `target` of them. A degenerate range is widened around its value.
    public static func linear(_ lo: Double, _ hi: Double, target: Int = 6) -> [Double] {
        var lo = lo, hi = hi
        if !lo.isFinite || !hi.isFinite { lo = 0; hi = 1 }
        if lo > hi { swap(&lo, &hi) }
        if hi - lo < 1e-12 * max(1, abs(lo)) {
            let pad = lo == 0 ? 1 : abs(lo) * 0.1
            lo -= pad; hi += pad
        }
        let step = niceNumber((hi - lo) / Double(max(target - 1, 1)), round: true)
        let first = floor(lo / step + 1e-9) * step, last = ceil(hi / step - 1e-9) * step
        let count = Int(((last - first) / step).rounded()) + 1
        // Snap to the step's decimals so 3 × 0.2 is 0.6, not 0.6000000000000001.
        let scale = pow(10, Double(decimalsNeeded(step)))
        return (0..<count).map { k in
            let v = ((first + Double(k) * step) * scale).rounded() / scale
            return v == 0 ? 0 : v
        }
    }

    /// Ticks for a log10 axis within [lo, hi] (both > 0): powers of ten, plus 2× and 5×
    /// when the range spans three decades or fewer.
    public static func log10(_ lo: Double, _ hi: Double) -> [Double] {
        guard lo > 0, hi >= lo else { return [] }
        let e0 = Int(floor(Foundation.log10(lo))), e1 = Int(ceil(Foundation.log10(hi)))
        let mult: [Double] = (e1 - e0) <= 3 ? [1, 2, 5] : [1]
        var out: [Double] = []
        for e in e0...e1 {
            for m in mult {
                let v = m * pow(10, Double(e))
                if v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9) { out.append(v) }
            }
        }
        return out
    }

    /// Labels with just enough decimals to tell the ticks apart.
    public static func labels(_ ticks: [Double]) -> [String] {
        guard ticks.count > 1 else { return ticks.map { format($0, decimals: decimalsNeeded($0)) } }
        var d = 0
        for t in ticks { d = max(d, decimalsNeeded(t)) }
        return ticks.map { format($0, decimals: d) }
    }

    static func decimalsNeeded(_ v: Double) -> Int {
        for d in 0...8 {
            let s = pow(10, Double(d)) * v
            if abs(s - s.rounded()) < 1e-6 * max(1, abs(s)) { return d }
        }
        return 8
    }

    static func format(_ v: Double, decimals: Int) -> String {
        let s = String(format: "%.\(decimals)f", v)
        return s == "-0" || s.hasPrefix("-0.") && Double(s) == 0 ? String(s.dropFirst()) : s
    }
}

/// Formats a coordinate compactly for SVG (two decimals, no trailing zeros).
@inline(__always) func fmt(_ v: Double) -> String {
    guard v.isFinite else { return "0" }
    var s = String(format: "%.2f", v)
    if s.contains(".") {
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
    }
    return s == "-0" ? "0" : s
}

/// Collects SVG elements; `svg` gives a standalone document (with the XML namespace)
/// that can be inlined into HTML or saved as a `.svg` file.
public struct SVGCanvas {
    public var width: Double
    public var height: Double
    public var fontFamily = "DejaVu Sans, Helvetica, Arial, sans-serif"
    /// Accessible title (also shown as a tooltip).
    public var title: String?
    var elements: [String] = []

    public init(width: Double, height: Double, title: String? = nil) {
        self.width = width; self.height = height; self.title = title
    }

    public mutating func raw(_ element: String) { elements.append(element) }

    public mutating func line(
        _ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double,
        stroke: String = "#000", width: Double = 1, dash: String? = nil, opacity: Double = 1
    ) {
        var s =
            "<line x1=\"\(fmt(x1))\" y1=\"\(fmt(y1))\" x2=\"\(fmt(x2))\" y2=\"\(fmt(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(fmt(width))\""
        if let dash { s += " stroke-dasharray=\"\(dash)\"" }
        if opacity < 1 { s += " stroke-opacity=\"\(fmt(opacity))\"" }
        elements.append(s + "/>")
    }

    public mutating func rect(
        _ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String = "none",
        stroke: String? = nil, strokeWidth: Double = 1, opacity: Double = 1, tooltip: String? = nil
    ) {
        var s = "<rect x=\"\(fmt(x))\" y=\"\(fmt(y))\" width=\"\(fmt(max(w, 0)))\" height=\"\(fmt(max(h, 0)))\" fill=\"\(fill)\""
        if let stroke { s += " stroke=\"\(stroke)\" stroke-width=\"\(fmt(strokeWidth))\"" }
        if opacity < 1 { s += " fill-opacity=\"\(fmt(opacity))\"" }
        if let tooltip { elements.append(s + "><title>\(escapeXML(tooltip))</title></rect>") } else { elements.append(s + "/>") }
    }

    public mutating func circle(_ cx: Double, _ cy: Double, r: Double, fill: String, stroke: String? = nil, opacity: Double = 1) {
        var s = "<circle cx=\"\(fmt(cx))\" cy=\"\(fmt(cy))\" r=\"\(fmt(r))\" fill=\"\(fill)\""
        if let stroke { s += " stroke=\"\(stroke)\"" }
        if opacity < 1 { s += " fill-opacity=\"\(fmt(opacity))\"" }
        elements.append(s + "/>")
    }

    /// A marker of the given shape centred on (x, y), `r` its radius.
    public mutating func marker(
        _ shape: MarkerShape, _ x: Double, _ y: Double, r: Double, fill: String,
        stroke: String? = nil, opacity: Double = 1
    ) {
        let extra = opacity < 1 ? " fill-opacity=\"\(fmt(opacity))\"" : ""
        let strokeAttr = stroke.map { " stroke=\"\($0)\"" } ?? ""
        switch shape {
        case .circle: circle(x, y, r: r, fill: fill, stroke: stroke, opacity: opacity)
        case .square:
            let h = r * 0.9
            elements.append(
                "<rect x=\"\(fmt(x - h))\" y=\"\(fmt(y - h))\" width=\"\(fmt(2 * h))\" height=\"\(fmt(2 * h))\" fill=\"\(fill)\"\(strokeAttr)\(extra)/>"
            )
        case .triangle:
            let h = r * 1.2
            polygon([(x, y - h), (x + h * 0.866, y + h * 0.5), (x - h * 0.866, y + h * 0.5)], fill: fill, stroke: stroke, extra: extra)
        case .diamond:
            let h = r * 1.25
            polygon([(x, y - h), (x + h, y), (x, y + h), (x - h, y)], fill: fill, stroke: stroke, extra: extra)
        }
    }

    public mutating func polyline(_ pts: [(Double, Double)], stroke: String, width: Double = 2, dash: String? = nil) {
        let finite = pts.filter { $0.0.isFinite && $0.1.isFinite }
        guard finite.count >= 2 else { return }
        let p = finite.map { "\(fmt($0.0)),\(fmt($0.1))" }.joined(separator: " ")
        var s =
            "<polyline points=\"\(p)\" fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"\(fmt(width))\" stroke-linejoin=\"round\" stroke-linecap=\"round\""
        if let dash { s += " stroke-dasharray=\"\(dash)\"" }
        elements.append(s + "/>")
    }

    public mutating func polygon(_ pts: [(Double, Double)], fill: String, stroke: String? = nil, opacity: Double = 1, extra: String = "") {
        let p = pts.filter { $0.0.isFinite && $0.1.isFinite }.map { "\(fmt($0.0)),\(fmt($0.1))" }.joined(separator: " ")
        var s = "<polygon points=\"\(p)\" fill=\"\(fill)\" stroke=\"\(stroke ?? "none")\""
        if opacity < 1 { s += " fill-opacity=\"\(fmt(opacity))\"" }
        elements.append(s + extra + "/>")
    }

    public enum Anchor: String { case start, middle, end }

    /// Text with its baseline at y (or its centre, when `middle` is true); escaped.
    public mutating func text(
        _ x: Double, _ y: Double, _ string: String, size: Double = 13, anchor: Anchor = .start,
        weight: String? = nil, fill: String = "#222", rotate: Double? = nil, middle: Bool = false
    ) {
        var s = "<text x=\"\(fmt(x))\" y=\"\(fmt(y))\" font-size=\"\(fmt(size))\""
        if anchor != .start { s += " text-anchor=\"\(anchor.rawValue)\"" }
        if middle { s += " dominant-baseline=\"central\"" }
        if let weight { s += " font-weight=\"\(weight)\"" }
        if fill != "#222" { s += " fill=\"\(fill)\"" }
        if let rotate { s += " transform=\"rotate(\(fmt(rotate)) \(fmt(x)) \(fmt(y)))\"" }
        elements.append(s + ">\(escapeXML(string))</text>")
    }

    /// The standalone SVG document.
    public var svg: String {
        var s =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(fmt(width))\" height=\"\(fmt(height))\" viewBox=\"0 0 \(fmt(width)) \(fmt(height))\" font-family=\"\(escapeXML(fontFamily))\" fill=\"#222\">\n"
        if let title { s += "<title>\(escapeXML(title))</title>\n" }
        s += "<rect x=\"0\" y=\"0\" width=\"\(fmt(width))\" height=\"\(fmt(height))\" fill=\"#fff\"/>\n"
        s += elements.joined(separator: "\n")
        return s + "\n</svg>\n"
    }
}

/// Rough width of `s` in pixels at `size` (DejaVu Sans averages ~0.6 em per character).
func textWidth(_ s: String, size: Double) -> Double { Double(s.count) * size * 0.6 }
