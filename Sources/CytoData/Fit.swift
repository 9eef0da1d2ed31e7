/// How an image whose size differs from the model input is brought to that size.
///
/// Real sets mix sizes (ten ALL-IDB2 images are narrower than 257 on one side)
/// and the network needs one input size, so every image passes through
/// `fitImage`. Stretching changes a cell's shape, which is a class cue; padding
/// keeps the shape, which is why `pad` is the default.
public enum FitPolicy: String, Sendable, CaseIterable, Codable {
    /// Stretch to the target size (aspect ratio not kept).
    case resize
    /// Pad the short side to the target's aspect ratio with the image's edge colour
    /// (the mean colour of its border pixels: smear background), then resize.
    case pad
    /// Cut the long side to the target's aspect ratio, centred, then resize.
    case crop
}

/// What `fitImage` did to one image, for the counts in load reports.
public enum FitAction: Sendable, Equatable {
    case unchanged, resized, padded, cropped
}

/// Brings `image` to `height` x `width` with `policy`; returns the action taken.
public func fitImage(_ image: RGBImage, height: Int, width: Int, policy: FitPolicy = .pad) -> (RGBImage, FitAction) {
    if image.width == width && image.height == height { return (image, .unchanged) }
    // Target aspect as a rational comparison: image.w / image.h vs width / height.
    let lhs = image.width * height, rhs = width * image.height
    switch policy {
    case .resize:
        return (resize(image, height: height, width: width), .resized)
    case .pad:
        if lhs == rhs { return (resize(image, height: height, width: width), .resized) }
        return (padResize(image, height: height, width: width), .padded)
    case .crop:
        if lhs == rhs { return (resize(image, height: height, width: width), .resized) }
        let cropped = cropToAspect(image, height: height, width: width)
        return (resize(cropped, height: height, width: width), .cropped)
    }
}

/// The mean colour of the outermost rows and columns.
public func edgeColour(_ image: RGBImage) -> (UInt8, UInt8, UInt8) {
    var sum = (0, 0, 0), n = 0
    func add(_ x: Int, _ y: Int) {
        let i = (y * image.width + x) * 3
        sum.0 += Int(image.pixels[i]); sum.1 += Int(image.pixels[i + 1]); sum.2 += Int(image.pixels[i + 2]); n += 1
    }
    guard image.width > 0 && image.height > 0 else { return (0, 0, 0) }
    for x in 0..<image.width { add(x, 0); if image.height > 1 { add(x, image.height - 1) } }
    if image.height > 2 { for y in 1..<(image.height - 1) { add(0, y); if image.width > 1 { add(image.width - 1, y) } } }
    return (UInt8((sum.0 + n / 2) / n), UInt8((sum.1 + n / 2) / n), UInt8((sum.2 + n / 2) / n))
}

/// The canvas `padToAspect` would make: its size and where the image sits on it.
func padCanvas(_ image: RGBImage, height: Int, width: Int) -> (width: Int, height: Int, x: Int, y: Int) {
    var newW = image.width, newH = image.height
    if image.width * height < width * image.height {
        newW = (image.height * width + height - 1) / height  // too narrow: widen
    } else {
        newH = (image.width * height + width - 1) / width  // too flat: heighten
    }
    return (newW, newH, (newW - image.width) / 2, (newH - image.height) / 2)
}

/// Pads symmetrically (the extra pixel goes to the bottom/right) to the aspect of
/// height x width. Materialises the canvas: for tests and small images only;
/// `fitImage` uses `padResize`, which never does.
func padToAspect(_ image: RGBImage, height: Int, width: Int) -> RGBImage {
    let c = padCanvas(image, height: height, width: width)
    var out = RGBImage(width: c.width, height: c.height, fill: edgeColour(image))
    image.pixels.withUnsafeBufferPointer { src in
        out.pixels.withUnsafeMutableBufferPointer { dst in
            for y in 0..<image.height {
                let s = y * image.width * 3, d = ((y + c.y) * c.width + c.x) * 3
                for k in 0..<(image.width * 3) { dst[d + k] = src[s + k] }
            }
        }
    }
    return out
}

/// `resize(padToAspect(image))` without the padded canvas: the resampler reads the
/// edge colour wherever the canvas lies outside the image, so memory stays
/// proportional to the image and the target (a 20000x1000 image padded to a square
/// would need 1.2 GB; a 1,000,000x1 one terabytes), and the result is the same to the bit.
func padResize(_ image: RGBImage, height: Int, width: Int) -> RGBImage {
    let c = padCanvas(image, height: height, width: width)
    return resample(
        image, canvasWidth: c.width, canvasHeight: c.height, x: c.x, y: c.y, fill: edgeColour(image),
        height: height, width: width)
}

/// Cuts the centre region with the aspect of height x width.
func cropToAspect(_ image: RGBImage, height: Int, width: Int) -> RGBImage {
    var newW = image.width, newH = image.height
    if image.width * height > width * image.height {
        newW = max(1, image.height * width / height)
    } else {
        newH = max(1, image.width * height / width)
    }
    let ox = (image.width - newW) / 2, oy = (image.height - newH) / 2
    var p = [UInt8](repeating: 0, count: newW * newH * 3)
    for y in 0..<newH {
        let s = ((y + oy) * image.width + ox) * 3
        p.replaceSubrange((y * newW * 3)..<((y + 1) * newW * 3), with: image.pixels[s..<(s + newW * 3)])
    }
    return RGBImage(width: newW, height: newH, pixels: p)
}

