import CytoSupport
import Foundation

/// An RGB colour in 0...255 floats.
struct Colour {
    var r: Float, g: Float, b: Float
    init(_ r: Float, _ g: Float, _ b: Float) { self.r = r; self.g = g; self.b = b }
    func scaled(_ s: Colour) -> Colour { Colour(r * s.r, g * s.g, b * s.b) }
    func mix(_ o: Colour, _ t: Float) -> Colour { Colour(r + (o.r - r) * t, g + (o.g - g) * t, b + (o.b - b) * t) }
}

/// The nucleus shape families.
enum NucleusShape {
    case round  // round to oval, maybe eccentric
    case lobes(ClosedRange<Int>)  // segmented: a chain of lobes joined by thin strands
    case band  // C-shaped band
    case kidney  // indented (notch)
    case folded  // kidney with a fold line (monocyte)
    case smudge  // smeared, irregular, no cytoplasm
}

/// The morphology of one cell type, in fractions of the image size (at zoom 1).
struct CellRecipe {
    var cellRadius: ClosedRange<Float>
    var shape: NucleusShape
    var nucleusRatio: ClosedRange<Float>  // nucleus radius / cell radius
    var eccentricity: ClosedRange<Float>  // nucleus offset / cell radius
    var nucleusColour: Colour
    var chromatinPeriod: Float  // texture cell size in px at 400 (fine 3, coarse 8)
    var chromatinContrast: Float
    var nucleoli: ClosedRange<Int>
    var cytoplasm: Colour
    var granules: ClosedRange<Int> = 0...0
    var granuleColour = Colour(0, 0, 0)
    var granuleRadius: Float = 1.2  // px at 400
    var granulesOverNucleus = false
    var vacuoles: ClosedRange<Int> = 0...0

