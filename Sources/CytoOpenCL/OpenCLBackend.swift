import COpenCL
import CytoCore
import Foundation

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
    var faultCounts: [OpenCLFault.Point: Int] = [:]
    /// Program build and cache statistics.
    public var buildStats: ProgramBuildStats { builder.stats }
    /// Bytes currently allocated by this backend's buffers.
    public internal(set) var allocatedBytes = 0

    let context: cl_context
    let queue: cl_command_queue
    let device: cl_device_id
    let builder: ProgramBuilder
    /// Every kernel choice for this device, resolved once here.
    public let tuning: DeviceTuning
    /// Sub-buffer origins must be multiples of this many bytes (CL_DEVICE_MEM_BASE_ADDR_ALIGN).
    let baseAddressAlignment: Int
    /// Kernels enqueued since the backend was made (launches per step = difference / steps).
    public private(set) var launchCount = 0
    var kernelGroupLimits: [Kernel: Int] = [:]
    let buildOptions: String
    var programs: [KernelFile: cl_program] = [:]
    var kernels: [Kernel: cl_kernel] = [:]
    var scratch: [String: OpenCLBuffer] = [:]
    var padBuffers: [(key: [Int], buffer: OpenCLBuffer)] = []
    var pendingWrites: [(event: cl_event, memory: UnsafeMutableRawPointer)] = []
    var profileEvents: [(name: String, event: cl_event)] = []
    var profileTotals: [String: (calls: Int, nanoseconds: UInt64)] = [:]
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
        tuning = try DeviceTuning.resolve(device: info, options: options)
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

    /// The backend on the device a selector names (`BackendSelector` parses the text).
    public convenience init(device: OpenCLDeviceSelector, options: OpenCLOptions = .init()) throws {
        let (p, d) = try OpenCLRuntime.resolve(device)
        try self.init(platformIndex: p, deviceIndex: d, options: options)
    }

    // MARK: Programs and errors

    /// Builds every kernel file now (through the cache), so build errors are thrown
    /// here instead of being recorded by the first op. Returns the seconds spent.
    @discardableResult
    public func prepare() throws -> Double {
        let before = builder.stats.seconds
        for f in KernelFile.allCases { _ = try program(f) }
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
    func buildOptions(_ file: KernelFile) -> String { buildOptions + tuning.defines(file) }

    func program(_ file: KernelFile) throws -> cl_program {
        if let p = programs[file] { return p }
        let src = try KernelSources.source(file.rawValue, directory: options.kernelDirectory)
        let p = try builder.build(file: file.rawValue, source: src, options: buildOptions(file))
        programs[file] = p
        return p
    }

    func kernel(_ kernel: Kernel) throws -> cl_kernel {
        if let k = kernels[kernel] { return k }
        let p = try program(kernel.file)
        var err: cl_int = 0
        guard let k = clCreateKernel(p, kernel.name, &err), err == CL_SUCCESS else {
            throw OpenCLError.api(call: "clCreateKernel", code: err, context: "\(kernel.name) in \(kernel.file.rawValue)")
        }
        kernels[kernel] = k
        var wg = 0
        clGetKernelWorkGroupInfo(k, device, cl_kernel_work_group_info(CL_KERNEL_WORK_GROUP_SIZE), MemoryLayout<Int>.size, &wg, nil)
        kernelGroupLimits[kernel] = min(max(1, info.maxWorkGroupSize), wg > 0 ? wg : Int.max)
        return k
    }

    /// The most work-items a group of `kernel` may have on this device
    /// (CL_KERNEL_WORK_GROUP_SIZE: registers and local memory can make it smaller than
    /// the device's maximum); 1 when the kernel cannot be built (the launch records why).
    func groupLimit(_ kernel: Kernel) -> Int {
        if kernelGroupLimits[kernel] == nil { _ = try? self.kernel(kernel) }
        return kernelGroupLimits[kernel] ?? 1
    }

    /// The largest power of two <= min(want, groupLimit(kernel)).
    func powerOfTwoGroup(_ want: Int, _ kernel: Kernel) -> Int {
        var l = 1
        while l * 2 <= min(want, groupLimit(kernel)) { l *= 2 }
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

    /// Enqueues `launch` over its global work-items (rounded up to whole work-groups
    /// of its local size, or of `defaultLocalSize`; every kernel guards its range).
    /// `tag` names it in the profile (default: the kernel's name).
    func launch(_ launch: some KernelLaunch, tag: String? = nil) {
        let global = launch.global, local = launch.local, name = launch.kernel.name
        if global.contains(where: { $0 <= 0 }) || pendingError != nil { return }
        if injectFault(.launch) {
            record(
                OpenCLError.api(
                    call: "clEnqueueNDRangeKernel", code: CL_OUT_OF_RESOURCES,
                    context: "\(name) on \(info.name), injected by \(OpenCLFault.variable)"))
            return
        }
        do {
            let k = try kernel(launch.kernel)
            for (i, a) in launch.arguments.enumerated() {
                var e: cl_int
                switch a {
                case .buffer(let m):
                    var v: cl_mem? = m
                    e = clSetKernelArg(k, cl_uint(i), MemoryLayout<cl_mem>.size, &v)
                case .int(let n):
                    var v = cl_int(truncatingIfNeeded: n)
                    e = clSetKernelArg(k, cl_uint(i), 4, &v)
                case .flag(let b):
                    var v: cl_int = b ? 1 : 0
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
            if local == nil, let limit = kernelGroupLimits[launch.kernel] {
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
        if tuning.groupShape == .fixedSize {
            // groupSize work-items (64 unless tuned), wide along x for coalesced rows.
            let gs = tuning.groupSize
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

}
