import CytoCore

/// What `CL_DEVICE_TYPE` says a device is.
public enum OpenCLDeviceType: String, Sendable, Equatable {
    case gpu = "GPU"
    case cpu = "CPU"
    case accelerator
    case other
}

/// The family of device the kernel choices are made for: the reported type
/// (accelerators count as GPUs), or CYTOCL_DEVICE_CLASS, so that the GPU code
/// paths can be run and tested on CPU drivers (PoCL, rusticl).
public enum DeviceClass: String, Sendable, Equatable, CaseIterable {
    case cpu
    case gpu
}

/// The kernel of pass 1 of the convolution filter gradient (conv.cl).
public enum FilterGradientKernel: String, Sendable, Equatable, CaseIterable {
    /// `conv3x3_filter_rows`: a block of rows of one image per work-item, no local
    /// memory; CPU drivers run it as plain SIMD loops.
    case rows
    /// `conv3x3_filter_partial`: a work-group per (row chunk, channel pair) that
    /// reduces in local memory.
    case partial
    /// `conv3x3_filter_tiled`: input rows staged in local memory once per input
    /// channel and shared by four output channels.
    case tiled
}

/// How kernels that need no particular work-group shape are grouped.
enum GroupShape: Equatable {
    /// CPU drivers such as PoCL run one work-group per task: few large groups keep
    /// scheduling cheap (leaving the choice to PoCL gives groups of 1 for prime
    /// sizes such as 257, 10x slower).
    case fewLargeGroups
    /// GPUs: `groupSize` work-items, wide along x so rows are read coalesced.
    case fixedSize
}

/// Pass 1 of the per-channel sums (the bias gradient of a lone convolution).
enum ChannelSumKernel: Equatable {
    /// `channel_sum_vec`: one work-item per chunk, 8-wide vector loads, no barriers.
    case vectorPerItem
    /// `channel_sum_partial`: a work-group per chunk, tree reduction in local memory.
    case groupTree
}

/// How the "partial" filter-gradient kernel splits its rows and sizes its groups.
enum PartialFilterSplit: Equatable {
    /// CPU devices: chunks of at least 8 rows, about 256 groups in all (one per
    /// task), a work-item per x vector of a row (at most 64).
    case fewLongChunks
    /// GPUs: chunks of 4 rows (many groups to fill the compute units), groups of
    /// whole 32-wide warps, at most 256 work-items.
    case manyShortChunks
}

/// Every tuning choice of the OpenCL backend, resolved once when the backend is
/// made from the device's class and limits and the settings of `OpenCLOptions`
/// (which override the table). The op code reads these values and never asks what
/// kind of device it runs on.
public struct DeviceTuning: Sendable, Equatable {
    public var deviceClass: DeviceClass
    /// Output pixels per work-item along x in the convolutions (VW in conv.cl).
    public var vectorWidth: Int
    /// Output rows per work-item of `conv3x3` (RY in conv.cl): 2 when vectorised,
    /// which also lets each work-item max-pool its own outputs (fused conv block).
    public var convRows: Int { vectorWidth > 1 ? 2 : 1 }
    public var filterKernel: FilterGradientKernel
    /// Work-items per group of the 1-D kernels on GPUs and width of the reductions
    /// (a power of two, at most the device's group size).
    public var groupSize: Int
    /// Side of the GEMM tile (TS in dense.cl): 16, or 8 on devices with fewer than
    /// 256 work-items per group.
    public var gemmTile: Int
    /// Most output rows per work-group of the tiled filter gradient (fewer when
    /// half the local memory cannot hold them).
    public var filterTileRowLimit: Int
    /// Local memory per work-group (CL_DEVICE_LOCAL_MEM_SIZE), which bounds the tiles.
    public var localMemoryBytes: Int
    var groupShape: GroupShape
    var channelSum: ChannelSumKernel
    var partialFilterSplit: PartialFilterSplit

    /// The defaults of one device class: the parameter table (as CLBlast keeps one
    /// per device). Measured on PoCL (CPU) and by scripts/gpu-check on GPUs; see
    /// docs/backends.md.
    struct ClassDefaults {
        var vectorWidth: Int
        var filterKernel: FilterGradientKernel
        var groupShape: GroupShape
        var channelSum: ChannelSumKernel
        var partialFilterSplit: PartialFilterSplit
    }

    static let table: [DeviceClass: ClassDefaults] = [
        .cpu: ClassDefaults(
            vectorWidth: 8, filterKernel: .rows, groupShape: .fewLargeGroups, channelSum: .vectorPerItem,
            partialFilterSplit: .fewLongChunks),
        .gpu: ClassDefaults(
            vectorWidth: 4, filterKernel: .tiled, groupShape: .fixedSize, channelSum: .groupTree,
            partialFilterSplit: .manyShortChunks),
    ]
    /// Group size of the 1-D kernels and reductions unless CYTOCL_WORK_GROUP says otherwise.
    static let defaultGroupSize = 64
    static let defaultFilterTileRows = 16

    /// The tuning for `device` under `options`; a bad setting throws, naming its variable.
    static func resolve(device: OpenCLDeviceInfo, options: OpenCLOptions) throws -> DeviceTuning {
        let options = try options.validated()
        let cls = try options.deviceClass.map { try parse(DeviceClass.self, $0, "CYTOCL_DEVICE_CLASS") }
            ?? (device.deviceType == .cpu ? .cpu : .gpu)
        guard let defaults = table[cls] else { throw CytoError.backend("no OpenCL tuning for device class \(cls)") }
        let maxGroup = max(1, device.maxWorkGroupSize)
        var group = 1
        while group * 2 <= min(options.workGroupSize ?? defaultGroupSize, maxGroup) { group *= 2 }
        return DeviceTuning(
            deviceClass: cls,
            vectorWidth: options.vectorWidth ?? defaults.vectorWidth,
            filterKernel: try options.filterKernel.map { try parse(FilterGradientKernel.self, $0, "CYTOCL_FILTER_KERNEL") }
                ?? defaults.filterKernel,
            groupSize: group,
            gemmTile: maxGroup >= 256 ? 16 : 8,
            filterTileRowLimit: options.filterTileRows ?? defaultFilterTileRows,
            localMemoryBytes: device.localMemoryBytes,
            groupShape: defaults.groupShape, channelSum: defaults.channelSum,
            partialFilterSplit: defaults.partialFilterSplit)
    }

    static func parse<T: RawRepresentable & CaseIterable>(_: T.Type, _ text: String, _ variable: String) throws -> T
    where T.RawValue == String {
        guard let v = T(rawValue: text) else {
            let names = T.allCases.map(\.rawValue)
            throw CytoError.backend(
                "\(variable) '\(text)': must be \(names.dropLast().joined(separator: ", ")) or \(names.last ?? "")")
        }
        return v
    }

    /// The `-D` defines of `file`'s build: only where the source uses them, so a
    /// changed setting rebuilds (and caches) only that file.
    func defines(_ file: KernelFile) -> String {
        switch file {
        case .conv: return " -DVW=\(vectorWidth)"
        case .dense: return " -DTS=\(gemmTile)"
        default: return ""
        }
    }
}