    static func recipe(for kind: CellKind) -> CellRecipe {
        switch kind {
        case .myeloblast:
            return CellRecipe(
                cellRadius: 0.15...0.18, shape: .round, nucleusRatio: 0.78...0.86, eccentricity: 0...0.08,
                nucleusColour: Colour(150, 102, 172), chromatinPeriod: 2.5, chromatinContrast: 0.14,
                nucleoli: 1...3, cytoplasm: Colour(112, 138, 202), granules: 0...5,
                granuleColour: Colour(180, 70, 140), granuleRadius: 1.0)
        case .monoblast:
            return CellRecipe(
                cellRadius: 0.17...0.20, shape: .round, nucleusRatio: 0.74...0.82, eccentricity: 0.02...0.1,
                nucleusColour: Colour(158, 112, 178), chromatinPeriod: 2.8, chromatinContrast: 0.12,
                nucleoli: 1...2, cytoplasm: Colour(138, 150, 204), vacuoles: 0...3)
        case .lymphoblast:
            return CellRecipe(
                cellRadius: 0.13...0.16, shape: .round, nucleusRatio: 0.82...0.9, eccentricity: 0...0.06,
                nucleusColour: Colour(145, 98, 172), chromatinPeriod: 2.5, chromatinContrast: 0.14,
                nucleoli: 1...2, cytoplasm: Colour(118, 140, 206))
        case .lymphocyte:
            return CellRecipe(
                cellRadius: 0.095...0.115, shape: .round, nucleusRatio: 0.8...0.88, eccentricity: 0.04...0.12,
                nucleusColour: Colour(72, 36, 108), chromatinPeriod: 7, chromatinContrast: 0.35,
                nucleoli: 0...0, cytoplasm: Colour(150, 186, 230))
        case .atypicalLymphocyte:
            return CellRecipe(
                cellRadius: 0.13...0.16, shape: .kidney, nucleusRatio: 0.58...0.7, eccentricity: 0.1...0.2,
                nucleusColour: Colour(92, 52, 128), chromatinPeriod: 6, chromatinContrast: 0.3,
                nucleoli: 0...0, cytoplasm: Colour(96, 122, 202))
        case .segmentedNeutrophil:
            return CellRecipe(
                cellRadius: 0.14...0.16, shape: .lobes(3...5), nucleusRatio: 0.25...0.3, eccentricity: 0...0.05,
                nucleusColour: Colour(86, 44, 120), chromatinPeriod: 6, chromatinContrast: 0.3,
                nucleoli: 0...0, cytoplasm: Colour(226, 202, 220), granules: 60...120,
                granuleColour: Colour(200, 150, 192), granuleRadius: 0.9)
        case .bandNeutrophil:
            return CellRecipe(
                cellRadius: 0.14...0.16, shape: .band, nucleusRatio: 0.16...0.2, eccentricity: 0...0.05,
                nucleusColour: Colour(88, 46, 122), chromatinPeriod: 6, chromatinContrast: 0.3,
                nucleoli: 0...0, cytoplasm: Colour(226, 200, 218), granules: 60...120,
                granuleColour: Colour(200, 150, 192), granuleRadius: 0.9)
        case .eosinophil:
            return CellRecipe(
                cellRadius: 0.15...0.17, shape: .lobes(2...2), nucleusRatio: 0.3...0.34, eccentricity: 0...0.05,
                nucleusColour: Colour(92, 50, 126), chromatinPeriod: 6, chromatinContrast: 0.28,
                nucleoli: 0...0, cytoplasm: Colour(236, 176, 146), granules: 220...320,
                granuleColour: Colour(226, 118, 58), granuleRadius: 1.7)
        case .basophil:
            return CellRecipe(
                cellRadius: 0.13...0.15, shape: .lobes(2...3), nucleusRatio: 0.28...0.32, eccentricity: 0...0.05,
                nucleusColour: Colour(104, 62, 142), chromatinPeriod: 6, chromatinContrast: 0.2,
                nucleoli: 0...0, cytoplasm: Colour(202, 172, 212), granules: 60...95,
                granuleColour: Colour(52, 22, 86), granuleRadius: 2.3, granulesOverNucleus: true)
        case .monocyte:
            return CellRecipe(
                cellRadius: 0.18...0.22, shape: .folded, nucleusRatio: 0.58...0.66, eccentricity: 0.08...0.16,
                nucleusColour: Colour(132, 96, 166), chromatinPeriod: 4, chromatinContrast: 0.2,
                nucleoli: 0...0, cytoplasm: Colour(176, 172, 202), granules: 10...30,
                granuleColour: Colour(190, 150, 196), granuleRadius: 0.8, vacuoles: 2...6)
        case .promyelocyte:
            return CellRecipe(
                cellRadius: 0.18...0.21, shape: .round, nucleusRatio: 0.55...0.64, eccentricity: 0.15...0.25,
                nucleusColour: Colour(130, 86, 160), chromatinPeriod: 3.5, chromatinContrast: 0.16,
                nucleoli: 0...2, cytoplasm: Colour(150, 152, 206), granules: 60...120,
                granuleColour: Colour(150, 40, 112), granuleRadius: 1.5)
        case .bilobedPromyelocyte:
            return CellRecipe(
                cellRadius: 0.18...0.21, shape: .lobes(2...2), nucleusRatio: 0.34...0.38, eccentricity: 0.05...0.12,
                nucleusColour: Colour(128, 84, 158), chromatinPeriod: 3.5, chromatinContrast: 0.16,
                nucleoli: 0...0, cytoplasm: Colour(160, 150, 204), granules: 80...140,
                granuleColour: Colour(150, 40, 112), granuleRadius: 1.5)
        case .myelocyte:
            return CellRecipe(
                cellRadius: 0.16...0.18, shape: .round, nucleusRatio: 0.55...0.62, eccentricity: 0.15...0.25,
                nucleusColour: Colour(104, 64, 140), chromatinPeriod: 5, chromatinContrast: 0.26,
                nucleoli: 0...0, cytoplasm: Colour(216, 186, 206), granules: 40...80,
                granuleColour: Colour(190, 128, 170), granuleRadius: 1.0)
        case .metamyelocyte:
            return CellRecipe(
                cellRadius: 0.15...0.17, shape: .kidney, nucleusRatio: 0.5...0.58, eccentricity: 0.1...0.2,
                nucleusColour: Colour(94, 54, 128), chromatinPeriod: 5.5, chromatinContrast: 0.28,
                nucleoli: 0...0, cytoplasm: Colour(222, 196, 214), granules: 40...80,
                granuleColour: Colour(196, 144, 184), granuleRadius: 0.9)
        case .erythroblast:
            return CellRecipe(
                cellRadius: 0.09...0.12, shape: .round, nucleusRatio: 0.55...0.68, eccentricity: 0...0.12,
                nucleusColour: Colour(50, 24, 74), chromatinPeriod: 6, chromatinContrast: 0.3,
                nucleoli: 0...0, cytoplasm: Colour(176, 148, 186))
        case .smudgeCell:
            return CellRecipe(
                cellRadius: 0.16...0.22, shape: .smudge, nucleusRatio: 0.9...1.0, eccentricity: 0...0.1,
                nucleusColour: Colour(168, 122, 192), chromatinPeriod: 5, chromatinContrast: 0.3,
                nucleoli: 0...0, cytoplasm: Colour(0, 0, 0))
        }
    }
}

