import COpenCL
import CytoCore
import Foundation

/// 64-bit FNV-1a, used for cache keys (two seeds give a 128-bit key) and the
/// payload checksum of cache files.
func fnv1a64(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0xCBF2_9CE4_8422_2325) -> UInt64 {
    var h = seed
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
    return h
}

func fnv1a64(_ s: String, seed: UInt64 = 0xCBF2_9CE4_8422_2325) -> UInt64 {
    var s = s
    return s.withUTF8 { fnv1a64(UnsafeRawBufferPointer($0), seed: seed) }
}

/// Statistics of program builds, for `cytocl bench` and the tests.
public struct ProgramBuildStats: Sendable, Equatable {
    /// Programs loaded from the on-disk binary cache.
    public var cacheHits = 0
    /// Programs compiled from source (cache off, missing, stale or corrupt).
    public var compiled = 0
    /// Cache entries that existed but could not be used and were rebuilt.
    public var rebuiltCorrupt = 0
    /// Wall-clock seconds spent in program creation and clBuildProgram.
    public var seconds: Double = 0
}

/// Builds OpenCL programs for one device, through the on-disk binary cache.
///
/// Cache files live in `$XDG_CACHE_HOME/cytocl` (default `~/.cache/cytocl`), one
/// per program, named by a 128-bit hash of the source, the build options, the
/// platform, the device name, the driver version and the CytoCL version. A file is
/// `CYTOCLB1` + payload length + FNV checksum + the driver's binary; it is written
/// to a temporary file and renamed, and a file that fails any check (or that the
/// driver rejects) is deleted and rebuilt from source, never an error.
final class ProgramBuilder {
    let context: cl_context
    let device: cl_device_id
    let info: OpenCLDeviceInfo
    let cacheDirectory: URL?
    var stats = ProgramBuildStats()

    static let magic: [UInt8] = Array("CYTOCLB1".utf8)

    init(context: cl_context, device: cl_device_id, info: OpenCLDeviceInfo, cacheDirectory: URL?) {
        self.context = context; self.device = device; self.info = info; self.cacheDirectory = cacheDirectory
    }

