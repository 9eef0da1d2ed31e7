import CytoCore
import Foundation
import XCTest

@testable import CytoInterop

/// The family check on hand-made layer lists: every refusal names the layer and why.
final class KerasArchitectureTests: XCTestCase {
    func conv(
        _ name: String, filters: Int = 4, inChannels: Int = 3, activation: String = "relu",
        padding: String = "valid", format: String = "channels_last"
    ) -> KerasLayer {
        KerasLayer(
            name: name, className: "Conv2D",
            config: [
                "kernel_size": [3, 3], "strides": [1, 1], "padding": padding, "data_format": format,
                "activation": activation,
            ],
            weights: [
                .init(
                    name: "\(name)/kernel:0", shape: [3, 3, inChannels, filters],
                    values: .init(repeating: 0.1, count: 9 * inChannels * filters)),
                .init(name: "\(name)/bias:0", shape: [filters], values: .init(repeating: 0, count: filters)),
            ])
    }
    func pool(_ name: String) -> KerasLayer {
        KerasLayer(
            name: name, className: "MaxPooling2D", config: ["pool_size": [2, 2], "strides": [2, 2], "padding": "valid"], weights: [])
    }
    func dense(_ name: String, _ inputs: Int, _ units: Int, activation: String) -> KerasLayer {
        KerasLayer(
            name: name, className: "Dense", config: ["units": units, "activation": activation],
            weights: [
                .init(name: "\(name)/kernel:0", shape: [inputs, units], values: .init(repeating: 0.1, count: inputs * units)),
                .init(name: "\(name)/bias:0", shape: [units], values: .init(repeating: 0, count: units)),
            ])
    }
    let flatten = KerasLayer(name: "flatten", className: "Flatten", config: [:], weights: [])

    /// 14x14 input: conv -> 12, pool -> 6, so 4 x 6 x 6 = 144 features.
    func convert(_ layers: [KerasLayer]) throws -> KerasImport.Result {
        let contents = KerasH5Contents(path: "m.h5", layers: layers, hasConfig: true, inputShape: [14, 14, 3])
        return try KerasImport.convert(contents, options: .init())
    }

    func assertRefused(_ layers: [KerasLayer], _ expected: String, line: UInt = #line) {
        XCTAssertThrowsError(try convert(layers), line: line) { error in
            XCTAssertTrue("\(error)".contains(expected), "\(error)", line: line)
        }
    }

    func testAValidChainConverts() throws {
        let r = try convert([
            conv("c"), pool("p"), flatten, dense("d1", 144, 5, activation: "relu"), dense("d2", 5, 3, activation: "softmax"),
        ])
        XCTAssertEqual(r.model.spec, ModelSpec(inputHeight: 14, inputWidth: 14, convFilters: [4], denseUnits: [5], classes: 3))
    }

    func testRefusals() {
        assertRefused(
            [conv("c", activation: "linear"), pool("p"), flatten, dense("d", 144, 2, activation: "softmax")],
            "'c' (Conv2D) should be followed by ReLU, found layer 'p' (MaxPooling2D)")
        assertRefused(
            [conv("c", activation: "tanh"), pool("p"), flatten, dense("d", 144, 2, activation: "softmax")],
            "'c' (Conv2D) has activation 'tanh'")
        assertRefused(
            [conv("c", format: "channels_first"), pool("p"), flatten, dense("d", 144, 2, activation: "softmax")],
            "'c' (Conv2D) uses data_format channels_first")
        assertRefused(
            [conv("c"), flatten, dense("d", 144, 2, activation: "softmax")],
            "'c' (Conv2D) should be followed by a 2x2 max-pool, found layer 'flatten' (Flatten)")
        assertRefused(
            [conv("c"), pool("p"), flatten, dense("d", 144, 2, activation: "linear")],
            "the last layer 'd' (Dense) has no softmax or sigmoid")
        assertRefused(
            [conv("c"), pool("p"), flatten, dense("d", 144, 2, activation: "sigmoid")],
            "'d' (Dense) has 2 sigmoid units")
        assertRefused(
            [conv("c"), pool("p"), flatten, dense("d", 100, 2, activation: "softmax")],
            "'d' takes 100 inputs, but a 14x14 input gives 4x6x6 = 144 features")
        assertRefused(
            [conv("c"), pool("p"), flatten, dense("d", 144, 2, activation: "softmax"), dense("e", 2, 2, activation: "softmax")],
            "layer 'e' (Dense) follows the softmax of 'd' (Dense)")
    }

    func testFunctionalModelsMustBeAPlainChain() {
        var layers = [
            KerasLayer(name: "in", className: "InputLayer", config: [:], weights: [], inbound: []),
            conv("c"), pool("p"), flatten, dense("d", 144, 2, activation: "softmax"),
        ]
        for i in 1..<layers.count { layers[i].inbound = [layers[i - 1].name] }
        XCTAssertNoThrow(try convert(layers))
        layers[3].inbound = ["c"]  // flatten skips the pool
        assertRefused(layers, "layer 'flatten' (Flatten) takes c instead of just 'p'")
    }

    func testInboundNamesOfKeras2AndKeras3Configs() {
        XCTAssertEqual(KerasH5Contents.inboundNames([[["conv2d_1", 0, 0, [String: Any]()]]]), ["conv2d_1"])
        let keras3: [Any] = [
            ["args": [["class_name": "__keras_tensor__", "config": ["keras_history": ["conv2d", 0, 0]]]], "kwargs": [:]]
        ]
        XCTAssertEqual(KerasH5Contents.inboundNames(keras3), ["conv2d"])
    }

    func testSigmoidHeadBecomesTwoClassSoftmaxOverZeroAndZ() throws {
        var head = dense("d", 144, 1, activation: "sigmoid")
        head.weights[1].values = [0.25]
        let r = try convert([conv("c"), pool("p"), flatten, head])
        XCTAssertEqual(r.model.spec.classes, 2)
        XCTAssertEqual(Array(r.model.weights["dense1.weight"]![0..<144]), [Float](repeating: 0, count: 144))
        XCTAssertEqual(Array(r.model.weights["dense1.weight"]![144...]), [Float](repeating: 0.1, count: 144))
        XCTAssertEqual(r.model.weights["dense1.bias"], [0, 0.25])
    }

    /// One kernel element followed through both conversions by hand.
    func testKernelLayoutsMoveEachValueWhereCytoCLReadsIt() {
        // HWIO [3,3,2,4] element (kh 1, kw 2, i 1, o 3) -> OIHW [4,2,3,3] element (o 3, i 1, kh 1, kw 2).
        var hwio = [Float](repeating: 0, count: 72)
        hwio[((1 * 3 + 2) * 2 + 1) * 4 + 3] = 7
        let oihw = hwioToOIHW(hwio, in: 2, out: 4)
        XCTAssertEqual(oihw.firstIndex(of: 7), ((3 * 2 + 1) * 3 + 1) * 3 + 2)
        // Dense [out 2, features C2 x H2 x W3]: Keras column (h 1, w 2, c 0) -> CytoCL column (c 0, h 1, w 2).
        var w = [Float](repeating: 0, count: 24)
        w[12 + (1 * 3 + 2) * 2 + 0] = 5
        let nchw = nhwcToNCHWColumns(w, out: 2, channels: 2, height: 2, width: 3)
        XCTAssertEqual(nchw.firstIndex(of: 5), 12 + (0 * 2 + 1) * 3 + 2)
    }
}
