import CytoCPU
import CytoCore
import XCTest

/// The two numbers behind `bench`'s "fraction of the FMA limit": the arithmetic of a
/// training step, counted layer by layer here independently of `ModelSpec`'s
/// geometry code, and the CPU's measured FMA rate on each path it supports.
final class FMAPeakTests: XCTestCase {
    func testTrainingFLOPsOfThePapersNetworkAt257() {
        // 257 -> conv 255 -> pool 127 -> 125 -> 62 -> 60 -> 30 -> 28 -> 14 -> 12 -> 6 -> 4 -> 2.
        let layers: [(out: Int, cin: Int, cout: Int)] = [(255, 3, 4), (125, 4, 8), (60, 8, 8), (28, 8, 8), (12, 8, 16), (4, 16, 16)]
        var flops = 0.0
        for (i, l) in layers.enumerated() {
            let macs = Double(l.out * l.out * l.cin * l.cout * 9)
            // Forward, filter gradient, and (after the first layer) the data gradient.
            flops += 2 * macs * (i == 0 ? 2 : 3)
        }
        flops += 2 * 3 * Double(2 * 2 * 16 * 32 + 32 * 2)  // dense 64 -> 32 -> 2
        XCTAssertEqual(ModelSpec.paper(height: 257, width: 257, classes: 2).trainingFLOPsPerImage, flops, accuracy: 1)
        // 71.5 MFLOP: without the first layer's data gradient, which no one needs (the 85.5 of issue 24 counted it).
        XCTAssertEqual(flops / 1e6, 71.47, accuracy: 0.01, "MFLOP per training image at 257x257")
    }

    func testMeasuredFMALimitIsPlausibleOnEverySupportedPath() throws {
        #if DEBUG
            // Unoptimised, the loop spills every accumulator (0.04 GFLOP/s): the release pass runs this.
            throw XCTSkip("the FMA limit is measured by the optimised build only")
        #endif
        for path in CPUPath.supported {
            let one = FMAPeakMeasurement.gflops(path: path, threads: 1, seconds: 0.02)
            // 2 to 200 GFLOP/s per core covers every x86-64 from SSE2 at 1 GHz to AVX-512 at 5 GHz;
            // a loop removed as dead code, or timed wrong, lands far outside.
            XCTAssertGreaterThan(one, 1, "\(path)")
            XCTAssertLessThan(one, 400, "\(path)")
        }
    }
}