/// Smooth value noise on a grid, for chromatin and boundary wobble.
struct ValueNoise {
    let cell: Float
    let gw: Int, gh: Int
    var grid: [Float]

    init(width: Float, height: Float, cell: Float, rng: inout SeededGenerator) {
        self.cell = max(cell, 0.5)
        gw = Int(width / self.cell) + 3; gh = Int(height / self.cell) + 3
        grid = (0..<(gw * gh)).map { _ in rng.nextUnitFloat() }
    }

    /// In [0, 1]; (x, y) relative to the noise origin, >= 0.
    @inline(__always) func sample(_ x: Float, _ y: Float) -> Float {
        let fx = max(0, x / cell), fy = max(0, y / cell)
        let ix = min(Int(fx), gw - 2), iy = min(Int(fy), gh - 2)
        var tx = fx - Float(ix), ty = fy - Float(iy)
        tx = min(1, tx); ty = min(1, ty)
        tx = tx * tx * (3 - 2 * tx); ty = ty * ty * (3 - 2 * ty)
        return grid.withUnsafeBufferPointer { g in
            let a = g[iy * gw + ix], b = g[iy * gw + ix + 1], c = g[(iy + 1) * gw + ix], d = g[(iy + 1) * gw + ix + 1]
            let top = a + (b - a) * tx, bottom = c + (d - c) * tx
            return top + (bottom - top) * ty
        }
    }
}

/// Paints one smear image into a float canvas.
struct SmearPainter {
    let size: Int
    var rng: SeededGenerator
    var canvas: [Float]
    let unit: Float  // pixels per "400-image pixel"
    var background = Colour(232, 222, 228)
    var stainNucleus = Colour(1, 1, 1)
    var stainCytoplasm = Colour(1, 1, 1)
    var cellCentre: (Float, Float) = (0, 0)
    /// Scale of the cell's texture (chromatin, granules); 1 for every data set's cells. A
    /// magnified photograph (`SyntheticCells.renderMagnified`) magnifies it with the cell.
    var textureScale: Float = 1
    var cellRadius: Float = 0

    init(size: Int, rng: SeededGenerator) {
        self.size = size
        self.rng = rng
        self.canvas = [Float](repeating: 0, count: size * size * 3)
        self.unit = Float(size) / 400
    }

    mutating func u(_ r: ClosedRange<Float>) -> Float { r.lowerBound + (r.upperBound - r.lowerBound) * rng.nextUnitFloat() }
    mutating func i(_ r: ClosedRange<Int>) -> Int { r.lowerBound + Int(rng.next() % UInt64(r.upperBound - r.lowerBound + 1)) }
    mutating func jitter(_ amount: Float) -> Colour { Colour(1 + u(-amount...amount), 1 + u(-amount...amount), 1 + u(-amount...amount)) }

