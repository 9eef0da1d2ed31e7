import CytoCPU
import CytoCore
import CytoOpenCL
import Foundation

/// Makes the backend a `BackendSelector` names.
///
/// `auto` ranks OpenCL GPUs first, then other accelerators, then the CPU backend; an
/// OpenCL *CPU* device such as PoCL is used only when asked for explicitly, because
/// the native CPU backend is faster on the same cores.
public enum BackendSelection {
    public struct Choice {
        public var backend: any Backend
        /// One line for stderr: which backend and device, and why.
        public var note: String
        /// The CPU backend's thread count (nil for an OpenCL device): a sweep splits
        /// the cores between cells it runs at once.
        public var cpuThreads: Int?
        /// The CPU backend's kernel path (nil for an OpenCL device).
        public var cpuPath: CPUPath?
    }

    public struct Options {
        public var profile = false
        public var fastMath = false
        public var threads: Int?
        public init(profile: Bool = false, fastMath: Bool = false, threads: Int? = nil) {
            self.profile = profile; self.fastMath = fastMath; self.threads = threads
        }
    }

    /// `selector` nil means the `CYTOCL_BACKEND` variable, or `auto`.
    public static func make(_ selector: BackendSelector?, options: Options = Options()) throws -> Choice {
        var clOptions = OpenCLOptions()
        clOptions.profiling = options.profile
        if options.fastMath { clOptions.fastMath = true }
        func cpu(_ path: CPUPath? = nil, why: String = "") throws -> Choice {
            let b = path.map { CPUBackend(threads: options.threads, path: $0) } ?? CPUBackend(threads: options.threads)
            b.profiling = options.profile
            return Choice(backend: b, note: "backend: cpu (\(b.deviceDescription))" + why, cpuThreads: b.threads, cpuPath: b.path)
        }
        switch try selector ?? BackendSelector.fromEnvironment() {
        case .cpu:
            return try cpu(try CPUPath.fromEnvironment())
        case .auto:
            let devices: [OpenCLDeviceInfo]
            do { devices = try OpenCLRuntime.devices() } catch {
                return try cpu(why: "; no OpenCL platform found (\(error))")
            }
            let ranked = devices.filter { $0.deviceType != .cpu }.sorted { rank($0) < rank($1) }
            for d in ranked {
                if let b = try? OpenCLBackend(platformIndex: d.platformIndex, deviceIndex: d.deviceIndex, options: clOptions) {
                    return Choice(backend: b, note: "backend: opencl \(d.selector) (\(d.summary))")
                }
            }
            let why =
                devices.isEmpty
                ? "no OpenCL device found"
                : "no OpenCL GPU or accelerator (use --backend opencl for \(devices.map(\.name).joined(separator: ", ")))"
            return try cpu(why: "; \(why)")
        case .opencl(let device):
            let b = try OpenCLBackend(device: device, options: clOptions)
            return Choice(backend: b, note: "backend: opencl (\(b.deviceDescription))")
        }
    }

    static func rank(_ d: OpenCLDeviceInfo) -> Int { d.isGPU ? 0 : 1 }

    /// Every backend this machine offers, as selectors for `make`: `cpu`, then each OpenCL
    /// device (`opencl:P.D`, as `cytocl devices` lists them; none when there is no OpenCL
    /// platform), with a one-line description.
    public static func available() -> [(selector: BackendSelector, description: String)] {
        let cl = (try? OpenCLRuntime.devices()) ?? []
        return [(.cpu, "CytoCL CPU backend")]
            + cl.map { (.opencl(.address(platform: $0.platformIndex, device: $0.deviceIndex)), $0.summary) }
    }
}
