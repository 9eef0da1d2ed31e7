import CytoCPU
import CytoCore
import CytoOpenCL
import Foundation

/// Run-time backend choice: `auto`, `cpu`, `opencl` (first OpenCL device, GPUs first)
/// or `opencl:P.D` (platform P, device D as listed by `cytocl devices`).
///
/// `auto` ranks OpenCL GPUs first, then other accelerators, then the CPU backend; an
/// OpenCL *CPU* device such as PoCL is used only when asked for explicitly, because
/// the native CPU backend is faster on the same cores.
public enum BackendSelection {
    public struct Choice {
        public var backend: any Backend
        /// One line for stderr: which backend and device, and why.
        public var note: String
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
    public static func make(_ selector: String?, options: Options = Options()) throws -> Choice {
        let env = ProcessInfo.processInfo.environment["CYTOCL_BACKEND"]
        let text = (selector ?? env ?? "auto").trimmingCharacters(in: .whitespaces).lowercased()
        var clOptions = OpenCLOptions()
        clOptions.profiling = options.profile
        if options.fastMath { clOptions.fastMath = true }
        switch text {
        case "cpu":
            let b = CPUBackend(threads: options.threads, path: try CPUPath.fromEnvironment())
            b.profiling = options.profile
            return Choice(backend: b, note: "backend: cpu (\(b.deviceDescription))")
        case "auto":
            let devices: [OpenCLDeviceInfo]
            do { devices = try OpenCLRuntime.devices() } catch {
                let b = CPUBackend(threads: options.threads)
                return Choice(backend: b, note: "backend: cpu (\(b.deviceDescription)); no OpenCL platform found (\(error))")
            }
            let ranked = devices.filter { $0.type != "CPU" }.sorted { rank($0) < rank($1) }
            for d in ranked {
                if let b = try? OpenCLBackend(platformIndex: d.platformIndex, deviceIndex: d.deviceIndex, options: clOptions) {
                    return Choice(backend: b, note: "backend: opencl \(d.selector) (\(d.summary))")
                }
            }
            let b = CPUBackend(threads: options.threads)
            let why =
                devices.isEmpty
                ? "no OpenCL device found"
                : "no OpenCL GPU or accelerator (use --backend opencl for \(devices.map(\.name).joined(separator: ", ")))"
            return Choice(backend: b, note: "backend: cpu (\(b.deviceDescription)); \(why)")
        default:
            guard text.hasPrefix("opencl") else {
                throw CytoError.invalidArgument("unknown backend '\(text)': use auto, cpu, opencl or opencl:P.D")
            }
            let b = try OpenCLBackend(selector: text, options: clOptions)
            return Choice(backend: b, note: "backend: opencl (\(b.deviceDescription))")
        }
    }

    static func rank(_ d: OpenCLDeviceInfo) -> Int { d.isGPU ? 0 : 1 }

    /// Every backend this machine offers, as selectors for `make`: `cpu`, then each OpenCL
    /// device (`opencl:P.D`, as `cytocl devices` lists them; none when there is no OpenCL
    /// platform), with a one-line description.
    public static func available() -> [(selector: String, description: String)] {
        let cl = (try? OpenCLRuntime.devices()) ?? []
        return [("cpu", "CytoCL CPU backend")] + cl.map { ($0.selector, $0.summary) }
    }
}