    /// The default cache folder, or nil when CYTOCL_KERNEL_CACHE=off.
    static func defaultCacheDirectory(environment env: [String: String] = ProcessInfo.processInfo.environment) -> URL? {
        if let v = env["CYTOCL_KERNEL_CACHE"]?.lowercased(), ["off", "0", "no", "false"].contains(v) { return nil }
        if let x = env["XDG_CACHE_HOME"], !x.isEmpty { return URL(fileURLWithPath: x).appendingPathComponent("cytocl") }
        let home = env["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return URL(fileURLWithPath: home).appendingPathComponent(".cache/cytocl")
    }

    func cacheKey(source: String, options: String) -> String {
        let parts = [source, options, info.platformName, info.name, info.driverVersion, info.deviceVersion, cytoCLVersion]
        let joined = parts.joined(separator: "\u{1}")
        return String(format: "%016llx%016llx", fnv1a64(joined), fnv1a64(joined, seed: 0x84222325CBF29CE4))
    }

    func cacheFile(file: String, source: String, options: String) -> URL? {
        guard let dir = cacheDirectory else { return nil }
        let stem = (file as NSString).deletingPathExtension
        return dir.appendingPathComponent("\(stem)-\(cacheKey(source: source, options: options)).clbin")
    }

    /// Builds `source` (named `file` in messages) with `options`.
    func build(file: String, source: String, options: String) throws -> cl_program {
        let start = Date()
        defer { stats.seconds += Date().timeIntervalSince(start) }
        let url = cacheFile(file: file, source: source, options: options)
        if let url, FileManager.default.fileExists(atPath: url.path) {
            if let program = loadCached(url, options: options) {
                stats.cacheHits += 1
                return program
            }
            stats.rebuiltCorrupt += 1
            try? FileManager.default.removeItem(at: url)
        }
        let program = try compile(file: file, source: source, options: options)
        stats.compiled += 1
        if let url { store(program, to: url) }
        return program
    }

    func compile(file: String, source: String, options: String) throws -> cl_program {
        var err: cl_int = 0
        let program: cl_program? = source.withCString { cstr in
            var p: UnsafePointer<CChar>? = cstr
            var len = strlen(cstr)
            return clCreateProgramWithSource(context, 1, &p, &len, &err)
        }
        guard let program, err == CL_SUCCESS else {
            throw OpenCLError.api(call: "clCreateProgramWithSource", code: err, context: file)
        }
        var dev: cl_device_id? = device
        let berr = clBuildProgram(program, 1, &dev, options, nil, nil)
        if berr != CL_SUCCESS {
            let log = buildLog(program)
            clReleaseProgram(program)
            throw OpenCLError.buildFailed(file: file, device: info.name, driver: "\(info.platformName) \(info.driverVersion)",
                                          options: options, log: log.isEmpty ? "(\(openCLErrorName(berr)))" : log)
        }
        return program
    }

    func buildLog(_ program: cl_program) -> String {
        var size = 0
        guard clGetProgramBuildInfo(program, device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), 0, nil, &size) == CL_SUCCESS,
              size > 0 else { return "" }
        var buf = [CChar](repeating: 0, count: size + 1)
        guard clGetProgramBuildInfo(program, device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), size, &buf, nil) == CL_SUCCESS else { return "" }
        return String(nulTerminated: buf).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func loadCached(_ url: URL, options: String) -> cl_program? {
        guard let data = try? Data(contentsOf: url), data.count > 24 else { return nil }
        let bytes = [UInt8](data)
        guard Array(bytes[0..<8]) == Self.magic else { return nil }
        var length: UInt64 = 0, sum: UInt64 = 0
        withUnsafeMutableBytes(of: &length) { $0.copyBytes(from: bytes[8..<16]) }
        withUnsafeMutableBytes(of: &sum) { $0.copyBytes(from: bytes[16..<24]) }
        guard Int(length) == bytes.count - 24, length > 0 else { return nil }
        let payload = Array(bytes[24...])
        guard payload.withUnsafeBytes({ fnv1a64($0) }) == sum else { return nil }
        var err: cl_int = 0, status: cl_int = 0
        var dev: cl_device_id? = device
        let program: cl_program? = payload.withUnsafeBufferPointer { p in
            var ptr: UnsafePointer<UInt8>? = p.baseAddress
            var len = p.count
            return clCreateProgramWithBinary(context, 1, &dev, &len, &ptr, &status, &err)
        }
        guard let program else { return nil }
        guard err == CL_SUCCESS, status == CL_SUCCESS, clBuildProgram(program, 1, &dev, options, nil, nil) == CL_SUCCESS else {
            clReleaseProgram(program)
            return nil
        }
        return program
    }

    func store(_ program: cl_program, to url: URL) {
        var size = 0
        guard clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARY_SIZES), MemoryLayout<Int>.size, &size, nil) == CL_SUCCESS,
              size > 0 else { return }
        var binary = [UInt8](repeating: 0, count: size)
        let ok: Bool = binary.withUnsafeMutableBufferPointer { b in
            var ptr: UnsafeMutablePointer<UInt8>? = b.baseAddress
            return clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARIES), MemoryLayout<UnsafeMutablePointer<UInt8>?>.size, &ptr, nil) == CL_SUCCESS
        }
        guard ok else { return }
        var out = Self.magic
        withUnsafeBytes(of: UInt64(size)) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: binary.withUnsafeBytes { fnv1a64($0) }) { out.append(contentsOf: $0) }
        out.append(contentsOf: binary)
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp")
            try Data(out).write(to: tmp)
            if rename(tmp.path, url.path) != 0 { try? FileManager.default.removeItem(at: tmp) }
        } catch {
            // A cache that cannot be written only costs a rebuild next time.
        }
    }
}
