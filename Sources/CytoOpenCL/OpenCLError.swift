import COpenCL
import Foundation

/// Everything that can go wrong in the OpenCL backend. Every message names what
/// failed and where (kernel file, device, driver, sizes), so it can be printed as is.
public enum OpenCLError: Error, CustomStringConvertible, Equatable {
    /// No OpenCL platform (no ICD loader configuration or no driver installed).
    case noPlatform(detail: String)
    /// A platform or device index that does not exist.
    case noDevice(String)
    /// A kernel file failed to compile or link.
    case buildFailed(file: String, device: String, driver: String, options: String, log: String)
    /// A buffer could not be allocated.
    case outOfMemory(label: String, requestedBytes: Int, allocatedBytes: Int, maxAllocBytes: Int, globalMemBytes: Int, device: String)
    /// Kernel sources could not be found (CYTOCL_KERNELS pointing at a wrong folder).
    case missingSource(file: String, detail: String)
    /// Any other failing OpenCL call.
    case api(call: String, code: Int32, context: String)

    public var description: String {
        switch self {
        case .noPlatform(let detail):
            return
                "no OpenCL platform found (\(detail)); install an OpenCL driver and ICD loader (for example pocl-opencl-icd on Debian/Ubuntu) or use --backend cpu"
        case .noDevice(let m):
            return m
        case .buildFailed(let file, let device, let driver, let options, let log):
            return """
                OpenCL build of \(file) failed on \(device) (driver \(driver)) with options "\(options)"
                ----- build log -----
                \(log.isEmpty ? "(the driver returned an empty build log)" : log)
                ---------------------
                """
        case .outOfMemory(let label, let requested, let allocated, let maxAlloc, let global, let device):
            return
                "out of device memory on \(device): buffer '\(label)' needs \(formatBytes(requested)) with \(formatBytes(allocated)) already allocated by CytoCL; the device allows \(formatBytes(maxAlloc)) per buffer and \(formatBytes(global)) in total"
        case .missingSource(let file, let detail):
            return "OpenCL kernel source \(file) not found: \(detail)"
        case .api(let call, let code, let context):
            return "\(call) failed with \(openCLErrorName(code)) (\(code))\(context.isEmpty ? "" : " [\(context)]")"
        }
    }
}

func formatBytes(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n), u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u]) + " (\(n) B)"
}

/// The symbolic name of an OpenCL error code.
public func openCLErrorName(_ code: Int32) -> String {
    switch code {
    case CL_SUCCESS: return "CL_SUCCESS"
    case CL_DEVICE_NOT_FOUND: return "CL_DEVICE_NOT_FOUND"
    case CL_DEVICE_NOT_AVAILABLE: return "CL_DEVICE_NOT_AVAILABLE"
    case CL_COMPILER_NOT_AVAILABLE: return "CL_COMPILER_NOT_AVAILABLE"
    case CL_MEM_OBJECT_ALLOCATION_FAILURE: return "CL_MEM_OBJECT_ALLOCATION_FAILURE"
    case CL_OUT_OF_RESOURCES: return "CL_OUT_OF_RESOURCES"
    case CL_OUT_OF_HOST_MEMORY: return "CL_OUT_OF_HOST_MEMORY"
    case CL_PROFILING_INFO_NOT_AVAILABLE: return "CL_PROFILING_INFO_NOT_AVAILABLE"
    case CL_BUILD_PROGRAM_FAILURE: return "CL_BUILD_PROGRAM_FAILURE"
    case CL_INVALID_VALUE: return "CL_INVALID_VALUE"
    case CL_INVALID_DEVICE: return "CL_INVALID_DEVICE"
    case CL_INVALID_CONTEXT: return "CL_INVALID_CONTEXT"
    case CL_INVALID_COMMAND_QUEUE: return "CL_INVALID_COMMAND_QUEUE"
    case CL_INVALID_MEM_OBJECT: return "CL_INVALID_MEM_OBJECT"
    case CL_INVALID_BINARY: return "CL_INVALID_BINARY"
    case CL_INVALID_BUILD_OPTIONS: return "CL_INVALID_BUILD_OPTIONS"
    case CL_INVALID_PROGRAM: return "CL_INVALID_PROGRAM"
    case CL_INVALID_PROGRAM_EXECUTABLE: return "CL_INVALID_PROGRAM_EXECUTABLE"
    case CL_INVALID_KERNEL_NAME: return "CL_INVALID_KERNEL_NAME"
    case CL_INVALID_KERNEL: return "CL_INVALID_KERNEL"
    case CL_INVALID_ARG_INDEX: return "CL_INVALID_ARG_INDEX"
    case CL_INVALID_ARG_VALUE: return "CL_INVALID_ARG_VALUE"
    case CL_INVALID_ARG_SIZE: return "CL_INVALID_ARG_SIZE"
    case CL_INVALID_KERNEL_ARGS: return "CL_INVALID_KERNEL_ARGS"
    case CL_INVALID_WORK_DIMENSION: return "CL_INVALID_WORK_DIMENSION"
    case CL_INVALID_WORK_GROUP_SIZE: return "CL_INVALID_WORK_GROUP_SIZE"
    case CL_INVALID_WORK_ITEM_SIZE: return "CL_INVALID_WORK_ITEM_SIZE"
    case CL_INVALID_GLOBAL_OFFSET: return "CL_INVALID_GLOBAL_OFFSET"
    case CL_INVALID_EVENT_WAIT_LIST: return "CL_INVALID_EVENT_WAIT_LIST"
    case CL_INVALID_EVENT: return "CL_INVALID_EVENT"
    case CL_INVALID_OPERATION: return "CL_INVALID_OPERATION"
    case CL_INVALID_BUFFER_SIZE: return "CL_INVALID_BUFFER_SIZE"
    case CL_INVALID_GLOBAL_WORK_SIZE: return "CL_INVALID_GLOBAL_WORK_SIZE"
    case CL_INVALID_PLATFORM: return "CL_INVALID_PLATFORM"
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR"
    default: return "OpenCL error"
    }
}

@inline(__always)
func check(_ code: cl_int, _ call: String, _ context: @autoclosure () -> String = "") throws {
    if code != CL_SUCCESS { throw OpenCLError.api(call: call, code: code, context: context()) }
}
