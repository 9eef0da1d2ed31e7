import CytoSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Decoded images at a fixed size in one file, read back with `pread`.
///
/// Decoding 18,365 TIFFs for every fold and every training size is most of the
/// time of an AML sweep, so the pixels are decoded once into
/// `DIR/.cytocl-cache/<name>.u8cache` (or, when the data folder is not writable,
/// `$XDG_CACHE_HOME/cytocl/datasets/<folder>-<hash of its absolute path>/`) and
/// read back per image afterwards: the kernel keeps them in its page cache, so
/// training on the whole set does not need memory proportional to it.
///
/// Images are read with `pread`, not through a memory mapping: a file truncated
/// while a sweep reads it (another process rebuilding it wrongly, a full disk, a
/// user) then gives a short read, which is reported as a damaged cache, where a
/// mapping would kill the process with SIGBUS on the first page past the new end.
///
/// Every image has a 64-bit checksum, checked when the cache is opened (a damaged
/// file is rebuilt, never reported as current) and again each time an image is read
/// (damage while a sweep runs stops the cell with a message naming the cache).
///
/// File layout (format 2, little-endian): a 4096-byte header (magic, format version,
/// header size, count, height, width, channels, fit policy, data offset, checksum
/// table offset, checksum of the status bytes and table, 32-byte key), then one
/// status byte per image (1 decoded, 0 bad), then from the next 8-byte boundary one
/// UInt64 checksum per image, then, from the next 4096-byte boundary, `count` images
/// of height x width x 3 bytes (NHWC).
///
/// The key is the SHA-256 of the format version, target size, fit policy and, for
/// every file in order, its path, size, modification time, inode change time, device
/// and inode: when any of them changes the cache is rebuilt. Size and modification
/// time alone missed pixels edited in place with the time kept (`cp -p`, `rsync -a`,
/// `touch -r`): the cache said "current" and a sweep trained on the old pixels. The
/// inode change time cannot be set by `touch` or any other call, and every write
/// moves it. Hashing the source bytes instead would cost about 130 s of one core per
/// open for AML's 18,365 files (8.8 GB; this SHA-256 runs at about 65 MB/s), where a
/// `stat` per file costs milliseconds in all. (A copy of the data set to another
/// place or a `chmod` also rebuilds the cache, which is safe.) The file is built by `AtomicFile` (a temporary name,
/// flushed, renamed into place; the header written last), so a crash never leaves a
/// half-written cache behind, and the next open removes temporaries of killed builds.
public final class ImageCache: @unchecked Sendable {
    // @unchecked: every stored property is immutable; `pread` on the shared
    // descriptor is safe from several threads at once.
    public static let formatVersion: UInt32 = 2
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
    /// Why an existing cache file was rebuilt (damaged, stale), when it was.
    public let rebuildReason: String?
    /// Set when the cache is not in the data folder because that folder is not writable.
    public let locationNote: String?
    /// The source image of each slot, for messages.
    public let sourcePaths: [String]

    public var imageBytes: Int { height * width * 3 }
    private let fd: Int32
    private let layout: Layout
    private let checksums: [UInt64]

    /// Where the parts of a cache file lie; computed in one place for writer and reader.
    struct Layout: Equatable {
        let count: Int, imageBytes: Int
        var statusOffset: Int { ImageCache.headerSize }
        var checksumOffset: Int { (statusOffset + count + 7) / 8 * 8 }
        var metaLength: Int { checksumOffset + count * 8 - statusOffset }
        var dataOffset: Int { (checksumOffset + count * 8 + 4095) / 4096 * 4096 }
        var fileSize: Int { dataOffset + count * imageBytes }
        func offset(of index: Int) -> Int { dataOffset + index * imageBytes }
    }

    // MARK: - Where the cache lives

    /// The in-data cache folder for a data set rooted at `root` (a folder or manifest).
    public static func defaultDirectory(root: String) -> URL {
        URL(fileURLWithPath: dataFolder(root)).appendingPathComponent(".cytocl-cache")
    }

