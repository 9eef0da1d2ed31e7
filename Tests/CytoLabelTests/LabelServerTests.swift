import CytoCPU
import CytoCore
import CytoData
import Foundation
import Synchronization
import XCTest

@testable import CytoLabel

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Test-only suggestions: the unlabelled images in name order (the real source is
/// CytoSelect's pool, tested in its own target).
struct NameOrderSuggestions: SuggestionSource {
    let ids: [String]
    func suggest(labelled: [String: String], model: ModelFile?, count: Int, backend: any Backend) throws -> [LabelSuggestion] {
        ids.filter { labelled[$0] == nil }.prefix(count).map {
            LabelSuggestion(
                path: $0, score: 0, reason: model == nil ? "name order" : "name order, model of \(model!.classNames.count) classes")
        }
    }
}

/// The server over HTTP, in-process: labels land in the file, refusals are one line
/// with the right status, images come back as PNG, and a retraining happens after a batch.
final class LabelServerTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-labelserver-\(UUID().uuidString)")
        try SyntheticCells.generate(into: dir.appendingPathComponent("pool"), layout: .allIDB, count: 12, size: 32, seed: 3)
    }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func request(_ port: Int, _ method: String, _ path: String, _ body: String? = nil) throws -> (Int, Data) {
        var r = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        r.httpMethod = method
        if let body { r.httpBody = Data(body.utf8); r.setValue("application/json", forHTTPHeaderField: "Content-Type") }
        let result = Mutex<(Int, Data)?>(nil)
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: r) { data, response, _ in
            result.withLock { $0 = ((response as? HTTPURLResponse)?.statusCode ?? -1, data ?? Data()) }
            done.signal()
        }.resume()
        XCTAssertEqual(done.wait(timeout: .now() + 20), .success)
        return try XCTUnwrap(result.withLock { $0 })
    }

    /// Another site's page in the user's browser could POST a label to 127.0.0.1 (a
    /// `text/plain` fetch needs no CORS preflight) and, re-pointing its domain to 127.0.0.1
    /// (DNS rebinding), read the state and the cells. Such requests are HTTP 403.
    func testRequestsFromAnotherSitesPageAreRefused() throws {
        func foreign(_ post: Bool, _ authority: String?, _ origin: String? = nil, _ type: String? = "application/json", bound: String = "127.0.0.1") -> String? {
            LabelServer.foreignRequest(isPost: post, authority: authority, origin: origin, contentType: type, boundHost: bound)
        }
        XCTAssertNil(foreign(false, "127.0.0.1:8765"))
        XCTAssertNil(foreign(false, "localhost:8765"))
        XCTAssertNil(foreign(false, "[::1]:8765", bound: "::1"))
        XCTAssertNil(foreign(true, "127.0.0.1:8765", "http://127.0.0.1:8765", "application/json; charset=utf-8"))
        XCTAssertNil(foreign(false, "lab-pc.local:8765", bound: "0.0.0.0"), "a server the user exposed answers its network name")
        XCTAssertEqual(
            foreign(false, "evil.example:8765"),
            "refused: the request is addressed to 'evil.example', not to this computer's loopback address (another site's page may not use the labelling server)")
        XCTAssertNotNil(foreign(false, "127.0.0.1.evil.example:8765"))
        XCTAssertNotNil(foreign(false, nil))
        XCTAssertEqual(
            foreign(true, "127.0.0.1:8765", nil, "text/plain"),
            "refused: a label change must be sent as application/json by the labelling page, not as text/plain")
        XCTAssertEqual(
            foreign(true, "127.0.0.1:8765", "https://evil.example", "application/json"),
            "refused: a request from the page of https://evil.example, not from the labelling page http://127.0.0.1:8765")
        XCTAssertNotNil(foreign(true, "127.0.0.1:8765", "null"), "a sandboxed frame's Origin is no page of the server")

        // Over HTTP: nothing reaches the labels file.
        let poolFolder = dir.appendingPathComponent("pool").path
        let ids = try FileManager.default.contentsOfDirectory(atPath: poolFolder).filter { $0.hasSuffix(".tif") }.sorted()
        let labels = dir.appendingPathComponent("labels.csv")
        let session = LabelSession(
            store: try LabelStore(file: labels, pool: try LabelPool(folder: poolFolder, ids: ids)),
            settings: LabelSettings(classes: ["blast", "other"]), source: NameOrderSuggestions(ids: ids), forecaster: nil,
            makeBackend: { CPUBackend(threads: 1) })
        let server = LabelServer(session: session, port: 0)
        let ready = DispatchSemaphore(value: 0)
        let port = Mutex(0)
        let task = Task { try await server.run(onReady: { p in port.withLock { $0 = p }; ready.signal() }) }
        defer { task.cancel() }
        XCTAssertEqual(ready.wait(timeout: .now() + 20), .success)
        let p = port.withLock { $0 }
        let body = #"{"path":"\#(ids[0])","key":"1"}"#
        for headers in [["Content-Type": "text/plain"], ["Content-Type": "application/json", "Origin": "https://evil.example"]] {
            var r = URLRequest(url: URL(string: "http://127.0.0.1:\(p)/api/label")!)
            r.httpMethod = "POST"
            r.httpBody = Data(body.utf8)
            for (k, v) in headers { r.setValue(v, forHTTPHeaderField: k) }
            let status = Mutex(-1)
            let done = DispatchSemaphore(value: 0)
            URLSession.shared.dataTask(with: r) { _, response, _ in
                status.withLock { $0 = (response as? HTTPURLResponse)?.statusCode ?? -1 }
                done.signal()
            }.resume()
            XCTAssertEqual(done.wait(timeout: .now() + 20), .success)
            XCTAssertEqual(status.withLock { $0 }, 403, "\(headers)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: labels.path), "a foreign request wrote a label")
        XCTAssertEqual(try request(p, "POST", "/api/label", body).0, 200, "the page's own request still labels")
        XCTAssertTrue(try String(contentsOf: labels, encoding: .utf8).contains("\(ids[0]),blast"))
    }

    /// A labels file begun with other --classes: its labels of those classes count in
    /// "labelled" but in no class and no retraining; the page says so.
    func testLabelsOfClassesNotOnThePageAreNamed() async throws {
        let poolFolder = dir.appendingPathComponent("pool").path
        let ids = try FileManager.default.contentsOfDirectory(atPath: poolFolder).filter { $0.hasSuffix(".tif") }.sorted()
        let labels = dir.appendingPathComponent("labels.csv")
        try "path,label\n\(ids[0]),blast\n\(ids[1]),monocyte\n\(ids[2]),monocyte\n".write(to: labels, atomically: true, encoding: .utf8)
        let session = LabelSession(
            store: try LabelStore(file: labels, pool: try LabelPool(folder: poolFolder, ids: ids)),
            settings: LabelSettings(classes: ["blast", "other"]), source: NameOrderSuggestions(ids: ids), forecaster: nil,
            makeBackend: { CPUBackend(threads: 1) })
        let state = await session.state()
        XCTAssertEqual(state.labelled, 3)
        XCTAssertEqual(state.counts, [1, 0])
        XCTAssertEqual(
            state.problem, "2 label(s) of labels.csv are of classes not in --classes (monocyte): kept in the file, not trained on")
    }

    func testLabelUndoRefusalsAndRetraining() throws {
        let poolFolder = dir.appendingPathComponent("pool").path
        let ids = try FileManager.default.contentsOfDirectory(atPath: poolFolder).filter { $0.hasSuffix(".tif") }.sorted()
        let pool = try LabelPool(folder: poolFolder, ids: ids)
        let labels = dir.appendingPathComponent("labels.csv")
        var settings = LabelSettings(classes: ["blast", "other"])
        settings.batch = 4; settings.height = 32; settings.width = 32
        settings.convFilters = [2, 2]; settings.denseUnits = [4]
        settings.training.maxEpochs = 2
        let session = LabelSession(
            store: try LabelStore(file: labels, pool: pool), settings: settings, source: NameOrderSuggestions(ids: ids),
            forecaster: nil, makeBackend: { CPUBackend(threads: 1) })
        let server = LabelServer(session: session, port: 0)
        let ready = DispatchSemaphore(value: 0)
        let port = Mutex(0)
        let task = Task {
            try await server.run(onReady: { p in
                port.withLock { $0 = p }; ready.signal()
            })
        }
        defer { task.cancel() }
        XCTAssertEqual(ready.wait(timeout: .now() + 20), .success)
        let p = port.withLock { $0 }
        Task { await session.start() }

        let page = try request(p, "GET", "/")
        XCTAssertEqual(page.0, 200)
        XCTAssertTrue(String(decoding: page.1, as: UTF8.self).contains("<title>cytocl label</title>"))
        let image = try request(p, "GET", "/api/image?path=\(ids[0])")
        XCTAssertEqual(image.0, 200)
        XCTAssertEqual(Array(image.1.prefix(4)), [0x89, 0x50, 0x4E, 0x47], "a PNG")

        for (i, key) in ["1", "2", "1", "2"].enumerated() {
            let r = try request(p, "POST", "/api/label", #"{"path":"\#(ids[i])","key":"\#(key)"}"#)
            XCTAssertEqual(r.0, 200, String(decoding: r.1, as: UTF8.self))
        }
        let undo = try request(p, "POST", "/api/undo", #"{"path":"\#(ids[3])","label":"other","previous":null}"#)
        XCTAssertEqual(undo.0, 200, String(decoding: undo.1, as: UTF8.self))
        XCTAssertEqual(
            try String(contentsOf: labels, encoding: .utf8), "path,label\n\(ids[0]),blast\n\(ids[1]),other\n\(ids[2]),blast\n")

        let refusals: [(String, String, Int, String)] = [
            ("/api/label", #"{"path":"\#(ids[5])","key":"7"}"#, 400, "no class on key '7' (keys: 1 blast, 2 other; u undo, s skip)"),
            ("/api/label", #"{"path":"../labels.csv","key":"1"}"#, 400, "'../labels.csv' leaves the pool \(poolFolder) (..)"),
            (
                "/api/label", #"{"path":"/etc/passwd","key":"1"}"#, 400,
                "'/etc/passwd' is an absolute path; paths are relative to the pool \(poolFolder)"
            ),
            ("/api/label", "not json", 400, "the request body is not the JSON this route takes"),
            ("/api/undo", #"{"path":"\#(ids[0])","label":"other","previous":null}"#, 409, "'\(ids[0])' is now labelled 'blast'"),
            // An undo writes back no label or one the page replaced, never any text.
            (
                "/api/undo", #"{"path":"\#(ids[0])","label":"blast","previous":"zzz"}"#, 400,
                "cannot undo to 'zzz': '\(ids[0])' never had that label on this page"
            ),
        ]
        for (route, body, status, line) in refusals {
            let r = try request(p, "POST", route, body)
            XCTAssertEqual(r.0, status, body)
            XCTAssertTrue(String(decoding: r.1, as: UTF8.self).hasPrefix(line), String(decoding: r.1, as: UTF8.self))
        }
        XCTAssertEqual(try request(p, "GET", "/api/image?path=..%2Flabels.csv").0, 400)

        // The fourth label of the batch starts a retraining; the state shows its outcome.
        _ = try request(p, "POST", "/api/label", #"{"path":"\#(ids[3])","key":"2"}"#)
        var state: PageState?
        let deadline = Date().addingTimeInterval(15)
        repeat {
            Thread.sleep(forTimeInterval: 0.2)
            state = try JSONDecoder().decode(PageState.self, from: request(p, "GET", "/api/state").1)
        } while state?.status.hasPrefix("model trained") != true && Date() < deadline
        XCTAssertTrue(state?.status.hasPrefix("model trained on 4 labels") == true, state?.status ?? "no state")
        XCTAssertEqual(state?.counts, [2, 2])
        XCTAssertEqual(state?.suggestions.first?.path, ids[4])
        XCTAssertEqual(state?.suggestions.first?.reason, "name order, model of 2 classes")
    }
}
