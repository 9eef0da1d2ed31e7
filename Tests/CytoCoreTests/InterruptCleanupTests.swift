import CytoCore
import Dispatch
import Foundation
import XCTest

/// The plan's interrupt cleanup must not take a signal away from another part of the
/// program that handles it.
final class InterruptCleanupTests: XCTestCase {
    /// The handler the process has for `sig`: 0 default, 1 ignored, else a function.
    func disposition(_ sig: Int32) -> Int {
        var action = sigaction()
        sigaction(sig, nil, &action)
        return unsafeBitCast(action.__sigaction_handler.sa_handler, to: Int.self)
    }

    /// `cytocl label` stops on SIGTERM/SIGINT through its server's dispatch source; its
    /// forecasts run plan sweeps, whose cleanup set SIG_IGN over libdispatch's handler,
    /// and from the first forecast on the label server ignored Ctrl-C and kill (the
    /// kernel drops an ignored signal before any dispatch source sees it): only kill -9
    /// stopped it.
    func testRegisteringKeepsAnotherHandlerOfTheSignal() throws {
        var saved = sigaction()
        sigaction(SIGTERM, nil, &saved)
        // Back to what the test process had: no handler left that swallows SIGTERM.
        defer { sigaction(SIGTERM, &saved, nil) }
        // Another part of the program handles SIGTERM, as the label server's shutdown does.
        let other = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        other.setEventHandler {}
        other.resume()
        defer { other.cancel() }
        // libdispatch installs its handler when its manager thread registers the source.
        let deadline = Date().addingTimeInterval(5)
        while disposition(SIGTERM) <= 1 && Date() < deadline { usleep(1_000) }
        let handler = disposition(SIGTERM)
        XCTAssertGreaterThan(handler, 1, "libdispatch installed no handler for the other source")

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-interrupt-\(UUID().uuidString)")
        InterruptCleanup.register(folder)
        InterruptCleanup.unregister(folder)
        XCTAssertEqual(disposition(SIGTERM), handler, "the cleanup replaced the other handler of SIGTERM (1: ignored)")
    }
}
