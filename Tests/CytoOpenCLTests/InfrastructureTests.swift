import CytoCore
import Foundation
import XCTest

@testable import CytoOpenCL

final class InfrastructureTests: XCTestCase {
    /// Every Kernels/*.cl must be registered in Kernels/KernelFiles.swift (a new file
    /// that is not would be embedded by SwiftPM but never built).
    func testEveryKernelFileIsEmbedded() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = root.appendingPathComponent("Kernels")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".cl") }.sorted()
        XCTAssertEqual(files, KernelSources.files, "add the new .cl file to Kernels/KernelFiles.swift")
        for f in files {
            let disk = try String(contentsOf: dir.appendingPathComponent(f), encoding: .utf8)
            XCTAssertEqual(KernelSources.embedded(f), disk, "\(f): the embedded source is not the file's bytes")
        }
    }

    func testDeviceEnumeration() throws {
        _ = try Fixture.backend()
        let devices = try OpenCLRuntime.devices()
        XCTAssertFalse(devices.isEmpty)
        for d in devices {
            XCTAssertFalse(d.name.isEmpty)
            XCTAssertGreaterThan(d.computeUnits, 0)
            XCTAssertGreaterThan(d.globalMemoryBytes, 0)
            XCTAssertGreaterThan(d.maxWorkGroupSize, 0)
        }
        // Platforms may have no device (Mesa's rusticl without RUSTICL_ENABLE, Clover).
        let platforms = try OpenCLRuntime.platforms()
        XCTAssertTrue(Set(devices.map(\.platformIndex)).isSubset(of: Set(platforms.map(\.index))))
        let first = devices[0]
        XCTAssertTrue(
            try OpenCLRuntime.resolve(.address(platform: first.platformIndex, device: first.deviceIndex)) == (first.platformIndex, first.deviceIndex))
        XCTAssertTrue(try OpenCLRuntime.resolve(.listed(0)) == (first.platformIndex, first.deviceIndex))
        XCTAssertThrowsError(try OpenCLRuntime.resolve(.address(platform: 99, device: 0)))
        XCTAssertThrowsError(try OpenCLBackend(platformIndex: 99, deviceIndex: 0)) { e in
            XCTAssertTrue("\(e)".contains("no OpenCL platform 99"), "\(e)")
        }
    }

    func testKernelCacheHitAndCorruptEntryRebuilt() throws {
        _ = try Fixture.backend()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cytocl-cache-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try Fixture.makeBackend(cache: dir.path)
        try first.prepare()
        XCTAssertEqual(first.buildStats.compiled, KernelSources.files.count)
        let entries = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".clbin") }
        XCTAssertEqual(entries.count, KernelSources.files.count)
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: dir.path).contains { $0.hasSuffix(".tmp") })

        let second = try Fixture.makeBackend(cache: dir.path)
        try second.prepare()
        XCTAssertEqual(second.buildStats.cacheHits, KernelSources.files.count)
        XCTAssertEqual(second.buildStats.compiled, 0)

        // Corrupt one entry (flip payload bytes) and truncate another: both rebuilt.
        let a = dir.appendingPathComponent(entries.first { $0.hasPrefix("pool-") }!)
        var bytes = [UInt8](try Data(contentsOf: a))
        for i in stride(from: 40, to: bytes.count, by: 97) { bytes[i] ^= 0x5A }
        try Data(bytes).write(to: a)
        let b = dir.appendingPathComponent(entries.first { $0.hasPrefix("conv-") }!)
        try Data([UInt8](try Data(contentsOf: b)).prefix(30)).write(to: b)
        let third = try Fixture.makeBackend(cache: dir.path)
        try third.prepare()
        XCTAssertEqual(third.buildStats.rebuiltCorrupt, 2)
        XCTAssertEqual(third.buildStats.compiled, 2)
        XCTAssertEqual(third.buildStats.cacheHits, KernelSources.files.count - 2)
        // The rebuilt programs work.
        let x = try third.makeBuffer(.float32, count: 16, label: "x"), y = try third.makeBuffer(.float32, count: 4, label: "y")
        third.write((0..<16).map(Float.init), to: x, offset: 0)
        third.maxPoolForward(PoolGeometry(batch: 1, channels: 1, inHeight: 4, inWidth: 4), input: x, output: y)
        XCTAssertEqual(try third.read(y, offset: 0, count: 4), [5, 7, 13, 15])
        try third.checkErrors()

        // Cache off: nothing written.
        let off = try Fixture.makeBackend(cache: nil)
        try off.buildProgram(file: "probe.cl", source: "__kernel void k(__global float* x) { x[0] = 1.0f; }")
        XCTAssertEqual(off.buildStats.compiled, 1)
        XCTAssertEqual(off.buildStats.cacheHits, 0)
        XCTAssertNil(ProgramBuilder.defaultCacheDirectory(environment: ["CYTOCL_KERNEL_CACHE": "off", "HOME": "/h"]))
        XCTAssertEqual(ProgramBuilder.defaultCacheDirectory(environment: ["XDG_CACHE_HOME": "/x"])?.path, "/x/cytocl")
        XCTAssertEqual(ProgramBuilder.defaultCacheDirectory(environment: ["HOME": "/h"])?.path, "/h/.cache/cytocl")
    }

    func testBuildErrorCarriesFullLog() throws {
        let ocl = try Fixture.backend()
        let broken = """
            __kernel void broken(__global float* x) {
                x[0] = undefined_identifier_xyz + 1.0f;
            }
            """
        XCTAssertThrowsError(try ocl.buildProgram(file: "broken.cl", source: broken)) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains("broken.cl"), m)
            XCTAssertTrue(m.contains(ocl.info.name), m)
            XCTAssertTrue(m.contains(ocl.info.driverVersion), m)
            XCTAssertTrue(m.contains("-cl-std=CL1.2"), m)
            XCTAssertTrue(m.contains("undefined_identifier_xyz"), "build log missing: \(m)")
        }
    }

    func testOutOfMemoryNamesSizes() throws {
        let ocl = try Fixture.backend()
        let huge = ocl.info.globalMemoryBytes + (1 << 30)
        XCTAssertThrowsError(try ocl.makeBuffer(.uint8, count: huge, label: "too-big")) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains("too-big") && m.contains("\(huge) B") && m.contains("\(ocl.info.globalMemoryBytes) B"), m)
        }
    }

    func testKernelDirectoryOverride() throws {
        _ = try Fixture.backend()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-kernels-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for f in KernelSources.files {
            try KernelSources.embedded(f)!.write(to: dir.appendingPathComponent(f), atomically: true, encoding: .utf8)
        }
        // A changed elementwise.cl is what the backend runs.
        let patched = KernelSources.embedded("elementwise.cl")!.replacingOccurrences(of: "dst[i] = value;", with: "dst[i] = value + 1.0f;")
        try patched.write(to: dir.appendingPathComponent("elementwise.cl"), atomically: true, encoding: .utf8)
        let devices = try OpenCLRuntime.devices()
        let b = try OpenCLBackend(
            platformIndex: devices[0].platformIndex, deviceIndex: devices[0].deviceIndex,
            options: OpenCLOptions(cacheDirectory: .some(nil), kernelDirectory: .some(dir.path)))
        let x = try b.makeBuffer(.float32, count: 3, label: "x")
        b.fill(x, value: 1, count: 3)
        XCTAssertEqual(try b.read(x, offset: 0, count: 3), [2, 2, 2])
        let missing = try OpenCLBackend(
            platformIndex: devices[0].platformIndex, deviceIndex: devices[0].deviceIndex,
            options: OpenCLOptions(cacheDirectory: .some(nil), kernelDirectory: .some("/nonexistent")))
        XCTAssertThrowsError(try missing.prepare()) { e in XCTAssertTrue("\(e)".contains("/nonexistent"), "\(e)") }
    }

    func testProfilingReport() throws {
        _ = try Fixture.backend()
        let b = try Fixture.makeBackend(profiling: true)
        let x = try b.makeBuffer(.float32, count: 1000, label: "x")
        b.fill(x, value: 1, count: 1000)
        b.relu(count: 1000, input: x, output: x)
        b.synchronize()
        let report = b.profileReport()
        XCTAssertTrue(report.contains("fill") && report.contains("relu_fwd") && report.contains("total"), report)
    }
}

