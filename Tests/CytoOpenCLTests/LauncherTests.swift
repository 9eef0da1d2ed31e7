import COpenCL
import CytoCore
import Foundation
import XCTest

@testable import CytoOpenCL

/// The typed launchers against the kernels' parameter lists in Kernels/*.cl: every
/// kernel named in `Kernel` is declared in its file, and each launcher passes as
/// many arguments as the kernel takes, of the matching kind (a buffer for each
/// `__global` pointer, a size for each `__local` one, an int or flag for `int`, a
/// float for `float`). Needs no OpenCL device.
final class LauncherTests: XCTestCase {
    /// A stand-in memory object: the launchers only carry it.
    let mem = OpaquePointer(bitPattern: 0x1000)!

    /// One launch of every kernel, with every option that changes the argument list.
    var samples: [any KernelLaunch] {
        let g = ConvGeometry(batch: 2, inChannels: 3, outChannels: 5, inHeight: 11, inWidth: 9)
        let ops = FilterGradientOperands(
            input: mem, gradOutput: .dense(mem, height: 9, width: 7), partial: mem, partialOffset: 0, withBias: true,
            geometry: g)
        let matrix = StridedMatrix(mem: mem, rowStride: 3, columnStride: 1)
        var all: [any KernelLaunch] = [
            GatherAugmentLaunch(
                images: mem, indices: mem, maps: mem, output: mem, count: 2, geometry: ImageGeometry(height: 8, width: 8),
                augmented: true),
            Conv3x3Launch(
                input: mem, weight: mem, bias: mem, output: mem, batch: 2, inChannels: 3, inRow: 9, inPlane: 99,
                outChannels: 5, outHeight: 9, outWidth: 7, weights: .forward(inChannels: 3), relu: true, pooled: mem,
                vectorWidth: 4, rowsPerItem: 2),
            PadCopyLaunch(source: mem, destination: mem, planes: 2, height: 3, width: 3, paddedRow: 9, vectorWidth: 4),
            FilterRowsLaunch(operands: ops, chunksPerImage: 1, rowsPerChunk: 9, pairsPerGroup: 1),
            FilterPartialLaunch(operands: ops, groupWidth: 8, chunks: 4, rowsPerChunk: 5),
            FilterTiledLaunch(operands: ops, groupWidth: 32, tileRows: 3, chunks: 6),
            GemmLaunch(a: matrix, b: matrix, bias: nil, c: mem, m: 2, n: 3, k: 3, relu: false, tile: 16),
            DenseBackwardLaunch(
                gradOutput: mem, input: mem, weight: mem, gradWeight: mem, gradBias: mem, gradInput: mem, batch: 2,
                inFeatures: 3, outFeatures: 4, inputIsReLU: true, tile: 16),
            ReLUForwardLaunch(input: mem, output: mem, count: 9),
            ReLUBackwardLaunch(activation: mem, grad: mem, count: 9),
            FillLaunch(destination: mem, value: 1, count: 9),
            CopyLaunch(source: mem, destination: mem, count: 9),
            SoftmaxCrossEntropyLaunch(
                logits: mem, labels: mem, probabilities: mem, gradLogits: mem, metrics: mem, batch: 2, classes: 3),
            SoftmaxLaunch(logits: mem, probabilities: mem, batch: 2, classes: 3),
            DenseCrossEntropyStepLaunch(
                input: mem, weight: mem, bias: mem, logits: mem, labels: mem, probabilities: mem, gradLogits: mem,
                metrics: mem, gradWeight: mem, gradBias: mem, gradInput: mem, batch: 2, inFeatures: 4, classes: 3,
                inputIsReLU: true, groupWidth: 64),
            MaxPoolForwardLaunch(input: mem, output: mem, planes: 2, inHeight: 4, inWidth: 4),
            MaxPoolBackwardLaunch(
                input: mem, gradOutput: mem, gradInput: .dense(mem, height: 4, width: 4), planes: 2, inHeight: 4, inWidth: 4,
                inputIsReLU: false),
            ReduceRowsLaunch(partial: mem, output: mem, rows: 3, partialsPerRow: 2),
            ReduceSegmentsLaunch(partial: mem, output: mem, table: mem, segments: 2, rows: 5),
        ]
        for width in [nil, 64] as [Int?] {
            all.append(
                ChannelSumLaunch(
                    input: mem, partial: mem, batch: 2, channels: 3, plane: 9, chunksPerPlane: 1, chunk: 9, groupWidth: width))
        }
        for update in [
            OptimizerUpdate.sgd(learningRate: 0.1, momentum: 0.9), .rmsprop(learningRate: 0.1, rho: 0.9, epsilon: 1e-7),
            .rmspropKeras2(learningRate: 0.1, rho: 0.9, epsilon: 1e-8), .adam(stepSize: 0.1, beta1: 0.9, beta2: 0.999, epsilon: 1e-7),
        ] {
            all.append(OptimizerLaunch(update: update, parameters: mem, gradients: mem, state1: mem, state2: mem, count: 9))
        }
        return all
    }

