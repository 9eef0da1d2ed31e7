import CytoData
import Foundation
import Synchronization
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// `cytocl label` as a user meets it: the page in a real headless Chromium (driven
/// over the WebDriver protocol by Debian's chromium-driver), labels typed with the
/// keyboard, and the labels file read back the way `train --labels` reads it. Also
/// what a user can do wrong (an unknown key, editing or breaking the file while the
/// page runs, a path outside the pool) and a `kill -9` of the server while it writes.
///
/// Without Chromium the browser test is skipped, except under CI=true, where it fails:
/// CI installs it (scripts/setup).
final class LabelPageBrowserTests: XCTestCase {
    var dir: URL!
    var children: [Process] = []

    override func setUp() {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-labelpage-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDown() {
        for p in children where p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        try? FileManager.default.removeItem(at: dir)
    }

    /// Starts a long-running child; its output goes to a file read by `waitFor`.
    func start(_ executable: URL, _ args: [String], log: String) throws -> (Process, URL) {
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["CYTOCL_BACKEND"] = "cpu"
        p.environment = env
        let out = dir.appendingPathComponent(log)
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        let handle = try FileHandle(forWritingTo: out)
        p.standardOutput = handle; p.standardError = handle
        try p.run()
        children.append(p)
        return (p, out)
    }

    /// The first match of `pattern`'s group 1 in the log, waiting up to `seconds`;
    /// a failure showing the log when it never comes.
    func waitFor(_ log: URL, _ pattern: String, seconds: Double = 20) throws -> String {
        let regex = try NSRegularExpression(pattern: pattern)
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if let m = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)), let r = Range(m.range(at: 1), in: text) {
                return String(text[r])
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        throw WebDriverError("no line matching \(pattern) within \(seconds) s in \(log.lastPathComponent):\n\(text)")
    }

    /// A synthetic pool and `cytocl label` serving it on a free port; returns the base URL.
    func startServer(count: Int, labels: URL, extra: [String] = []) throws -> (String, Process, URL) {
        let pool = dir.appendingPathComponent("pool")
        if !FileManager.default.fileExists(atPath: pool.path) {
            let synth = try CLITests.run(["synth", "--out", pool.path, "--layout", "all-idb", "--count", "\(count)", "--size", "64"])
            XCTAssertEqual(synth.status, 0, synth.stderr)
        }
        let (p, log) = try start(
            CLITests.binary,
            [
                "label", "--data", pool.path, "--labels", labels.path, "--classes", "blast,other", "--port", "0", "--embedding", "stain",
                "--backend", "cpu",
            ] + extra, log: "label-\(children.count).log")
        let url = try waitFor(log, "serving (http://127\\.0\\.0\\.1:[0-9]+/)", seconds: 60)
        return (url, p, log)
    }

    func testLabelWithTheKeyboardInHeadlessChromium() throws {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let driverPath = "/usr/bin/chromedriver"
        guard let chromium, FileManager.default.isExecutableFile(atPath: driverPath) else {
            let why = "Chromium and its driver are not installed (apt-get install chromium chromium-driver; scripts/setup does)"
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail(why); return }
            throw XCTSkip(why)
        }
        let labels = dir.appendingPathComponent("labels.csv")
        let (base, _, _) = try startServer(count: 16, labels: labels, extra: ["--batch", "100"])
        let (_, driverLog) = try start(URL(fileURLWithPath: driverPath), ["--port=0"], log: "chromedriver.log")
        let driver = try WebDriver(
            port: Int(try waitFor(driverLog, "started successfully on port ([0-9]+)"))!, chromium: chromium)
        defer { driver.quit() }
        try driver.open(base)

        func shown() throws -> String { try driver.script("return document.getElementById('current').dataset.path") }
        func message() throws -> String { try driver.script("return document.getElementById('message').textContent") }
        func notice() throws -> String { try driver.script("return document.getElementById('notice').textContent") }
        func file() -> String { (try? String(contentsOf: labels, encoding: .utf8)) ?? "" }
        try driver.waitUntil("the first suggestion") { try !shown().isEmpty }

