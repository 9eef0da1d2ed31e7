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
                "reduce_segments", "reduce.cl",
                [.mem(partial.mem), .mem(group.root.mem), .mem(table.mem), .int(group.table.count / 4), .int(group.rows)],
                global: [group.rows], tag: tag)
        }
    }

    /// out[c] = sum over n and p of x[n][c][p], in two deterministic passes.
    func channelSums(_ x: any DeviceBuffer, n: Int, c: Int, p: Int, into out: any DeviceBuffer, tag: String) {
        let chunk = min(p, 8192)
        let gp = (p + chunk - 1) / chunk
        let groups = n * gp
        guard let partial = scratchBuffer("channel", floats: c * groups) else { return }
        if tuning.channelSum == .vectorPerItem {
            launch(
                "channel_sum_vec", "reduce.cl",
                [.mem(buf(x).mem), .mem(partial.mem), .int(n), .int(c), .int(p), .int(gp), .int(chunk)],
                global: [groups, c], local: [1, 1], tag: tag)
            launch(
                "reduce_rows", "reduce.cl", [.mem(partial.mem), .mem(buf(out).mem), .int(c), .int(groups)],
                global: [c], tag: tag + ".sum")
            return
        }
        var want = 1
        while want < min(256, chunk) { want *= 2 }
        let l = powerOfTwoGroup(want, "channel_sum_partial", "reduce.cl")
        launch(
            "channel_sum_partial", "reduce.cl",
            [.mem(buf(x).mem), .mem(partial.mem), .local(l * 4), .int(n), .int(c), .int(p), .int(gp), .int(chunk)],
            global: [l, groups, c], local: [l, 1, 1], tag: tag)
        launch(
            "reduce_rows", "reduce.cl", [.mem(partial.mem), .mem(buf(out).mem), .int(c), .int(groups)],
            global: [c], tag: tag + ".sum")
    }
}
