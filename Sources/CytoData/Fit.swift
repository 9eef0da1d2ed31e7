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
        let padded = padToAspect(image, height: height, width: width)
        return (resize(padded, height: height, width: width), .padded)
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

/// Pads symmetrically (the extra pixel goes to the bottom/right) to the aspect of height x width.
func padToAspect(_ image: RGBImage, height: Int, width: Int) -> RGBImage {
    var newW = image.width, newH = image.height
    if image.width * height < width * image.height {
        newW = (image.height * width + height - 1) / height    // too narrow: widen
    } else {
        newH = (image.width * height + width - 1) / width      // too flat: heighten
    }
    var out = RGBImage(width: newW, height: newH, fill: edgeColour(image))
    let ox = (newW - image.width) / 2, oy = (newH - image.height) / 2
    image.pixels.withUnsafeBufferPointer { src in
        out.pixels.withUnsafeMutableBufferPointer { dst in
            for y in 0..<image.height {
                let s = y * image.width * 3, d = ((y + oy) * newW + ox) * 3
                for k in 0..<(image.width * 3) { dst[d + k] = src[s + k] }
            }
        }
    }
    return out
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
    let xw = filterWeights(source: image.width, target: width)
    let yw = filterWeights(source: image.height, target: height)
    // Horizontal pass: image.height x width x 3 floats.
    var tmp = [Float](repeating: 0, count: image.height * width * 3)
    image.pixels.withUnsafeBufferPointer { src in
        tmp.withUnsafeMutableBufferPointer { dst in
            for y in 0..<image.height {
                let row = y * image.width * 3
                for x in 0..<width {
                    let (start, weights) = xw[x]
                    var r: Float = 0, g: Float = 0, b: Float = 0
                    var i = row + start * 3
                    for w in weights {
                        r += w * Float(src[i]); g += w * Float(src[i + 1]); b += w * Float(src[i + 2])
                        i += 3
                    }
                    let o = (y * width + x) * 3
                    dst[o] = r; dst[o + 1] = g; dst[o + 2] = b
                }
            }
        }
    }
    var out = [UInt8](repeating: 0, count: height * width * 3)
    tmp.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
            for y in 0..<height {
                let (start, weights) = yw[y]
                let o = y * width * 3
                for k in 0..<(width * 3) {
                    var acc: Float = 0
                    var i = start * width * 3 + k
                    for w in weights { acc += w * src[i]; i += width * 3 }
                    dst[o + k] = UInt8(max(0, min(255, acc + 0.5)))
                }
            }
        }
    }
    return RGBImage(width: width, height: height, pixels: out)
}

/// For each output index: the first source index and the normalised weights.
private func filterWeights(source: Int, target: Int) -> [(Int, [Float])] {
    let scale = Double(source) / Double(target)
    let support = max(scale, 1.0)   // triangle half-width in source pixels
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