        // Three labels and an undo of the third, typed as fast as the driver types.
        var seen: [String] = []
        for key in ["1", "2", "1"] {
            let before = try shown()
            seen.append(before)
            try driver.press(key)
            try driver.waitUntil("the next image after \(before)") { try shown() != before }
        }
        try driver.press("u")
        let expected = "path,label\n\(seen[0]),blast\n\(seen[1]),other\n"
        try driver.waitUntil("the labels file to hold two labels") { file() == expected }
        try driver.waitUntil("the undone image shown again") { try shown() == seen[2] }
        XCTAssertTrue(try message().contains("undid \(seen[2]) (blast)"), (try? message()) ?? "")

        // An unknown class key: nothing saved, and the page says which keys there are.
        try driver.press("7")
        try driver.waitUntil("the unknown key message") { try message().contains("no class on key '7'") }
        XCTAssertTrue(try message().contains("keys: 1 blast, 2 other"), (try? message()) ?? "")
        XCTAssertEqual(file(), expected)

        // A row added in an editor while the page runs is kept, and the page says so.
        let pool = dir.appendingPathComponent("pool")
        let ids = try FileManager.default.contentsOfDirectory(atPath: pool.path).filter { $0.hasSuffix(".tif") }.sorted()
        let external = ids.first { !seen.contains($0) && $0 != (try? shown()) }!
        try (expected + "\(external),other\n").write(to: labels, atomically: true, encoding: .utf8)
        let fourth = try shown()
        try driver.press("2")
        try driver.waitUntil("the outside edit reported") {
            try notice().contains("labels.csv was changed outside the page; its rows are kept")
        }
        try driver.waitUntil("the fourth label saved") { file() == expected + "\(external),other\n\(fourth),other\n" }

        // Skipping moves on and saves nothing.
        let skippedImage = try shown()
        try driver.press("s")
        try driver.waitUntil("the image after the skipped one") { try shown() != skippedImage }
        XCTAssertEqual(file(), expected + "\(external),other\n\(fourth),other\n")

