import CytoCore
import CytoData
import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// The labelling page's HTTP server (Hummingbird): the page, its state, the images
/// and the label changes. Bound to loopback unless the caller names another address:
/// anyone who can reach the port can label.
///
/// Routes:
/// - `GET /` the page; `GET /api/state` what it shows (`PageState`, JSON);
/// - `GET /api/image?path=ID` an image of the pool as PNG (TIFF and the other formats
///   CytoCL reads are not all shown by browsers);
/// - `POST /api/label {"path": ID, "key": "1"}` saves a label (the key picks the class);
/// - `POST /api/undo {"path": ID, "label": L, "previous": P|null}` takes one back.
/// A bad request (a path outside the pool, an unknown key) is HTTP 400 and a change the
/// labels file cannot take now HTTP 409, each with one line of text that the page shows.
/// A request that is not the page's (`foreignRequest`) is HTTP 403.
public struct LabelServer: Sendable {
    public let session: LabelSession
    public let host: String
    public let port: Int

    public init(session: LabelSession, host: String = "127.0.0.1", port: Int) {
        self.session = session; self.host = host; self.port = port
    }

    struct LabelRequest: Decodable { var path: String; var key: String }
    struct UndoRequest: Decodable { var path: String; var label: String; var previous: String? }
    /// `note`: the labels file changed outside the page since it last looked (kept).
    struct LabelAnswer: Encodable { var path: String; var label: String?; var previous: String?; var labelled: Int; var note: String? }