/// A kernel-cache entry is trusted only for what it provably holds.
final class KernelCacheValidationTests: XCTestCase {
    var dir: URL!
    override func setUp() {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-cachevalid-\(UUID().uuidString)")
    }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func entries() throws -> [String: URL] {
        var out: [String: URL] = [:]
        for f in try FileManager.default.contentsOfDirectory(atPath: dir.path) where f.hasSuffix(".clbin") {
            out[String(f.split(separator: "-")[0])] = dir.appendingPathComponent(f)
        }
        return out
    }

    /// The backend built from this cache runs a kernel of `pool.cl` and one of `elementwise.cl` correctly.
    func assertWorks(_ b: OpenCLBackend, file: StaticString = #filePath, line: UInt = #line) throws {
        let x = try b.makeBuffer(.float32, count: 16, label: "x"), y = try b.makeBuffer(.float32, count: 4, label: "y")
        b.write((0..<16).map(Float.init), to: x, offset: 0)
        b.maxPoolForward(PoolGeometry(batch: 1, channels: 1, inHeight: 4, inWidth: 4), input: x, output: y)
        XCTAssertEqual(try b.read(y, offset: 0, count: 4), [5, 7, 13, 15], file: file, line: line)
        b.relu(count: 4, input: y, output: y)
        XCTAssertEqual(try b.read(y, offset: 0, count: 4), [5, 7, 13, 15], file: file, line: line)
        try b.checkErrors()
    }