        // What the page wrote reads as a labels file: the same reader as train --labels.
        let inspect = try CLITests.run(["dataset", "inspect", pool.path, "--labels", labels.path, "--no-decode", "--no-near-duplicates"])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains("images: 4 in 2 classes"), inspect.stdout)
        XCTAssertTrue(inspect.stdout.contains("  blast  1") && inspect.stdout.contains("  other  3"), inspect.stdout)

        // A file broken in an editor is never overwritten; the page names the line.
        let broken = "path,label\n\(seen[0])\n"
        try broken.write(to: labels, atomically: true, encoding: .utf8)
        try driver.press("1")
        try driver.waitUntil("the broken file reported") { try message().contains("labels.csv:2: expected 'path,label'") }
        XCTAssertTrue(try message().contains("the page saves nothing until then"), (try? message()) ?? "")
        XCTAssertEqual(file(), broken)

        // Paths outside the pool in a request: refused with one line, HTTP 400.
        for (method, route, body, reason) in [
            ("POST", "api/label", #"{"path":"../labels.csv","key":"1"}"#, "leaves the pool"),
            ("POST", "api/label", #"{"path":"\#(labels.path)","key":"1"}"#, "is an absolute path"),
            ("GET", "api/image?path=%2Fetc%2Fpasswd", nil, "is an absolute path"),
        ] {
            let (status, text) = try WebDriver.http(method, base + route, body: body)
            XCTAssertEqual(status, 400, text)
            XCTAssertTrue(text.contains(reason) && text.hasSuffix("\n") && text.split(separator: "\n").count == 1, text)
        }
    }

    /// Options and a labels file that cannot work are refused before the page is served,
    /// in one line naming the option or the file and line.
    func testBadOptionsAndBrokenLabelsFileAreRefused() throws {
        let pool = dir.appendingPathComponent("pool").path
        XCTAssertEqual(try CLITests.run(["synth", "--out", pool, "--count", "4", "--size", "64"]).status, 0)
        let labels = dir.appendingPathComponent("labels.csv")
        try "path,label\nIm001_1.tif\n".write(to: labels, atomically: true, encoding: .utf8)
        let cases: [([String], Int32, String)] = [
            (["--classes", "blast"], 64, "--classes: give 2 to 9 classes (one key each), got 1"),
            (["--classes", "blast,blast"], 64, "--classes: class 'blast' is listed more than once"),
            (["--classes", "a,b", "--port", "70000"], 64, "--port must be between 0 and 65535, got 70000"),
            (["--classes", "a,b", "--input", "100x100"], 1, "input 100x100 is too small"),
            (
                ["--classes", "a,b", "--embedding", "stain"], 1,
                "Error: \(labels.path):2: expected 'path,label', found 'Im001_1.tif'; fix the file: the page saves nothing until then"
            ),
        ]
        for (args, status, line) in cases {
            let r = try CLITests.run(["label", "--data", pool, "--labels", labels.path] + args)
            XCTAssertEqual(r.status, status, args.joined(separator: " "))
            XCTAssertTrue(r.stderr.contains(line), r.stderr)
        }
        XCTAssertEqual(try String(contentsOf: labels, encoding: .utf8), "path,label\nIm001_1.tif\n")
    }

    /// `kill -9` while the server writes labels as fast as they come: the file left
    /// behind parses and holds exactly the first labels sent, every answered one among them.
    func testLabelsFileSurvivesKill9DuringWrites() throws {
        let labels = dir.appendingPathComponent("labels.csv")
        let (base, server, _) = try startServer(count: 40, labels: labels, extra: ["--batch", "1000"])
        let ids = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("pool").path)
            .filter { $0.hasSuffix(".tif") }.sorted()
        let answered = Mutex(0)
        let killer = Thread {
            while answered.withLock({ $0 }) < 15 { Thread.sleep(forTimeInterval: 0.002) }
            kill(server.processIdentifier, SIGKILL)
        }
        killer.start()
        var sent: [(String, String)] = []
        for (i, id) in ids.enumerated() {
            let label = i % 3 == 0 ? "blast" : "other"
            sent.append((id, label))
            guard
                let (status, _) = try? WebDriver.http(
                    "POST", base + "api/label", body: #"{"path":"\#(id)","key":"\#(label == "blast" ? 1 : 2)"}"#),
                status == 200
            else { break }
            answered.withLock { $0 += 1 }
        }
        server.waitUntilExit()
        XCTAssertEqual(server.terminationReason, .uncaughtSignal)
        let n = answered.withLock { $0 }
        XCTAssertGreaterThanOrEqual(n, 15)
        XCTAssertLessThan(n, ids.count, "the server was killed before the last label")
        let text = try String(contentsOf: labels, encoding: .utf8)
        let rows = try LabelsFile.rows(text: text, labelsFile: labels.path).filter(\.isData).map { ($0.fields[0], $0.fields[1]) }
        XCTAssertTrue(rows.count == n || rows.count == n + 1, "\(rows.count) rows after \(n) answered labels")
        XCTAssertTrue(zip(rows, sent).allSatisfy { $0 == $1 }, "the file is not the labels sent, in order:\n\(text)")
        XCTAssertTrue(text.hasPrefix("path,label\n") && text.hasSuffix("\n"), text)
    }
}

/// A WebDriver client (W3C protocol, JSON over HTTP) with the few commands the page test
/// needs, on a headless Chromium started by chromedriver.
struct WebDriver {
    let base: String
    let session: String

    init(port: Int, chromium: String) throws {
        base = "http://127.0.0.1:\(port)"
        let capabilities = """
            {"capabilities":{"alwaysMatch":{"browserName":"chrome","goog:chromeOptions":{"binary":"\(chromium)",
            "args":["--headless=new","--no-sandbox","--disable-gpu","--disable-dev-shm-usage","--window-size=1200,900"]}}}}
            """
        let answer = try WebDriver.call(base + "/session", method: "POST", body: capabilities)
        guard let id = (answer["value"] as? [String: Any])?["sessionId"] as? String else { throw WebDriverError("no session: \(answer)") }
        session = id
    }

    func open(_ url: String) throws { _ = try command("url", ["url": url]) }

    /// Runs `body` as a function in the page and returns its result as text.
    func script(_ body: String) throws -> String {
        let value = try command("execute/sync", ["script": body, "args": [Any]()])
        return value.map { "\($0)" } ?? ""
    }