    mutating func paintBackground() {
        background = Colour(u(224...240), u(212...228), u(218...236))
        stainNucleus = jitter(0.07)
        stainCytoplasm = jitter(0.06)
        let bg = background
        canvas.withUnsafeMutableBufferPointer { c in
            for p in 0..<(size * size) { c[p * 3] = bg.r; c[p * 3 + 1] = bg.g; c[p * 3 + 2] = bg.b }
        }
    }

    /// Red cells: pink discs with a paler centre, multiplied in so overlaps darken.
    mutating func paintRedCells(zoom: Float) {
        let s = Float(size)
        let r0 = 0.085 * s * zoom
        let n = Int(u(0.25...0.55) * s * s / (Float.pi * r0 * r0))
        let rbc = Colour(u(205...225), u(140...165), u(150...172))
        for _ in 0..<n {
            let cx = u(-0.1...1.1) * s, cy = u(-0.1...1.1) * s
            let r = r0 * u(0.85...1.12)
            let stretch = u(0.9...1.12), angle = u(0...Float.pi)
            let pallor = u(0.35...0.7)
            let trans = Colour(rbc.r / background.r, rbc.g / background.g, rbc.b / background.b)
            let ca = cos(angle), sa = sin(angle)
            let x0 = max(0, Int(cx - r * 1.2)), x1 = min(size - 1, Int(cx + r * 1.2))
            let y0 = max(0, Int(cy - r * 1.2)), y1 = min(size - 1, Int(cy + r * 1.2))
            if x0 > x1 || y0 > y1 { continue }
            canvas.withUnsafeMutableBufferPointer { c in
                for y in y0...y1 {
                    for x in x0...x1 {
                        let dx = Float(x) - cx, dy = Float(y) - cy
                        let ux = (dx * ca + dy * sa) / stretch, uy = -dx * sa + dy * ca
                        let d = (ux * ux + uy * uy).squareRoot()
                        let edge = min(1, max(0, r - d + 0.5))
                        if edge <= 0 { continue }
                        let t = d / r
                        // Darker rim, pale centre (biconcave disc).
                        let density = edge * (1 - pallor * max(0, 1 - t * 1.7)) * (t > 0.8 ? 1.08 : 1)
                        let p = (y * size + x) * 3
                        c[p] *= 1 + (trans.r - 1) * density
                        c[p + 1] *= 1 + (trans.g - 1) * density
                        c[p + 2] *= 1 + (trans.b - 1) * density
                    }
                }
            }
        }
    }

