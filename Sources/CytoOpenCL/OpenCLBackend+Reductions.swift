import COpenCL
import CytoCore
import Foundation

extension OpenCLBackend {
    /// `destination[r] = sum_j partial[offset + r*chunks + j]` for every segment: one
    /// launch when all destinations lie in one allocation (the network's flat gradient
    /// buffer), else one per destination allocation.
    func reduceSegments(
        _ partial: OpenCLBuffer, _ segments: [(rows: Int, partial: Int, chunks: Int, destination: any DeviceBuffer)],
        tag: String
    ) {
        var groups: [(root: OpenCLBuffer, table: [Int32], rows: Int)] = []
        for s in segments {
            let (root, offset) = buf(s.destination).root
            if let i = groups.firstIndex(where: { $0.root === root }) {
                groups[i].table += [Int32(groups[i].rows), Int32(s.partial), Int32(s.chunks), Int32(offset)]
                groups[i].rows += s.rows
            } else {
                groups.append((root, [0, Int32(s.partial), Int32(s.chunks), Int32(offset)], s.rows))
            }
        }
        for (i, group) in groups.enumerated() {
            guard let table = scratchBuffer("segments.\(i)", floats: group.table.count) else { return }
            group.table.withUnsafeBytes { enqueueWrite($0, to: table.mem, byteOffset: 0, label: table.label) }
            launch(
                ReduceSegmentsLaunch(
                    partial: partial.mem, output: group.root.mem, table: table.mem, segments: group.table.count / 4,
                    rows: group.rows),
                tag: tag)
        }
    }

    /// out[c] = sum over n and p of x[n][c][p], in two deterministic passes.
    func channelSums(_ x: any DeviceBuffer, n: Int, c: Int, p: Int, into out: any DeviceBuffer, tag: String) {
        let chunk = min(p, 8192)
        let gp = (p + chunk - 1) / chunk
        let groups = n * gp
        guard let partial = scratchBuffer("channel", floats: c * groups) else { return }
        let groupWidth: Int?
        switch tuning.channelSum {
        case .vectorPerItem:
            groupWidth = nil
        case .groupTree:
            var want = 1
            while want < min(256, chunk) { want *= 2 }
            groupWidth = powerOfTwoGroup(want, .channelSumGroup)
        }
        launch(
            ChannelSumLaunch(
                input: buf(x).mem, partial: partial.mem, batch: n, channels: c, plane: p, chunksPerPlane: gp,
                chunk: chunk, groupWidth: groupWidth),
            tag: tag)
        launch(
            ReduceRowsLaunch(partial: partial.mem, output: buf(out).mem, rows: c, partialsPerRow: groups),
            tag: tag + ".sum")
    }
}
