import CHDF5
import CytoCore
import Foundation

/// A read-only view of an HDF5 file through libhdf5: groups, string attributes and
/// float datasets — the parts of the format a Keras `.h5` file uses.
///
/// The serial libhdf5 is not thread-safe, so every call into it goes through
/// `HDF5File.withFile`, which holds one process-wide lock for the whole read.
/// Errors name the file and the HDF5 path of the object.
final class HDF5File {
    let path: String
    private let id: hid_t
    /// The file's size in bytes: no array in it can hold more data than this (or, when
    /// compressed, than `compressionLimit` times this), whatever its header declares.
    let size: Int

    /// The most a compressed HDF5 chunk can expand (deflate's limit is about 1032:1).
    static let compressionLimit = 1100
    /// The most elements one dataset or attribute may have (1 GiB of Float32): more
    /// than any model of this family holds, and a safe allocation.
    static let elementLimit = 1 << 28

    private static let lock = NSLock()

    private init(path: String) throws {
        self.path = path
        cyto_h5_silence_errors()
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw CytoError.io(path: path, reason: "cannot read the file (missing or not readable)")
        }
        guard H5Fis_hdf5(path) > 0 else {
            throw CytoError.modelFile(path: path, reason: "not an HDF5 file (Keras .h5 files are HDF5)")
        }
        size = ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.intValue ?? 0
        let id = H5Fopen(path, cyto_h5f_acc_rdonly(), cyto_h5p_default())
        guard id >= 0 else { throw CytoError.modelFile(path: path, reason: "libhdf5 cannot open the file (truncated or corrupt?)") }
        self.id = id
    }

    deinit { H5Fclose(id) }

    /// Opens `path`, runs `body` with the lock held, and closes everything it opened.
    static func withFile<T>(_ path: String, _ body: (HDF5File) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        // The inner function owns the file, so it is closed (and every group opened
        // in `body` released) before the lock is given back.
        func read() throws -> T { try body(try HDF5File(path: path)) }
        return try read()
    }

    func root() throws -> HDF5Group { try HDF5Group(file: self, location: id, name: "/") }
}

/// An open HDF5 group (closed when released).
final class HDF5Group {
    let file: HDF5File
    /// The group's HDF5 path, for messages.
    let name: String
    private let id: hid_t

    fileprivate init(file: HDF5File, location: hid_t, name: String, relative: String? = nil) throws {
        self.file = file
        self.name = name
        let id = H5Gopen2(location, relative ?? name, cyto_h5p_default())
        guard id >= 0 else { throw CytoError.modelFile(path: file.path, reason: "HDF5 group \(name) is missing or not a group") }
        self.id = id
    }

    deinit { H5Gclose(id) }

    private func fail(_ reason: String) -> CytoError { .modelFile(path: file.path, reason: reason) }

    private func child(_ relative: String) -> String { name == "/" ? "/" + relative : name + "/" + relative }

    /// Whether a link (group or dataset) exists at `relative`, a path that may have
    /// several components.
    func has(_ relative: String) -> Bool {
        // H5Lexists needs every intermediate component to exist, so walk them in turn.
        var prefix = ""
        for part in relative.split(separator: "/") {
            prefix += (prefix.isEmpty ? "" : "/") + part
            if H5Lexists(id, prefix, cyto_h5p_default()) <= 0 { return false }
        }
        return !prefix.isEmpty
    }

    func group(_ relative: String) throws -> HDF5Group {
        guard has(relative) else { throw fail("HDF5 group \(child(relative)) is missing") }
        return try HDF5Group(file: file, location: id, name: child(relative), relative: relative)
    }

    func hasAttribute(_ attribute: String) -> Bool { H5Aexists(id, attribute) > 0 }

    /// A string attribute (scalar or the first element of an array).
    func stringAttribute(_ attribute: String) throws -> String {
        let values = try stringsAttribute(attribute)
        guard let first = values.first else { throw fail("attribute \(attribute) of \(name) is empty") }
        return first
    }

