import COpenCL
import CytoCore
import Foundation

/// One OpenCL platform.
public struct OpenCLPlatformInfo: Sendable, Equatable {
    public var index: Int
    public var name: String
    public var vendor: String
    public var version: String
}

/// One OpenCL device with what `cytocl devices` prints.
public struct OpenCLDeviceInfo: Sendable, Equatable {
    public var platformIndex: Int
    public var deviceIndex: Int
    public var platformName: String
    public var name: String
    public var vendor: String
    public var deviceType: OpenCLDeviceType
    /// "GPU", "CPU", "accelerator" or "other", as `cytocl devices` prints it.
    public var type: String { deviceType.rawValue }
    public var computeUnits: Int
    public var clockMHz: Int
    public var globalMemoryBytes: Int
    public var maxAllocationBytes: Int
    public var localMemoryBytes: Int
    public var maxWorkGroupSize: Int
    public var openCLCVersion: String
    public var deviceVersion: String
    public var driverVersion: String
    public var fp16: Bool
    public var fp64: Bool

    public var isGPU: Bool { deviceType == .gpu }
    /// "opencl:P.D", the spelling `--backend` accepts.
    public var selector: String { "opencl:\(platformIndex).\(deviceIndex)" }
    public var summary: String { "\(name) (\(platformName), \(type), driver \(driverVersion))" }
}

/// Platform and device enumeration.
public enum OpenCLRuntime {
    static func platformIDs() throws -> [cl_platform_id?] {
        var n: cl_uint = 0
        let err = clGetPlatformIDs(0, nil, &n)
        if err == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (err == CL_SUCCESS && n == 0) {
            throw OpenCLError.noPlatform(detail: "the ICD loader found no platform; check /etc/OpenCL/vendors")
        }
        try check(err, "clGetPlatformIDs")
        var ids = [cl_platform_id?](repeating: nil, count: Int(n))
        try check(clGetPlatformIDs(n, &ids, nil), "clGetPlatformIDs")
        return ids
    }

