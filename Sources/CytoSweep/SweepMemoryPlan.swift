import CytoCore
import Foundation

/// Whether a sweep's cells fit in memory, checked once the backends are made and
/// before `sweep.json` is written: every cell builds the same network, so a sweep
/// that cannot fit is refused now, not after hours of caching and training.
public struct SweepMemoryPlan {
    public var spec: ModelSpec
    /// The batch the cells' networks are built for (the larger of training and prediction).
    public var cellBatch: Int
    /// The most training and validation images one cell holds on its device.
    public var largestSet: Int

    /// - Parameters: `trainingBatch`: the protocol's; `sizes`: the sweep's training sizes
    ///   (per class with `balancePerClass`, over `classes` classes); `validation`: images per fold.
    public init(spec: ModelSpec, trainingBatch: Int, sizes: [Int], balancePerClass: Bool, classes: Int, validation: Int) {
        self.spec = spec
        cellBatch = max(trainingBatch, 32)
        largestSet = (sizes.max() ?? 0) * (balancePerClass ? max(1, classes) : 1) + validation
    }

    /// Device memory per cell: the network plus the largest training and validation sets as uint8.
    public var perCell: MemoryNeed {
        var need = spec.networkMemory(maxBatch: cellBatch)
        need.add(
            "training and validation images", count: checkedProduct(largestSet, spec.inputChannels, spec.inputHeight, spec.inputWidth),
            elementBytes: 1)
        return need
    }

    /// Throws when the cells sharing one device (`SEL*N`) do not fit in its memory
    /// together, or the CPU cells in the host's; `note` gets each device's figure.
    public func check(backends: [any Backend], note: (String) -> Void) throws {
        var perDevice: [String: Int] = [:]
        for b in backends where b.kind != .cpu { perDevice[b.deviceDescription, default: 0] += 1 }
        let perCellBytes = perCell.bytes
        for (device, cells) in perDevice.sorted(by: { $0.key < $1.key }) {
            var need = spec.networkMemory(maxBatch: cellBatch)
            if cells > 1 {
                need.what = "\(cells) concurrent cells on \(device), each with \(need.what),"
                need.bytes = need.bytes.flatMap { checkedProduct($0, cells) }
            }
            if let b = backends.first(where: { $0.deviceDescription == device }) { try need.check(against: b.memoryLimit()) }
            if let bytes = perCellBytes {
                note(
                    String(
                        format:
                            "device memory per cell on %@: about %.1f MB (network at batch %d and up to %d images); %d cell%@ at a time",
                        device as NSString, Double(bytes) / 1_048_576, cellBatch, largestSet, cells, (cells == 1 ? "" : "s") as NSString))
            }
        }
        let cpuCells = backends.filter { $0.kind == .cpu }.count
        if cpuCells > 0 {
            var need = spec.networkMemory(maxBatch: cellBatch)
            if cpuCells > 1 {
                need.what = "\(cpuCells) concurrent cells, each with \(need.what),"
                need.bytes = need.bytes.flatMap { checkedProduct($0, cpuCells) }
            }
            try need.check(against: MemoryLimit.host())
        }
    }
}