    /// Serves until the process ends (SIGINT/SIGTERM stop it gracefully); `onReady` gets
    /// the bound port (the one chosen by the system for port 0).
    public func run(onReady: @escaping @Sendable (Int) -> Void) async throws {
        let router = Router()
        let session = self.session
        let host = self.host
        router.get("/") { request, _ -> Response in
            if let refused = LabelServer.refusingForeign(request, boundHost: host) { return refused }
            return Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: LabelPage.html)))
        }
        router.get("/api/state") { request, _ -> Response in
            if let refused = LabelServer.refusingForeign(request, boundHost: host) { return refused }
            return LabelServer.json(await session.state())
        }
        router.get("/api/image") { request, _ -> Response in
            if let refused = LabelServer.refusingForeign(request, boundHost: host) { return refused }
            return try await LabelServer.answering {
                let id = request.uri.queryParameters.get("path") ?? ""
                let path = try session.store.pool.resolve(id)
                let png = try await onWorkerThread { try ImageCodec.encodePNG(try ImageCodec.decode(path: path), level: 1) }
                return Response(
                    status: .ok, headers: [.contentType: "image/png", .cacheControl: "max-age=3600"],
                    body: .init(byteBuffer: ByteBuffer(bytes: png)))
            }
        }
        router.post("/api/label") { request, _ -> Response in
            if let refused = LabelServer.refusingForeign(request, boundHost: host) { return refused }
            return try await LabelServer.answering {
                let body: LabelRequest = try await LabelServer.decode(request)
                let label = try await session.className(forKey: body.key)
                let change = try await session.label(body.path, as: label)
                return LabelServer.json(
                    LabelAnswer(
                        path: body.path, label: label, previous: change.previous, labelled: change.snapshot.labels.count,
                        note: change.snapshot.outsideEdit))
            }
        }
        router.post("/api/undo") { request, _ -> Response in
            if let refused = LabelServer.refusingForeign(request, boundHost: host) { return refused }
            return try await LabelServer.answering {
                let body: UndoRequest = try await LabelServer.decode(request)
                let change = try await session.undo(body.path, label: body.label, previous: body.previous)
                return LabelServer.json(
                    LabelAnswer(
                        path: body.path, label: body.previous, previous: body.label, labelled: change.snapshot.labels.count,
                        note: change.snapshot.outsideEdit))
            }
        }
        var logger = Logger(label: "cytocl-label")
        logger.logLevel = .warning
        let app = Application(
            router: router, configuration: .init(address: .hostname(host, port: port)),
            onServerRunning: { channel in onReady(channel.localAddress?.port ?? -1) }, logger: logger)
        do { try await app.runService() } catch let e as IOError {
            // NIO's "bind(descriptor:ptr:bytes:): Address already in use) (errno: 98)" as one line.
            throw CytoError.io(
                path: "\(host):\(port)", reason: "cannot listen: \(String(cString: strerror(e.errnoCode))) (another server? choose --port)")
        }
    }

    /// HTTP 403 for a request that is not the page's, else nil (`foreignRequest`).
    static func refusingForeign(_ request: Request, boundHost: String) -> Response? {
        foreignRequest(
            isPost: request.method == .post, authority: request.head.authority, origin: request.headers[.origin],
            contentType: request.headers[.contentType], boundHost: boundHost
        ).map { text($0, status: .forbidden) }
    }

    /// Why a request did not come from the labelling page in the user's browser, or nil.
    ///
    /// Any web page the user opens while labelling can send requests to 127.0.0.1: a
    /// form or a `fetch` with a `text/plain` body (no CORS preflight) POSTed `{"path": ..,
    /// "key": "2"}` and the label was written, and a page whose domain is re-pointed to
    /// 127.0.0.1 (DNS rebinding) read `/api/state` and the patients' cells. So, on a
    /// loopback address, the `Host` must be a loopback name; a POST must be JSON (which
    /// another site can only send after a preflight this server never grants); and an
    /// `Origin`, when the browser sends one, must be the page's own.
    static func foreignRequest(
        isPost: Bool, authority: String?, origin: String?, contentType: String?, boundHost: String
    ) -> String? {
        let named = authority.map(hostName) ?? ""
        if isLoopback(boundHost), !isLoopback(named) {
            return "refused: the request is addressed to '\(named)', not to this computer's loopback address (another site's page may not use the labelling server)"
        }
        if isPost {
            let type = contentType?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
            if type != "application/json" {
                return "refused: a label change must be sent as application/json by the labelling page, not as \(type ?? "a body without a type")"
            }
        }
        if let origin, let authority, origin.lowercased() != "http://" + authority.lowercased() {
            return "refused: a request from the page of \(origin), not from the labelling page http://\(authority)"
        }
        return nil
    }

    /// The host of a `Host` value (`127.0.0.1:8765`, `[::1]:8765`, `localhost`).
    static func hostName(_ authority: String) -> String {
        if authority.hasPrefix("["), let end = authority.firstIndex(of: "]") {
            return String(authority[authority.index(after: authority.startIndex)..<end])
        }
        return String(authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
    }

    static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased()
        if h == "localhost" || h.hasSuffix(".localhost") || h == "::1" { return true }
        let parts = h.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    static func json<T: Encodable>(_ value: T) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(
            status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func decode<T: Decodable>(_ request: Request) async throws -> T {
        var request = request
        let buffer = try await request.collectBody(upTo: 64 << 10)
        do { return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView)) } catch {
            throw LabelRequestError("the request body is not the JSON this route takes")
        }
    }

    /// The route's answer, or its refusal as one line of text.
    static func answering(_ body: () async throws -> Response) async throws -> Response {
        do { return try await body() } catch let e as LabelRequestError {
            return text(e.description, status: .badRequest)
        } catch let e as LabelFileConflict {
            return text(e.description, status: .conflict)
        } catch let e as DataError {
            return text(e.description, status: .unprocessableContent)
        } catch let e as CytoError {
            return text(e.description, status: .internalServerError)
        }
    }

    static func text(_ line: String, status: HTTPResponse.Status) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: line.replacingOccurrences(of: "\n", with: " ") + "\n")))
    }
}

extension LabelServer {
    /// Runs the server from synchronous code (a command's `run`) until it stops; the
    /// session's first suggestions are fetched as soon as it listens.
    public func runBlocking(onReady: @escaping @Sendable (Int) -> Void) throws {
        let outcome = Mutex<Result<Void, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let server = self
        Task {
            let r: Result<Void, any Error>
            do {
                try await server.run(onReady: { port in
                    Task { await server.session.start() }
                    onReady(port)
                })
                r = .success(())
            } catch { r = .failure(error) }
            outcome.withLock { $0 = r }
            done.signal()
        }
        done.wait()
        try outcome.withLock { $0 }?.get()
    }
}