    static func dataFolder(_ root: String) -> String {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: root, isDirectory: &isDir) && !isDir.boolValue
            ? (root as NSString).deletingLastPathComponent : root
    }

    /// Whether this process may create files in `path` (`access(2)`: also false on a
    /// read-only file system, which even root cannot write).
    public static func isWritableFolder(_ path: String) -> Bool { access(path, W_OK) == 0 }

    /// `$XDG_CACHE_HOME/cytocl/datasets` (default `~/.cache/cytocl/datasets`).
    public static func userCacheRoot(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let x = environment["XDG_CACHE_HOME"], x.hasPrefix("/") {
            return URL(fileURLWithPath: x).appendingPathComponent("cytocl/datasets")
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return URL(fileURLWithPath: home).appendingPathComponent(".cache/cytocl/datasets")
    }

    /// Where the cache of the data set at `root` goes: `DATA/.cytocl-cache` when that
    /// can be written, otherwise a folder of the user's cache named after the data
    /// folder and a hash of its absolute path (the cache file's own name is keyed by
    /// the listing, size and fit), with a note saying so.
    public static func location(
        root: String, isWritable: (String) -> Bool = isWritableFolder,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> (directory: URL, note: String?) {
        let inData = defaultDirectory(root: root)
        var isDir: ObjCBool = false
        let probe =
            FileManager.default.fileExists(atPath: inData.path, isDirectory: &isDir) && isDir.boolValue
            ? inData.path : dataFolder(root)
        if isWritable(probe) { return (inData, nil) }
        let absolute = URL(fileURLWithPath: dataFolder(root)).standardizedFileURL.path
        var h = SHA256()
        h.update(absolute)
        let folder = (absolute as NSString).lastPathComponent.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
        let dir = userCacheRoot(environment: environment)
            .appendingPathComponent("\(folder.isEmpty ? "data" : folder)-\(SHA256.hex(h.finalize()).prefix(16))")
        return (dir, "\(probe) is not writable: the decoded-image cache is in \(dir.path)")
    }

    // MARK: - Opening

    /// Opens the cache of `index` at `height` x `width`, building it when missing, stale or damaged.
    public static func open(
        index: DatasetIndex, height: Int, width: Int, fit: FitPolicy = .pad,
        directory: URL? = nil, skipBad: Bool = false, rebuild: Bool = false,
        progress: ProgressHandler? = nil,
        isWritable: (String) -> Bool = isWritableFolder
    ) throws -> ImageCache {
        let place = directory.map { ($0, nil as String?) } ?? location(root: index.root, isWritable: isWritable)
        return try open(
            paths: index.items.map(\.path), height: height, width: width, fit: fit,
            directory: place.0, skipBad: skipBad, rebuild: rebuild, locationNote: place.1, progress: progress)
    }

    /// Opens the cache of `paths` in `directory`, building it when missing, stale or damaged.
    public static func open(
        paths: [String], height: Int, width: Int, fit: FitPolicy = .pad,
        directory: URL, skipBad: Bool = false, rebuild: Bool = false, locationNote: String? = nil,
        progress: ProgressHandler? = nil
    ) throws -> ImageCache {
        precondition(height > 0 && width > 0)
        AtomicFile.removeStaleTemporaries(in: directory)
        let key = try cacheKey(paths: paths, height: height, width: width, fit: fit)
        var nameHash = SHA256()
        for p in paths { nameHash.update(p); nameHash.update([0]) }
        let name = "\(width)x\(height)-\(fit.rawValue)-\(SHA256.hex(nameHash.finalize()).prefix(16)).u8cache"
        let url = directory.appendingPathComponent(name)
        var reason: String? = nil
        if !rebuild && FileManager.default.fileExists(atPath: url.path) {
            do {
                let existing = try ImageCache(
                    reading: url, expectedKey: key, paths: paths, height: height, width: width,
                    fit: fit, locationNote: locationNote)
                try existing.verifyAll()
                if skipBad || !existing.available.contains(false) { return existing }
                reason = "built earlier with bad files skipped; rebuilding to report them by name"
            } catch let e as DataError {
                reason = e.description
            }
        }
        let report = try build(
            paths: paths, url: url, key: key, height: height, width: width, fit: fit,
            skipBad: skipBad, progress: progress)
        return try ImageCache(
            reading: url, expectedKey: key, paths: paths, height: height, width: width, fit: fit,
            built: true, report: report, rebuildReason: reason, locationNote: locationNote)
    }

    /// The SHA-256 key over everything a cached image depends on.
    static func cacheKey(paths: [String], height: Int, width: Int, fit: FitPolicy) throws -> [UInt8] {
        var h = SHA256()
        h.update("cytocl-cache v\(formatVersion) decoder \(ImageCodec.decoderVersion) \(height)x\(width)x3 fit=\(fit.rawValue) n=\(paths.count)\n")
        var missing: [DataError] = []
        for p in paths {
            guard let st = FileBytes.stamp(p) else { missing.append(.missing(path: p)); continue }
            h.update("\(p)\u{0}\(st.size)\u{0}\(st.mtimeNanos)\u{0}\(st.ctimeNanos)\u{0}\(st.device):\(st.inode)\n")
        }
        if missing.count == 1 { throw missing[0] }
        if missing.count > 1 { throw DataError.badImages(missing) }
        return h.finalize()
    }

    // MARK: - Building

    private static func build(
        paths: [String], url: URL, key: [UInt8], height: Int, width: Int, fit: FitPolicy,
        skipBad: Bool, progress: ProgressHandler?
    ) throws -> LoadReport {
        let dir = url.deletingLastPathComponent().path
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw DataError.writeFailed(
                path: dir, reason: "cannot create the cache folder (\(describeFileError(error))); give another with --cache-dir")
        }
        let n = paths.count
        let stride = height * width * 3
        let layout = Layout(count: n, imageBytes: stride)
        var report = LoadReport()
        do {
            try AtomicFile.write(to: url) { fd, _ in
                func writeAll(_ p: UnsafeRawPointer, _ count: Int, at offset: Int) throws {
                    var done = 0
                    while done < count {
                        let w = pwrite(fd, p + done, count - done, off_t(offset + done))
                        if w < 0 && errno == EINTR { continue }
                        if w <= 0 {
                            throw DataError.writeFailed(
                                path: url.path, reason: "cannot write the cache file: \(String(cString: strerror(errno)))")
                        }
                        done += w
                    }
                }
                if ftruncate(fd, off_t(layout.fileSize)) != 0 {
                    throw DataError.writeFailed(
                        path: url.path,
                        reason: "cannot size the cache file to \(layout.fileSize) bytes: \(String(cString: strerror(errno)))")
                }
                // Decode a chunk of images into a small buffer and write it with pwrite, so
                // the process never holds more than one chunk (a shared mapping of the whole
                // file made every decoded page count as resident: 8.6 GB for the AML set).
                let chunk = max(1, min(n, (64 << 20) / max(1, stride)))
                var buffer = [UInt8](repeating: 0, count: chunk * stride)
                var ok: [Bool] = []
                var sums: [UInt64] = []
                ok.reserveCapacity(n); sums.reserveCapacity(n)
                var start = 0
                while start < n {
                    let end = min(n, start + chunk)
                    let first = start
                    var chunkProgress: ProgressHandler?
                    if let progress { chunkProgress = { done, _ in progress(first + done, n) } }
                    let (r, o) = buffer.withUnsafeMutableBufferPointer { buf in
                        ImageLoader.decode(
                            paths: Array(paths[start..<end]), height: height, width: width, fit: fit,
                            into: buf.baseAddress!, progress: chunkProgress)
                    }
                    report.merge(r); ok += o
                    try buffer.withUnsafeBytes { b in
                        for k in 0..<(end - start) { sums.append(checksum(b.baseAddress! + k * stride, stride)) }
                        try writeAll(b.baseAddress!, (end - start) * stride, at: layout.offset(of: start))
                    }
                    start = end
                }
                if !report.bad.isEmpty && !skipBad { throw DataError.badImages(report.bad) }
                // Status bytes and checksums, flushed, then the header last: a file
                // without a complete header is never accepted.
                var meta = [UInt8](repeating: 0, count: layout.metaLength)
                meta.withUnsafeMutableBytes { m in
                    for i in 0..<n { m[i] = ok[i] ? 1 : 0 }
                    for i in 0..<n {
                        m.storeBytes(
                            of: sums[i].littleEndian, toByteOffset: layout.checksumOffset - layout.statusOffset + i * 8, as: UInt64.self)
                    }
                }
                let metaSum = meta.withUnsafeBytes { checksum($0.baseAddress!, $0.count) }
                try meta.withUnsafeBytes { try writeAll($0.baseAddress!, $0.count, at: layout.statusOffset) }
                if fsync(fd) != 0 {
                    throw DataError.writeFailed(path: url.path, reason: "cannot flush the cache file: \(String(cString: strerror(errno)))")
                }
                var head = [UInt8](repeating: 0, count: headerSize)
                head.withUnsafeMutableBytes {
                    writeHeader($0.baseAddress!, layout: layout, height: height, width: width, fit: fit, key: key, metaChecksum: metaSum)
                }
                try head.withUnsafeBytes { try writeAll($0.baseAddress!, headerSize, at: 0) }
            }
        } catch let e as CytoError {
            if case .io(_, let r) = e { throw DataError.writeFailed(path: url.path, reason: r) }
            throw DataError.writeFailed(path: url.path, reason: e.description)
        }
        return report
    }

    private static func writeHeader(
        _ m: UnsafeMutableRawPointer, layout: Layout, height: Int, width: Int, fit: FitPolicy,
        key: [UInt8], metaChecksum: UInt64
    ) {
        let h = m.assumingMemoryBound(to: UInt8.self)
        h.update(repeating: 0, count: headerSize)
        for (i, b) in magic.enumerated() { h[i] = b }
        m.storeBytes(of: formatVersion.littleEndian, toByteOffset: 8, as: UInt32.self)
        m.storeBytes(of: UInt32(headerSize).littleEndian, toByteOffset: 12, as: UInt32.self)
        m.storeBytes(of: UInt64(layout.count).littleEndian, toByteOffset: 16, as: UInt64.self)
        m.storeBytes(of: UInt32(height).littleEndian, toByteOffset: 24, as: UInt32.self)
        m.storeBytes(of: UInt32(width).littleEndian, toByteOffset: 28, as: UInt32.self)
        m.storeBytes(of: UInt32(3).littleEndian, toByteOffset: 32, as: UInt32.self)
        m.storeBytes(of: UInt32(FitPolicy.allCases.firstIndex(of: fit)!).littleEndian, toByteOffset: 36, as: UInt32.self)
        m.storeBytes(of: UInt64(layout.dataOffset).littleEndian, toByteOffset: 40, as: UInt64.self)
        m.storeBytes(of: UInt64(layout.checksumOffset).littleEndian, toByteOffset: 48, as: UInt64.self)
        m.storeBytes(of: metaChecksum.littleEndian, toByteOffset: 56, as: UInt64.self)
        for (i, b) in key.enumerated() { h[64 + i] = b }
    }

    // MARK: - Reading

    /// Opens an existing cache file and checks its header, status bytes and checksum
    /// table; throws `DataError` when it is missing, stale or damaged. Pixels are not
    /// checked here (`verifyAll`, `read`).
    private init(
        reading url: URL, expectedKey: [UInt8], paths: [String], height: Int, width: Int, fit: FitPolicy,
        built: Bool = false, report: LoadReport? = nil, rebuildReason: String? = nil, locationNote: String?
    ) throws {
        let count = paths.count
        let fd = sysOpen(url.path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw DataError.missing(path: url.path) }
        var keep = false
        defer { if !keep { close(fd) } }
        let layout = Layout(count: count, imageBytes: height * width * 3)
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw DataError.unreadable(path: url.path, reason: String(cString: strerror(errno))) }
        guard Int(st.st_size) == layout.fileSize else {
            throw DataError.corrupt(
                path: url.path, format: "cache", detail: "size \(st.st_size) bytes, \(layout.fileSize) expected for \(count) images")
        }
        var head = [UInt8](repeating: 0, count: ImageCache.headerSize + layout.metaLength)
        guard head.withUnsafeMutableBytes({ ImageCache.preadAll(fd, $0.baseAddress!, $0.count, at: 0) }) else {
            throw DataError.truncated(path: url.path, format: "cache", detail: "the header cannot be read")
        }
        let ok: Bool = head.withUnsafeBytes { m in
            (0..<8).allSatisfy { m[$0] == ImageCache.magic[$0] }
                && UInt32(littleEndian: m.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) == ImageCache.formatVersion
                && UInt64(littleEndian: m.loadUnaligned(fromByteOffset: 16, as: UInt64.self)) == UInt64(count)
                && UInt32(littleEndian: m.loadUnaligned(fromByteOffset: 24, as: UInt32.self)) == UInt32(height)
                && UInt32(littleEndian: m.loadUnaligned(fromByteOffset: 28, as: UInt32.self)) == UInt32(width)
                && UInt64(littleEndian: m.loadUnaligned(fromByteOffset: 40, as: UInt64.self)) == UInt64(layout.dataOffset)
                && UInt64(littleEndian: m.loadUnaligned(fromByteOffset: 48, as: UInt64.self)) == UInt64(layout.checksumOffset)
                && (0..<32).allSatisfy { m[64 + $0] == expectedKey[$0] }
        }
        guard ok else { throw DataError.corrupt(path: url.path, format: "cache", detail: "stale or foreign cache header") }
        let (metaOK, avail, sums): (Bool, [Bool], [UInt64]) = head.withUnsafeBytes { m in
            let meta = m.baseAddress! + layout.statusOffset
            let stored = UInt64(littleEndian: m.loadUnaligned(fromByteOffset: 56, as: UInt64.self))
            let a = (0..<count).map { meta.load(fromByteOffset: $0, as: UInt8.self) == 1 }
            let s = (0..<count).map {
                UInt64(
                    littleEndian: meta.loadUnaligned(fromByteOffset: layout.checksumOffset - layout.statusOffset + $0 * 8, as: UInt64.self))
            }
            return (ImageCache.checksum(meta, layout.metaLength) == stored, a, s)
        }
        guard metaOK else {
            throw DataError.corrupt(path: url.path, format: "cache", detail: "the status bytes or checksum table are damaged")
        }
        self.url = url
        self.count = count; self.height = height; self.width = width; self.fit = fit
        self.fd = fd; self.layout = layout
        self.available = avail; self.checksums = sums
        self.sourcePaths = paths
        self.wasBuilt = built; self.report = report; self.rebuildReason = rebuildReason; self.locationNote = locationNote
        keep = true
    }

    deinit { close(fd) }

    static func preadAll(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ count: Int, at offset: Int) -> Bool {
        var done = 0
        while done < count {
            let n = pread(fd, p + done, count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            done += n
        }
        return true
    }

    /// Reads every image and checks its checksum (a few seconds per GB): a damaged
    /// file must be rebuilt, not reported as current.
    func verifyAll() throws {
        let chunk = max(1, min(count, (32 << 20) / max(1, imageBytes)))
        var buffer = [UInt8](repeating: 0, count: chunk * imageBytes)
        var start = 0
        while start < count {
            let end = min(count, start + chunk)
            try buffer.withUnsafeMutableBytes { b in
                guard ImageCache.preadAll(fd, b.baseAddress!, (end - start) * imageBytes, at: layout.offset(of: start)) else {
                    throw DataError.truncated(path: url.path, format: "cache", detail: "the file ends before image \(start)")
                }
                for i in start..<end where ImageCache.checksum(b.baseAddress! + (i - start) * imageBytes, imageBytes) != checksums[i] {
                    throw mismatch(i)
                }
            }
            start = end
        }
    }

    func mismatch(_ index: Int) -> DataError {
        .corrupt(
            path: url.path, format: "cache",
            detail:
                "image \(index) (\(sourcePaths[index])) does not match its checksum; the next run rebuilds the cache (or use --rebuild-cache)"
        )
    }

    /// Copies image `index` (height x width x 3 bytes) to `destination` and checks it
    /// against its checksum. Throws when the file was truncated or damaged since it was opened.
    public func read(_ index: Int, into destination: UnsafeMutablePointer<UInt8>) throws {
        precondition(index >= 0 && index < count, "cache index \(index) out of 0..<\(count)")
        guard ImageCache.preadAll(fd, destination, imageBytes, at: layout.offset(of: index)) else {
            throw DataError.truncated(
                path: url.path, format: "cache",
                detail: "image \(index) cannot be read: the file was truncated while in use; the next run rebuilds it")
        }
        guard ImageCache.checksum(destination, imageBytes) == checksums[index] else { throw mismatch(index) }
    }

    /// Image `index` as a new array (checked).
    public func pixels(_ index: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: imageBytes)
        try out.withUnsafeMutableBufferPointer { try read(index, into: $0.baseAddress!) }
        return out
    }

    /// Copies image `index` to `destination` (checked).
    public func copy(_ index: Int, to destination: UnsafeMutablePointer<UInt8>) throws { try read(index, into: destination) }

    /// Copies the images `indices` into `destination` as one [indices.count, H, W, 3] batch.
    public func copyBatch(_ indices: [Int], to destination: UnsafeMutablePointer<UInt8>) throws {
        for (k, i) in indices.enumerated() { try read(i, into: destination + k * imageBytes) }
    }

    /// The images `indices` as a new [indices.count, H, W, 3] array.
    public func batch(_ indices: [Int]) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: indices.count * imageBytes)
        try out.withUnsafeMutableBufferPointer { try copyBatch(indices, to: $0.baseAddress!) }
        return out
    }

    // MARK: - Checksum

    /// The stored checksum of image `index`'s decoded pixels (checked against the pixels
    /// when the cache was opened): a cheap identity of the image contents, so a sweep
    /// can tell the same file names with other pixels from its own data.
    public func contentChecksum(_ index: Int) -> UInt64 {
        precondition(index >= 0 && index < count, "cache index \(index) out of 0..<\(count)")
        return checksums[index]
    }

    /// The checksum `contentChecksum` stores, of decoded pixels held in memory.
    public static func contentChecksum(_ pixels: UnsafeRawBufferPointer) -> UInt64 {
        guard let base = pixels.baseAddress else { return checksum(UnsafeRawPointer(bitPattern: 1)!, 0) }
        return checksum(base, pixels.count)
    }

    /// A 64-bit checksum: four independent xor-multiply-rotate lanes over 8-byte words
    /// (so it runs near memory speed), the tail bytes and the length folded in, and a
    /// final avalanche. It detects accidental damage (bit rot, an overwritten or
    /// zeroed block, a mixed-up file), not deliberate tampering.
    static func checksum(_ p: UnsafeRawPointer, _ count: Int) -> UInt64 {
        let k: UInt64 = 0x9E37_79B9_7F4A_7C15
        var a: UInt64 = 0x243F_6A88_85A3_08D3, b: UInt64 = 0x1319_8A2E_0370_7344
        var c: UInt64 = 0xA409_3822_299F_31D0, d: UInt64 = 0x082E_FA98_EC4E_6C89
        func lane(_ h: UInt64, _ w: UInt64) -> UInt64 { let x = (h ^ w) &* k; return (x << 31) | (x >> 33) }
        var i = 0
        while i + 32 <= count {
            a = lane(a, p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            b = lane(b, p.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self))
            c = lane(c, p.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self))
            d = lane(d, p.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self))
            i += 32
        }
        var h = a ^ (b << 1 | b >> 63) ^ (c << 2 | c >> 62) ^ (d << 3 | d >> 61) ^ UInt64(count)
        while i < count { h = lane(h, UInt64(p.load(fromByteOffset: i, as: UInt8.self))); i += 1 }
        h ^= h >> 30; h = h &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 27; h = h &* 0x94D0_49BB_1331_11EB
        return h ^ (h >> 31)
    }
}
