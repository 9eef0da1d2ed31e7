import COpenCL
import CytoCore
import Foundation

/// Options of the OpenCL backend. Defaults come from the environment.
public struct OpenCLOptions: Sendable, Equatable {
    /// Record per-kernel event times (`profileReport()`); enables queue profiling.
    public var profiling: Bool
    /// Build with -cl-fast-relaxed-math (CYTOCL_FAST_MATH=1). Off: strict IEEE math.
    public var fastMath: Bool
    /// Kernel-binary cache folder; nil disables the cache. Default:
    /// $XDG_CACHE_HOME/cytocl or ~/.cache/cytocl, nil when CYTOCL_KERNEL_CACHE=off.
    public var cacheDirectory: String?
    /// Folder to load the .cl sources from instead of the embedded copies (CYTOCL_KERNELS).
    public var kernelDirectory: String?
    /// Pixels per work-item along x in the convolutions (1, 2, 4 or 8); nil: 8 on
    /// CPU devices, 4 on GPUs. CYTOCL_VECTOR_WIDTH overrides.
    public var vectorWidth: Int?
    /// Which device class the kernel choices are made for: "cpu" or "gpu"; nil: from
    /// the device type (accelerators count as GPUs). CYTOCL_DEVICE_CLASS overrides, so
    /// the GPU code paths can be run and tested on CPU drivers (PoCL, rusticl).
    public var deviceClass: String?
    /// Filter-gradient kernel: "rows" (CPU default: a row block per work-item),
    /// "partial" (a work-group per output/input channel pair) or "tiled" (GPU default:
    /// input rows staged in local memory). CYTOCL_FILTER_KERNEL overrides.
    public var filterKernel: String?
    /// Work-items per group of the element-wise and 1-D kernels, and the group width of
    /// the reductions (a power of two; clamped to the device's and kernel's limits).
    /// nil: 64 on GPUs, chosen per launch on CPUs. CYTOCL_WORK_GROUP overrides.
    public var workGroupSize: Int?
    /// Output rows per work-group of the tiled filter gradient; nil: as many as fit in
    /// half the device's local memory, at most 16. CYTOCL_FILTER_TILE_ROWS overrides.
    public var filterTileRows: Int?

    public init(
        profiling: Bool = false,
        fastMath: Bool? = nil,
        cacheDirectory: String?? = nil,
        kernelDirectory: String?? = nil,
        vectorWidth: Int? = nil,
        deviceClass: String? = nil,
        filterKernel: String? = nil,
        workGroupSize: Int? = nil,
        filterTileRows: Int? = nil,
        environment env: [String: String] = ProcessInfo.processInfo.environment
    ) {
        func nonEmpty(_ key: String) -> String? { env[key].flatMap { $0.isEmpty ? nil : $0 } }
        // A number that does not parse becomes -1, which `validated()` rejects by name.
        self.profiling = profiling
        self.fastMath = fastMath ?? (env["CYTOCL_FAST_MATH"] == "1")
        self.cacheDirectory = cacheDirectory ?? ProgramBuilder.defaultCacheDirectory(environment: env)?.path
        self.kernelDirectory = kernelDirectory ?? nonEmpty("CYTOCL_KERNELS")
        self.vectorWidth = vectorWidth ?? nonEmpty("CYTOCL_VECTOR_WIDTH").map { Int($0) ?? -1 }
        self.deviceClass = deviceClass ?? nonEmpty("CYTOCL_DEVICE_CLASS")?.lowercased()
        self.filterKernel = filterKernel ?? nonEmpty("CYTOCL_FILTER_KERNEL")?.lowercased()
        self.workGroupSize = workGroupSize ?? nonEmpty("CYTOCL_WORK_GROUP").map { Int($0) ?? -1 }
        self.filterTileRows = filterTileRows ?? nonEmpty("CYTOCL_FILTER_TILE_ROWS").map { Int($0) ?? -1 }
    }

    /// Checks the tuning settings, naming the environment variable of a bad one.
    func validated() throws -> OpenCLOptions {
        if let v = vectorWidth, ![1, 2, 4, 8].contains(v) {
            throw CytoError.backend("CYTOCL_VECTOR_WIDTH / vector width \(v): must be 1, 2, 4 or 8")
        }
        if let c = deviceClass, !["cpu", "gpu"].contains(c) {
            throw CytoError.backend("CYTOCL_DEVICE_CLASS '\(c)': must be cpu or gpu")
        }
        if let f = filterKernel, !["rows", "partial", "tiled"].contains(f) {
            throw CytoError.backend("CYTOCL_FILTER_KERNEL '\(f)': must be rows, partial or tiled")
        }
        if let w = workGroupSize, w < 1 || w & (w - 1) != 0 {
            throw CytoError.backend("CYTOCL_WORK_GROUP \(w): must be a power of two")
        }
        if let r = filterTileRows, r < 1 || r > 64 {
            throw CytoError.backend("CYTOCL_FILTER_TILE_ROWS \(r): must be 1 to 64")
        }
        return self
    }
}

/// A buffer in device memory. Every allocation carries a zeroed slack of 256 bytes
/// past `count` elements so vector loads at row ends stay inside the allocation.
public final class OpenCLBuffer: DeviceBuffer {
    public let element: BufferElement
    public let count: Int
    public let label: String
    let mem: cl_mem
    let bytes: Int
    /// For a segment (a sub-buffer of `makeSegmentedBuffer`): the whole buffer, kept
    /// alive by the segment, and the segment's first element in it.
    let parent: OpenCLBuffer?
    let offset: Int
    private let onFree: (Int) -> Void

    init(
        element: BufferElement, count: Int, label: String, mem: cl_mem, bytes: Int,
        parent: OpenCLBuffer? = nil, offset: Int = 0, onFree: @escaping (Int) -> Void
    ) {
        self.element = element; self.count = count; self.label = label
        self.mem = mem; self.bytes = bytes; self.parent = parent; self.offset = offset; self.onFree = onFree
    }

    /// The allocation this buffer lies in and its first element there.
    var root: (buffer: OpenCLBuffer, offset: Int) { parent.map { ($0, offset) } ?? (self, 0) }
    deinit {
        clReleaseMemObject(mem)
        onFree(bytes)
    }
}

/// The OpenCL backend: one context and one in-order queue on one device; programs
/// built at first use (through the binary cache) and kernels cached; every op
/// enqueues work without waiting, and only `read` and `synchronize` block.
///
/// The `Backend` ops cannot throw, so an OpenCL failure inside an op is recorded in
/// `pendingError`; from then on the backend is failed: `checkErrors()` and `read`
/// throw that error and later launches are skipped (device memory may hold partial
/// results). Call `prepare()` first to get build errors thrown.
public final class OpenCLBackend: Backend {
    public let kind = BackendKind.opencl
    public let info: OpenCLDeviceInfo
    public let options: OpenCLOptions
    public var deviceDescription: String {
        "OpenCL \(info.selector): \(info.name) (\(info.platformName), \(info.type), \(info.computeUnits) CUs, driver \(info.driverVersion))"
    }
    /// The first error of an op; once set, the backend is failed for good.
    public private(set) var pendingError: OpenCLError?
    /// The failure `CYTOCL_FAULT` injects (tests only), and how many launches and
    /// reads have happened, to find its occurrence.
    let fault: OpenCLFault?
    private var faultCounts: [OpenCLFault.Point: Int] = [:]
    /// Program build and cache statistics.
    public var buildStats: ProgramBuildStats { builder.stats }
    /// Bytes currently allocated by this backend's buffers.
    public private(set) var allocatedBytes = 0