/// Bilinear resampling with pixel centres at half-integers (as PIL and OpenCV).
/// When shrinking, the triangle filter is widened by the scale factor (PIL's
/// antialiased "bilinear"), so that 400 -> 64 averages every source pixel
/// instead of sampling one in six and aliasing the chromatin texture.
public func resize(_ image: RGBImage, height: Int, width: Int) -> RGBImage {
    precondition(height > 0 && width > 0)
    if image.width == width && image.height == height { return image }
    return resample(
        image, canvasWidth: image.width, canvasHeight: image.height, x: 0, y: 0, fill: (0, 0, 0),
        height: height, width: width)
}

/// Resamples a virtual canvas of `canvasWidth` x `canvasHeight` pixels holding `image`
/// at (`x`, `y`) and `fill` everywhere else to `height` x `width`, never building the
/// canvas. Horizontal pass first, on the image's rows (a canvas row outside the
/// image is one constant row, computed once), then the vertical pass.
func resample(
    _ image: RGBImage, canvasWidth: Int, canvasHeight: Int, x ox: Int, y oy: Int,
    fill: (UInt8, UInt8, UInt8), height: Int, width: Int
) -> RGBImage {
    precondition(height > 0 && width > 0)
    let xw = filterWeights(source: canvasWidth, target: width)
    let yw = filterWeights(source: canvasHeight, target: height)
    let fillF: [Float] = [Float(fill.0), Float(fill.1), Float(fill.2)]
    let iw = image.width, ih = image.height
    // Horizontal pass: the image's rows (ih x width x 3 floats) plus the fill row.
    var tmp = [Float](repeating: 0, count: ih * width * 3)
    var fillRow = [Float](repeating: 0, count: width * 3)
    for x in 0..<width {
        var r: Float = 0, g: Float = 0, b: Float = 0
        for w in xw[x].1 { r += w * fillF[0]; g += w * fillF[1]; b += w * fillF[2] }
        fillRow[x * 3] = r; fillRow[x * 3 + 1] = g; fillRow[x * 3 + 2] = b
    }
    image.pixels.withUnsafeBufferPointer { src in
        tmp.withUnsafeMutableBufferPointer { dst in
            for y in 0..<ih {
                let row = y * iw * 3
                for x in 0..<width {
                    let (start, weights) = xw[x]
                    var r: Float = 0, g: Float = 0, b: Float = 0
                    var j = start - ox
                    for w in weights {
                        if j >= 0 && j < iw {
                            let i = row + j * 3
                            r += w * Float(src[i]); g += w * Float(src[i + 1]); b += w * Float(src[i + 2])
                        } else {
                            r += w * fillF[0]; g += w * fillF[1]; b += w * fillF[2]
                        }
                        j += 1
                    }
                    let o = (y * width + x) * 3
                    dst[o] = r; dst[o + 1] = g; dst[o + 2] = b
                }
            }
        }
    }
    var out = [UInt8](repeating: 0, count: height * width * 3)
    tmp.withUnsafeBufferPointer { src in
        fillRow.withUnsafeBufferPointer { fr in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<height {
                    let (start, weights) = yw[y]
                    let o = y * width * 3
                    for k in 0..<(width * 3) {
                        var acc: Float = 0
                        var j = start - oy
                        for w in weights {
                            acc += w * (j >= 0 && j < ih ? src[j * width * 3 + k] : fr[k])
                            j += 1
                        }
                        dst[o + k] = UInt8(max(0, min(255, acc + 0.5)))
                    }
                }
            }
        }
    }
    return RGBImage(width: width, height: height, pixels: out)
}

/// Sizes `fitImage` refuses before any pixel is decoded: a cell image is roughly
/// square, so a very long thin one is a damaged or wrong file, and resampling it
/// would cost time and memory out of all proportion.
public enum FitLimits {
    /// Longest side over shortest side.
    public static let maxAspectRatio = 32

    /// Throws `DataError.tooLarge` naming `path` when `width` x `height` is absurd.
    public static func check(width: Int, height: Int, path: String) throws {
        guard width > 0, height > 0 else {
            throw DataError.corrupt(path: path, format: "image", detail: "the image is \(width)x\(height) pixels")
        }
        let long = max(width, height), short = min(width, height)
        if long > short * maxAspectRatio {
            throw DataError.tooLarge(
                path: path,
                detail: "\(width)x\(height) pixels: an aspect ratio above \(maxAspectRatio):1 "
                    + "is not a single-cell image (refused before decoding)")
        }
    }
}

/// For each output index: the first source index and the normalised weights.
private func filterWeights(source: Int, target: Int) -> [(Int, [Float])] {
    let scale = Double(source) / Double(target)
    let support = max(scale, 1.0)  // triangle half-width in source pixels
    var result: [(Int, [Float])] = []
    result.reserveCapacity(target)
    for i in 0..<target {
        let centre = (Double(i) + 0.5) * scale
        var lo = Int((centre - support).rounded(.down))
        var hi = Int((centre + support).rounded(.up))
        lo = max(lo, 0); hi = min(hi, source)
        var ws: [Float] = []
        var total = 0.0
        for j in lo..<max(hi, lo + 1) {
            let d = abs((Double(j) + 0.5 - centre) / support)
            let w = max(0, 1 - d)
            ws.append(Float(w)); total += w
        }
        if total <= 0 {  // degenerate: nearest pixel
            let j = min(source - 1, max(0, Int(centre)))
            result.append((j, [1])); continue
        }
        // trim zero weights at both ends
        var start = lo
        while ws.count > 1 && ws.first == 0 { ws.removeFirst(); start += 1 }
        while ws.count > 1 && ws.last == 0 { ws.removeLast() }
        result.append((start, ws.map { $0 / Float(total) }))
    }
    return result
}
