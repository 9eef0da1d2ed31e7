import COpenCL
import CytoCore
import Foundation

extension OpenCLBackend {
    @inline(__always) func buf(_ b: any DeviceBuffer) -> OpenCLBuffer {
        guard let c = b as? OpenCLBuffer else {
            preconditionFailure("buffer '\(b.label)' was not made by the OpenCL backend")
        }
        return c
    }

    public func makeBuffer(_ element: BufferElement, count: Int, label: String) throws -> any DeviceBuffer {
        guard count >= 0 else { throw CytoError.backend("buffer \(label): negative size \(count)") }
        let (payload, overflow) = count.multipliedReportingOverflow(by: element.byteSize)
        let bytes = overflow || payload > Int.max / 2 ? Int.max : (payload + 3) / 4 * 4 + Self.slackBytes
        if bytes > info.maxAllocationBytes && info.maxAllocationBytes > 0
            || bytes > info.globalMemoryBytes - allocatedBytes && info.globalMemoryBytes > 0
        {
            throw OpenCLError.outOfMemory(
                label: label, requestedBytes: overflow ? Int.max : payload, allocatedBytes: allocatedBytes,
                maxAllocBytes: info.maxAllocationBytes, globalMemBytes: info.globalMemoryBytes,
                device: info.name)
        }
        // Kernels take element counts as 32-bit ints: a larger buffer would be indexed wrongly.
        guard count <= Int(Int32.max) else {
            throw CytoError.outOfMemory("buffer '\(label)' of \(count) elements exceeds the \(Int32.max) elements OpenCL kernels can index")
        }
        var err: cl_int = 0
        let mem = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), bytes, nil, &err)
        guard let mem, err == CL_SUCCESS else {
            if [CL_MEM_OBJECT_ALLOCATION_FAILURE, CL_OUT_OF_RESOURCES, CL_OUT_OF_HOST_MEMORY, CL_INVALID_BUFFER_SIZE].contains(err) {
                throw OpenCLError.outOfMemory(
                    label: label, requestedBytes: payload, allocatedBytes: allocatedBytes,
                    maxAllocBytes: info.maxAllocationBytes, globalMemBytes: info.globalMemoryBytes,
                    device: info.name)
            }
            throw OpenCLError.api(call: "clCreateBuffer", code: err, context: "\(label), \(bytes) bytes")
        }
        var zero: UInt32 = 0
        try check(
            clEnqueueFillBuffer(queue, mem, &zero, 4, 0, bytes, 0, nil, nil),
            "clEnqueueFillBuffer", label)
        allocatedBytes += bytes
        return OpenCLBuffer(element: element, count: count, label: label, mem: mem, bytes: bytes) { [weak self] n in
            self?.allocatedBytes -= n
        }
    }

    /// Segments are OpenCL sub-buffers, so their origins are multiples of the device's
    /// base-address alignment, and each keeps the 256-byte zero slack of a buffer.
    public func makeSegmentedBuffer(
        _ element: BufferElement, counts: [Int], labels: [String], label: String
    ) throws
        -> (whole: any DeviceBuffer, segments: [any DeviceBuffer])
    {
        let layout = SegmentLayout(
            counts: counts, alignmentBytes: baseAddressAlignment, slackBytes: Self.slackBytes,
            elementBytes: element.byteSize)
        let whole = buf(try makeBuffer(element, count: layout.total, label: label))
        var segments: [any DeviceBuffer] = []
        for ((offset, count), name) in zip(zip(layout.offsets, counts), labels) {
            var region = cl_buffer_region(
                origin: offset * element.byteSize,
                size: count * element.byteSize + Self.slackBytes)
            var err: cl_int = 0
            guard
                let mem = clCreateSubBuffer(
                    whole.mem, cl_mem_flags(CL_MEM_READ_WRITE),
                    cl_buffer_create_type(CL_BUFFER_CREATE_TYPE_REGION), &region, &err),
                err == CL_SUCCESS
            else {
                throw OpenCLError.api(call: "clCreateSubBuffer", code: err, context: "\(name) at element \(offset) of \(label)")
            }
            segments.append(
                OpenCLBuffer(
                    element: element, count: count, label: name, mem: mem, bytes: 0,
                    parent: whole, offset: offset
                ) { _ in })
        }
        return (whole, segments)
    }

    /// Device memory not yet allocated by this backend, and the per-buffer limit.
    public func memoryLimit() -> MemoryLimit? {
        guard info.globalMemoryBytes > 0 else { return nil }
        return MemoryLimit(
            availableBytes: max(0, info.globalMemoryBytes - allocatedBytes),
            maxBufferBytes: info.maxAllocationBytes > 0 ? info.maxAllocationBytes : nil,
            source: "device memory of \(info.name)")
    }

    /// A backend-owned scratch buffer of at least `count` floats, grown on demand.
    func scratchBuffer(_ name: String, floats count: Int) -> OpenCLBuffer? {
        if let b = scratch[name], b.count >= count { return b }
        do {
            let b = buf(try makeBuffer(.float32, count: max(count, (scratch[name]?.count ?? 0) * 3 / 2), label: "scratch.\(name)"))
            scratch[name] = b
            return b
        } catch {
            record(error)
            return nil
        }
    }

    /// The zero-padded input of the data-gradient convolution: one buffer per size,
    /// zeroed when made; `pad_copy` writes only the interior, so the border stays zero.
    /// The few most recent sizes are kept.
    func paddedBuffer(planes: Int, height: Int, width: Int) -> OpenCLBuffer? {
        let key = [planes, height, width]
        if let e = padBuffers.first(where: { $0.key == key }) { return e.buffer }
        do {
            let b = buf(try makeBuffer(.float32, count: planes * height * width, label: "scratch.pad \(planes)x\(height)x\(width)"))
            padBuffers.append((key, b))
            if padBuffers.count > 12 { padBuffers.removeFirst() }
            return b
        } catch {
            record(error)
            return nil
        }
    }

    /// Non-blocking write from a private copy of the data, freed once the write is done.
    func enqueueWrite(_ src: UnsafeRawBufferPointer, to mem: cl_mem, byteOffset: Int, label: String) {
        guard let base = src.baseAddress, src.count > 0, pendingError == nil else { return }
        reapWrites(all: false)
        if src.count > 1 << 20 {
            do {
                try check(
                    clEnqueueWriteBuffer(queue, mem, cl_bool(CL_TRUE), byteOffset, src.count, base, 0, nil, nil),
                    "clEnqueueWriteBuffer", label)
            } catch { record(error) }
            return
        }
        let copy = UnsafeMutableRawPointer.allocate(byteCount: src.count, alignment: 64)
        copy.copyMemory(from: base, byteCount: src.count)
        var event: cl_event? = nil
        let err = clEnqueueWriteBuffer(queue, mem, cl_bool(CL_FALSE), byteOffset, src.count, copy, 0, nil, &event)
        if err != CL_SUCCESS || event == nil {
            clFinish(queue)
            copy.deallocate()
            record(OpenCLError.api(call: "clEnqueueWriteBuffer", code: err, context: label))
            return
        }
        pendingWrites.append((event!, copy))
    }

    func reapWrites(all: Bool) {
        if pendingWrites.isEmpty { return }
        if all {
            for w in pendingWrites { clWaitForEvents(1, [w.event]); clReleaseEvent(w.event); w.memory.deallocate() }
            pendingWrites.removeAll()
            return
        }
        pendingWrites.removeAll { w in
            var status: cl_int = 0
            clGetEventInfo(w.event, cl_event_info(CL_EVENT_COMMAND_EXECUTION_STATUS), 4, &status, nil)
            if status == CL_COMPLETE || status < 0 {
                clReleaseEvent(w.event); w.memory.deallocate(); return true
            }
            return false
        }
    }

    public func write(_ values: [Float], to buffer: any DeviceBuffer, offset: Int) {
        let b = buf(buffer)
        precondition(offset >= 0 && offset + values.count <= b.count, "write past the end of \(b.label)")
        if b.element == .float32 {
            values.withUnsafeBytes { enqueueWrite($0, to: b.mem, byteOffset: offset * 4, label: b.label) }
        } else {
            let bytes = values.map { UInt8(max(0, min(255, $0.rounded()))) }
            bytes.withUnsafeBytes { enqueueWrite($0, to: b.mem, byteOffset: offset, label: b.label) }
        }
    }

    public func write(bytes: UnsafeRawBufferPointer, to buffer: any DeviceBuffer, byteOffset: Int) {
        let b = buf(buffer)
        precondition(byteOffset >= 0 && byteOffset + bytes.count <= b.count * b.element.byteSize, "write past the end of \(b.label)")
        enqueueWrite(bytes, to: b.mem, byteOffset: byteOffset, label: b.label)
    }

    public func read(_ buffer: any DeviceBuffer, offset: Int, count: Int) throws -> [Float] {
        let b = buf(buffer)
        precondition(offset >= 0 && offset + count <= b.count, "read past the end of \(b.label)")
        try checkErrors()
        if injectFault(.read) {
            record(
                OpenCLError.api(
                    call: "clEnqueueReadBuffer", code: CL_OUT_OF_RESOURCES,
                    context: "\(b.label) on \(info.name), injected by \(OpenCLFault.variable)"))
        }
        try checkErrors()
        guard count > 0 else { synchronize(); try checkErrors(); return [] }
        var result: [Float]
        if b.element == .float32 {
            result = [Float](repeating: 0, count: count)
            let err = result.withUnsafeMutableBytes {
                clEnqueueReadBuffer(queue, b.mem, cl_bool(CL_TRUE), offset * 4, count * 4, $0.baseAddress, 0, nil, nil)
            }
            if err != CL_SUCCESS { record(OpenCLError.api(call: "clEnqueueReadBuffer", code: err, context: b.label)) }
        } else {
            var bytes = [UInt8](repeating: 0, count: count)
            let err = bytes.withUnsafeMutableBytes {
                clEnqueueReadBuffer(queue, b.mem, cl_bool(CL_TRUE), offset, count, $0.baseAddress, 0, nil, nil)
            }
            if err != CL_SUCCESS { record(OpenCLError.api(call: "clEnqueueReadBuffer", code: err, context: b.label)) }
            result = bytes.map(Float.init)
        }
        reapWrites(all: false)
        try checkErrors()
        return result
    }

    public func fill(_ buffer: any DeviceBuffer, value: Float, count: Int) {
        let b = buf(buffer)
        guard count > 0 else { return }
        if b.element == .float32 {
            launch(FillLaunch(destination: b.mem, value: value, count: count))
        } else {
            var v = UInt8(max(0, min(255, value)))
            let err = clEnqueueFillBuffer(queue, b.mem, &v, 1, 0, count, 0, nil, nil)
            if err != CL_SUCCESS { record(OpenCLError.api(call: "clEnqueueFillBuffer", code: err, context: b.label)) }
        }
    }

    public func copy(from source: any DeviceBuffer, to destination: any DeviceBuffer, count: Int) {
        let s = buf(source), d = buf(destination)
        guard count > 0 else { return }
        if s.element == .float32 && d.element == .float32 {
            launch(CopyLaunch(source: s.mem, destination: d.mem, count: count))
        } else {
            let err = clEnqueueCopyBuffer(queue, s.mem, d.mem, 0, 0, count * s.element.byteSize, 0, nil, nil)
            if err != CL_SUCCESS { record(OpenCLError.api(call: "clEnqueueCopyBuffer", code: err, context: "\(s.label) -> \(d.label)")) }
        }
    }

    public func synchronize() {
        let err = clFinish(queue)
        if err != CL_SUCCESS { record(OpenCLError.api(call: "clFinish", code: err, context: info.name)) }
        reapWrites(all: true)
    }
}
