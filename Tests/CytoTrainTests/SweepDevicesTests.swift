import CytoCore
import CytoTrain
import CytoSweep
import XCTest

/// `--devices` entries with cell counts (`opencl:0.0*4,cpu*2`).
final class SweepDevicesTests: XCTestCase {
    func testCountsParse() throws {
        let e = try SweepDevices.parse("opencl:0.0*4, cpu*2,OpenCL:0.1")
        XCTAssertEqual(
            e,
            [
                .init(selector: "opencl:0.0", cells: 4), .init(selector: "cpu", cells: 2),
                .init(selector: "opencl:0.1", cells: 1),
            ])
    }

    func testBadCountsAreRejectedWithTheEntry() {
        for bad in ["cpu*0", "cpu*", "cpu*x", "*3", "cpu*2*2", "", " , ", "cpu*1000", "gpu", "opencl:", "opencl:0.", "opencl:-1", "cuda*2"]
        {
            XCTAssertThrowsError(try SweepDevices.parse(bad), "'\(bad)' should be refused") { error in
                XCTAssertTrue("\(error)".contains("--devices"), "\(error)")
            }
        }
    }

    func testDefaultCPUCellsUseEveryCore() {
        XCTAssertEqual(SweepDevices.defaultCPUCells(cores: 1), 1)
        XCTAssertEqual(SweepDevices.defaultCPUCells(cores: 8) * SweepDevices.defaultThreadsPerCell, 8)
    }
}
