import ArgumentParser
import CytoCore
import CytoData
import Foundation

/// A failure while running a command (a file, a device, the data), as opposed to a bad
/// argument: printed as one line without the usage block, exit status 1.
struct RunError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Parses and runs the command line. Bad arguments (parse errors, `ValidationError`)
/// print the usage as swift-argument-parser does (exit 64); every other error prints
/// `Error: <one line naming the file and the problem>` and exits 1, never a raw
/// `NSCocoaErrorDomain error 256` dump or a usage block.
func runCommandLine(_ root: ParsableCommand.Type) -> Never {
    var parsed: ParsableCommand.Type?
    do {
        // Arguments with their bytes kept: a file name that is not UTF-8 still opens.
        var command = try root.parseAsRoot(FileSystemPath.arguments())
        parsed = type(of: command)
        try command.run()
    } catch {
        // An interrupted plan's threads fail as its folder is removed: the interrupt's
        // cleanup finishes (and exits 130) before this failure is printed or exits.
        InterruptCleanup.waitForInterruptCleanup()
        if let error = error as? ValidationError, let parsed, parsed != root {
            // Thrown by run() after parsing: the usage shown is the subcommand's, as a
            // parse-time ValidationError's is (root.exit would print the root's).
            let path = commandPath(from: root, to: parsed).joined(separator: " ")
            note("Error: \(error.message)\nUsage: \(root.usageString(for: parsed))\n  See '\(path) --help' for more information.")
            exit(ExitCode.validationFailure.rawValue)
        }
        guard isRunFailure(error) else { root.exit(withError: error) }
        note("Error: " + failureMessage(error))
        if case .interrupted(let sig, _)? = error as? CytoError { exit(128 + sig) }
        exit(1)
    }
    InterruptCleanup.waitForInterruptCleanup()
    exit(0)
}

/// The names from `root` down to `target` ("cytocl dataset inspect"), as the help's
/// "See '... --help'" line spells them.
func commandPath(from root: ParsableCommand.Type, to target: ParsableCommand.Type) -> [String] {
    if root == target { return [root._commandName] }
    for sub in root.configuration.subcommands {
        let below = commandPath(from: sub, to: target)
        if !below.isEmpty { return [root._commandName] + below }
    }
    return []
}

/// Whether `error` is a failure while running (the project's errors, Foundation's file
/// errors) rather than one of swift-argument-parser's (usage, help, version, exit codes).
func isRunFailure(_ error: Error) -> Bool {
    error is RunError || error is DataError || error is CytoError || error is CocoaError || error is POSIXError
        || type(of: error) is NSError.Type || String(reflecting: type(of: error)).hasPrefix("Cyto")
}

/// The message of a run-time failure: the error's own description when it has one
/// (CytoCL's errors name their file), the path and operating-system reason for
/// Foundation's file errors.
func failureMessage(_ error: Error) -> String {
    if let e = error as? RunError { return e.description }
    if let e = error as? DataError { return e.description }
    if let e = error as? CytoError { return e.description }
    return describeFileError(error)
}

/// Runs `body`; a list of bad images gets the hint to `--skip-bad-images`, for the
/// commands that take that flag.
func offeringSkipBadImages<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as DataError {
        if case .badImages = e { throw RunError(e.descriptionWithSkipHint) }
        throw e
    }
}
