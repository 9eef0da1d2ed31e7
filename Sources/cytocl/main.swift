import ArgumentParser
import CytoCore
import Foundation

/// The `cytocl` command line.
struct Cytocl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cytocl",
        abstract: "Train and evaluate small CNNs on single-cell blood images, on the CPU or any OpenCL device.",
        version: cytoCLVersion,
        subcommands: [
            Demo.self, Summary.self, Train.self, Predict.self, Evaluate.self, Explain.self, Embed.self, Bench.self, Verify.self,
            Sweep.self, Report.self, Plan.self, Devices.self, Synth.self, DatasetCommand.self, Export.self, Import.self, Suggest.self, Label.self,
        ])
}

runCommandLine(Cytocl.self)
