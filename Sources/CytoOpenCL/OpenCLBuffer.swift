import COpenCL
import CytoCore

/// A buffer in device memory. Every allocation carries a zeroed slack of 256 bytes
/// past `count` elements so vector loads at row ends stay inside the allocation.
public final class OpenCLBuffer: DeviceBuffer {
    public let element: BufferElement
    public let count: Int
    public let label: String
    let mem: cl_mem
    let bytes: Int
    /// For a segment (a sub-buffer of `makeSegmentedBuffer`): the whole buffer, kept
    /// alive by the segment, and the segment's first element in it.
    let parent: OpenCLBuffer?
    let offset: Int
    private let onFree: (Int) -> Void

    init(
        element: BufferElement, count: Int, label: String, mem: cl_mem, bytes: Int,
        parent: OpenCLBuffer? = nil, offset: Int = 0, onFree: @escaping (Int) -> Void
    ) {
        self.element = element; self.count = count; self.label = label
        self.mem = mem; self.bytes = bytes; self.parent = parent; self.offset = offset; self.onFree = onFree
    }

    /// The allocation this buffer lies in and its first element there.
    var root: (buffer: OpenCLBuffer, offset: Int) { parent.map { ($0, offset) } ?? (self, 0) }
    deinit {
        clReleaseMemObject(mem)
        onFree(bytes)
    }
}
