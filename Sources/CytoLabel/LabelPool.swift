import CytoCore
import CytoData
import Foundation

/// The images a labelling session may label, named by their path relative to the pool
/// folder (`--data`) — the form the labels file stores, so `cytocl train --data POOL
/// --labels FILE` finds them.
///
/// Every path that arrives in a request goes through `resolve`, which accepts only the
/// name of an image of the pool: a browser (or anything else on the machine that can
/// reach the port) cannot make the server read or label another file.
public struct LabelPool: Sendable {
    /// The pool folder the ids are relative to.
    public let folder: String
    /// Relative ids of the pool's images, sorted.
    public let ids: [String]
    private let absolute: [String: String]
    private let realFolder: String

    /// The images `ids` (paths relative to `folder`) of the pool at `folder`.
    public init(folder: String, ids: [String]) throws {
        let clean = folder.count > 1 && folder.hasSuffix("/") ? String(folder.dropLast()) : folder
        self.folder = clean
        var map: [String: String] = [:]
        for id in ids where !id.hasPrefix("/") && !id.split(separator: "/").contains("..") { map[id] = clean + "/" + id }
        guard !map.isEmpty else { throw CytoError.invalidArgument("\(folder): the pool holds no images") }
        absolute = map
        self.ids = map.keys.sorted()
        realFolder = LabelPool.realPath(clean) ?? clean
    }

    /// The absolute path of the image `id` names; throws `LabelRequestError` (a
    /// one-line reason, answered as HTTP 400) for anything else: an absolute path, a
    /// `..`, a file that is not an image of the pool, or a symbolic link out of it.
    public func resolve(_ id: String) throws -> String {
        guard !id.isEmpty else { throw LabelRequestError("no image path given") }
        let shown = FileSystemPath.visible(id)
        if id.hasPrefix("/") { throw LabelRequestError("'\(shown)' is an absolute path; paths are relative to the pool \(folder)") }
        if id.split(separator: "/").contains("..") { throw LabelRequestError("'\(shown)' leaves the pool \(folder) (..)") }
        guard let path = absolute[id] else { throw LabelRequestError("'\(shown)' is not an image of the pool \(folder)") }
        // A link inside the pool that points out of it would let the page read that file.
        guard let real = LabelPool.realPath(path), real.hasPrefix(realFolder + "/") else {
            throw LabelRequestError("'\(shown)' leads outside the pool \(folder) (a symbolic link)")
        }
        return path
    }

    /// The id of a path as a labels file may list it, or nil when it is no image of the
    /// pool: relative to the pool folder, then relative to `labelsFolder` (the labels
    /// file's folder), `./` and `..` resolved, or absolute inside the pool — the paths
    /// `cytocl train --labels` and `suggest --labels` accept. A row `pool/a.png` in a
    /// labels file beside the pool folder was counted as naming no image: the page
    /// suggested the image again and wrote a second row for it, which `train` refused.
    public func id(forListed listed: String, labelsFolder: String? = nil) -> String? {
        if absolute[listed] != nil { return listed }
        let prefix = LabelsFile.standard(folder) + "/"
        let bases = listed.hasPrefix("/") ? [""] : [folder + "/"] + (labelsFolder.map { [($0.isEmpty ? "." : $0) + "/"] } ?? [])
        for base in bases {
            let full = LabelsFile.standard(base + listed)
            guard full.hasPrefix(prefix) else { continue }
            let rel = String(full.dropFirst(prefix.count))
            if absolute[rel] != nil { return rel }
        }
        // `sub\a.png` from a file made on Windows (as `train --labels` reads it).
        return LabelsFile.slashed(listed).flatMap { id(forListed: $0, labelsFolder: labelsFolder) }
    }

    static func realPath(_ path: String) -> String? {
        guard let r = realpath(path, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }
}

/// A request the server refuses: one line for the page (HTTP 400).
public struct LabelRequestError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
