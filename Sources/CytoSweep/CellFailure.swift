import CytoCore
import CytoData
import CytoTrain
import Foundation

/// A cell that threw: `cells/fold<F>-size<S>.error.json`, removed when the cell later succeeds.
public struct CellFailure: Sendable, Codable, Equatable {
    public var fold: Int
    public var size: Int
    public var host: String
    public var pid: Int32
    public var job: String?
    public var backend: String
    public var started: String
    public var failed: String
    public var message: String

    public func encoded() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        return try e.encode(self)
    }
    public static func read(_ url: URL) -> CellFailure? {
        guard let data = try? Data(contentsOf: url) else { return nil }
        return try? JSONDecoder().decode(CellFailure.self, from: data)
    }
}