    /// A string or string-array attribute, fixed- or variable-length. An empty
    /// attribute of any type (h5py writes `[]` as an empty float64 array) is `[]`.
    /// Keras splits attributes over 64 KiB into `NAME0`, `NAME1`, ...; those are
    /// joined back.
    func stringsAttribute(_ attribute: String) throws -> [String] {
        if !hasAttribute(attribute) && hasAttribute(attribute + "0") {
            var all: [String] = []
            var k = 0
            while hasAttribute("\(attribute)\(k)") {
                all += try stringsAttribute("\(attribute)\(k)")
                k += 1
            }
            return all
        }
        guard hasAttribute(attribute) else { throw fail("attribute \(attribute) of \(name) is missing") }
        let attr = H5Aopen(id, attribute, cyto_h5p_default())
        guard attr >= 0 else { throw fail("cannot open attribute \(attribute) of \(name)") }
        defer { H5Aclose(attr) }
        let type = H5Aget_type(attr)
        defer { H5Tclose(type) }
        let space = H5Aget_space(attr)
        defer { H5Sclose(space) }
        let count = Int(H5Sget_simple_extent_npoints(space))
        if count <= 0 { return [] }
        guard H5Tget_class(type) == H5T_STRING else {
            throw fail("attribute \(attribute) of \(name) is not a string (HDF5 type class \(H5Tget_class(type).rawValue))")
        }
        // The declared element count and size must fit the bytes the attribute has in
        // the file (H5Aget_storage_size) and the file itself, before anything is allocated.
        let stored = Int(clamping: H5Aget_storage_size(attr))
        let elementSize = H5Tget_size(type)
        let (declared, overflow) = count.multipliedReportingOverflow(by: elementSize)
        guard count <= HDF5File.elementLimit, elementSize > 0, !overflow, declared <= stored, stored <= file.size else {
            throw fail(
                "attribute \(attribute) of \(name) declares \(count) strings that its \(stored) stored bytes cannot hold (corrupt file?)")
        }
        if H5Tis_variable_str(type) > 0 {
            let memory = H5Tcopy(cyto_h5t_c_s1())
            defer { H5Tclose(memory) }
            H5Tset_size(memory, cyto_h5t_variable())
            H5Tset_cset(memory, H5Tget_cset(type))
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            let status = pointers.withUnsafeMutableBytes { H5Aread(attr, memory, $0.baseAddress) }
            defer { for p in pointers { if let p { H5free_memory(p) } } }
            guard status >= 0 else { throw fail("cannot read attribute \(attribute) of \(name)") }
            return try pointers.map { pointer in
                guard let pointer else { return "" }
                // libhdf5 copies as many bytes as the file says and ends them with a NUL;
                // a string longer than the file is a corrupt length.
                let length = strnlen(pointer, file.size + 1)
                guard length <= file.size else {
                    throw fail("attribute \(attribute) of \(name) holds a string longer than the file (corrupt file?)")
                }
                return String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self)
            }
        }
        // Fixed length: read the raw bytes in the file's own string type and cut each
        // element at its first NUL (NULLTERM/NULLPAD) or trailing spaces (SPACEPAD).
        let size = H5Tget_size(type)
        guard size > 0 else { return Array(repeating: "", count: count) }
        var bytes = [UInt8](repeating: 0, count: size * count)
        let status = bytes.withUnsafeMutableBytes { H5Aread(attr, type, $0.baseAddress) }
        guard status >= 0 else { throw fail("cannot read attribute \(attribute) of \(name)") }
        let spacePadded = H5Tget_strpad(type) == H5T_STR_SPACEPAD
        return (0..<count).map { i in
            var element = bytes[(i * size)..<((i + 1) * size)]
            if let nul = element.firstIndex(of: 0) { element = element[..<nul] }
            var text = String(decoding: element, as: UTF8.self)
            if spacePadded { while text.hasSuffix(" ") { text.removeLast() } }
            return text
        }
    }

    /// A floating-point dataset at `relative`, converted to Float by libhdf5.
    func floatDataset(_ relative: String) throws -> (shape: [Int], values: [Float]) {
        let path = child(relative)
        guard has(relative) else { throw fail("dataset \(path) is missing") }
        let dataset = H5Dopen2(id, relative, cyto_h5p_default())
        guard dataset >= 0 else { throw fail("\(path) is not a dataset") }
        defer { H5Dclose(dataset) }
        let type = H5Dget_type(dataset)
        defer { H5Tclose(type) }
        guard H5Tget_class(type) == H5T_FLOAT else {
            throw fail("dataset \(path) is not floating point (HDF5 type class \(H5Tget_class(type).rawValue))")
        }
        let space = H5Dget_space(dataset)
        defer { H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard rank >= 0 else { throw fail("cannot read the shape of dataset \(path)") }
        var dims = [hsize_t](repeating: 0, count: max(rank, 1))
        H5Sget_simple_extent_dims(space, &dims, nil)
        // Every dimension and their product checked before allocating: a corrupt or
        // hostile header can declare dimensions whose product overflows or asks for
        // petabytes. The data must fit the file (or, compressed, what the file can expand to).
        var count = 1
        for d in dims.prefix(rank) {
            let (product, overflow) = count.multipliedReportingOverflow(by: Int(clamping: d))
            guard !overflow, d <= UInt64(HDF5File.elementLimit), product <= HDF5File.elementLimit else {
                throw fail(
                    "dataset \(path) declares shape \(dims.prefix(rank).map { $0 }), more than \(HDF5File.elementLimit) values (corrupt file?)"
                )
            }
            count = product
        }
        let shape = dims.prefix(rank).map { Int($0) }
        let elementSize = H5Tget_size(type)
        let plist = H5Dget_create_plist(dataset)
        let chunked = plist >= 0 && H5Pget_layout(plist) == H5D_CHUNKED
        if plist >= 0 { H5Pclose(plist) }
        let room = chunked ? file.size * HDF5File.compressionLimit : file.size
        guard elementSize > 0, elementSize <= 16, count * elementSize <= room else {
            throw fail(
                "dataset \(path) declares shape \(shape) (\(count * max(elementSize, 1)) bytes), more than the \(file.size)-byte file can hold (corrupt file?)"
            )
        }
        var values = [Float](repeating: 0, count: count)
        if count > 0 {
            let status = values.withUnsafeMutableBytes {
                H5Dread(dataset, cyto_h5t_native_float(), cyto_h5s_all(), cyto_h5s_all(), cyto_h5p_default(), $0.baseAddress)
            }
            guard status >= 0 else { throw fail("cannot read dataset \(path)") }
        }
        return (shape, values)
    }
}