    /// Presses and releases one key on the page.
    func press(_ key: String) throws {
        let action: [String: Any] = [
            "type": "key", "id": "keyboard",
            "actions": [["type": "keyDown", "value": key], ["type": "keyUp", "value": key]],
        ]
        _ = try command("actions", ["actions": [action]])
    }

    func waitUntil(_ what: String, seconds: Double = 10, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let page = (try? script("return document.body.innerText")) ?? "?"
        throw WebDriverError("timed out waiting for \(what); the page shows:\n\(page)")
    }

    func quit() { _ = try? WebDriver.call(base + "/session/\(session)", method: "DELETE", body: nil) }

    private func command(_ name: String, _ body: [String: Any]) throws -> Any? {
        let data = try JSONSerialization.data(withJSONObject: body)
        let answer = try WebDriver.call(base + "/session/\(session)/\(name)", method: "POST", body: String(decoding: data, as: UTF8.self))
        return answer["value"].flatMap { $0 is NSNull ? nil : $0 }
    }

    private static func call(_ url: String, method: String, body: String?) throws -> [String: Any] {
        let (status, text) = try http(method, url, body: body)
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw WebDriverError("\(method) \(url): HTTP \(status): \(text)")
        }
        if status != 200 { throw WebDriverError("\(method) \(url): HTTP \(status): \(object["value"] ?? text)") }
        return object
    }

    /// One HTTP/1.1 request to a loopback server over a plain socket (`Connection:
    /// close`, the answer read to its end); the status and the body as text. Not
    /// URLSession: on Linux it rejects chromedriver's answers, whose headers have no
    /// space after the colon (`Content-Length:917`).
    static func http(_ method: String, _ url: String, body: String?) throws -> (Int, String) {
        guard let c = URLComponents(string: url), let port = c.port else { throw WebDriverError("bad URL \(url)") }
        let target = c.percentEncodedPath + (c.percentEncodedQuery.map { "?" + $0 } ?? "")
        let payload = Array((body ?? "").utf8)
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        if body != nil { head += "Content-Type: application/json\r\nContent-Length: \(payload.count)\r\n" }
        let request = Array((head + "\r\n").utf8) + payload
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw WebDriverError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 40, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw WebDriverError("\(method) \(url): \(String(cString: strerror(errno)))") }
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw WebDriverError("\(method) \(url): \(String(cString: strerror(errno)))") }
            sent += n
        }
        // Read until the answer is complete: its Content-Length, the last chunk, or the end
        // of the connection (chromedriver keeps it open whatever `Connection` says).
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        func complete() -> Bool {
            let text = String(decoding: answer, as: UTF8.self)
            guard let split = text.range(of: "\r\n\r\n") else { return false }
            let headers = text[..<split.lowerBound].lowercased()
            let bodyBytes = text[split.upperBound...].utf8.count
            if let r = headers.range(of: #"content-length: ?([0-9]+)"#, options: .regularExpression) {
                let n = Int(headers[r].filter(\.isNumber)) ?? 0
                return bodyBytes >= n
            }
            return text.hasSuffix("\r\n0\r\n\r\n")
        }
        while !complete() {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw WebDriverError("\(method) \(url): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            answer += buffer[0..<n]
        }
        let text = String(decoding: answer, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n"), let status = Int(text.split(separator: " ").dropFirst().first ?? "") else {
            throw WebDriverError("\(method) \(url): no HTTP answer (\(text.prefix(200)))")
        }
        let headers = text[..<split.lowerBound].lowercased()
        var rest = String(text[split.upperBound...])
        if headers.contains("transfer-encoding: chunked") || headers.contains("transfer-encoding:chunked") {
            var out = "", chunks = Substring(rest)
            while let line = chunks.range(of: "\r\n"), let size = Int(chunks[..<line.lowerBound], radix: 16), size > 0 {
                let start = line.upperBound
                let end = chunks.utf8.index(start, offsetBy: size)
                out += chunks[start..<end]
                chunks = chunks[end...].dropFirst(2)
            }
            rest = out
        }
        return (status, rest)
    }
}

struct WebDriverError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
