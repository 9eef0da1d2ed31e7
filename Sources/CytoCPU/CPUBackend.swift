import CytoCore
import Dispatch
import Foundation

/// Host memory for the CPU backend: 64-byte aligned, never moved.
public final class CPUBuffer: DeviceBuffer {
    public let element: BufferElement
    public let count: Int
    public let label: String
    public let raw: UnsafeMutableRawPointer
    /// The allocation this buffer is a segment of (`makeSegmentedBuffer`), kept alive
    /// by the segment; nil when the buffer owns its memory.
    private let owner: CPUBuffer?

    /// A segment of `owner` starting `elementOffset` elements in.
    init(segmentOf owner: CPUBuffer, elementOffset: Int, count: Int, label: String) {
        precondition(elementOffset >= 0 && elementOffset + count <= owner.count, "segment outside \(owner.label)")
        self.element = owner.element; self.count = count; self.label = label
        self.owner = owner
        raw = owner.raw + elementOffset * owner.element.byteSize
    }

    init(element: BufferElement, count: Int, label: String) {
        self.element = element; self.count = count; self.label = label
        owner = nil
        // 64 zeroed bytes past the end: SIMD loops may load one vector past a row's end
        // (and discard those lanes).
        let bytes = max(64, count * element.byteSize + 64)
        raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
    }
    deinit { if owner == nil { raw.deallocate() } }

    @inline(__always) var floats: UnsafeMutablePointer<Float> { raw.assumingMemoryBound(to: Float.self) }
    @inline(__always) var bytes: UnsafeMutablePointer<UInt8> { raw.assumingMemoryBound(to: UInt8.self) }
}

/// The CPU backend: pure Swift SIMD loops spread over all cores with
/// `concurrentPerform`. The heavy loops come from the copy of the kernels built for
/// the best instruction set this CPU has (`CPUPath`: AVX-512, AVX2 or portable),
/// chosen when the backend is made.
///
/// It is the reference every OpenCL kernel is tested against, so each op is written
/// as directly as speed allows. Work is split into a fixed number of chunks that
/// depends only on the thread count, and every reduction sums its terms in a fixed
/// order, so results are bit-identical for a given thread count.
public final class CPUBackend: Backend {
    public let kind = BackendKind.cpu
    public let threads: Int
    /// The compiled kernel copy in use (named in `deviceDescription`).
    public let path: CPUPath
    let kernels: any CPUKernelTable.Type
    /// Above this size the batch's zero-bordered activation gradient of a block is not
    /// expected to stay in a core's L2, and `convStackBackward` runs that block one
    /// image at a time (same results): half of Zen 4's 1 MB L2 (other x86-64 cores
    /// have 0.5-2 MB). A variable so that tests can force either way.
    var paddedImageAtATimeBytes = 512 << 10
    /// Per-op time (`--profile`); off by default because it adds a clock read per op.
    public var profiling = false
    private var timings: [String: (calls: Int, seconds: Double)] = [:]

