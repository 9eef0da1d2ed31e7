import CytoCore
@testable import CytoOpenCL
import Foundation
import XCTest

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
        XCTAssertTrue(try OpenCLRuntime.resolve("opencl:\(first.platformIndex).\(first.deviceIndex)") == (first.platformIndex, first.deviceIndex))
        XCTAssertTrue(try OpenCLRuntime.resolve("opencl:0") == (first.platformIndex, first.deviceIndex))
        XCTAssertThrowsError(try OpenCLRuntime.resolve("opencl:99.0"))
        XCTAssertThrowsError(try OpenCLBackend(platformIndex: 99, deviceIndex: 0)) { e in
            XCTAssertTrue("\(e)".contains("no OpenCL platform 99"), "\(e)")
        }
    }

    func testKernelCacheHitAndCorruptEntryRebuilt() throws {
        _ = try Fixture.backend()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-cache-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
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
        XCTAssertEqual(third.read(y, offset: 0, count: 4), [5, 7, 13, 15])
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
        for f in KernelSources.files { try KernelSources.embedded(f)!.write(to: dir.appendingPathComponent(f), atomically: true, encoding: .utf8) }
        // A changed elementwise.cl is what the backend runs.
        let patched = KernelSources.embedded("elementwise.cl")!.replacingOccurrences(of: "dst[i] = value;", with: "dst[i] = value + 1.0f;")
        try patched.write(to: dir.appendingPathComponent("elementwise.cl"), atomically: true, encoding: .utf8)
        let devices = try OpenCLRuntime.devices()
        let b = try OpenCLBackend(platformIndex: devices[0].platformIndex, deviceIndex: devices[0].deviceIndex,
                                  options: OpenCLOptions(cacheDirectory: .some(nil), kernelDirectory: .some(dir.path)))
        let x = try b.makeBuffer(.float32, count: 3, label: "x")
        b.fill(x, value: 1, count: 3)
        XCTAssertEqual(b.read(x, offset: 0, count: 3), [2, 2, 2])
        let missing = try OpenCLBackend(platformIndex: devices[0].platformIndex, deviceIndex: devices[0].deviceIndex,
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
