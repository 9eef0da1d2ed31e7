import COpenCL
import CytoCore
import Foundation

extension OpenCLBackend {
    /// Kernel launches since the backend was made (`launchCount`).
    public var statistics: BackendStatistics { BackendStatistics(kernelLaunches: launchCount) }

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
