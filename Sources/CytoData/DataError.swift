import Foundation

/// Everything that can go wrong between a path on disk and a labelled pixel array.
///
/// Each message names the file or folder and the problem in words a user can act
/// on, because the usual cause is a real data set with a few damaged files and the
/// user must find them. `badImages` collects every bad file of a run so that the
/// run stops once, listing them all, instead of failing on the first.
public enum DataError: Error, CustomStringConvertible, Equatable {
    /// The path does not exist.
    case missing(path: String)
    /// The path exists but cannot be opened or read (permissions, I/O error).
    case unreadable(path: String, reason: String)
    /// The file has zero bytes.
    case emptyFile(path: String)
    /// The bytes are not a PNG, TIFF or JPEG (checked by magic bytes, not by name).
    case notAnImage(path: String, detail: String)
    /// The file ends before the image does.
    case truncated(path: String, format: String, detail: String)
    /// The file is damaged or violates the format.
    case corrupt(path: String, format: String, detail: String)
    /// A valid file whose pixel format cannot be converted to 8-bit RGB.
    case unsupportedPixelFormat(path: String, format: String, detail: String)
    /// Width x height above the decoder's safety limit.
    case tooLarge(path: String, detail: String)
    /// Writing an image or cache failed.
    case writeFailed(path: String, reason: String)

    /// A data folder that should exist does not (or is not a folder).
    case missingFolder(path: String)
    /// A class folder without any image files.
    case emptyClass(path: String, className: String)
    /// A class with one image cannot be split into training and test.
    case singleImageClass(path: String, className: String)
    /// A manifest row names a file that does not exist.
    case manifestMissingFile(manifest: String, line: Int, path: String)
    /// A manifest row that cannot be parsed.
    case badManifest(path: String, line: Int, reason: String)
    /// The layout cannot be detected or does not fit the folder.
    case layout(path: String, reason: String)
    /// An option that does not fit the data (unknown class name, ...).
    case invalidOption(String)
    /// Several bad image files, listed together.
    case badImages([DataError])

    /// The message, one line per file: bytes of file names that are not UTF-8 are shown
    /// as `\xFF`, control characters (a CR or LF in a file name) escaped (`FileSystemPath.visible`).
    public var description: String {
        if case .badImages(let list) = self, list.count != 1 {
            return "\(list.count) bad image files:\n" + list.map { "  " + $0.description }.joined(separator: "\n")
        }
        return FileSystemPath.visible(rawDescription)
    }

    var rawDescription: String {
        switch self {
        case .missing(let p): return "\(p): no such file or folder"
        case .unreadable(let p, let r): return "\(p): cannot read the file (\(r))"
        case .emptyFile(let p): return "\(p): the file is empty (0 bytes)"
        case .notAnImage(let p, let d): return "\(p): not an image file: \(d)"
        case .truncated(let p, let f, let d): return "\(p): truncated \(f) file: \(d)"
        case .corrupt(let p, let f, let d): return "\(p): damaged \(f) file: \(d)"
        case .unsupportedPixelFormat(let p, let f, let d): return "\(p): unsupported \(f) pixel format: \(d)"
        case .tooLarge(let p, let d): return "\(p): image too large: \(d)"
        case .writeFailed(let p, let r): return "\(p): cannot write: \(r)"
        case .missingFolder(let p): return "\(p): data folder not found"
        case .emptyClass(let p, let c): return "\(p): class '\(c)' has no image files"
        case .singleImageClass(let p, let c):
            return
                "\(p): class '\(c)' has only one image; a class needs at least two to appear in both training and test (drop it with --min-per-class 2 or --classes)"
        case .manifestMissingFile(let m, let l, let p): return "\(m):\(l): the manifest names \(p), which does not exist"
        case .badManifest(let p, let l, let r): return "\(p):\(l): \(r)"
        case .layout(let p, let r): return "\(p): \(r)"
        case .invalidOption(let m): return m
        case .badImages(let list):
            let lines = list.map { "  " + $0.description }.joined(separator: "\n")
            if list.count == 1 { return list[0].rawDescription }  // one line naming the file
            return "\(list.count) bad image files:\n" + lines
        }
    }

    /// The message with the hint to `--skip-bad-images`, for the commands that take that
    /// flag (train, evaluate, sweep, dataset cache, suggest, label, predict); explain does not.
    public var descriptionWithSkipHint: String {
        guard case .badImages(let list) = self, list.contains(where: { $0.isImageProblem }) else { return description }
        if list.count == 1 { return description + " (use --skip-bad-images to continue without it)" }
        return description.replacingOccurrences(
            of: ":\n", with: " (use --skip-bad-images to continue without them):\n",
            options: [], range: description.range(of: ":\n"))
    }

    /// A damaged or unreadable image (as opposed to a missing manifest row, which skipping cannot help).
    var isImageProblem: Bool {
        switch self {
        case .unreadable, .emptyFile, .notAnImage, .truncated, .corrupt, .unsupportedPixelFormat, .tooLarge: return true
        default: return false
        }
    }

    /// The file this error is about, where there is one.
    public var path: String? {
        switch self {
        case .missing(let p), .unreadable(let p, _), .emptyFile(let p), .notAnImage(let p, _),
            .truncated(let p, _, _), .corrupt(let p, _, _), .unsupportedPixelFormat(let p, _, _),
            .tooLarge(let p, _), .writeFailed(let p, _), .missingFolder(let p), .emptyClass(let p, _),
            .singleImageClass(let p, _), .layout(let p, _):
            return p
        case .manifestMissingFile(_, _, let p): return p
        case .badManifest(let p, _, _): return p
        case .invalidOption, .badImages: return nil
        }
    }
}
