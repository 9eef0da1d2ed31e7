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

    /// Checks the numeric tuning settings, naming the environment variable of a bad
    /// one (`DeviceTuning.resolve` checks the names).
    func validated() throws -> OpenCLOptions {
        if let v = vectorWidth, ![1, 2, 4, 8].contains(v) {
            throw CytoError.backend("CYTOCL_VECTOR_WIDTH / vector width \(v): must be 1, 2, 4 or 8")
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