    /// The parameter kinds of `kernel` as declared in its source: "global", "local", "int" or "float".
    func parameterKinds(_ kernel: Kernel) throws -> [String] {
        let source = try XCTUnwrap(KernelSources.embedded(kernel.file.rawValue))
        let head = "__kernel void \(kernel.name)("
        let start = try XCTUnwrap(source.range(of: head), "\(kernel.name) is not declared in \(kernel.file.rawValue)")
        let rest = source[start.upperBound...]
        let list = rest[..<(try XCTUnwrap(rest.firstIndex(of: ")")))]
        return list.split(separator: ",").map { p in
            let t = p.trimmingCharacters(in: .whitespacesAndNewlines)
            if t.hasPrefix("__global") { return "global" }
            if t.hasPrefix("__local") { return "local" }
            return String(t.split(separator: " ")[0])
        }
    }

    func testKernelFilesAreTheEmbeddedFiles() {
        XCTAssertEqual(KernelFile.allCases.map(\.rawValue).sorted(), KernelSources.files)
    }

    func testEveryLauncherMatchesItsKernelsParameters() throws {
        let launches = samples
        XCTAssertEqual(Set(launches.map(\.kernel)), Set(Kernel.allCases), "a kernel without a sample launch")
        for launch in launches {
            let declared = try parameterKinds(launch.kernel)
            let passed = launch.arguments.map { a -> String in
                switch a {
                case .buffer: return "global"
                case .local: return "local"
                case .int, .flag: return "int"
                case .float: return "float"
                }
            }
            XCTAssertEqual(passed, declared, "\(launch.kernel.name) in \(launch.kernel.file.rawValue)")
            XCTAssertTrue(launch.global.allSatisfy { $0 > 0 }, "\(launch.kernel.name): global \(launch.global)")
            if let local = launch.local { XCTAssertEqual(local.count, launch.global.count, launch.kernel.name) }
        }
    }

    /// The data gradient's weight layout reads weight[o][c][2-ky][2-kx].
    func testTransposedFlippedWeightLayout() {
        let ic = 3, oc = 5
        let l = ConvWeightLayout.transposedFlipped(layerInChannels: ic)
        for o in 0..<oc {
            for c in 0..<ic {
                for ky in 0..<3 {
                    for kx in 0..<3 {
                        // conv3x3's output channel is the layer's input channel c, its input channel o.
                        let at = l.base + c * l.perOutput + o * l.perInput + ky * l.perRow + kx * l.perColumn
                        XCTAssertEqual(at, ((o * ic + c) * 3 + (2 - ky)) * 3 + (2 - kx))
                    }
                }
            }
        }
        let f = ConvWeightLayout.forward(inChannels: ic)
        XCTAssertEqual(f.base + 4 * f.perOutput + 2 * f.perInput + 1 * f.perRow + 2 * f.perColumn, ((4 * ic + 2) * 3 + 1) * 3 + 2)
    }
}
