import COpenCL
import CytoCore
import Foundation

extension OpenCLBackend {
    public func gatherBatch(
        images: any DeviceBuffer, geometry: ImageGeometry, indices: [Int32],
        transforms: [AugmentTransform]?, output: any DeviceBuffer
    ) {
        let n = indices.count
        guard n > 0 else { return }
        precondition(transforms == nil || transforms!.count == n, "one transform per index")
        guard let idx = scratchBuffer("indices", floats: n), let par = scratchBuffer("transforms", floats: 8 * n) else { return }
        indices.withUnsafeBytes { enqueueWrite($0, to: idx.mem, byteOffset: 0, label: idx.label) }
        if let t = transforms {
            // The affine maps of augment.cl: (row base, per y, per x, column base, per y, per x, nearest, 0).
            var p = [Float](repeating: 0, count: 8 * n)
            for (i, x) in t.enumerated() {
                let m = x.map(height: geometry.height, width: geometry.width)
                p.replaceSubrange(
                    (8 * i)..<(8 * i + 7),
                    with: [
                        m.rowBase, m.rowPerY, m.rowPerX, m.colBase, m.colPerY, m.colPerX,
                        m.sampler == .nearest ? 1 : 0,
                    ])
            }
            p.withUnsafeBytes { enqueueWrite($0, to: par.mem, byteOffset: 0, label: par.label) }
        }
        launch(
            GatherAugmentLaunch(
                images: buf(images).mem, indices: idx.mem, maps: par.mem, output: buf(output).mem,
                count: n, geometry: geometry, augmented: transforms != nil),
            tag: "gather_augment \(n)x\(geometry.height)x\(geometry.width)")
    }
}