    /// The leukocyte near the centre: cytoplasm, nucleus with chromatin and nucleoli, granules, vacuoles.
    /// With `texture`, the cell's outline and nucleus shape come from the painter's
    /// generator and its chromatin, nucleoli and granules from `texture` (a different cell
    /// of the same shape: near-duplicate decoys).
    mutating func paintLeukocyte(_ recipe: CellRecipe, zoom: Float, texture: SeededGenerator? = nil) {
        let s = Float(size)
        let R = u(recipe.cellRadius) * s * zoom
        let cx = s * 0.5 + u(-0.03...0.03) * s, cy = s * 0.5 + u(-0.03...0.03) * s
        cellCentre = (cx, cy); cellRadius = R
        // Cell outline: a circle with a few low harmonics.
        var harm: [(Float, Float)] = []
        for k in 2...4 { harm.append((u(0...(k == 2 ? 0.07 : 0.03)), u(0...(2 * Float.pi)))) }
        let isSmudge: Bool
        if case .smudge = recipe.shape { isSmudge = true } else { isSmudge = false }
        if isSmudge { for k in 0..<3 { harm[k].0 *= 4 } }

        // Nucleus primitives (ellipses, in pixels, relative to the image).
        struct Ellipse { var x: Float, y: Float, a: Float, b: Float, cosA: Float, sinA: Float }
        var ellipses: [Ellipse] = []
        var notch: (Float, Float, Float)? = nil  // circle cut out of the nucleus
        var foldLine: (Float, Float, Float, Float)? = nil
        let nr = u(recipe.nucleusRatio) * R
        let ecc = u(recipe.eccentricity) * R
        let dir = u(0...(2 * Float.pi))
        let ncx = cx + cos(dir) * ecc, ncy = cy + sin(dir) * ecc
        func ell(_ x: Float, _ y: Float, _ a: Float, _ b: Float, _ ang: Float) -> Ellipse {
            Ellipse(x: x, y: y, a: a, b: b, cosA: cos(ang), sinA: sin(ang))
        }
        switch recipe.shape {
        case .round:
            ellipses.append(ell(ncx, ncy, nr, nr * u(0.85...1.0), u(0...Float.pi)))
        case .smudge:
            ellipses.append(ell(ncx, ncy, nr, nr * u(0.6...0.9), u(0...Float.pi)))
        case .kidney, .folded:
            let ang = u(0...(2 * Float.pi))
            ellipses.append(ell(ncx, ncy, nr, nr * u(0.78...0.92), ang))
            let nd = nr * u(0.85...1.05)
            notch = (ncx + cos(ang + Float.pi / 2) * nd, ncy + sin(ang + Float.pi / 2) * nd, nr * u(0.45...0.6))
            if case .folded = recipe.shape {
                let fa = u(0...Float.pi)
                foldLine = (ncx, ncy, cos(fa), sin(fa))
            }
        case .lobes(let range):
            let k = i(range)
            // Lobes along an arc around the centre, each a slightly elongated ellipse.
            let arcR = R * (k == 2 ? 0.33 : 0.42)
            let start = u(0...(2 * Float.pi))
            let span = (k == 2 ? Float.pi * 0.9 : Float.pi * 1.35)
            var prev: (Float, Float)? = nil
            for j in 0..<k {
                let t = start + span * (Float(j) / Float(max(1, k - 1)) - 0.5)
                let lx = cx + cos(t) * arcR, ly = cy + sin(t) * arcR
                ellipses.append(ell(lx, ly, nr * u(1.0...1.2), nr * u(0.8...0.95), t + u(-0.4...0.4)))
                if let (px, py) = prev {  // thin strand between lobes
                    let mx = (px + lx) / 2, my = (py + ly) / 2
                    let len = ((lx - px) * (lx - px) + (ly - py) * (ly - py)).squareRoot() / 2
                    ellipses.append(ell(mx, my, len, max(1.2 * unit, nr * 0.18), atan2(ly - py, lx - px)))
                }
                prev = (lx, ly)
            }
        case .band:
            // A C-shaped band: overlapping discs along an arc.
            let arcR = R * 0.45
            let start = u(0...(2 * Float.pi))
            let span = Float.pi * u(1.1...1.5)
            let steps = 9
            for j in 0..<steps {
                let t = start + span * Float(j) / Float(steps - 1)
                ellipses.append(ell(cx + cos(t) * arcR, cy + sin(t) * arcR, nr, nr, 0))
            }
        }
        let nucleusColour = recipe.nucleusColour.scaled(stainNucleus)
        let cytoColour = recipe.cytoplasm.scaled(stainCytoplasm)
        if let texture { rng = texture }

        let box = R * (isSmudge ? 1.6 : 1.15) + 2
        let x0 = max(0, Int(cx - box)), x1 = min(size - 1, Int(cx + box))
        let y0 = max(0, Int(cy - box)), y1 = min(size - 1, Int(cy + box))
        let ox = Float(x0), oy = Float(y0)
        let extent = Float(x1 - x0 + 2), extentY = Float(y1 - y0 + 2)
        let chromatin = ValueNoise(width: extent, height: extentY, cell: recipe.chromatinPeriod * unit * textureScale, rng: &rng)
        let fine = ValueNoise(width: extent, height: extentY, cell: max(1.2, 1.5 * unit * textureScale), rng: &rng)
        let wobble = ValueNoise(width: extent, height: extentY, cell: R * 0.35, rng: &rng)
        let cytoTexture = ValueNoise(width: extent, height: extentY, cell: 6 * unit * textureScale, rng: &rng)
        let wobbleAmp = (isSmudge ? 0.35 : 0.08) * nr

        // Nucleus field: < 0 inside, roughly in pixels.
        func nucleusField(_ x: Float, _ y: Float) -> Float {
            var f = Float.greatestFiniteMagnitude
            for e in ellipses {
                let dx = x - e.x, dy = y - e.y
                let ux = (dx * e.cosA + dy * e.sinA) / e.a, uy = (-dx * e.sinA + dy * e.cosA) / e.b
                let v = ((ux * ux + uy * uy).squareRoot() - 1) * min(e.a, e.b)
                f = min(f, v)
            }
            if let (nx, ny, nrad) = notch {
                let d = ((x - nx) * (x - nx) + (y - ny) * (y - ny)).squareRoot() - nrad
                f = max(f, -d)
            }
            return f + (wobble.sample(x - ox, y - oy) - 0.5) * 2 * wobbleAmp
        }

        canvas.withUnsafeMutableBufferPointer { c in
            for y in y0...y1 {
                for x in x0...x1 {
                    let fx = Float(x), fy = Float(y)
                    let dx = fx - cx, dy = fy - cy
                    let d = (dx * dx + dy * dy).squareRoot()
                    if d > box { continue }
                    let theta = atan2(dy, dx)
                    var edgeR = R
                    for (k, h) in harm.enumerated() { edgeR += R * h.0 * cos(Float(k + 2) * theta + h.1) }
                    let p = (y * size + x) * 3
                    var col = Colour(c[p], c[p + 1], c[p + 2])
                    if !isSmudge {
                        let a = min(1, max(0, edgeR - d + 0.5))
                        if a > 0 {
                            let tex = 1 + (cytoTexture.sample(fx - ox, fy - oy) - 0.5) * 0.08
                            // cytoplasm slightly darker near the membrane
                            let rim: Float = d > edgeR - 2 * unit ? 0.94 : 1
                            col = col.mix(Colour(cytoColour.r * tex * rim, cytoColour.g * tex * rim, cytoColour.b * tex * rim), a * 0.97)
                        }
                    }
                    let nf = nucleusField(fx, fy)
                    var na = min(1, max(0, 0.5 - nf))
                    if isSmudge { na *= min(1, max(0, (edgeR * 1.3 - d) / (0.4 * edgeR))) }
                    if na > 0 {
                        let ch = chromatin.sample(fx - ox, fy - oy)
                        let fn = fine.sample(fx - ox, fy - oy)
                        var shade = 1 - recipe.chromatinContrast * (ch - 0.5) * 2 - 0.06 * (fn - 0.5)
                        if let (lx, ly, ldx, ldy) = foldLine {
                            let dist = abs((fx - lx) * ldy - (fy - ly) * ldx)
                            if dist < 2.5 * unit { shade *= 0.82 }
                        }
                        // a thin darker membrane
                        if nf > -1.5 * unit { shade *= 0.9 }
                        col = col.mix(Colour(nucleusColour.r * shade, nucleusColour.g * shade, nucleusColour.b * shade), na)
                    }
                    c[p] = col.r; c[p + 1] = col.g; c[p + 2] = col.b
                }
            }
        }

        // Nucleoli: pale blue-grey spots inside the nucleus.
        let nucleoliCount = i(recipe.nucleoli)
        var placed = 0, tries = 0
        while placed < nucleoliCount && tries < 50 {
            tries += 1
            let a = u(0...(2 * Float.pi)), rr = u(0...0.6) * nr
            let px = ncx + cos(a) * rr, py = ncy + sin(a) * rr
            if nucleusField(px, py) > -nr * 0.25 { continue }
            stamp(x: px, y: py, radius: nr * u(0.1...0.16), colour: nucleusColour.mix(Colour(190, 180, 215), 0.6), alpha: 0.75)
            placed += 1
        }
        // Vacuoles: small pale holes in the cytoplasm.
        for _ in 0..<i(recipe.vacuoles) {
            for _ in 0..<20 {
                let a = u(0...(2 * Float.pi)), rr = u(0.3...0.85) * R
                let px = cx + cos(a) * rr, py = cy + sin(a) * rr
                if nucleusField(px, py) < 2 * unit { continue }
                stamp(x: px, y: py, radius: u(2...4.5) * unit, colour: Colour(228, 222, 236), alpha: 0.8)
                break
            }
        }
        // Granules.
        let gCount = i(recipe.granules)
        let gColour = recipe.granuleColour.scaled(stainCytoplasm)
        for _ in 0..<gCount {
            for _ in 0..<10 {
                let a = u(0...(2 * Float.pi)), rr = u(0...1).squareRoot() * R * 0.93
                let px = cx + cos(a) * rr, py = cy + sin(a) * rr
                if !recipe.granulesOverNucleus && nucleusField(px, py) < 0.5 { continue }
                stamp(x: px, y: py, radius: recipe.granuleRadius * unit * textureScale * u(0.8...1.25), colour: gColour, alpha: 0.85)
                break
            }
        }
    }

