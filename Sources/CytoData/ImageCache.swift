import Foundation
import CytoCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Decoded images at a fixed size in one memory-mapped file.
///
/// Decoding 18,365 TIFFs for every fold and every training size is most of the
/// time of an AML sweep, so the pixels are decoded once into
/// `DIR/.cytocl-cache/<name>.u8cache` and mapped read-only afterwards: the kernel
/// pages images in on demand and may drop them again, so training on the whole
/// set does not need memory proportional to it.
///
/// File layout (little-endian): a 4096-byte header (magic, format version, count,
/// height, width, channels, fit policy, 32-byte key), then one status byte per
/// image (1 decoded, 0 bad), then, from the next 4096-byte boundary, `count`
/// images of height x width x 3 bytes (NHWC).
///
/// The key is the SHA-256 of the format version, target size, fit policy and, for
/// every file in order, its path, size and modification time: when any of them
/// changes the cache is rebuilt. The file is built under a temporary name and
/// renamed into place, so a crash never leaves a half-written cache behind.
public final class ImageCache: @unchecked Sendable {
    public static let formatVersion: UInt32 = 1
    static let magic: [UInt8] = Array("CYTOCACH".utf8)
    static let headerSize = 4096

    public let url: URL
    public let count: Int
    public let height: Int
    public let width: Int
    public let fit: FitPolicy
    /// Per image: false when the file could not be decoded (skipped with `skipBad`).
    public let available: [Bool]
    /// True when this `open` call built (or rebuilt) the file, false when it reused it.
    public let wasBuilt: Bool
    /// The load report of the build, when this call built the file.
    public let report: LoadReport?

    public var imageBytes: Int { height * width * 3 }
    private let base: UnsafeMutableRawPointer
    private let mappedLength: Int
    private let dataOffset: Int

    /// The default cache folder for a data set rooted at `root` (a folder or manifest).
    public static func defaultDirectory(root: String) -> URL {
        var isDir: ObjCBool = false
        let folder = FileManager.default.fileExists(atPath: root, isDirectory: &isDir) && !isDir.boolValue
            ? (root as NSString).deletingLastPathComponent : root
        return URL(fileURLWithPath: folder).appendingPathComponent(".cytocl-cache")
    }

    /// Opens the cache of `index` at `height` x `width`, building it when missing or stale.
    public static func open(index: DatasetIndex, height: Int, width: Int, fit: FitPolicy = .pad,
                            directory: URL? = nil, skipBad: Bool = false, rebuild: Bool = false,
                            progress: ProgressHandler? = nil) throws -> ImageCache {
        try open(paths: index.items.map(\.path), height: height, width: width, fit: fit,
                 directory: directory ?? defaultDirectory(root: index.root), skipBad: skipBad,
                 rebuild: rebuild, progress: progress)
    }

    /// Opens the cache of `paths` in `directory`, building it when missing or stale.
    public static func open(paths: [String], height: Int, width: Int, fit: FitPolicy = .pad,
                            directory: URL, skipBad: Bool = false, rebuild: Bool = false,
                            progress: ProgressHandler? = nil) throws -> ImageCache {
        precondition(height > 0 && width > 0)
        let key = try cacheKey(paths: paths, height: height, width: width, fit: fit)
        var nameHash = SHA256()
        for p in paths { nameHash.update(p); nameHash.update([0]) }
        let name = "\(width)x\(height)-\(fit.rawValue)-\(SHA256.hex(nameHash.finalize()).prefix(16)).u8cache"
        let url = directory.appendingPathComponent(name)
        if !rebuild, let existing = try? ImageCache(mapping: url, expectedKey: key, count: paths.count,
                                                    height: height, width: width, fit: fit) {
            if skipBad || !existing.available.contains(false) { return existing }
            // Built earlier with bad files skipped; rebuild to report them by name.
        }
        let report = try build(paths: paths, url: url, key: key, height: height, width: width, fit: fit,
                               skipBad: skipBad, progress: progress)
        return try ImageCache(mapping: url, expectedKey: key, count: paths.count, height: height, width: width,
                              fit: fit, built: true, report: report)
    }

    /// The SHA-256 key over everything a cached image depends on.
    static func cacheKey(paths: [String], height: Int, width: Int, fit: FitPolicy) throws -> [UInt8] {
        var h = SHA256()
        h.update("cytocl-cache v\(formatVersion) \(height)x\(width)x3 fit=\(fit.rawValue) n=\(paths.count)\n")
        var missing: [DataError] = []
        for p in paths {
            guard let st = FileBytes.stamp(p) else { missing.append(.missing(path: p)); continue }
            h.update("\(p)\u{0}\(st.size)\u{0}\(st.mtimeNanos)\n")
        }
        if missing.count == 1 { throw missing[0] }
        if missing.count > 1 { throw DataError.badImages(missing) }
        return h.finalize()
    }