    /// The profile's clock: with one thread every op runs on the calling thread, so its
    /// CPU time is the op's cost however loaded the machine is (wall time there counts
    /// the other processes' turns too); with more threads, wall time.
    private func profileClock() -> Double {
        guard threads == 1 else { return Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    @inline(__always) func timed(_ name: String, _ body: () -> Void) {
        guard profiling else { body(); return }
        let t0 = profileClock()
        body()
        let dt = profileClock() - t0
        let old = timings[name] ?? (0, 0)
        timings[name] = (old.calls + 1, old.seconds + dt)
    }

    /// The CPU backend has no asynchronous failures: an op either completes or traps.
    public func checkErrors() throws {}

    /// A table of time per op since the last reset, slowest first: thread CPU
    /// milliseconds with one thread, wall milliseconds with more.
    public func profileReport() -> String {
        guard profiling else { return "profiling is off (--profile)\n" }
        let total = timings.values.reduce(0) { $0 + $1.seconds }
        let unit = threads == 1 ? "cpu ms" : "ms"
        var out = String(format: "%-22@ %8@ %10@ %7@\n", "op" as NSString, "calls" as NSString, unit as NSString, "share" as NSString)
        for (name, t) in timings.sorted(by: { $0.value.seconds > $1.value.seconds }) {
            out += String(
                format: "%-22@ %8d %10.1f %6.1f%%\n", name as NSString, t.calls, t.seconds * 1000, 100 * t.seconds / max(total, 1e-12))
        }
        return out
    }

    public func resetProfile() { timings.removeAll() }

    /// - Parameters:
    ///   - threads: worker threads (default: `CYTOCL_THREADS` or every core).
    ///   - path: kernel instruction set (default: `CYTOCL_CPU_PATH` if valid, else the
    ///     best this CPU supports; an unsupported request falls back to the best).
    public init(threads: Int? = nil, path: CPUPath? = nil) {
        let chosen = path.flatMap { $0.isSupported ? $0 : nil } ?? ((try? CPUPath.fromEnvironment()) ?? CPUPath.best)
        self.path = chosen
        self.kernels = chosen.kernels
        if let t = threads {
            self.threads = max(1, t)
        } else if let env = ProcessInfo.processInfo.environment["CYTOCL_THREADS"], let t = Int(env), t > 0 {
            self.threads = t
        } else {
            self.threads = max(1, ProcessInfo.processInfo.activeProcessorCount)
        }
    }

    public var deviceDescription: String {
        "CPU backend, \(threads) thread\(threads == 1 ? "" : "s")\(simdNote)"
    }

    private var simdNote: String { ", \(path.displayName)" }

    // MARK: Buffers

    public func makeBuffer(_ element: BufferElement, count: Int, label: String) throws -> any DeviceBuffer {
        guard count >= 0 else { throw CytoError.backend("buffer \(label): negative size \(count)") }
        // Large buffers are checked against free memory first: a failed allocation
        // would otherwise end the process, or swap it to a standstill.
        var need = MemoryNeed(what: "buffer '\(label)'")
        need.add(label, count: count, elementBytes: element.byteSize)
        if (need.bytes ?? .max) >= 256 << 20 { try need.check(against: memoryLimit()) }
        return CPUBuffer(element: element, count: count, label: label)
    }

    /// Segments start on 64-byte boundaries and keep 64 zero bytes after their last
    /// element, like a buffer of their own (SIMD loops may read one vector past the end).
    public func makeSegmentedBuffer(
        _ element: BufferElement, counts: [Int], labels: [String], label: String
    ) throws
        -> (whole: any DeviceBuffer, segments: [any DeviceBuffer])
    {
        let layout = SegmentLayout(counts: counts, alignmentBytes: 64, slackBytes: 64, elementBytes: element.byteSize)
        let whole = CPUBuffer(element: element, count: layout.total, label: label)
        let segments = zip(zip(layout.offsets, counts), labels).map { ol, name in
            CPUBuffer(segmentOf: whole, elementOffset: ol.0, count: ol.1, label: name) as any DeviceBuffer
        }
        return (whole, segments)
    }

    /// Host memory available now.
    public func memoryLimit() -> MemoryLimit? { MemoryLimit.host() }

    @inline(__always) func buf(_ b: any DeviceBuffer) -> CPUBuffer {
        guard let c = b as? CPUBuffer else {
            preconditionFailure("buffer '\(b.label)' was not made by the CPU backend")
        }
        return c
    }

    public func write(_ values: [Float], to buffer: any DeviceBuffer, offset: Int) {
        let b = buf(buffer)
        precondition(offset + values.count <= b.count, "write past the end of \(b.label)")
        if b.element == .float32 {
            values.withUnsafeBufferPointer { (b.floats + offset).update(from: $0.baseAddress!, count: values.count) }
        } else {
            for (i, v) in values.enumerated() { b.bytes[offset + i] = UInt8(max(0, min(255, v.rounded()))) }
        }
    }

    public func write(bytes: UnsafeRawBufferPointer, to buffer: any DeviceBuffer, byteOffset: Int) {
        let b = buf(buffer)
        precondition(byteOffset + bytes.count <= b.count * b.element.byteSize, "write past the end of \(b.label)")
        guard let src = bytes.baseAddress, bytes.count > 0 else { return }
        (b.raw + byteOffset).copyMemory(from: src, byteCount: bytes.count)
    }

    public func read(_ buffer: any DeviceBuffer, offset: Int, count: Int) -> [Float] {
        let b = buf(buffer)
        precondition(offset + count <= b.count, "read past the end of \(b.label)")
        if b.element == .float32 { return Array(UnsafeBufferPointer(start: b.floats + offset, count: count)) }
        return (0..<count).map { Float(b.bytes[offset + $0]) }
    }

    public func fill(_ buffer: any DeviceBuffer, value: Float, count: Int) {
        let b = buf(buffer)
        if b.element == .float32 {
            b.floats.update(repeating: value, count: count)
        } else {
            b.bytes.update(repeating: UInt8(max(0, min(255, value))), count: count)
        }
    }

    public func copy(from source: any DeviceBuffer, to destination: any DeviceBuffer, count: Int) {
        let s = buf(source), d = buf(destination)
        d.raw.copyMemory(from: s.raw, byteCount: count * s.element.byteSize)
    }

    public func synchronize() {}

    // MARK: Parallel helper

    /// Runs `body` over contiguous, disjoint chunks of 0..<count on all threads
    /// (`Parallel.chunked`: each op's closure writes only its own rows).
    @inline(__always)
    func parallelFor(_ count: Int, minPerChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let chunks = min(count / max(1, minPerChunk), threads * 4)
        if threads == 1 || chunks <= 1 { body(0..<count); return }
        Parallel.chunked(count, chunks: chunks, body)
    }

    // MARK: Batches

    public func gatherBatch(
        images: any DeviceBuffer, geometry: ImageGeometry, indices: [Int32],
        transforms: [AugmentTransform]?, output: any DeviceBuffer
    ) {
        timed("gatherBatch") {
            let src = buf(images).bytes, dst = buf(output).floats
            let h = geometry.height, w = geometry.width, ch = geometry.channels
            let plane = h * w
            precondition(transforms == nil || transforms!.count == indices.count)
            // The maps are computed once per image, not per row or pixel.
            let maps = transforms.map { $0.map { $0.isIdentity ? nil : $0.map(height: h, width: w) } }
            guard let maps else {
                parallelFor(indices.count * h) { rows in
                    for item in rows {
                        let i = item / h, y = item % h
                        let image = UnsafePointer(src + Int(indices[i]) * geometry.pixelsPerImage)
                        kernels.copyRow(image + y * w * ch, w, ch, dst + i * ch * plane + y * w, plane)
                    }
                }
                return
            }
            // A rotated image is read along diagonals: eight neighbouring output pixels
            // come from eight different source rows, which the hardware prefetcher cannot
            // follow, so every first touch of a source line waited on memory (measured:
            // most of the gather's time). Each task therefore first streams its source
            // image through the cache in address order, then samples it. Tasks are
            // (image, half of its rows), so an image is streamed at most twice.
            let parts = 2
            let sinks = scratch(indices.count * parts, for: .touchSums)
            parallelFor(indices.count * parts) { tasks in
                for task in tasks {
                    let i = task / parts, part = task % parts
                    let image = UnsafePointer(src + Int(indices[i]) * geometry.pixelsPerImage)
                    let rows = (part * h / parts)..<((part + 1) * h / parts)
                    let out = dst + i * ch * plane
                    if let m = maps[i] {
                        sinks[task] = Float(touch(image, bytes: geometry.pixelsPerImage))
                        for y in rows { kernels.augmentRow(image, h, w, ch, m, y, out + y * w, plane) }
                    } else {
                        for y in rows { kernels.copyRow(image + y * w * ch, w, ch, out + y * w, plane) }
                    }
                }
            }
        }
    }

    /// Reads one byte per 64-byte line of `bytes` bytes at `p`, in address order, so the
    /// lines are in this core's cache before a scattered read of them.
    @inline(__always) func touch(_ p: UnsafePointer<UInt8>, bytes: Int) -> UInt8 {
        var acc: UInt8 = 0
        var k = 0
        while k < bytes { acc &+= p[k]; k += 64 }
        return acc
    }

    // MARK: Convolution

    public func conv2dForward(
        _ g: ConvGeometry, input: any DeviceBuffer, weight: any DeviceBuffer,
        bias: any DeviceBuffer, output: any DeviceBuffer, relu: Bool
    ) {
        timed("conv2dForward") {
            let inp = buf(input).floats, wt = buf(weight).floats, bs = buf(bias).floats, out = buf(output).floats
            let C = g.inChannels, O = g.outChannels, H = g.inHeight, W = g.inWidth
            let Ho = g.outHeight, Wo = g.outWidth
            parallelFor(g.batch * Ho, minPerChunk: 4) { rows in
                for item in rows {
                    let n = item / Ho, y = item % Ho
                    let inBase = inp + n * C * H * W + y * W
                    let outBase = out + n * O * Ho * Wo + y * Wo
                    kernels.convForwardRow(inBase, H * W, W, C, wt, bs, outBase, Ho * Wo, O, Wo, relu)
                }
            }
        }
    }

    /// The input gradient is a forward convolution of the output gradient, zero-padded
    /// by 2 on every side, with the weights transposed (in <-> out) and rotated 180
    /// degrees. Running it through the forward kernel reuses its register blocking
    /// (four output channels per input load), which is about 3x faster than scattering.
    public func conv2dBackwardData(
        _ g: ConvGeometry, gradOutput: any DeviceBuffer, weight: any DeviceBuffer,
        gradInput: any DeviceBuffer
    ) {
        timed("conv2dBackwardData") {
            let go = buf(gradOutput).floats, wt = buf(weight).floats, gi = buf(gradInput).floats
            let O = g.outChannels, Ho = g.outHeight, Wo = g.outWidth, N = g.batch
            guard backwardDataUsesForwardKernel(g) else {
                backwardDataScatter(g, gradOutput: go, gradRow: Wo, gradPlane: Ho * Wo, weight: wt, gradInput: gi)
                return
            }
            let Hp = Ho + 4, Wp = Wo + 4
            let padded = paddedGradient(g, images: N)
            parallelFor(N * O) { planes in
                for p in planes {
                    for y in 0..<Ho {
                        (padded + p * Hp * Wp + (y + 2) * Wp + 2).update(from: go + p * Ho * Wo + y * Wo, count: Wo)
                    }
                }
            }
            backwardDataFromPadded(g, images: 0..<N, padded: padded, flipped: flippedWeights(g, wt), gradInput: gi)
        }
    }

    /// Whether the input gradient runs through the forward kernel (a zero-padded copy of
    /// the output gradient): not for input channels that are not a multiple of four
    /// (conv1, only needed for saliency), where its four-channel blocking does not
    /// apply. Tiny planes take it too (conv6's 4x4): the forward kernel keeps rows
    /// narrower than a vector in one vector, where the scatter runs scalar.
    func backwardDataUsesForwardKernel(_ g: ConvGeometry) -> Bool { g.inChannels % 4 == 0 }

    /// The input gradient by scattering each output gradient row (`gradRow` floats per
    /// row, `gradPlane` per plane).
    func backwardDataScatter(
        _ g: ConvGeometry, gradOutput go: UnsafeMutablePointer<Float>, gradRow: Int, gradPlane: Int,
        weight wt: UnsafeMutablePointer<Float>, gradInput gi: UnsafeMutablePointer<Float>
    ) {
        let C = g.inChannels, O = g.outChannels, H = g.inHeight, W = g.inWidth
        let Ho = g.outHeight, Wo = g.outWidth
        parallelFor(g.batch * C) { planes in
            for p in planes {
                let n = p / C, c = p % C
                kernels.convBackwardDataPlane(
                    go + n * O * gradPlane, gradPlane, gradRow, O, Ho, Wo, wt, c, C,
                    gi + (n * C + c) * H * W, H, W)
            }
        }
    }

    /// The output gradient of `g`'s shape for `images` images inside a zero border of 2
    /// on every side (planes of (Ho + 4) x (Wo + 4)), one buffer per plane shape and
    /// size. Only the interior is ever written, so the border stays zero.
    func paddedGradient(_ g: ConvGeometry, images: Int) -> UnsafeMutablePointer<Float> {
        let Hp = g.outHeight + 4, Wp = g.outWidth + 4
        return scratch(images * g.outChannels * Hp * Wp, for: .paddedGradient(height: Hp, width: Wp))
    }

    /// The weights of `g` transposed (in <-> out) and rotated 180 degrees: the filters
    /// of the input gradient's forward convolution.
    func flippedWeights(_ g: ConvGeometry, _ wt: UnsafeMutablePointer<Float>) -> [Float] {
        let C = g.inChannels, O = g.outChannels
        var flipped = [Float](repeating: 0, count: C * O * 9)
        for o in 0..<O { for c in 0..<C { for k in 0..<9 { flipped[(c * O + o) * 9 + 8 - k] = wt[(o * C + c) * 9 + k] } } }
        return flipped
    }

    /// The input gradient of the images `images` as a forward convolution of the
    /// zero-padded output gradient (`padded` holds those images, the first at its
    /// start) with the `flippedWeights`. Running it through the forward kernel reuses
    /// its register blocking (four output channels per input load), about 3x faster
    /// than scattering.
    func backwardDataFromPadded(
        _ g: ConvGeometry, images: Range<Int>, padded: UnsafeMutablePointer<Float>, flipped: [Float],
        gradInput gi: UnsafeMutablePointer<Float>
    ) {
        let C = g.inChannels, O = g.outChannels, H = g.inHeight, W = g.inWidth
        let Hp = g.outHeight + 4, Wp = g.outWidth + 4
        var zeros = [Float](repeating: 0, count: C)
        flipped.withUnsafeBufferPointer { fw in
            zeros.withUnsafeMutableBufferPointer { zb in
                let fwp = UnsafeMutablePointer(mutating: fw.baseAddress!), zbp = zb.baseAddress!
                parallelFor(images.count * H, minPerChunk: 4) { rows in
                    for item in rows {
                        let local = item / H, y = item % H, n = images.lowerBound + local
                        kernels.convForwardRow(
                            padded + local * O * Hp * Wp + y * Wp, Hp * Wp, Wp, O, fwp, zbp,
                            gi + n * C * H * W + y * W, H * W, C, W, false)
                    }
                }
            }
        }
    }

    /// What a scratch buffer is for. Buffers are reused by (use, size), so two uses
    /// that are live in the same pass never share memory even when their sizes agree,
    /// and the padded gradient's border, which nothing writes, stays zero.
    enum ScratchUse: Hashable {
        /// Partial sums of a reduction, read back before the op returns.
        case sums
        /// The zero-bordered output gradient the input gradient's convolution reads, by
        /// its planes' bordered height and width (so that no interior of one shape
        /// overlaps the border of another of the same size).
        case paddedGradient(height: Int, width: Int)
        /// Per-task rows of a conv block's activation gradient (`blockBackward`).
        case taskRows
        /// Where the augmented gather's source-streaming pass leaves its sums.
        case touchSums
    }

    private struct ScratchKey: Hashable { var use: ScratchUse; var count: Int }
    private var scratchBuffers: [ScratchKey: CPUBuffer] = [:]

    /// Reusable host scratch memory, zeroed when first made (ops run on one thread).
    func scratch(_ count: Int, for use: ScratchUse = .sums) -> UnsafeMutablePointer<Float> {
        let key = ScratchKey(use: use, count: count)
        if let b = scratchBuffers[key] { return b.floats }
        let b = CPUBuffer(element: .float32, count: count, label: "scratch")
        scratchBuffers[key] = b
        return b.floats
    }

    /// The max-pool routes of a conv block (one byte per window, `convBlockForward`
    /// writes them beside the activation and `blockBackward` reads them instead of it),
    /// one buffer per activation buffer while that buffer lives.
    private struct Routes {
        weak var activation: CPUBuffer?
        let routes: CPUBuffer
    }
    private var routeBuffers: [ObjectIdentifier: Routes] = [:]

    /// The routes buffer of `activation`, `count` bytes. Entries of buffers that no
    /// longer exist are dropped when a new one is made, so a long sweep making network
    /// after network on one backend does not keep their routes.
    func routes(of activation: CPUBuffer, count: Int) -> UnsafeMutablePointer<UInt8> {
        let key = ObjectIdentifier(activation)
        if let r = routeBuffers[key], r.activation === activation, r.routes.count == count { return r.routes.bytes }
        routeBuffers = routeBuffers.filter { $0.value.activation != nil }
        let r = Routes(activation: activation, routes: CPUBuffer(element: .uint8, count: count, label: "routes"))
        routeBuffers[key] = r
        return r.routes.bytes
    }

    public func conv2dBackwardFilter(
        _ g: ConvGeometry, input: any DeviceBuffer, gradOutput: any DeviceBuffer,
        gradWeight: any DeviceBuffer
    ) {
        timed("conv2dBackwardFilter") {
            filterGradient(
                g, input: buf(input).floats, gradOutput: buf(gradOutput).floats, gradRow: g.outWidth,
                gradPlane: g.outHeight * g.outWidth, gradWeight: buf(gradWeight).floats)
        }
    }

    /// The weight gradient from an output gradient laid out with `gradRow` floats per
    /// row and `gradPlane` per plane (its first element at `gradOutput`).
    func filterGradient(
        _ g: ConvGeometry, input inp: UnsafeMutablePointer<Float>, gradOutput go: UnsafeMutablePointer<Float>,
        gradRow: Int, gradPlane: Int, gradWeight gw: UnsafeMutablePointer<Float>
    ) {
        let C = g.inChannels, O = g.outChannels, H = g.inHeight, W = g.inWidth
        let Ho = g.outHeight, Wo = g.outWidth, N = g.batch
        // Tasks are (image, block of 16 output rows): the block's input and gradient
        // rows stay in cache while every (o, c) pair is accumulated. Each task writes
        // its own partial sums, which are then added in task order, so the result does
        // not depend on the thread count.
        let rowsPerTask = 16
        let blocks = (Ho + rowsPerTask - 1) / rowsPerTask
        let tasks = N * blocks, per = O * C * 9
        let partial = scratch(tasks * per)
        parallelFor(tasks) { range in
            for t in range {
                let n = t / blocks, y0 = (t % blocks) * rowsPerTask
                let rows = y0..<min(Ho, y0 + rowsPerTask)
                for o in 0..<O {
                    for c in 0..<C {
                        kernels.convFilterGradient(
                            inp, go + (n * O + o) * gradPlane, gradRow, n, rows, c, C, H, W, Wo,
                            partial + t * per + (o * C + c) * 9)
                    }
                }
            }
        }
        for k in 0..<per {
            var total: Float = 0
            for t in 0..<tasks { total += partial[t * per + k] }
            gw[k] = total
        }
    }

    public func conv2dBackwardBias(_ g: ConvGeometry, gradOutput: any DeviceBuffer, gradBias: any DeviceBuffer) {
        timed("conv2dBackwardBias") {
            let go = buf(gradOutput).floats, gb = buf(gradBias).floats
            let O = g.outChannels, plane = g.outHeight * g.outWidth
            parallelFor(O) { outs in
                for o in outs {
                    var total: Float = 0
                    for n in 0..<g.batch { total += SIMDMath.sum(go + (n * O + o) * plane, plane) }
                    gb[o] = total
                }
            }
        }
    }

    // MARK: Pooling and activations

    public func maxPoolForward(_ g: PoolGeometry, input: any DeviceBuffer, output: any DeviceBuffer) {
        timed("maxPoolForward") {
            let inp = buf(input).floats, out = buf(output).floats
            let H = g.inHeight, W = g.inWidth, Ho = g.outHeight, Wo = g.outWidth
            parallelFor(g.batch * g.channels) { planes in
                for p in planes {
                    let src = UnsafePointer(inp + p * H * W)
                    for y in 0..<Ho { kernels.poolForwardRow(src + 2 * y * W, src + (2 * y + 1) * W, out + (p * Ho + y) * Wo, Wo) }
                }
            }
        }
    }

    public func maxPoolBackward(
        _ g: PoolGeometry, input: any DeviceBuffer, gradOutput: any DeviceBuffer,
        gradInput: any DeviceBuffer
    ) {
        timed("maxPoolBackward") {
            let inp = buf(input).floats, go = buf(gradOutput).floats, gi = buf(gradInput).floats
            let H = g.inHeight, W = g.inWidth, Ho = g.outHeight, Wo = g.outWidth
            parallelFor(g.batch * g.channels) { planes in
                for p in planes {
                    kernels.poolBackwardPlane(
                        UnsafePointer(inp + p * H * W), UnsafePointer(go + p * Ho * Wo),
                        gi + p * H * W, H, W, Ho, Wo)
                }
            }
        }
    }

    public func relu(count: Int, input: any DeviceBuffer, output: any DeviceBuffer) {
        let a = buf(input).floats, b = buf(output).floats
        parallelFor(count, minPerChunk: 65536) { r in
            for i in r { b[i] = max(a[i], 0) }
        }
    }

    public func reluBackward(count: Int, activation: any DeviceBuffer, grad: any DeviceBuffer) {
        timed("reluBackward") {
            let a = buf(activation).floats, g = buf(grad).floats
            parallelFor(count, minPerChunk: 65536) { r in kernels.reluBackward(a, g, r) }
        }
    }

    // MARK: Dense

    public func denseForward(
        _ g: DenseGeometry, input: any DeviceBuffer, weight: any DeviceBuffer,
        bias: any DeviceBuffer, output: any DeviceBuffer, relu: Bool
    ) {
        timed("denseForward") {
            let x = buf(input).floats, w = buf(weight).floats, b = buf(bias).floats, y = buf(output).floats
            let I = g.inFeatures, O = g.outFeatures
            for n in 0..<g.batch {
                for o in 0..<O {
                    let v = b[o] + SIMDMath.dot(x + n * I, w + o * I, I)
                    y[n * O + o] = relu ? max(v, 0) : v
                }
            }
        }
    }

    public func denseBackward(
        _ g: DenseGeometry, input: any DeviceBuffer, weight: any DeviceBuffer,
        gradOutput: any DeviceBuffer, gradInput: (any DeviceBuffer)?,
        gradWeight: any DeviceBuffer, gradBias: any DeviceBuffer
    ) {
        timed("denseBackward") {
            let x = buf(input).floats, w = buf(weight).floats, gy = buf(gradOutput).floats
            let gw = buf(gradWeight).floats, gb = buf(gradBias).floats
            let I = g.inFeatures, O = g.outFeatures, N = g.batch
            for o in 0..<O {
                var sb: Float = 0
                let row = gw + o * I
                row.update(repeating: 0, count: I)
                for n in 0..<N {
                    let d = gy[n * O + o]
                    sb += d
                    let xr = x + n * I
                    for i in 0..<I { row[i] += d * xr[i] }
                }
                gb[o] = sb
            }
            if let gxb = gradInput {
                let gx = buf(gxb).floats
                for n in 0..<N {
                    let dst = gx + n * I
                    dst.update(repeating: 0, count: I)
                    for o in 0..<O {
                        let d = gy[n * O + o]
                        let wr = w + o * I
                        for i in 0..<I { dst[i] += d * wr[i] }
                    }
                }
            }
        }
    }

    // MARK: Loss

    public func softmaxCrossEntropy(
        batch: Int, classes: Int, logits: any DeviceBuffer, labels: any DeviceBuffer,
        probabilities: any DeviceBuffer, gradLogits: (any DeviceBuffer)?,
        metrics: any DeviceBuffer
    ) {
        timed("softmaxCrossEntropy") {
            let z = buf(logits).floats, lab = buf(labels).floats, p = buf(probabilities).floats
            let m = buf(metrics).floats
            let gz = gradLogits.map { buf($0).floats }
            var lossSum: Float = 0, correct: Float = 0
            for n in 0..<batch {
                let row = z + n * classes, prow = p + n * classes
                var mx = row[0], arg = 0
                for k in 1..<classes where row[k] > mx { mx = row[k]; arg = k }
                var total: Float = 0
                for k in 0..<classes { let e = expf(row[k] - mx); prow[k] = e; total += e }
                let inv = 1 / total
                for k in 0..<classes { prow[k] *= inv }
                let label = Int(lab[n])
                lossSum += (logf(total) + mx) - row[label]
                if arg == label { correct += 1 }
                if let gz {
                    let scale = 1 / Float(batch)
                    for k in 0..<classes { gz[n * classes + k] = (prow[k] - (k == label ? 1 : 0)) * scale }
                }
            }
            m[0] += lossSum; m[1] += correct; m[2] += Float(batch)
        }
    }

    public func softmax(batch: Int, classes: Int, logits: any DeviceBuffer, probabilities: any DeviceBuffer) {
        let z = buf(logits).floats, p = buf(probabilities).floats
        for n in 0..<batch {
            let row = z + n * classes, prow = p + n * classes
            var mx = row[0]
            for k in 1..<classes { mx = max(mx, row[k]) }
            var total: Float = 0
            for k in 0..<classes { let e = expf(row[k] - mx); prow[k] = e; total += e }
            for k in 0..<classes { prow[k] /= total }
        }
    }

    // MARK: Optimizers

    public func optimizerStep(
        _ update: OptimizerUpdate, count: Int, parameters: any DeviceBuffer,
        gradients: any DeviceBuffer, state1: any DeviceBuffer, state2: any DeviceBuffer
    ) {
        timed("optimizerStep") {
            let p = buf(parameters).floats, g = buf(gradients).floats
            let s1 = buf(state1).floats, s2 = buf(state2).floats
            switch update {
            case let .sgd(lr, momentum):
                if momentum == 0 {
                    for i in 0..<count { p[i] -= lr * g[i] }
                } else {
                    for i in 0..<count { s1[i] = momentum * s1[i] - lr * g[i]; p[i] += s1[i] }
                }
            case let .rmsprop(lr, rho, eps):
                for i in 0..<count {
                    s1[i] = rho * s1[i] + (1 - rho) * g[i] * g[i]
                    p[i] -= lr * g[i] / (s1[i] + eps).squareRoot()
                }
            case let .rmspropKeras2(lr, rho, eps):
                for i in 0..<count {
                    s1[i] = rho * s1[i] + (1 - rho) * g[i] * g[i]
                    p[i] -= lr * g[i] / (s1[i].squareRoot() + eps)
                }
            case let .adam(step, b1, b2, eps):
                for i in 0..<count {
                    s1[i] = b1 * s1[i] + (1 - b1) * g[i]
                    s2[i] = b2 * s2[i] + (1 - b2) * g[i] * g[i]
                    p[i] -= step * s1[i] / (s2[i].squareRoot() + eps)
                }
            }
        }
    }
}