    let context: cl_context
    let queue: cl_command_queue
    let device: cl_device_id
    let builder: ProgramBuilder
    let vectorWidth: Int
    /// The device class the kernel choices are made for (OpenCLOptions.deviceClass).
    let isCPUClass: Bool
    let filterKernel: String
    /// Work-items per group of the 1-D kernels on GPUs, the reductions' group width.
    let groupSize: Int
    /// Side of the GEMM tile (TS in dense.cl): 16, or 8 on devices with fewer than 256
    /// work-items per group.
    let gemmTile: Int
    /// Sub-buffer origins must be multiples of this many bytes (CL_DEVICE_MEM_BASE_ADDR_ALIGN).
    let baseAddressAlignment: Int
    /// Kernels enqueued since the backend was made (launches per step = difference / steps).
    public private(set) var launchCount = 0
    private var kernelGroupLimits: [String: Int] = [:]
    let buildOptions: String
    private var programs: [String: cl_program] = [:]
    private var kernels: [String: cl_kernel] = [:]
    private var scratch: [String: OpenCLBuffer] = [:]
    private var padBuffers: [(key: [Int], buffer: OpenCLBuffer)] = []
    private var pendingWrites: [(event: cl_event, memory: UnsafeMutableRawPointer)] = []
    private var profileEvents: [(name: String, event: cl_event)] = []
    private var profileTotals: [String: (calls: Int, nanoseconds: UInt64)] = [:]
    static let slackBytes = 256

    public init(platformIndex: Int, deviceIndex: Int, options: OpenCLOptions = .init()) throws {
        let platforms = try OpenCLRuntime.platformIDs()
        guard platformIndex >= 0, platformIndex < platforms.count else {
            throw OpenCLError.noDevice(
                "no OpenCL platform \(platformIndex): there \(platforms.count == 1 ? "is 1 platform" : "are \(platforms.count) platforms") (see `cytocl devices`)"
            )
        }
        let devices = OpenCLRuntime.deviceIDs(platforms[platformIndex])
        guard deviceIndex >= 0, deviceIndex < devices.count, let dev = devices[deviceIndex] else {
            throw OpenCLError.noDevice(
                "no OpenCL device \(platformIndex).\(deviceIndex): platform \(platformIndex) has \(devices.count) device(s) (see `cytocl devices`)"
            )
        }
        let pname = OpenCLRuntime.platformString(platforms[platformIndex], cl_platform_info(CL_PLATFORM_NAME))
        info = OpenCLRuntime.info(device: dev, platformIndex: platformIndex, deviceIndex: deviceIndex, platformName: pname)
        let options = try options.validated()
        self.options = options
        fault = try OpenCLFault.fromEnvironment()
        device = dev
        var err: cl_int = 0
        var d: cl_device_id? = dev
        guard let ctx = clCreateContext(nil, 1, &d, nil, nil, &err), err == CL_SUCCESS else {
            throw OpenCLError.api(call: "clCreateContext", code: err, context: info.name)
        }
        context = ctx
        let props: cl_command_queue_properties = options.profiling ? cl_command_queue_properties(CL_QUEUE_PROFILING_ENABLE) : 0
        guard let q = clCreateCommandQueue(ctx, dev, props, &err), err == CL_SUCCESS else {
            clReleaseContext(ctx)
            throw OpenCLError.api(call: "clCreateCommandQueue", code: err, context: info.name)
        }
        queue = q
        isCPUClass = options.deviceClass.map { $0 == "cpu" } ?? (info.type == "CPU")
        vectorWidth = options.vectorWidth ?? (isCPUClass ? 8 : 4)
        filterKernel = options.filterKernel ?? (isCPUClass ? "rows" : "tiled")
        let maxGroup = max(1, info.maxWorkGroupSize)
        var g = 1
        while g * 2 <= min(options.workGroupSize ?? 64, maxGroup) { g *= 2 }
        groupSize = g
        gemmTile = maxGroup >= 256 ? 16 : 8
        var alignBits: cl_uint = 0
        clGetDeviceInfo(dev, cl_device_info(CL_DEVICE_MEM_BASE_ADDR_ALIGN), 4, &alignBits, nil)
        baseAddressAlignment = max(128, Int(alignBits) / 8)
        var opts = "-cl-std=CL1.2"
        if options.fastMath { opts += " -cl-fast-relaxed-math" }
        buildOptions = opts
        builder = ProgramBuilder(
            context: ctx, device: dev, info: info,
            cacheDirectory: options.cacheDirectory.map { URL(fileURLWithPath: $0) })
    }

    deinit {
        clFinish(queue)
        reapWrites(all: true)
        for e in profileEvents { clReleaseEvent(e.event) }
        scratch.removeAll()
        padBuffers.removeAll()
        for k in kernels.values { clReleaseKernel(k) }
        for p in programs.values { clReleaseProgram(p) }
        clReleaseCommandQueue(queue)
        clReleaseContext(context)
    }

    /// Convenience: the backend for a selector such as "opencl", "opencl:1" or "opencl:0.1".
    public convenience init(selector: String, options: OpenCLOptions = .init()) throws {
        let (p, d) = try OpenCLRuntime.resolve(selector)
        try self.init(platformIndex: p, deviceIndex: d, options: options)
    }

    // MARK: Programs and errors

    /// Builds every kernel file now (through the cache), so build errors are thrown
    /// here instead of being recorded by the first op. Returns the seconds spent.
    @discardableResult
    public func prepare() throws -> Double {
        let before = builder.stats.seconds
        for f in KernelSources.files { _ = try program(f) }
        return builder.stats.seconds - before
    }

    /// Throws the first error recorded by an op (again on every call: a failed
    /// backend stays failed).
    public func checkErrors() throws {
        if let e = pendingError { throw e }
    }

    /// Builds an arbitrary source with this backend's options (for tests and kernel work).
    public func buildProgram(file: String, source: String, extraOptions: String = "") throws {
        let p = try builder.build(file: file, source: source, options: buildOptions + (extraOptions.isEmpty ? "" : " " + extraOptions))
        clReleaseProgram(p)
    }

    /// The options `file` is built with: the tuning defines only where the source
    /// uses them, so changing one setting rebuilds (and caches) only that file.
    func buildOptions(_ file: String) -> String {
        switch file {
        case "conv.cl": return buildOptions + " -DVW=\(vectorWidth)"
        case "dense.cl": return buildOptions + " -DTS=\(gemmTile)"
        default: return buildOptions
        }
    }

    func program(_ file: String) throws -> cl_program {
        if let p = programs[file] { return p }
        let src = try KernelSources.source(file, directory: options.kernelDirectory)
        let p = try builder.build(file: file, source: src, options: buildOptions(file))
        programs[file] = p
        return p
    }

    func kernel(_ name: String, _ file: String) throws -> cl_kernel {
        if let k = kernels[name] { return k }
        let p = try program(file)
        var err: cl_int = 0
        guard let k = clCreateKernel(p, name, &err), err == CL_SUCCESS else {
            throw OpenCLError.api(call: "clCreateKernel", code: err, context: "\(name) in \(file)")
        }
        kernels[name] = k
        var wg = 0
        clGetKernelWorkGroupInfo(k, device, cl_kernel_work_group_info(CL_KERNEL_WORK_GROUP_SIZE), MemoryLayout<Int>.size, &wg, nil)
        kernelGroupLimits[name] = min(max(1, info.maxWorkGroupSize), wg > 0 ? wg : Int.max)
        return k
    }

    /// The most work-items a group of kernel `name` may have on this device
    /// (CL_KERNEL_WORK_GROUP_SIZE: registers and local memory can make it smaller than
    /// the device's maximum); 1 when the kernel cannot be built (the launch records why).
    func groupLimit(_ name: String, _ file: String) -> Int {
        if kernelGroupLimits[name] == nil { _ = try? kernel(name, file) }
        return kernelGroupLimits[name] ?? 1
    }

    /// The largest power of two <= min(want, groupLimit(name)).
    func powerOfTwoGroup(_ want: Int, _ name: String, _ file: String) -> Int {
        var l = 1
        while l * 2 <= min(want, groupLimit(name, file)) { l *= 2 }
        return l
    }