    /// A soft disc blended over the canvas.
    mutating func stamp(x: Float, y: Float, radius: Float, colour: Colour, alpha: Float) {
        let r = max(radius, 0.6)
        let x0 = max(0, Int(x - r - 1)), x1 = min(size - 1, Int(x + r + 1))
        let y0 = max(0, Int(y - r - 1)), y1 = min(size - 1, Int(y + r + 1))
        if x0 > x1 || y0 > y1 { return }
        canvas.withUnsafeMutableBufferPointer { c in
            for py in y0...y1 {
                for px in x0...x1 {
                    let dx = Float(px) - x, dy = Float(py) - y
                    let a = min(1, max(0, r - (dx * dx + dy * dy).squareRoot() + 0.5)) * alpha
                    if a <= 0 { continue }
                    let p = (py * size + px) * 3
                    c[p] += (colour.r - c[p]) * a
                    c[p + 1] += (colour.g - c[p + 1]) * a
                    c[p + 2] += (colour.b - c[p + 2]) * a
                }
            }
        }
    }

    /// Uneven illumination, brightness, sensor noise, quantisation.
    mutating func finish() -> RGBImage {
        let s = Float(size)
        let vignette = u(0.02...0.1), gx = u(-0.06...0.06), gy = u(-0.06...0.06), gain = u(0.93...1.04)
        let noiseAmp = u(1.5...4)
        var state = rng.next() | 1
        var out = [UInt8](repeating: 0, count: size * size * 3)
        canvas.withUnsafeBufferPointer { c in
            out.withUnsafeMutableBufferPointer { o in
                for y in 0..<size {
                    let ny = Float(y) / s - 0.5
                    for x in 0..<size {
                        let nx = Float(x) / s - 0.5
                        let illum = gain * (1 - vignette * (nx * nx + ny * ny) * 2 + gx * nx + gy * ny)
                        let p = (y * size + x) * 3
                        for k in 0..<3 {
                            state ^= state << 13; state ^= state >> 7; state ^= state << 17
                            let n = (Float(state >> 40) * (1.0 / 16_777_216.0) - 0.5) * 2 * noiseAmp
                            let v = c[p + k] * illum + n
                            o[p + k] = UInt8(max(0, min(255, v + 0.5)))
                        }
                    }
                }
            }
        }
        return RGBImage(width: size, height: size, pixels: out)
    }
}