    static func deviceIDs(_ platform: cl_platform_id?) -> [cl_device_id?] {
        var n: cl_uint = 0
        guard clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &n) == CL_SUCCESS, n > 0 else { return [] }
        var ids = [cl_device_id?](repeating: nil, count: Int(n))
        guard clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), n, &ids, nil) == CL_SUCCESS else { return [] }
        return ids
    }

    /// Every platform. Throws `OpenCLError.noPlatform` when there is none.
    public static func platforms() throws -> [OpenCLPlatformInfo] {
        try platformIDs().enumerated().map { i, p in
            OpenCLPlatformInfo(
                index: i, name: platformString(p, cl_platform_info(CL_PLATFORM_NAME)),
                vendor: platformString(p, cl_platform_info(CL_PLATFORM_VENDOR)),
                version: platformString(p, cl_platform_info(CL_PLATFORM_VERSION)))
        }
    }

    /// Every device of every platform, in (platform, device) order.
    public static func devices() throws -> [OpenCLDeviceInfo] {
        var result: [OpenCLDeviceInfo] = []
        for (pi, p) in try platformIDs().enumerated() {
            let pname = platformString(p, cl_platform_info(CL_PLATFORM_NAME))
            for (di, d) in deviceIDs(p).enumerated() {
                result.append(info(device: d, platformIndex: pi, deviceIndex: di, platformName: pname))
            }
        }
        return result
    }

    /// Devices in the order `--backend auto` prefers them: GPUs, then accelerators,
    /// then the rest (CPU devices such as PoCL are only used when asked for).
    public static func rankedDevices() throws -> [OpenCLDeviceInfo] {
        func rank(_ d: OpenCLDeviceInfo) -> Int { d.deviceType == .gpu ? 0 : d.deviceType == .accelerator ? 1 : 2 }
        return try devices().enumerated().sorted { a, b in
            (rank(a.element), a.offset) < (rank(b.element), b.offset)
        }.map(\.element)
    }

    /// The (platform, device) indices a device selector names, checked against the
    /// devices present. The selector's text (`opencl`, `opencl:N`, `opencl:P.D`) is
    /// parsed once, by `BackendSelector` in CytoBackends.
    public static func resolve(_ selector: OpenCLDeviceSelector) throws -> (platform: Int, device: Int) {
        let all = try devices()
        switch selector {
        case .best:
            guard let best = try rankedDevices().first else { throw OpenCLError.noDevice("no OpenCL device found") }
            return (best.platformIndex, best.deviceIndex)
        case .address(let p, let d):
            guard all.contains(where: { $0.platformIndex == p && $0.deviceIndex == d }) else {
                throw OpenCLError.noDevice(
                    "no OpenCL device \(p).\(d); `cytocl devices` lists: " + all.map(\.selector).joined(separator: ", "))
            }
            return (p, d)
        case .listed(let n):
            guard n >= 0, n < all.count else {
                throw OpenCLError.noDevice("no OpenCL device #\(n); there are \(all.count)")
            }
            return (all[n].platformIndex, all[n].deviceIndex)
        }
    }

    static func info(device d: cl_device_id?, platformIndex: Int, deviceIndex: Int, platformName: String) -> OpenCLDeviceInfo {
        let type: cl_device_type = deviceValue(d, CL_DEVICE_TYPE, 0)
        let deviceType: OpenCLDeviceType
        if type & cl_device_type(CL_DEVICE_TYPE_GPU) != 0 {
            deviceType = .gpu
        } else if type & cl_device_type(CL_DEVICE_TYPE_ACCELERATOR) != 0 {
            deviceType = .accelerator
        } else if type & cl_device_type(CL_DEVICE_TYPE_CPU) != 0 {
            deviceType = .cpu
        } else {
            deviceType = .other
        }
        let ext = deviceString(d, CL_DEVICE_EXTENSIONS)
        let dv = deviceString(d, CL_DEVICE_VERSION)
        var cver = deviceString(d, CL_DEVICE_OPENCL_C_VERSION)
        if cver.isEmpty { cver = dv }
        let fp64 = ext.contains("cl_khr_fp64") || (deviceValue(d, CL_DEVICE_DOUBLE_FP_CONFIG, cl_device_fp_config(0)) != 0)
        return OpenCLDeviceInfo(
            platformIndex: platformIndex, deviceIndex: deviceIndex, platformName: platformName,
            name: deviceString(d, CL_DEVICE_NAME), vendor: deviceString(d, CL_DEVICE_VENDOR), deviceType: deviceType,
            computeUnits: Int(deviceValue(d, CL_DEVICE_MAX_COMPUTE_UNITS, cl_uint(0))),
            clockMHz: Int(deviceValue(d, CL_DEVICE_MAX_CLOCK_FREQUENCY, cl_uint(0))),
            globalMemoryBytes: Int(deviceValue(d, CL_DEVICE_GLOBAL_MEM_SIZE, cl_ulong(0))),
            maxAllocationBytes: Int(deviceValue(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, cl_ulong(0))),
            localMemoryBytes: Int(deviceValue(d, CL_DEVICE_LOCAL_MEM_SIZE, cl_ulong(0))),
            maxWorkGroupSize: Int(deviceValue(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, Int(0))),
            openCLCVersion: cver, deviceVersion: dv,
            driverVersion: deviceString(d, CL_DRIVER_VERSION),
            fp16: ext.contains("cl_khr_fp16"), fp64: fp64)
    }

    static func platformString(_ p: cl_platform_id?, _ param: cl_platform_info) -> String {
        var size = 0
        guard clGetPlatformInfo(p, param, 0, nil, &size) == CL_SUCCESS, size > 0 else { return "" }
        var buf = [CChar](repeating: 0, count: size + 1)
        guard clGetPlatformInfo(p, param, size, &buf, nil) == CL_SUCCESS else { return "" }
        return String(nulTerminated: buf).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func deviceString(_ d: cl_device_id?, _ param: Int32) -> String {
        var size = 0
        guard clGetDeviceInfo(d, cl_device_info(param), 0, nil, &size) == CL_SUCCESS, size > 0 else { return "" }
        var buf = [CChar](repeating: 0, count: size + 1)
        guard clGetDeviceInfo(d, cl_device_info(param), size, &buf, nil) == CL_SUCCESS else { return "" }
        return String(nulTerminated: buf).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func deviceValue<T>(_ d: cl_device_id?, _ param: Int32, _ fallback: T) -> T {
        var v = fallback
        let ok = withUnsafeMutableBytes(of: &v) { raw in
            clGetDeviceInfo(d, cl_device_info(param), raw.count, raw.baseAddress, nil) == CL_SUCCESS
        }
        return ok ? v : fallback
    }
}

/// Which OpenCL device a user named: the best one (GPUs, then other accelerators, then
/// CPU devices), the N-th device `cytocl devices` lists, or platform P's device D.
public enum OpenCLDeviceSelector: Hashable, Sendable {
    case best
    case listed(Int)
    case address(platform: Int, device: Int)
}