    func testAValidBinaryOfAnotherProgramUnderThisKeyIsRebuiltNotUsed() throws {
        _ = try Fixture.backend()
        try Fixture.makeBackend(cache: dir.path).prepare()
        let e = try entries()
        // The whole entry of elementwise.cl copied over pool.cl's: its header names another source.
        try FileManager.default.removeItem(at: e["pool"]!)
        try FileManager.default.copyItem(at: e["elementwise"]!, to: e["pool"]!)
        let b = try Fixture.makeBackend(cache: dir.path)
        try b.prepare()
        XCTAssertEqual(b.buildStats.rebuiltCorrupt, 1)
        XCTAssertEqual(b.buildStats.compiled, 1)
        try assertWorks(b)
        // The rebuilt entry is valid again.
        let c = try Fixture.makeBackend(cache: dir.path)
        try c.prepare()
        XCTAssertEqual(c.buildStats.cacheHits, KernelSources.files.count)
    }

    func testAForgedHeaderOverAnotherProgramsBinaryIsRebuiltNotUsed() throws {
        _ = try Fixture.backend()
        try Fixture.makeBackend(cache: dir.path).prepare()
        let e = try entries()
        // pool.cl's header (right source hash, options, kernel names) with elementwise.cl's
        // binary and a matching checksum: only the kernel names in the binary give it away.
        func parts(_ url: URL) throws -> (header: [UInt8], payload: [UInt8]) {
            let bytes = [UInt8](try Data(contentsOf: url))
            let n = bytes[8..<16].withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
            return (Array(bytes[16..<(16 + n)]), Array(bytes[(16 + n + 16)...]))
        }
        let pool = try parts(e["pool"]!), other = try parts(e["elementwise"]!)
        var forged = ProgramBuilder.magic
        withUnsafeBytes(of: UInt64(pool.header.count).littleEndian) { forged.append(contentsOf: $0) }
        forged += pool.header
        withUnsafeBytes(of: UInt64(other.payload.count).littleEndian) { forged.append(contentsOf: $0) }
        let sum = other.payload.withUnsafeBytes { fnv1a64($0, seed: pool.header.withUnsafeBytes { fnv1a64($0) }) }
        withUnsafeBytes(of: sum.littleEndian) { forged.append(contentsOf: $0) }
        forged += other.payload
        try Data(forged).write(to: e["pool"]!)
        let b = try Fixture.makeBackend(cache: dir.path)
        try b.prepare()
        XCTAssertEqual(b.buildStats.rebuiltCorrupt, 1)
        try assertWorks(b)
    }

    func testAnEntryFromTheOldFormatOrWithOtherOptionsIsRebuilt() throws {
        _ = try Fixture.backend()
        try Fixture.makeBackend(cache: dir.path).prepare()
        let e = try entries()
        var bytes = [UInt8](try Data(contentsOf: e["conv"]!))
        bytes.replaceSubrange(0..<8, with: Array("CYTOCLB1".utf8))
        try Data(bytes).write(to: e["conv"]!)
        let text = String(decoding: try Data(contentsOf: e["reduce"]!), as: UTF8.self)
        XCTAssertTrue(text.contains("options=-cl-std=CL1.2"), "the header records the build options")
        let b = try Fixture.makeBackend(cache: dir.path)
        try b.prepare()
        XCTAssertEqual(b.buildStats.rebuiltCorrupt, 1)
        XCTAssertEqual(b.buildStats.cacheHits, KernelSources.files.count - 1)
    }

    func testDeclaredKernelNames() {
        let src = """
            // __kernel void commented_out(int x) {}
            /* kernel void also_commented(void) {} */
            __kernel void first(__global float* x) {}
            kernel __attribute__((reqd_work_group_size(64, 1, 1))) void second(int n) {}
            void helper(void) {}
            """
        XCTAssertEqual(ProgramBuilder.declaredKernels(src), ["first", "second"])
        for f in KernelSources.files {
            XCTAssertFalse(ProgramBuilder.declaredKernels(KernelSources.embedded(f)!).isEmpty, f)
        }
    }

    func testAnInjectedLaunchFailureIsStickyAndNoNumbersAreRead() throws {
        _ = try Fixture.backend()
        setenv(OpenCLFault.variable, "launch:2", 1)
        defer { unsetenv(OpenCLFault.variable) }
        let b = try Fixture.makeBackend()
        let x = try b.makeBuffer(.float32, count: 8, label: "x")
        b.fill(x, value: 1, count: 8)  // launch 1
        XCTAssertEqual(try b.read(x, offset: 0, count: 8), [Float](repeating: 1, count: 8))
        b.fill(x, value: 2, count: 8)  // launch 2: fails
        b.fill(x, value: 3, count: 8)  // skipped
        XCTAssertThrowsError(try b.read(x, offset: 0, count: 8)) { e in
            XCTAssertTrue("\(e)".contains("CL_OUT_OF_RESOURCES") && "\(e)".contains("fill"), "\(e)")
        }
        XCTAssertThrowsError(try b.checkErrors())
        XCTAssertThrowsError(try b.checkErrors(), "a failed backend stays failed")
        setenv(OpenCLFault.variable, "sometimes", 1)
        XCTAssertThrowsError(try Fixture.makeBackend()) { e in XCTAssertTrue("\(e)".contains("CYTOCL_FAULT"), "\(e)") }
    }
}
