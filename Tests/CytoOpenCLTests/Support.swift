import CytoTestSupport
import CytoCPU
import CytoCore
import Foundation
import XCTest

@testable import CytoOpenCL

/// Shared fixtures: one OpenCL backend (first device, a test-private kernel cache)
/// and the CPU reference. Without an OpenCL device the suite skips, except with
/// CI=true, where it fails.
enum Fixture {
    static let cacheDirectory: String = {
        makeProcessTemporaryFolder("test-cache").path
    }()

    // Backends are not Sendable; XCTest runs this target's tests one at a time on
    // one thread, which is what makes sharing these two safe.
    nonisolated(unsafe) static let shared: Result<OpenCLBackend, Error> = Result { try makeBackend() }
    nonisolated(unsafe) static let cpu = CPUBackend()

    static func makeBackend(cache: String? = cacheDirectory, profiling: Bool = false) throws -> OpenCLBackend {
        let devices = try OpenCLRuntime.devices()
        guard let d = devices.first else { throw OpenCLError.noDevice("no OpenCL device") }
        // scripts/test runs this suite a second time on rusticl; this makes sure it did.
        if let want = ProcessInfo.processInfo.environment["CYTOCL_TEST_PLATFORM"], !want.isEmpty,
            !d.platformName.lowercased().contains(want.lowercased())
        {
            throw OpenCLError.noDevice("CYTOCL_TEST_PLATFORM=\(want) but the first OpenCL device is \(d.name) on \(d.platformName)")
        }
        return try OpenCLBackend(
            platformIndex: d.platformIndex, deviceIndex: d.deviceIndex,
            options: OpenCLOptions(profiling: profiling, cacheDirectory: .some(cache)))
    }

    static func backend() throws -> OpenCLBackend {
        switch shared {
        case .success(let b): return b
        case .failure(let e):
            let env = ProcessInfo.processInfo.environment
            if env["CI"] == "true" || env["CYTOCL_TEST_PLATFORM"] != nil {
                XCTFail("CI=true or CYTOCL_TEST_PLATFORM set, but no usable OpenCL device: \(e)")
                throw e
            }
            throw XCTSkip("no OpenCL device: \(e)")
        }
    }
}

struct Rand {
    var g: SeededGenerator
    init(_ seed: UInt64) { g = SeededGenerator(seed: seed) }
    mutating func floats(_ n: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] {
        (0..<n).map { _ in lo + (hi - lo) * g.nextUnitFloat() }
    }
    mutating func int(_ r: ClosedRange<Int>) -> Int { Int.random(in: r, using: &g) }
}

/// A pair of buffers holding the same data on both backends.
struct Pair {
    let cl: any DeviceBuffer
    let cpu: any DeviceBuffer
    let count: Int

    init(_ ocl: OpenCLBackend, _ values: [Float], label: String = "t") throws {
        cl = try ocl.makeBuffer(.float32, count: values.count, label: label)
        cpu = try Fixture.cpu.makeBuffer(.float32, count: values.count, label: label)
        ocl.write(values, to: cl, offset: 0)
        Fixture.cpu.write(values, to: cpu, offset: 0)
        count = values.count
    }
    init(_ ocl: OpenCLBackend, count: Int, fill: Float = .nan) throws {
        try self.init(ocl, [Float](repeating: fill, count: count))
    }
}

func read(_ ocl: OpenCLBackend, _ p: Pair) throws -> (cl: [Float], cpu: [Float]) {
    (try ocl.read(p.cl, offset: 0, count: p.count), Fixture.cpu.read(p.cpu, offset: 0, count: p.count))
}

/// Runs one op on the OpenCL backend, then on the CPU reference: `op` gets the backend
/// and `on`, which gives a Pair's buffer on that backend, so both calls are written
/// once and cannot pass different arguments.
func onBoth(_ ocl: OpenCLBackend, _ op: (_ backend: any Backend, _ on: (Pair) -> any DeviceBuffer) -> Void) {
    op(ocl) { $0.cl }
    op(Fixture.cpu) { $0.cpu }
}

/// `assertClose` of what the two backends hold in `p`.
func assertBackendsAgree(
    _ ocl: OpenCLBackend, _ p: Pair, rtol: Float, atol: Float = 0, _ what: String,
    file: StaticString = #filePath, line: UInt = #line
) throws {
    let (a, c) = try read(ocl, p)
    assertClose(a, c, rtol: rtol, atol: atol, what, file: file, line: line)
}
