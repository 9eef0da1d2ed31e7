import CytoBackends
import CytoCore
import CytoSweep
import CytoTrain
import XCTest

/// `--devices` entries with cell counts (`opencl:0.0*4,cpu*2`).
final class SweepDevicesTests: XCTestCase {
    func testCountsParse() throws {
        let e = try BackendWorkers.parseList("opencl:0.0*4, cpu*2,OpenCL:0.1")
        XCTAssertEqual(
            e,
            [
                .init(selector: .opencl(.address(platform: 0, device: 0)), cells: 4), .init(selector: .cpu, cells: 2),
                .init(selector: .opencl(.address(platform: 0, device: 1)), cells: 1),
            ])
        XCTAssertEqual(e.map(\.description), ["opencl:0.0*4", "cpu*2", "opencl:0.1"])
    }

    func testBadCountsAreRejectedWithTheEntry() {
        for bad in ["cpu*0", "cpu*", "cpu*x", "*3", "cpu*2*2", "", " , ", "cpu*1000", "gpu", "opencl:", "opencl:0.", "opencl:-1", "cuda*2"]
        {
            XCTAssertThrowsError(try BackendWorkers.parseList(bad), "'\(bad)' should be refused") { error in
                XCTAssertTrue("\(error)".contains("--devices"), "\(error)")
            }
        }
    }

    /// `--backend` and `CYTOCL_BACKEND` read the same selectors; a typo is refused with the forms.
    func testSelectorsParseToTheirCanonicalText() throws {
        for (text, canonical) in [
            ("auto", "auto"), (" CPU ", "cpu"), ("opencl", "opencl"), ("opencl:2", "opencl:2"), ("OpenCL:1.0", "opencl:1.0"),
        ] {
            XCTAssertEqual(try BackendSelector(parsing: text).description, canonical)
        }
        for bad in ["gpu", "opencl:", "opencl:0.", "opencl:-1", "opencl:a.b", "openclx", ""] {
            XCTAssertThrowsError(try BackendSelector(parsing: bad), "'\(bad)' should be refused") { error in
                XCTAssertTrue("\(error)".contains("use auto, cpu, opencl, opencl:N or opencl:P.D"), "\(error)")
            }
        }
    }

    func testDefaultCPUCellsUseEveryCore() {
        XCTAssertEqual(SweepDevices.defaultCPUCells(cores: 1), 1)
        XCTAssertEqual(SweepDevices.defaultCPUCells(cores: 8) * SweepDevices.defaultThreadsPerCell, 8)
    }
}