    private static func build(paths: [String], url: URL, key: [UInt8], height: Int, width: Int, fit: FitPolicy,
                              skipBad: Bool, progress: ProgressHandler?) throws -> LoadReport {
        let dir = url.deletingLastPathComponent().path
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw DataError.writeFailed(path: dir, reason: "cannot create the cache folder (give another with --cache-dir)")
        }
        let n = paths.count
        let stride = height * width * 3
        let dataOffset = (headerSize + n + 4095) / 4096 * 4096
        let total = dataOffset + n * stride
        let tmp = dir + "/.\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = sysOpen(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw DataError.writeFailed(path: url.path, reason: String(cString: strerror(errno))) }
        var fdOpen = true
        defer { if fdOpen { close(fd) } }
        func fail(_ reason: String) -> DataError {
            unlink(tmp)
            return .writeFailed(path: url.path, reason: reason)
        }
        func writeAll(_ p: UnsafeRawPointer, _ count: Int, at offset: Int) throws {
            var done = 0
            while done < count {
                let w = pwrite(fd, p + done, count - done, off_t(offset + done))
                if w < 0 && errno == EINTR { continue }
                if w <= 0 { throw fail("cannot write the cache file: \(String(cString: strerror(errno)))") }
                done += w
            }
        }
        if ftruncate(fd, off_t(total)) != 0 { throw fail("cannot size the cache file to \(total) bytes: \(String(cString: strerror(errno)))") }
        // Decode a chunk of images into a small buffer and write it with pwrite, so
        // the process never holds more than one chunk: writing through a shared
        // mapping of the whole file made every decoded page count as resident memory
        // (8.6 GB for the 18,365-image AML set).
        let chunk = max(1, min(n, (64 << 20) / max(1, stride)))
        var buffer = [UInt8](repeating: 0, count: chunk * stride)
        var report = LoadReport()
        var ok: [Bool] = []
        ok.reserveCapacity(n)
        var start = 0
        while start < n {
            let end = min(n, start + chunk)
            let first = start
            var chunkProgress: ProgressHandler?
            if let progress { chunkProgress = { done, _ in progress(first + done, n) } }
            let (r, o) = buffer.withUnsafeMutableBufferPointer { buf in
                ImageLoader.decode(paths: Array(paths[start..<end]), height: height, width: width, fit: fit,
                                   into: buf.baseAddress!, progress: chunkProgress)
            }
            report.merge(r); ok += o
            try buffer.withUnsafeBytes { try writeAll($0.baseAddress!, (end - start) * stride, at: dataOffset + start * stride) }
            start = end
        }
        if !report.bad.isEmpty && !skipBad {
            unlink(tmp)
            throw DataError.badImages(report.bad)
        }
        // Status bytes, then the header last: a file without a complete header is never accepted.
        var head = [UInt8](repeating: 0, count: headerSize + n)
        for i in 0..<n { head[headerSize + i] = ok[i] ? 1 : 0 }
        head.withUnsafeMutableBytes { writeHeader($0.baseAddress!, count: n, height: height, width: width, fit: fit, key: key, dataOffset: dataOffset) }
        try head.withUnsafeBytes { try writeAll($0.baseAddress! + headerSize, n, at: headerSize) }
        if fsync(fd) != 0 { throw fail("cannot flush the cache file: \(String(cString: strerror(errno)))") }
        try head.withUnsafeBytes { try writeAll($0.baseAddress!, headerSize, at: 0) }
        if fsync(fd) != 0 { throw fail("cannot flush the cache file: \(String(cString: strerror(errno)))") }
        close(fd); fdOpen = false
        if rename(tmp, url.path) != 0 { throw fail("cannot rename the cache into place: \(String(cString: strerror(errno)))") }
        return report
    }

    private static func writeHeader(_ m: UnsafeMutableRawPointer, count: Int, height: Int, width: Int, fit: FitPolicy,
                                    key: [UInt8], dataOffset: Int) {
        let h = m.assumingMemoryBound(to: UInt8.self)
        h.update(repeating: 0, count: headerSize)
        for (i, b) in magic.enumerated() { h[i] = b }
        m.storeBytes(of: formatVersion.littleEndian, toByteOffset: 8, as: UInt32.self)
        m.storeBytes(of: UInt32(headerSize).littleEndian, toByteOffset: 12, as: UInt32.self)
        m.storeBytes(of: UInt64(count).littleEndian, toByteOffset: 16, as: UInt64.self)
        m.storeBytes(of: UInt32(height).littleEndian, toByteOffset: 24, as: UInt32.self)
        m.storeBytes(of: UInt32(width).littleEndian, toByteOffset: 28, as: UInt32.self)
        m.storeBytes(of: UInt32(3).littleEndian, toByteOffset: 32, as: UInt32.self)
        m.storeBytes(of: UInt32(FitPolicy.allCases.firstIndex(of: fit)!).littleEndian, toByteOffset: 36, as: UInt32.self)
        m.storeBytes(of: UInt64(dataOffset).littleEndian, toByteOffset: 40, as: UInt64.self)
        for (i, b) in key.enumerated() { h[64 + i] = b }
    }

    /// Maps an existing cache file; throws when it is missing, stale or malformed.
    private init(mapping url: URL, expectedKey: [UInt8], count: Int, height: Int, width: Int, fit: FitPolicy,
                 built: Bool = false, report: LoadReport? = nil) throws {
        let fd = sysOpen(url.path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw DataError.missing(path: url.path) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw DataError.unreadable(path: url.path, reason: "stat failed") }
        let length = Int(st.st_size)
        let stride = height * width * 3
        let dataOffset = (ImageCache.headerSize + count + 4095) / 4096 * 4096
        guard length == dataOffset + count * stride else {
            throw DataError.corrupt(path: url.path, format: "cache", detail: "size \(length) does not match \(count) images")
        }
        guard let m = mmap(nil, length, PROT_READ, MAP_SHARED, fd, 0), m != MAP_FAILED else {
            throw DataError.unreadable(path: url.path, reason: String(cString: strerror(errno)))
        }
        let h = m.assumingMemoryBound(to: UInt8.self)
        let ok = (0..<8).allSatisfy { h[$0] == ImageCache.magic[$0] }
            && UInt32(littleEndian: m.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) == ImageCache.formatVersion
            && UInt64(littleEndian: m.loadUnaligned(fromByteOffset: 16, as: UInt64.self)) == UInt64(count)
            && UInt32(littleEndian: m.loadUnaligned(fromByteOffset: 24, as: UInt32.self)) == UInt32(height)
            && UInt32(littleEndian: m.loadUnaligned(fromByteOffset: 28, as: UInt32.self)) == UInt32(width)
            && UInt64(littleEndian: m.loadUnaligned(fromByteOffset: 40, as: UInt64.self)) == UInt64(dataOffset)
            && (0..<32).allSatisfy { h[64 + $0] == expectedKey[$0] }
        guard ok else {
            munmap(m, length)
            throw DataError.corrupt(path: url.path, format: "cache", detail: "stale or foreign cache")
        }
        self.url = url
        self.count = count; self.height = height; self.width = width; self.fit = fit
        self.base = m; self.mappedLength = length; self.dataOffset = dataOffset
        self.available = (0..<count).map { h[ImageCache.headerSize + $0] == 1 }
        self.wasBuilt = built
        self.report = report
    }

    deinit { munmap(base, mappedLength) }

    /// Image `index` (height x width x 3 bytes), valid while the cache object lives.
    public func pixels(_ index: Int) -> UnsafeBufferPointer<UInt8> {
        precondition(index >= 0 && index < count, "cache index \(index) out of 0..<\(count)")
        let p = (base + dataOffset + index * imageBytes).assumingMemoryBound(to: UInt8.self)
        return UnsafeBufferPointer(start: UnsafePointer(p), count: imageBytes)
    }

    /// Copies image `index` to `destination`.
    public func copy(_ index: Int, to destination: UnsafeMutablePointer<UInt8>) {
        let src = pixels(index)
        destination.update(from: src.baseAddress!, count: imageBytes)
    }

    /// Copies the images `indices` into `destination` as one [indices.count, H, W, 3] batch.
    public func copyBatch(_ indices: [Int], to destination: UnsafeMutablePointer<UInt8>) {
        for (k, i) in indices.enumerated() { copy(i, to: destination + k * imageBytes) }
    }

    /// The images `indices` as a new [indices.count, H, W, 3] array.
    public func batch(_ indices: [Int]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: indices.count * imageBytes)
        out.withUnsafeMutableBufferPointer { copyBatch(indices, to: $0.baseAddress!) }
        return out
    }
}