    /// Keeps the first failure; the command that used the backend reports it when
    /// it checks (`checkErrors`, `read`), so it is printed once, as the error.
    func record(_ error: Error) {
        let e = (error as? OpenCLError) ?? .api(call: "OpenCL backend", code: 0, context: "\(error)")
        if pendingError == nil { pendingError = e }
    }

    /// True when `CYTOCL_FAULT` asks this occurrence of `point` to fail.
    func injectFault(_ point: OpenCLFault.Point) -> Bool {
        guard let fault, fault.point == point else { return false }
        let n = (faultCounts[point] ?? 0) + 1
        faultCounts[point] = n
        return n == fault.occurrence
    }

    // MARK: Launch

    enum Arg {
        case mem(cl_mem)
        case int(Int)
        case float(Float)
        case local(Int)
    }

    /// Enqueues kernel `name` of `file` over `global` work-items (rounded up to whole
    /// work-groups of `local`, or of `defaultLocalSize`; every kernel guards its range).
    func launch(_ name: String, _ file: String, _ args: [Arg], global: [Int], local: [Int]? = nil, tag: String? = nil) {
        if global.contains(where: { $0 <= 0 }) || pendingError != nil { return }
        if injectFault(.launch) {
            record(
                OpenCLError.api(
                    call: "clEnqueueNDRangeKernel", code: CL_OUT_OF_RESOURCES,
                    context: "\(name) on \(info.name), injected by \(OpenCLFault.variable)"))
            return
        }
        do {
            let k = try kernel(name, file)
            for (i, a) in args.enumerated() {
                var e: cl_int
                switch a {
                case .mem(let m):
                    var v: cl_mem? = m
                    e = clSetKernelArg(k, cl_uint(i), MemoryLayout<cl_mem>.size, &v)
                case .int(let n):
                    var v = cl_int(truncatingIfNeeded: n)
                    e = clSetKernelArg(k, cl_uint(i), 4, &v)
                case .float(let f):
                    var v = f
                    e = clSetKernelArg(k, cl_uint(i), 4, &v)
                case .local(let bytes):
                    e = clSetKernelArg(k, cl_uint(i), bytes, nil)
                }
                try check(e, "clSetKernelArg", "\(name) argument \(i)")
            }
            var l = local ?? defaultLocalSize(global)
            if local == nil, let limit = kernelGroupLimits[name] {
                // Halve the largest dimension until the group fits this kernel's limit.
                while l.reduce(1, *) > limit, let i = l.indices.max(by: { l[$0] < l[$1] }), l[i] > 1 { l[i] = (l[i] + 1) / 2 }
            }
            // Round the global size up to whole work-groups; every kernel guards its range.
            let g = zip(global, l).map { (x, m) in (x + m - 1) / m * m }
            var event: cl_event? = nil
            let profiling = options.profiling
            let err: cl_int = withUnsafeMutablePointer(to: &event) { ep in
                g.withUnsafeBufferPointer { gp in
                    l.withUnsafeBufferPointer { lp in
                        clEnqueueNDRangeKernel(
                            queue, k, cl_uint(g.count), nil, gp.baseAddress, lp.baseAddress, 0, nil,
                            profiling ? ep : nil)
                    }
                }
            }
            try check(err, "clEnqueueNDRangeKernel", "\(name) global \(g) local \(l)")
            launchCount += 1
            if let event { profileEvents.append((tag ?? name, event)); if profileEvents.count > 4096 { drainProfile() } }
        } catch {
            record(error)
        }
    }

    /// Work-group size when a kernel does not need a particular one. GPUs get 64-256
    /// work-items. CPU drivers such as PoCL run one work-group per task, so they get
    /// large groups (few tasks, little scheduling overhead); leaving the choice to
    /// PoCL gives groups of 1 for prime sizes such as 257, which is 10x slower.
    func defaultLocalSize(_ global: [Int]) -> [Int] {
        func up(_ x: Int, _ m: Int) -> Int { (x + m - 1) / m * m }
        if !isCPUClass {
            // groupSize work-items (64 unless tuned), wide along x for coalesced rows.
            let gs = groupSize
            if global.count == 1 { return [gs] }
            let l0 = min(gs, 32), l1 = max(1, gs / l0)
            return global.count == 2 ? [l0, l1] : [l0, min(l1, 4), max(1, gs / (l0 * min(l1, 4)))]
        }
        switch global.count {
        case 1: return [min(up(global[0], 8), 1024)]
        default:
            let l0 = global[0] <= 256 ? up(global[0], 8) : 128
            let l1 = max(1, min(global[1], 512 / l0))
            return global.count == 2 ? [l0, l1] : [l0, l1, 1]
        }
    }

    // MARK: Buffers

    @inline(__always) func buf(_ b: any DeviceBuffer) -> OpenCLBuffer {
        guard let c = b as? OpenCLBuffer else {
            preconditionFailure("buffer '\(b.label)' was not made by the OpenCL backend")
        }
        return c
    }

