import ArgumentParser
import CytoCore
import Foundation

/// `--overwrite`, the one rule for every command that writes a model or a result file
/// (train, import, export, embed, explain): an output that already exists is refused unless
/// `--overwrite` is given, so a reused `--out` never silently replaces a model or a
/// result made earlier. Refused before any work is done.
struct OverwriteOption: ParsableArguments {
    @Flag(name: .long, help: "Replace output files that already exist (otherwise an existing output is refused).")
    var overwrite = false

    /// Throws naming the first of `files` that exists, unless `--overwrite`. `option` is
    /// the option that named the output, for the message.
    func check(_ files: [URL], option: String = "--out") throws {
        guard !overwrite else { return }
        for file in files {
            // A folder in the way is AtomicFile.preflight's to report ("is a directory"):
            // --overwrite would not help there.
            // OSPath: a non-UTF-8 name is looked up by its real bytes.
            if OSPath.isDirectory(file.path) == false {
                throw RunError("\(option) \(file.path): already exists; choose another path or give --overwrite to replace it")
            }
        }
    }
}
