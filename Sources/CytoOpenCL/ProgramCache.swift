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
/// `CYTOCLB2` + a text header saying what it holds (source hash, build options,
/// device, driver, kernel names) + payload length + FNV checksum + the driver's
/// binary; it is written to a temporary file and renamed.
///
/// The name alone is not trusted: a file renamed or copied under another key, or a
/// binary of another program, would otherwise give `CL_INVALID_KERNEL_NAME` at the
/// first launch (or run the wrong code). Before use, an entry's header must match
/// the program being built (source hash, options, device, driver), and the program
/// made from its binary must hold exactly the kernels the header lists, which must
/// include every kernel the source declares. An entry that fails any check, or
/// that the driver rejects, is deleted and rebuilt from source, never used.
final class ProgramBuilder {
    let context: cl_context
    let device: cl_device_id
    let info: OpenCLDeviceInfo
    let cacheDirectory: URL?
    var stats = ProgramBuildStats()

    static let magic: [UInt8] = Array("CYTOCLB2".utf8)

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

    /// 128-bit hash of a program's source, recorded in its cache entry.
    static func sourceHash(_ source: String) -> String {
        String(format: "%016llx%016llx", fnv1a64(source), fnv1a64(source, seed: 0x84222325CBF29CE4))
    }

    /// The names of the kernels `source` declares (`__kernel void name(` or
    /// `kernel void name(`, attributes allowed), comments ignored.
    static func declaredKernels(_ source: String) -> Set<String> {
        var text = source
        // Strip /* */ and // comments so commented-out kernels do not count.
        while let a = text.range(of: "/*") {
            guard let b = text.range(of: "*/", range: a.upperBound..<text.endIndex) else { text.removeSubrange(a.lowerBound...); break }
            text.replaceSubrange(a.lowerBound..<b.upperBound, with: " ")
        }
        text = text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { line in line.range(of: "//").map { String(line[..<$0.lowerBound]) } ?? String(line) }
            .joined(separator: "\n")
        var names = Set<String>()
        let words = text.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") })
        var i = 0
        while i < words.count {
            if words[i] == "__kernel" || words[i] == "kernel" {
                // The kernel's name is the first word after `void` (attributes come before it).
                var j = i + 1
                while j < words.count && words[j] != "void" && j < i + 32 { j += 1 }
                if j + 1 < words.count && words[j] == "void" { names.insert(String(words[j + 1])); i = j + 1 }
            }
            i += 1
        }
        return names
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
            if let program = loadCached(url, source: source, options: options) {
                stats.cacheHits += 1
                return program
            }
            stats.rebuiltCorrupt += 1
            try? FileManager.default.removeItem(at: url)
        }
        let program = try compile(file: file, source: source, options: options)
        stats.compiled += 1
        if let url { store(program, source: source, options: options, to: url) }
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
            throw OpenCLError.buildFailed(
                file: file, device: info.name, driver: "\(info.platformName) \(info.driverVersion)",
                options: options, log: log.isEmpty ? "(\(openCLErrorName(berr)))" : log)
        }
        return program
    }

    func buildLog(_ program: cl_program) -> String {
        var size = 0
        guard clGetProgramBuildInfo(program, device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), 0, nil, &size) == CL_SUCCESS,
            size > 0
        else { return "" }
        var buf = [CChar](repeating: 0, count: size + 1)
        guard clGetProgramBuildInfo(program, device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), size, &buf, nil) == CL_SUCCESS else {
            return ""
        }
        return String(nulTerminated: buf).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// What a cache entry claims to hold, as `key=value` lines.
    struct EntryHeader: Equatable {
        var sourceHash: String
        var options: String
        var device: String
        var driver: String
        var kernels: [String]

        var text: String {
            [
                "source=\(sourceHash)", "options=\(options)", "device=\(device)", "driver=\(driver)",
                "kernels=\(kernels.joined(separator: ","))",
            ].joined(separator: "\n")
        }

        init(sourceHash: String, options: String, device: String, driver: String, kernels: [String]) {
            self.sourceHash = sourceHash; self.options = options; self.device = device; self.driver = driver
            self.kernels = kernels.sorted()
        }

        init?(text: String) {
            var fields: [String: String] = [:]
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                guard let eq = line.firstIndex(of: "=") else { return nil }
                fields[String(line[..<eq])] = String(line[line.index(after: eq)...])
            }
            guard let s = fields["source"], let o = fields["options"], let d = fields["device"], let v = fields["driver"],
                let k = fields["kernels"]
            else { return nil }
            self.init(sourceHash: s, options: o, device: d, driver: v, kernels: k.split(separator: ",").map(String.init))
        }
    }

    /// The kernel names a built program holds, or nil when the driver cannot say.
    func kernelNames(_ program: cl_program) -> [String]? {
        var size = 0
        guard clGetProgramInfo(program, cl_program_info(CL_PROGRAM_KERNEL_NAMES), 0, nil, &size) == CL_SUCCESS, size > 0 else { return nil }
        var buf = [CChar](repeating: 0, count: size + 1)
        guard clGetProgramInfo(program, cl_program_info(CL_PROGRAM_KERNEL_NAMES), size, &buf, nil) == CL_SUCCESS else { return nil }
        return String(nulTerminated: buf).split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            .sorted()
    }

    /// A program from a cache entry, or nil when the entry is unreadable, corrupt, for
    /// another program, options, device or driver, or its binary does not hold the
    /// kernels it claims and the source declares.
    func loadCached(_ url: URL, source: String, options: String) -> cl_program? {
        guard let data = try? Data(contentsOf: url), data.count > 16 else { return nil }
        let bytes = [UInt8](data)
        guard Array(bytes[0..<8]) == Self.magic else { return nil }
        func u64(_ at: Int) -> UInt64? {
            guard at >= 0, at + 8 <= bytes.count else { return nil }
            var v: UInt64 = 0
            withUnsafeMutableBytes(of: &v) { $0.copyBytes(from: bytes[at..<(at + 8)]) }
            return UInt64(littleEndian: v)
        }
        guard let headerLength = u64(8), headerLength < 1 << 20 else { return nil }
        let headerEnd = 16 + Int(headerLength)
        guard let length = u64(headerEnd), let sum = u64(headerEnd + 8), length > 0,
            UInt64(bytes.count - headerEnd - 16) == length
        else { return nil }
        let headerBytes = Array(bytes[16..<headerEnd])
        let payload = Array(bytes[(headerEnd + 16)...])
        let checksum = payload.withUnsafeBytes { fnv1a64($0, seed: headerBytes.withUnsafeBytes { fnv1a64($0) }) }
        guard checksum == sum, let header = EntryHeader(text: String(decoding: headerBytes, as: UTF8.self)) else { return nil }
        // What the entry claims must be what is being built.
        guard header.sourceHash == Self.sourceHash(source), header.options == options,
            header.device == info.name, header.driver == info.driverVersion,
            Self.declaredKernels(source).isSubset(of: header.kernels)
        else { return nil }
        var err: cl_int = 0, status: cl_int = 0
        var dev: cl_device_id? = device
        let program: cl_program? = payload.withUnsafeBufferPointer { p in
            var ptr: UnsafePointer<UInt8>? = p.baseAddress
            var len = p.count
            return clCreateProgramWithBinary(context, 1, &dev, &len, &ptr, &status, &err)
        }
        guard let program else { return nil }
        guard err == CL_SUCCESS, status == CL_SUCCESS, clBuildProgram(program, 1, &dev, options, nil, nil) == CL_SUCCESS,
            kernelNames(program) == header.kernels
        else {
            clReleaseProgram(program)
            return nil
        }
        return program
    }

    /// Writes a cache entry for a program just built from `source`; nothing when the
    /// driver cannot hand out the binary or name its kernels (then there is no cache).
    func store(_ program: cl_program, source: String, options: String, to url: URL) {
        guard let names = kernelNames(program) else { return }
        var size = 0
        guard clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARY_SIZES), MemoryLayout<Int>.size, &size, nil) == CL_SUCCESS,
            size > 0
        else { return }
        var binary = [UInt8](repeating: 0, count: size)
        let ok: Bool = binary.withUnsafeMutableBufferPointer { b in
            var ptr: UnsafeMutablePointer<UInt8>? = b.baseAddress
            return clGetProgramInfo(
                program, cl_program_info(CL_PROGRAM_BINARIES), MemoryLayout<UnsafeMutablePointer<UInt8>?>.size, &ptr, nil) == CL_SUCCESS
        }
        guard ok else { return }
        let header = Array(
            EntryHeader(
                sourceHash: Self.sourceHash(source), options: options, device: info.name,
                driver: info.driverVersion, kernels: names
            ).text.utf8)
        var out = Self.magic
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        withUnsafeBytes(of: UInt64(size).littleEndian) { out.append(contentsOf: $0) }
        let checksum = binary.withUnsafeBytes { fnv1a64($0, seed: header.withUnsafeBytes { fnv1a64($0) }) }
        withUnsafeBytes(of: checksum.littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: binary)
        do {
            AtomicFile.removeStaleTemporaries(in: url.deletingLastPathComponent())
            try writeAtomically(Data(out), to: url)
        } catch {
            // A cache that cannot be written only costs a rebuild next time.
        }
    }
}