    public func makeBuffer(_ element: BufferElement, count: Int, label: String) throws -> any DeviceBuffer {
        guard count >= 0 else { throw CytoError.backend("buffer \(label): negative size \(count)") }
        let (payload, overflow) = count.multipliedReportingOverflow(by: element.byteSize)
        let bytes = overflow || payload > Int.max / 2 ? Int.max : (payload + 3) / 4 * 4 + Self.slackBytes
        if bytes > info.maxAllocationBytes && info.maxAllocationBytes > 0
            || bytes > info.globalMemoryBytes - allocatedBytes && info.globalMemoryBytes > 0
        {
            throw OpenCLError.outOfMemory(
                label: label, requestedBytes: overflow ? Int.max : payload, allocatedBytes: allocatedBytes,
                maxAllocBytes: info.maxAllocationBytes, globalMemBytes: info.globalMemoryBytes,
                device: info.name)
        }
        // Kernels take element counts as 32-bit ints: a larger buffer would be indexed wrongly.
        guard count <= Int(Int32.max) else {
            throw CytoError.outOfMemory("buffer '\(label)' of \(count) elements exceeds the \(Int32.max) elements OpenCL kernels can index")
        }
        var err: cl_int = 0
        let mem = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), bytes, nil, &err)
        guard let mem, err == CL_SUCCESS else {
            if [CL_MEM_OBJECT_ALLOCATION_FAILURE, CL_OUT_OF_RESOURCES, CL_OUT_OF_HOST_MEMORY, CL_INVALID_BUFFER_SIZE].contains(err) {
                throw OpenCLError.outOfMemory(
                    label: label, requestedBytes: payload, allocatedBytes: allocatedBytes,
                    maxAllocBytes: info.maxAllocationBytes, globalMemBytes: info.globalMemoryBytes,
                    device: info.name)
            }
            throw OpenCLError.api(call: "clCreateBuffer", code: err, context: "\(label), \(bytes) bytes")
        }
        var zero: UInt32 = 0
        try check(
            clEnqueueFillBuffer(queue, mem, &zero, 4, 0, bytes, 0, nil, nil),
            "clEnqueueFillBuffer", label)
        allocatedBytes += bytes
        return OpenCLBuffer(element: element, count: count, label: label, mem: mem, bytes: bytes) { [weak self] n in
            self?.allocatedBytes -= n
        }
    }

    /// Segments are OpenCL sub-buffers, so their origins are multiples of the device's
    /// base-address alignment, and each keeps the 256-byte zero slack of a buffer.
    public func makeSegmentedBuffer(
        _ element: BufferElement, counts: [Int], labels: [String], label: String
    ) throws
        -> (whole: any DeviceBuffer, segments: [any DeviceBuffer])
    {
        let layout = SegmentLayout(
            counts: counts, alignmentBytes: baseAddressAlignment, slackBytes: Self.slackBytes,
            elementBytes: element.byteSize)
        let whole = buf(try makeBuffer(element, count: layout.total, label: label))
        var segments: [any DeviceBuffer] = []
        for ((offset, count), name) in zip(zip(layout.offsets, counts), labels) {
            var region = cl_buffer_region(
                origin: offset * element.byteSize,
                size: count * element.byteSize + Self.slackBytes)
            var err: cl_int = 0
            guard
                let mem = clCreateSubBuffer(
                    whole.mem, cl_mem_flags(CL_MEM_READ_WRITE),
                    cl_buffer_create_type(CL_BUFFER_CREATE_TYPE_REGION), &region, &err),
                err == CL_SUCCESS
            else {
                throw OpenCLError.api(call: "clCreateSubBuffer", code: err, context: "\(name) at element \(offset) of \(label)")
            }
            segments.append(
                OpenCLBuffer(
                    element: element, count: count, label: name, mem: mem, bytes: 0,
                    parent: whole, offset: offset
                ) { _ in })
        }
        return (whole, segments)
    }

    /// Device memory not yet allocated by this backend, and the per-buffer limit.
    public func memoryLimit() -> MemoryLimit? {
        guard info.globalMemoryBytes > 0 else { return nil }
        return MemoryLimit(
            availableBytes: max(0, info.globalMemoryBytes - allocatedBytes),
            maxBufferBytes: info.maxAllocationBytes > 0 ? info.maxAllocationBytes : nil,
            source: "device memory of \(info.name)")
    }

    /// A backend-owned scratch buffer of at least `count` floats, grown on demand.
    func scratchBuffer(_ name: String, floats count: Int) -> OpenCLBuffer? {
        if let b = scratch[name], b.count >= count { return b }
        do {
            let b = buf(try makeBuffer(.float32, count: max(count, (scratch[name]?.count ?? 0) * 3 / 2), label: "scratch.\(name)"))
            scratch[name] = b
            return b
        } catch {
            record(error)
            return nil
        }
    }

    /// The zero-padded input of the data-gradient convolution: one buffer per size,
    /// zeroed when made; `pad_copy` writes only the interior, so the border stays zero.
    /// The few most recent sizes are kept.
    func paddedBuffer(planes: Int, height: Int, width: Int) -> OpenCLBuffer? {
        let key = [planes, height, width]
        if let e = padBuffers.first(where: { $0.key == key }) { return e.buffer }
        do {
            let b = buf(try makeBuffer(.float32, count: planes * height * width, label: "scratch.pad \(planes)x\(height)x\(width)"))
            padBuffers.append((key, b))
            if padBuffers.count > 12 { padBuffers.removeFirst() }
            return b
        } catch {
            record(error)
            return nil
        }
    }

    /// Non-blocking write from a private copy of the data, freed once the write is done.
    func enqueueWrite(_ src: UnsafeRawBufferPointer, to mem: cl_mem, byteOffset: Int, label: String) {
        guard let base = src.baseAddress, src.count > 0, pendingError == nil else { return }
        reapWrites(all: false)
        if src.count > 1 << 20 {
            do {
                try check(
                    clEnqueueWriteBuffer(queue, mem, cl_bool(CL_TRUE), byteOffset, src.count, base, 0, nil, nil),
                    "clEnqueueWriteBuffer", label)
            } catch { record(error) }
            return
        }
        let copy = UnsafeMutableRawPointer.allocate(byteCount: src.count, alignment: 64)
        copy.copyMemory(from: base, byteCount: src.count)
        var event: cl_event? = nil
        let err = clEnqueueWriteBuffer(queue, mem, cl_bool(CL_FALSE), byteOffset, src.count, copy, 0, nil, &event)
        if err != CL_SUCCESS || event == nil {
            clFinish(queue)
            copy.deallocate()
            record(OpenCLError.api(call: "clEnqueueWriteBuffer", code: err, context: label))
            return
        }
        pendingWrites.append((event!, copy))
    }

    func reapWrites(all: Bool) {
        if pendingWrites.isEmpty { return }
        if all {
            for w in pendingWrites { clWaitForEvents(1, [w.event]); clReleaseEvent(w.event); w.memory.deallocate() }
            pendingWrites.removeAll()
            return
        }
        pendingWrites.removeAll { w in
            var status: cl_int = 0
            clGetEventInfo(w.event, cl_event_info(CL_EVENT_COMMAND_EXECUTION_STATUS), 4, &status, nil)
            if status == CL_COMPLETE || status < 0 {
                clReleaseEvent(w.event); w.memory.deallocate(); return true
            }
            return false
        }
    }

    public func write(_ values: [Float], to buffer: any DeviceBuffer, offset: Int) {
        let b = buf(buffer)
        precondition(offset >= 0 && offset + values.count <= b.count, "write past the end of \(b.label)")
        if b.element == .float32 {
            values.withUnsafeBytes { enqueueWrite($0, to: b.mem, byteOffset: offset * 4, label: b.label) }
        } else {
            let bytes = values.map { UInt8(max(0, min(255, $0.rounded()))) }
            bytes.withUnsafeBytes { enqueueWrite($0, to: b.mem, byteOffset: offset, label: b.label) }
        }
    }

    public func write(bytes: UnsafeRawBufferPointer, to buffer: any DeviceBuffer, byteOffset: Int) {
        let b = buf(buffer)
        precondition(byteOffset >= 0 && byteOffset + bytes.count <= b.count * b.element.byteSize, "write past the end of \(b.label)")
        enqueueWrite(bytes, to: b.mem, byteOffset: byteOffset, label: b.label)
    }

    public func read(_ buffer: any DeviceBuffer, offset: Int, count: Int) throws -> [Float] {
        let b = buf(buffer)
        precondition(offset >= 0 && offset + count <= b.count, "read past the end of \(b.label)")
        try checkErrors()
        if injectFault(.read) {
            record(
                OpenCLError.api(
                    call: "clEnqueueReadBuffer", code: CL_OUT_OF_RESOURCES,
                    context: "\(b.label) on \(info.name), injected by \(OpenCLFault.variable)"))
        }
        try checkErrors()
        guard count > 0 else { synchronize(); try checkErrors(); return [] }
        var result: [Float]
        if b.element == .float32 {
            result = [Float](repeating: 0, count: count)
            let err = result.withUnsafeMutableBytes {
                clEnqueueReadBuffer(queue, b.mem, cl_bool(CL_TRUE), offset * 4, count * 4, $0.baseAddress, 0, nil, nil)
            }
            if err != CL_SUCCESS { record(OpenCLError.api(call: "clEnqueueReadBuffer", code: err, context: b.label)) }
        } else {
            var bytes = [UInt8](repeating: 0, count: count)
            let err = bytes.withUnsafeMutableBytes {
                clEnqueueReadBuffer(queue, b.mem, cl_bool(CL_TRUE), offset, count, $0.baseAddress, 0, nil, nil)
            }
            if err != CL_SUCCESS { record(OpenCLError.api(call: "clEnqueueReadBuffer", code: err, context: b.label)) }
            result = bytes.map(Float.init)
        }
        reapWrites(all: false)
        try checkErrors()
        return result
    }

    public func fill(_ buffer: any DeviceBuffer, value: Float, count: Int) {
        let b = buf(buffer)
        guard count > 0 else { return }
        if b.element == .float32 {
            launch("fill", "elementwise.cl", [.mem(b.mem), .float(value), .int(count)], global: [(count + 7) / 8])
        } else {
            var v = UInt8(max(0, min(255, value)))
            let err = clEnqueueFillBuffer(queue, b.mem, &v, 1, 0, count, 0, nil, nil)
            if err != CL_SUCCESS { record(OpenCLError.api(call: "clEnqueueFillBuffer", code: err, context: b.label)) }
        }
    }

    public func copy(from source: any DeviceBuffer, to destination: any DeviceBuffer, count: Int) {
        let s = buf(source), d = buf(destination)
        guard count > 0 else { return }
        if s.element == .float32 && d.element == .float32 {
            launch("copy", "elementwise.cl", [.mem(s.mem), .mem(d.mem), .int(count)], global: [(count + 7) / 8])
        } else {
            let err = clEnqueueCopyBuffer(queue, s.mem, d.mem, 0, 0, count * s.element.byteSize, 0, nil, nil)
            if err != CL_SUCCESS { record(OpenCLError.api(call: "clEnqueueCopyBuffer", code: err, context: "\(s.label) -> \(d.label)")) }
        }
    }

    public func synchronize() {
        let err = clFinish(queue)
        if err != CL_SUCCESS { record(OpenCLError.api(call: "clFinish", code: err, context: info.name)) }
        reapWrites(all: true)
    }

    // MARK: Batches

    public func gatherBatch(
        images: any DeviceBuffer, geometry: ImageGeometry, indices: [Int32],
        transforms: [AugmentTransform]?, output: any DeviceBuffer
    ) {
        let n = indices.count
        guard n > 0 else { return }
        precondition(transforms == nil || transforms!.count == n, "one transform per index")
        guard let idx = scratchBuffer("indices", floats: n), let par = scratchBuffer("transforms", floats: 8 * n) else { return }
        indices.withUnsafeBytes { enqueueWrite($0, to: idx.mem, byteOffset: 0, label: idx.label) }
        if let t = transforms {
            // The affine maps of augment.cl: (row base, per y, per x, column base, per y, per x, nearest, 0).
            var p = [Float](repeating: 0, count: 8 * n)
            for (i, x) in t.enumerated() {
                let m = x.map(height: geometry.height, width: geometry.width)
                p.replaceSubrange(
                    (8 * i)..<(8 * i + 7),
                    with: [
                        m.rowBase, m.rowPerY, m.rowPerX, m.colBase, m.colPerY, m.colPerX,
                        m.sampler == .nearest ? 1 : 0,
                    ])
            }
            p.withUnsafeBytes { enqueueWrite($0, to: par.mem, byteOffset: 0, label: par.label) }
        }
        launch(
            "gather_augment", "augment.cl",
            [
                .mem(buf(images).mem), .mem(idx.mem), .mem(par.mem), .mem(buf(output).mem),
                .int(n), .int(geometry.height), .int(geometry.width), .int(geometry.channels), .int(transforms == nil ? 0 : 1),
            ],
            global: [(geometry.width + 7) / 8, geometry.height, n], tag: "gather_augment \(n)x\(geometry.height)x\(geometry.width)")
    }

    // MARK: Convolution

    static let ocb = 4
    /// Output rows per work-item of `conv3x3` (RY in conv.cl): 2 when vectorised.
    var convRows: Int { vectorWidth > 1 ? 2 : 1 }

    func convForward(
        _ g: ConvGeometry, input: any DeviceBuffer, weight: any DeviceBuffer, bias: any DeviceBuffer,
        output: any DeviceBuffer, relu: Bool, pooled: (any DeviceBuffer)?
    ) {
        let nxv = (g.outWidth + vectorWidth - 1) / vectorWidth
        let nob = (g.outChannels + Self.ocb - 1) / Self.ocb
        launch(
            "conv3x3", "conv.cl",
            [
                .mem(buf(input).mem), .mem(buf(weight).mem), .mem(buf(bias).mem), .mem(buf(output).mem),
                .int(g.batch), .int(g.inChannels), .int(g.inWidth), .int(g.inHeight * g.inWidth),
                .int(g.outChannels), .int(g.outHeight), .int(g.outWidth),
                .int(0), .int(g.inChannels * 9), .int(9), .int(3), .int(1), .int(1), .int(relu ? 1 : 0),
                .mem(buf(pooled ?? output).mem), .int(pooled == nil ? 0 : 1),
            ],
            global: [nxv, (g.outHeight + convRows - 1) / convRows, g.batch * nob],
            tag: "conv_fwd\(pooled == nil ? "" : "+pool") \(g.inChannels)->\(g.outChannels) \(g.inHeight)x\(g.inWidth)")
    }

    public func conv2dForward(
        _ g: ConvGeometry, input: any DeviceBuffer, weight: any DeviceBuffer,
        bias: any DeviceBuffer, output: any DeviceBuffer, relu: Bool
    ) {
        convForward(g, input: input, weight: weight, bias: bias, output: output, relu: relu, pooled: nil)
    }

    /// One launch when the convolution computes two rows of an even number of pixels
    /// per work-item (vector width 2 or more): each work-item then pools its own
    /// outputs. With vector width 1, a separate max-pool launch.
    public func convBlockForward(_ block: ConvBlock) {
        let g = block.geometry
        if convRows == 2 {
            convForward(
                g, input: block.input, weight: block.weight, bias: block.bias, output: block.activation,
                relu: true, pooled: block.pooled)
        } else {
            convForward(
                g, input: block.input, weight: block.weight, bias: block.bias, output: block.activation,
                relu: true, pooled: nil)
            maxPoolForward(block.poolGeometry, input: block.activation, output: block.pooled)
        }
    }

    /// The zero-padded buffer holding the gradient of a convolution's output as the
    /// input of its data-gradient convolution: [N*OC][OH+4][pw], interior at (2, 2).
    struct PaddedGradient {
        let buffer: OpenCLBuffer
        let row: Int
        let plane: Int
        var interior: Int { 2 * row + 2 }
    }

    func paddedGradient(_ g: ConvGeometry) -> PaddedGradient? {
        let pw = (g.inWidth + vectorWidth - 1) / vectorWidth * vectorWidth + 2
        let ph = g.outHeight + 4
        guard let pad = paddedBuffer(planes: g.batch * g.outChannels, height: ph, width: pw) else { return nil }
        return PaddedGradient(buffer: pad, row: pw, plane: ph * pw)
    }

    /// The data gradient as a convolution of the padded gradient with the flipped,
    /// transposed weights: output channel c reads weight[o][c][2-ky][2-kx].
    func convDataFromPadded(_ g: ConvGeometry, _ pad: PaddedGradient, weight: any DeviceBuffer, gradInput: any DeviceBuffer) {
        let vw = vectorWidth
        let nxv = (g.inWidth + vw - 1) / vw
        let nob = (g.inChannels + Self.ocb - 1) / Self.ocb
        let w = buf(weight).mem
        launch(
            "conv3x3", "conv.cl",
            [
                .mem(pad.buffer.mem), .mem(w), .mem(w), .mem(buf(gradInput).mem),
                .int(g.batch), .int(g.outChannels), .int(pad.row), .int(pad.plane),
                .int(g.inChannels), .int(g.inHeight), .int(g.inWidth),
                .int(8), .int(9), .int(g.inChannels * 9), .int(-3), .int(-1), .int(0), .int(0),
                .mem(buf(gradInput).mem), .int(0),
            ],
            global: [nxv, (g.inHeight + convRows - 1) / convRows, g.batch * nob],
            tag: "conv_bwd_data \(g.outChannels)->\(g.inChannels) \(g.inHeight)x\(g.inWidth)")
    }

    public func conv2dBackwardData(
        _ g: ConvGeometry, gradOutput: any DeviceBuffer, weight: any DeviceBuffer,
        gradInput: any DeviceBuffer
    ) {
        let vw = vectorWidth
        guard let pad = paddedGradient(g) else { return }
        let planes = g.batch * g.outChannels
        launch(
            "pad_copy", "conv.cl",
            [.mem(buf(gradOutput).mem), .mem(pad.buffer.mem), .int(planes), .int(g.outHeight), .int(g.outWidth), .int(pad.row)],
            global: [(g.outWidth + vw - 1) / vw, g.outHeight, planes],
            tag: "conv_bwd_data.pad \(g.outChannels)->\(g.inChannels) \(g.inHeight)x\(g.inWidth)")
        convDataFromPadded(g, pad, weight: weight, gradInput: gradInput)
    }

    /// Where a filter-gradient kernel reads gradOut: a dense gradient or the interior
    /// of a padded one (strides in floats).
    struct GradientView {
        let mem: cl_mem
        let row: Int
        let plane: Int
        let offset: Int
    }

    /// How `filterPartials` splits the sums: partial rows (OC*IC*9 weights, then OC
    /// biases) times `chunks` partial sums each.
    func filterChunks(_ g: ConvGeometry) -> Int {
        switch filterKernel {
        case "rows":
            let r = min(g.outHeight, 32)
            return g.batch * ((g.outHeight + r - 1) / r)
        case "tiled":
            let r = filterTileRows(g)
            return r == 0 ? partialKernelChunks(g) : g.batch * ((g.outHeight + r - 1) / r)
        default:
            return partialKernelChunks(g)
        }
    }

    /// Row chunks of the "partial" filter kernel (several images' rows may share one).
    func partialKernelChunks(_ g: ConvGeometry) -> Int {
        let rows = g.batch * g.outHeight
        let rowsPerChunk = isCPUClass ? max(8, rows / max(1, 256 / (g.outChannels * g.inChannels))) : 4
        return (rows + rowsPerChunk - 1) / rowsPerChunk
    }

    /// Rows of the tiled filter kernel's local-memory tile; 0 when not even one row
    /// fits (then the "partial" kernel is used).
    func filterTileRows(_ g: ConvGeometry) -> Int {
        let l = powerOfTwoGroup(min(256, max(32, g.outWidth)), "conv3x3_filter_tiled", "conv.cl")
        let budget = info.localMemoryBytes / 2 - l * 10 * 4
        let fit = budget / (4 * g.inWidth) - 2
        guard fit >= 1 else { return 0 }
        return min(options.filterTileRows ?? 16, fit, g.outHeight)
    }

    /// Pass 1 of the filter (and, with `withBias`, bias) gradient into
    /// `partial[pOff ...]`, laid out as `filterChunks` says.
    func filterPartials(
        _ g: ConvGeometry, input: any DeviceBuffer, gradOutput: GradientView, partial: OpenCLBuffer,
        pOff: Int, withBias: Bool
    ) {
        let tag = "conv_bwd_filter\(withBias ? "+bias" : "") \(g.inChannels)->\(g.outChannels) \(g.inHeight)x\(g.inWidth)"
        let pairs = g.outChannels * g.inChannels
        let chunks = filterChunks(g)
        let view: [Arg] = [.int(gradOutput.row), .int(gradOutput.plane), .int(gradOutput.offset), .int(withBias ? 1 : 0), .int(pOff)]
        let tileRows = filterKernel == "tiled" ? filterTileRows(g) : 0
        if filterKernel == "rows" {
            // Row chunks of one image per work-item; small groups so every thread gets work.
            let r = min(g.outHeight, 32)
            let cpn = (g.outHeight + r - 1) / r
            var l1 = 1
            while l1 * 2 <= min(64, pairs * chunks / 64) { l1 *= 2 }
            launch(
                "conv3x3_filter_rows", "conv.cl",
                [
                    .mem(buf(input).mem), .mem(gradOutput.mem), .mem(partial.mem),
                    .int(g.batch), .int(g.inChannels), .int(g.inHeight), .int(g.inWidth), .int(g.outChannels),
                    .int(cpn), .int(r),
                ] + view,
                global: [chunks, pairs], local: [1, min(l1, groupLimit("conv3x3_filter_rows", "conv.cl"))], tag: tag)
        } else if tileRows > 0 {
            let l = powerOfTwoGroup(min(256, max(32, g.outWidth)), "conv3x3_filter_tiled", "conv.cl")
            let nob = (g.outChannels + 3) / 4
            launch(
                "conv3x3_filter_tiled", "conv.cl",
                [
                    .mem(buf(input).mem), .mem(gradOutput.mem), .mem(partial.mem),
                    .local((tileRows + 2) * g.inWidth * 4), .local(l * 10 * 4),
                    .int(g.batch), .int(g.inChannels), .int(g.inHeight), .int(g.inWidth), .int(g.outChannels),
                    .int(tileRows),
                ] + view,
                global: [l, chunks, g.inChannels * nob], local: [l, 1, 1], tag: tag)
        } else {
            let nxv = (g.outWidth + vectorWidth - 1) / vectorWidth
            let want = isCPUClass ? min(nxv, 64) : min(256, (nxv + 31) / 32 * 32)
            let l = powerOfTwoGroup(want, "conv3x3_filter_partial", "conv.cl")
            let rowsPerChunk = (g.batch * g.outHeight + chunks - 1) / chunks
            launch(
                "conv3x3_filter_partial", "conv.cl",
                [
                    .mem(buf(input).mem), .mem(gradOutput.mem), .mem(partial.mem), .local(l * 10 * 4),
                    .int(g.batch), .int(g.inChannels), .int(g.inHeight), .int(g.inWidth), .int(g.outChannels),
                    .int(chunks), .int(rowsPerChunk),
                ] + view,
                global: [l, chunks, pairs], local: [l, 1, 1], tag: tag)
        }
    }

    public func conv2dBackwardFilter(
        _ g: ConvGeometry, input: any DeviceBuffer, gradOutput: any DeviceBuffer,
        gradWeight: any DeviceBuffer
    ) {
        let rows = g.weightCount, chunks = filterChunks(g)
        guard let partial = scratchBuffer("filter", floats: (rows + g.outChannels) * chunks) else { return }
        filterPartials(
            g, input: input,
            gradOutput: GradientView(mem: buf(gradOutput).mem, row: g.outWidth, plane: g.outHeight * g.outWidth, offset: 0),
            partial: partial, pOff: 0, withBias: false)
        launch(
            "reduce_rows", "reduce.cl", [.mem(partial.mem), .mem(buf(gradWeight).mem), .int(rows), .int(chunks)],
            global: [rows], tag: "conv_bwd_filter.sum \(g.inChannels)->\(g.outChannels) \(g.inHeight)x\(g.inWidth)")
    }

    public func conv2dBackwardBias(_ g: ConvGeometry, gradOutput: any DeviceBuffer, gradBias: any DeviceBuffer) {
        channelSums(
            gradOutput, n: g.batch, c: g.outChannels, p: g.outHeight * g.outWidth, into: gradBias,
            tag: "conv_bwd_bias \(g.outChannels) \(g.outHeight)x\(g.outWidth)")
    }

    /// Per block, last first: max-pool backward with the ReLU mask, written straight
    /// into the padded buffer the data gradient reads (1 launch); filter and bias
    /// partial sums from that buffer (1); the data gradient into the previous block's
    /// pooled gradient (1, not for the first block unless `gradInput` is wanted). Then
    /// one launch reduces the partial sums of every block into the gradients.
    public func convStackBackward(_ blocks: [ConvBlock], gradInput: (any DeviceBuffer)?) {
        var offsets: [Int] = [], total = 0
        for b in blocks {
            offsets.append(total)
            total += (b.geometry.weightCount + b.geometry.outChannels) * filterChunks(b.geometry)
        }
        guard let partial = scratchBuffer("filter.stack", floats: total) else { return }
        for k in blocks.indices.reversed() {
            let b = blocks[k], g = b.geometry, pg = b.poolGeometry
            guard let pad = paddedGradient(g) else { return }
            launch(
                "maxpool_bwd", "pool.cl",
                [
                    .mem(buf(b.activation).mem), .mem(buf(b.gradPooled).mem), .mem(pad.buffer.mem),
                    .int(pg.batch * pg.channels), .int(pg.inHeight), .int(pg.inWidth),
                    .int(1), .int(pad.row), .int(pad.plane), .int(pad.interior),
                ],
                global: [(pg.inWidth + 15) / 16, (pg.inHeight + 1) / 2, pg.batch * pg.channels],
                tag: "maxpool_bwd+relu \(pg.channels) \(pg.inHeight)x\(pg.inWidth)")
            filterPartials(
                g, input: b.input,
                gradOutput: GradientView(mem: pad.buffer.mem, row: pad.row, plane: pad.plane, offset: pad.interior),
                partial: partial, pOff: offsets[k], withBias: true)
            if let target = k > 0 ? blocks[k - 1].gradPooled : gradInput {
                convDataFromPadded(g, pad, weight: b.weight, gradInput: target)
            }
        }
        // Segments: each block's weight rows, then its bias rows, into their buffers.
        var segments: [(rows: Int, partial: Int, chunks: Int, destination: any DeviceBuffer)] = []
        for (k, b) in blocks.enumerated() {
            let g = b.geometry, chunks = filterChunks(g)
            segments.append((g.weightCount, offsets[k], chunks, b.gradWeight))
            segments.append((g.outChannels, offsets[k] + g.weightCount * chunks, chunks, b.gradBias))
        }
        reduceSegments(partial, segments, tag: "conv_bwd_filter+bias.sum")
    }

    /// `destination[r] = sum_j partial[offset + r*chunks + j]` for every segment: one
    /// launch when all destinations lie in one allocation (the network's flat gradient
    /// buffer), else one per destination allocation.
    func reduceSegments(
        _ partial: OpenCLBuffer, _ segments: [(rows: Int, partial: Int, chunks: Int, destination: any DeviceBuffer)],
        tag: String
    ) {
        var groups: [(root: OpenCLBuffer, table: [Int32], rows: Int)] = []
        for s in segments {
            let (root, offset) = buf(s.destination).root
            if let i = groups.firstIndex(where: { $0.root === root }) {
                groups[i].table += [Int32(groups[i].rows), Int32(s.partial), Int32(s.chunks), Int32(offset)]
                groups[i].rows += s.rows
            } else {
                groups.append((root, [0, Int32(s.partial), Int32(s.chunks), Int32(offset)], s.rows))
            }
        }
        for (i, group) in groups.enumerated() {
            guard let table = scratchBuffer("segments.\(i)", floats: group.table.count) else { return }
            group.table.withUnsafeBytes { enqueueWrite($0, to: table.mem, byteOffset: 0, label: table.label) }
            launch(
                "reduce_segments", "reduce.cl",
                [.mem(partial.mem), .mem(group.root.mem), .mem(table.mem), .int(group.table.count / 4), .int(group.rows)],
                global: [group.rows], tag: tag)
        }
    }

    /// out[c] = sum over n and p of x[n][c][p], in two deterministic passes.
    func channelSums(_ x: any DeviceBuffer, n: Int, c: Int, p: Int, into out: any DeviceBuffer, tag: String) {
        let chunk = min(p, 8192)
        let gp = (p + chunk - 1) / chunk
        let groups = n * gp
        guard let partial = scratchBuffer("channel", floats: c * groups) else { return }
        if isCPUClass {
            launch(
                "channel_sum_vec", "reduce.cl",
                [.mem(buf(x).mem), .mem(partial.mem), .int(n), .int(c), .int(p), .int(gp), .int(chunk)],
                global: [groups, c], local: [1, 1], tag: tag)
            launch(
                "reduce_rows", "reduce.cl", [.mem(partial.mem), .mem(buf(out).mem), .int(c), .int(groups)],
                global: [c], tag: tag + ".sum")
            return
        }
        var want = 1
        while want < min(256, chunk) { want *= 2 }
        let l = powerOfTwoGroup(want, "channel_sum_partial", "reduce.cl")
        launch(
            "channel_sum_partial", "reduce.cl",
            [.mem(buf(x).mem), .mem(partial.mem), .local(l * 4), .int(n), .int(c), .int(p), .int(gp), .int(chunk)],
            global: [l, groups, c], local: [l, 1, 1], tag: tag)
        launch(
            "reduce_rows", "reduce.cl", [.mem(partial.mem), .mem(buf(out).mem), .int(c), .int(groups)],
            global: [c], tag: tag + ".sum")
    }

    // MARK: Pooling and activations

    public func maxPoolForward(_ g: PoolGeometry, input: any DeviceBuffer, output: any DeviceBuffer) {
        launch(
            "maxpool_fwd", "pool.cl",
            [
                .mem(buf(input).mem), .mem(buf(output).mem),
                .int(g.batch * g.channels), .int(g.inHeight), .int(g.inWidth),
            ],
            global: [(g.outWidth + 7) / 8, g.outHeight, g.batch * g.channels], tag: "maxpool_fwd \(g.channels) \(g.inHeight)x\(g.inWidth)")
    }

    public func maxPoolBackward(
        _ g: PoolGeometry, input: any DeviceBuffer, gradOutput: any DeviceBuffer,
        gradInput: any DeviceBuffer
    ) {
        launch(
            "maxpool_bwd", "pool.cl",
            [
                .mem(buf(input).mem), .mem(buf(gradOutput).mem), .mem(buf(gradInput).mem),
                .int(g.batch * g.channels), .int(g.inHeight), .int(g.inWidth),
                .int(0), .int(g.inWidth), .int(g.inHeight * g.inWidth), .int(0),
            ],
            global: [(g.inWidth + 15) / 16, (g.inHeight + 1) / 2, g.batch * g.channels],
            tag: "maxpool_bwd \(g.channels) \(g.inHeight)x\(g.inWidth)")
    }

    public func relu(count: Int, input: any DeviceBuffer, output: any DeviceBuffer) {
        launch("relu_fwd", "elementwise.cl", [.mem(buf(input).mem), .mem(buf(output).mem), .int(count)], global: [(count + 7) / 8])
    }

    public func reluBackward(count: Int, activation: any DeviceBuffer, grad: any DeviceBuffer) {
        launch(
            "relu_bwd", "elementwise.cl", [.mem(buf(activation).mem), .mem(buf(grad).mem), .int(count)], global: [(count + 7) / 8],
            tag: "relu_bwd \(count)")
    }

    // MARK: Dense

    func gemm(
        m: Int, n: Int, k: Int, a: cl_mem, sam: Int, sak: Int, b: cl_mem, sbk: Int, sbn: Int,
        bias: cl_mem?, c: cl_mem, relu: Bool, tag: String
    ) {
        let ts = gemmTile
        launch(
            "gemm", "dense.cl",
            [
                .mem(a), .mem(b), .mem(bias ?? a), .mem(c), .int(m), .int(n), .int(k),
                .int(sam), .int(sak), .int(sbk), .int(sbn), .int(bias == nil ? 0 : 1), .int(relu ? 1 : 0),
            ],
            global: [(n + ts - 1) / ts * ts, (m + ts - 1) / ts * ts], local: [ts, ts], tag: tag)
    }

    public func denseForward(
        _ g: DenseGeometry, input: any DeviceBuffer, weight: any DeviceBuffer,
        bias: any DeviceBuffer, output: any DeviceBuffer, relu: Bool
    ) {
        gemm(
            m: g.batch, n: g.outFeatures, k: g.inFeatures, a: buf(input).mem, sam: g.inFeatures, sak: 1,
            b: buf(weight).mem, sbk: 1, sbn: g.inFeatures, bias: buf(bias).mem, c: buf(output).mem, relu: relu,
            tag: "dense_fwd \(g.inFeatures)->\(g.outFeatures)")
    }

    public func denseBackward(
        _ g: DenseGeometry, input: any DeviceBuffer, weight: any DeviceBuffer,
        gradOutput: any DeviceBuffer, gradInput: (any DeviceBuffer)?,
        gradWeight: any DeviceBuffer, gradBias: any DeviceBuffer
    ) {
        denseBackward(
            g, input: input, weight: weight, gradOutput: gradOutput, gradInput: gradInput,
            gradWeight: gradWeight, gradBias: gradBias, inputIsReLU: false)
    }

    /// One launch: weight gradient with the bias gradient as its row sums, and the
    /// (ReLU-masked) input gradient, in the two halves of the grid.
    public func denseBackward(
        _ g: DenseGeometry, input: any DeviceBuffer, weight: any DeviceBuffer,
        gradOutput: any DeviceBuffer, gradInput: (any DeviceBuffer)?,
        gradWeight: any DeviceBuffer, gradBias: any DeviceBuffer, inputIsReLU: Bool
    ) {
        let ts = gemmTile
        let gi = gradInput.map { buf($0).mem }
        let rows = gi == nil ? g.outFeatures : max(g.outFeatures, g.batch)
        launch(
            "dense_backward", "dense.cl",
            [
                .mem(buf(gradOutput).mem), .mem(buf(input).mem), .mem(buf(weight).mem), .mem(buf(gradWeight).mem),
                .mem(buf(gradBias).mem), .mem(gi ?? buf(gradWeight).mem),
                .int(g.batch), .int(g.inFeatures), .int(g.outFeatures), .int(inputIsReLU ? 1 : 0),
            ],
            global: [(g.inFeatures + ts - 1) / ts * ts, (rows + ts - 1) / ts * ts, gi == nil ? 1 : 2],
            local: [ts, ts, 1], tag: "dense_bwd \(g.inFeatures)->\(g.outFeatures)")
    }

    // MARK: Loss

    public func softmaxCrossEntropy(
        batch: Int, classes: Int, logits: any DeviceBuffer, labels: any DeviceBuffer,
        probabilities: any DeviceBuffer, gradLogits: (any DeviceBuffer)?,
        metrics: any DeviceBuffer
    ) {
        let p = buf(probabilities).mem
        launch(
            "softmax_xent", "loss.cl",
            [
                .mem(buf(logits).mem), .mem(buf(labels).mem), .mem(p), .mem(gradLogits.map { buf($0).mem } ?? p),
                .mem(buf(metrics).mem), .int(batch), .int(classes), .int(gradLogits == nil ? 0 : 1),
            ],
            global: [1], local: [1])
    }

    public func softmax(batch: Int, classes: Int, logits: any DeviceBuffer, probabilities: any DeviceBuffer) {
        launch(
            "softmax_rows", "loss.cl", [.mem(buf(logits).mem), .mem(buf(probabilities).mem), .int(batch), .int(classes)],
            global: [batch])
    }

    /// One launch of one work-group: the output layer is small (classes x hidden
    /// features), so its forward, loss and backward cost less than a launch each.
    public func denseSoftmaxCrossEntropyStep(
        _ g: DenseGeometry, input: any DeviceBuffer, weight: any DeviceBuffer,
        bias: any DeviceBuffer, logits: any DeviceBuffer, labels: any DeviceBuffer,
        probabilities: any DeviceBuffer, gradLogits: any DeviceBuffer,
        metrics: any DeviceBuffer, gradWeight: any DeviceBuffer,
        gradBias: any DeviceBuffer, gradInput: any DeviceBuffer, inputIsReLU: Bool
    ) {
        let l = powerOfTwoGroup(groupSize, "dense_xent_step", "loss.cl")
        launch(
            "dense_xent_step", "loss.cl",
            [
                .mem(buf(input).mem), .mem(buf(weight).mem), .mem(buf(bias).mem), .mem(buf(logits).mem),
                .mem(buf(labels).mem), .mem(buf(probabilities).mem), .mem(buf(gradLogits).mem), .mem(buf(metrics).mem),
                .mem(buf(gradWeight).mem), .mem(buf(gradBias).mem), .mem(buf(gradInput).mem),
                .int(g.batch), .int(g.inFeatures), .int(g.outFeatures), .int(inputIsReLU ? 1 : 0),
            ],
            global: [l], local: [l], tag: "dense_xent_step \(g.inFeatures)->\(g.outFeatures)")
    }

    // MARK: Optimizers

    public func optimizerStep(
        _ update: OptimizerUpdate, count: Int, parameters: any DeviceBuffer,
        gradients: any DeviceBuffer, state1: any DeviceBuffer, state2: any DeviceBuffer
    ) {
        let p = buf(parameters).mem, g = buf(gradients).mem, s1 = buf(state1).mem, s2 = buf(state2).mem
        switch update {
        case .sgd(let lr, let momentum):
            launch("sgd", "optim.cl", [.mem(p), .mem(g), .mem(s1), .float(lr), .float(momentum), .int(count)], global: [count])
        case .rmsprop(let lr, let rho, let eps):
            launch(
                "rmsprop", "optim.cl", [.mem(p), .mem(g), .mem(s1), .float(lr), .float(rho), .float(eps), .int(count)],
                global: [count])
        case .rmspropKeras2(let lr, let rho, let eps):
            launch(
                "rmsprop_keras2", "optim.cl", [.mem(p), .mem(g), .mem(s1), .float(lr), .float(rho), .float(eps), .int(count)],
                global: [count])
        case .adam(let step, let b1, let b2, let eps):
            launch(
                "adam", "optim.cl",
                [
                    .mem(p), .mem(g), .mem(s1), .mem(s2), .float(step), .float(b1), .float(b2),
                    .float(eps), .int(count),
                ], global: [count])
        }
    }

    // MARK: Profiling

    func drainProfile() {
        guard !profileEvents.isEmpty else { return }
        clFinish(queue)
        for (name, e) in profileEvents {
            var start: cl_ulong = 0, end: cl_ulong = 0
            if clGetEventProfilingInfo(e, cl_profiling_info(CL_PROFILING_COMMAND_START), 8, &start, nil) == CL_SUCCESS,
                clGetEventProfilingInfo(e, cl_profiling_info(CL_PROFILING_COMMAND_END), 8, &end, nil) == CL_SUCCESS
            {
                var t = profileTotals[name] ?? (0, 0)
                t.calls += 1
                t.nanoseconds += end >= start ? end - start : 0
                profileTotals[name] = t
            }
            clReleaseEvent(e)
        }
        profileEvents.removeAll()
    }

    /// Clears the recorded kernel times.
    public func resetProfile() {
        drainProfile()
        profileTotals.removeAll()
    }

    /// Per-kernel device times recorded so far: name -> (calls, total seconds).
    public func profileTimes() -> [String: (calls: Int, seconds: Double)] {
        drainProfile()
        return profileTotals.mapValues { ($0.calls, Double($0.nanoseconds) / 1e9) }
    }

    /// A table of per-kernel device times (OpenCL events), slowest first. Empty
    /// unless the backend was made with `OpenCLOptions(profiling: true)`.
    public func profileReport() -> String {
        let times = profileTimes()
        guard options.profiling else { return "profiling is off (OpenCLOptions(profiling: true) / --profile)\n" }
        let total = times.values.reduce(0) { $0 + $1.seconds }
        let rows = times.sorted { $0.value.seconds > $1.value.seconds }
        let width = max(6, rows.map(\.key.count).max() ?? 0)
        func pad(_ s: String, _ w: Int, right: Bool = false) -> String {
            s.count >= w ? s : (right ? String(repeating: " ", count: w - s.count) + s : s + String(repeating: " ", count: w - s.count))
        }
        var out =
            "\(pad("kernel", width))  \(pad("calls", 7, right: true))  \(pad("total ms", 10, right: true))  \(pad("mean us", 10, right: true))  \(pad("share", 6, right: true))\n"
        for (name, t) in rows {
            out += "\(pad(name, width))  \(pad(String(t.calls), 7, right: true))  "
            out += "\(pad(String(format: "%.3f", t.seconds * 1e3), 10, right: true))  "
            out += "\(pad(String(format: "%.1f", t.seconds * 1e6 / Double(max(1, t.calls))), 10, right: true))  "
            out += "\(pad(String(format: "%.1f%%", total > 0 ? 100 * t.seconds / total : 0), 6, right: true))\n"
        }
        out += "\(pad("total", width))  \(pad("", 7))  \(pad(String(format: "%.3f", total * 1e3), 10, right: true))\n"
        return out
    }
}
