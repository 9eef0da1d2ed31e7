import CytoCore
import CytoTrain
import Foundation
import XCTest

@testable import CytoReport

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Parses a document with XMLParser; returns the error, if any, and the element count.
final class XMLCheck: NSObject, XMLParserDelegate {
    var elements = 0
    var names: [String: Int] = [:]
    var text = ""
    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
        qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]
    ) {
        elements += 1
        names[elementName, default: 0] += 1
    }
    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    static func check(_ xml: String, file: StaticString = #filePath, line: UInt = #line) -> XMLCheck {
        let c = XMLCheck()
        let p = XMLParser(data: Data(xml.utf8))
        p.delegate = c
        let ok = p.parse()
        XCTAssertTrue(ok, "SVG does not parse as XML: \(String(describing: p.parserError))\n\(xml.prefix(400))", file: file, line: line)
        return c
    }
}

final class ReportTests: XCTestCase {

    // MARK: box-plot statistics (hand-computed; NumPy percentile agrees)

    func testBoxStatsHighOutlier() throws {
        let s = try XCTUnwrap(BoxStats([7, 1, 2, 3, 100, 4, 5, 6, 8, 9]))
        XCTAssertEqual(s.count, 10)
        XCTAssertEqual(s.q1, 3.25, accuracy: 1e-12)  // h = 9 * 0.25 = 2.25 -> 3 + 0.25 * (4 - 3)
        XCTAssertEqual(s.median, 5.5, accuracy: 1e-12)
        XCTAssertEqual(s.q3, 7.75, accuracy: 1e-12)
        XCTAssertEqual(s.iqr, 4.5, accuracy: 1e-12)
        XCTAssertEqual(s.whiskerLow, 1)  // fences -3.5 and 14.5
        XCTAssertEqual(s.whiskerHigh, 9)
        XCTAssertEqual(s.outliers, [100])
        XCTAssertEqual(s.mean, 14.5, accuracy: 1e-12)
    }

    func testBoxStatsLowOutlierAndAUCLikeValues() throws {
        let s = try XCTUnwrap(BoxStats([-50, 10, 11, 12, 13, 14]))
        XCTAssertEqual(s.q1, 10.25, accuracy: 1e-12)
        XCTAssertEqual(s.median, 11.5, accuracy: 1e-12)
        XCTAssertEqual(s.q3, 12.75, accuracy: 1e-12)
        XCTAssertEqual(s.whiskerLow, 10)  // fences 6.5 and 16.5
        XCTAssertEqual(s.whiskerHigh, 14)
        XCTAssertEqual(s.outliers, [-50])
        let a = try XCTUnwrap(BoxStats([0.9, 0.95, 0.97, 0.99, 1.0, 1.0, 0.98, 0.6, 0.96, 0.97, .nan]))
        XCTAssertEqual(a.count, 10)  // NaN ignored
        XCTAssertEqual(a.q1, 0.9525, accuracy: 1e-12)
        XCTAssertEqual(a.median, 0.97, accuracy: 1e-12)
        XCTAssertEqual(a.q3, 0.9875, accuracy: 1e-12)
        XCTAssertEqual(a.whiskerLow, 0.9)
        XCTAssertEqual(a.whiskerHigh, 1.0)
        XCTAssertEqual(a.outliers, [0.6])
        let one = try XCTUnwrap(BoxStats([0.5]))
        XCTAssertEqual([one.q1, one.median, one.q3, one.whiskerLow, one.whiskerHigh], [0.5, 0.5, 0.5, 0.5, 0.5])
        XCTAssertNil(BoxStats([]))
        XCTAssertNil(BoxStats([.nan]))
    }

    // MARK: ticks

    func testLinearTicks() {
        XCTAssertEqual(Ticks.linear(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1.0])
        XCTAssertEqual(Ticks.linear(3, 97), [0, 20, 40, 60, 80, 100])
        let t = Ticks.linear(0.83, 0.97)
        XCTAssertEqual(t.count, 7)
        XCTAssertEqual(t.first!, 0.825, accuracy: 1e-12)
        XCTAssertEqual(t.last!, 0.975, accuracy: 1e-12)
        XCTAssertEqual(Ticks.labels(t), ["0.825", "0.850", "0.875", "0.900", "0.925", "0.950", "0.975"])
        XCTAssertEqual(Ticks.linear(-0.3, 0.25), [-0.3, -0.2, -0.1, 0, 0.1, 0.2, 0.3])
        XCTAssertEqual(Ticks.linear(1, 500, target: 6), [0, 100, 200, 300, 400, 500])
        // A degenerate range still gets ticks around the value.
        let d = Ticks.linear(5, 5)
        XCTAssertTrue(d.first! < 5 && d.last! > 5)
        XCTAssertEqual(Ticks.labels([0, 0.2, 0.4]), ["0.0", "0.2", "0.4"])
        XCTAssertEqual(Ticks.labels([0, 50, 100]), ["0", "50", "100"])
        XCTAssertEqual(Ticks.labels([-0.0, 1]), ["0", "1"])
    }

    func testLogTicks() {
        XCTAssertEqual(Ticks.log10(10, 200), [10, 20, 50, 100, 200])
        XCTAssertEqual(Ticks.log10(8, 250), [10, 20, 50, 100, 200])
        XCTAssertEqual(Ticks.log10(1, 100_000), [1, 10, 100, 1000, 10000, 100_000])
        XCTAssertEqual(Ticks.labels(Ticks.log10(0.01, 1)), ["0.01", "0.02", "0.05", "0.10", "0.20", "0.50", "1.00"])
        XCTAssertEqual(Ticks.log10(0, 10), [])
    }

    // MARK: SVG well-formedness and escaping

    let nasty = "blast <MYO> & \"MOB\" 'x'"

    func testEscaping() {
        XCTAssertEqual(escapeXML("a<b & \"c\" 'd' >"), "a&lt;b &amp; &quot;c&quot; &#39;d&#39; &gt;")
        XCTAssertEqual(escapeXML("ok\u{01}\u{08}"), "ok")  // control characters XML forbids
        var c = SVGCanvas(width: 100, height: 50, title: nasty)
        c.text(10, 20, nasty)
        let x = XMLCheck.check(c.svg)
        XCTAssertTrue(x.text.contains(nasty))
    }

    func testLinePlotParsesAndHasLegendAndTicks() {
        let train = (0..<40).map { 0.7 * exp(-Double($0) / 10) + 0.05 }
        let val = (0..<40).map { 0.7 * exp(-Double($0) / 12) + 0.1 }
        let svg = Plots.lines(
            [
                LineSeries(name: "training loss", values: train),
                LineSeries(name: nasty, values: val, dashed: true),
            ],
            options: PlotOptions(title: "loss", xLabel: "epoch", yLabel: "loss"))
        let x = XMLCheck.check(svg)
        XCTAssertEqual(x.names["polyline"], 2)
        XCTAssertTrue(x.text.contains("training loss"))
        XCTAssertTrue(x.text.contains(nasty))
        XCTAssertTrue(svg.contains(">40<"))  // an x tick
        XCTAssertTrue(svg.contains("stroke-dasharray"))
    }

    func testROCPlot() {
        let curves = (0..<5).map { k -> Metrics.ROCCurve in
            let scores = (0..<30).map { Double(($0 * 7 + k * 3) % 30) / 30 + ($0 % 2 == 0 ? 0.3 : 0) }
            return Metrics.rocCurve(scores: scores, labels: (0..<30).map { $0 % 2 })
        }
        let mean = Metrics.meanROC(curves)
        let svg = Plots.roc(mean, folds: curves)
        let x = XMLCheck.check(svg)
        XCTAssertEqual(x.names["polygon"], 1)  // the s.d. band
        XCTAssertEqual(x.names["polyline"], 6)  // 5 folds + mean
        XCTAssertTrue(x.text.contains("mean ROC (AUC"))
        XCTAssertTrue(x.text.contains("chance"))
    }

    func testBoxPlotLinearAndLog() {
        let groups = [10.0, 20, 50, 100, 200].map { (s: Double) -> BoxGroup in
            let base: Double = 0.7 + 0.25 * (1 - exp(-s / 40))
            let values: [Double] = (0..<10).map { (k: Int) -> Double in base + 0.01 * Double(k % 4) }
            return BoxGroup(position: s, values: values + [0.5])
        }
        for scale in [AxisScale.linear, .log10] {
            let svg = Plots.boxes(
                groups, references: [ReferencePoint(x: 200, y: 0.97, sd: 0.02)],
                seriesLabel: "this run",
                options: PlotOptions(
                    title: "ROC-AUC", xLabel: "training images",
                    yLabel: "ROC-AUC", xScale: scale, legend: .bottomRight))
            let x = XMLCheck.check(svg)
            // 5 boxes + legend patch + background + frame rect; outliers as circles.
            XCTAssertEqual(x.names["circle"], 5)
            XCTAssertTrue(svg.contains(">200<"))
            XCTAssertTrue(x.text.contains("paper"))
        }
    }

    func testScatterAndConfusionEscapeClassNames() {
        let xs = (0..<60).map { Double($0 % 3) * 10 + sin(Double($0)) }
        let ys = (0..<60).map { Double($0 % 3) * -5 + cos(Double($0)) }
        let svg = Plots.scatter(
            x: xs, y: ys, classes: (0..<60).map { $0 % 3 }, classNames: ["a", nasty, "c"],
            options: PlotOptions(title: "t-SNE"))
        let x = XMLCheck.check(svg)
        XCTAssertTrue(x.text.contains("\(nasty) (20)"))
        XCTAssertTrue(svg.contains("blast &lt;MYO&gt; &amp; &quot;MOB&quot;"))
        let m = [[10, 2, 0], [1, 8, 3], [0, 0, 0]]
        let cs = Plots.confusion(m, classNames: ["lymphocyte", nasty, "never"])
        let y = XMLCheck.check(cs)
        XCTAssertEqual(y.names["rect"].map { $0 >= 9 }, true)
        XCTAssertTrue(y.text.contains("\(nasty) (n=12)"))
        XCTAssertTrue(y.text.contains("0.83"))  // 10 / 12
        XCTAssertTrue(y.text.contains("0.00"))  // the empty row is 0, not NaN
    }

    func testSequentialPalette() {
        XCTAssertEqual(Palette.sequential(0), "#F7FBFF")
        XCTAssertEqual(Palette.sequential(1), "#08306B")
        XCTAssertEqual(Palette.sequential(.nan), "#F7FBFF")
        XCTAssertEqual(Palette.color(8), Palette.color(0))
        XCTAssertEqual(Palette.marker(8), .square)
    }

    // MARK: HTML and CSV

    func testHTMLPageWritesAtomicallyAndEscapes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cytoreport-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var page = HTMLPage(title: "Report <1> & co", subtitle: "cytocl report")
        page.section("ROC-AUC")
        page.paragraph("a < b")
        page.svg("<?xml version=\"1.0\"?>" + Plots.lines([LineSeries(name: "x", values: [1, 2, 3])], options: PlotOptions()))
        page.table(header: ["size", "mean ± s.d."], rows: [["10", "0.81 ± 0.07"], ["200", "<script>"]])
        page.section("Settings")
        page.keyValues([("backend", "cpu & <opencl>")])
        let url = dir.appendingPathComponent("report/index.html")
        try page.write(to: url)
        let html = try String(contentsOf: url, encoding: .utf8)
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertTrue(html.contains("<title>Report &lt;1&gt; &amp; co</title>"))
        XCTAssertTrue(html.contains("&lt;script&gt;"))
        XCTAssertFalse(html.contains("<script"))
        XCTAssertFalse(html.contains("<?xml"))
        XCTAssertTrue(html.contains("<td class=\"num\">10</td>"))
        XCTAssertEqual(html.components(separatedBy: "<section").count, html.components(separatedBy: "</section>").count)
        XCTAssertTrue(html.contains("href=\"#s1\""))
        // Nothing left behind but the page.
        let files = try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path)
        XCTAssertEqual(files, ["index.html"])
    }

    func testCSVQuotingRoundTrip() throws {
        var csv = CSVWriter(header: ["size", "folds", "metric", "mean", "sd"])
        csv.append(["10", "10", "roc_auc", CSVWriter.number(0.8125), CSVWriter.number(.nan)])
        csv.append(["a,b", "say \"hi\"", "line\nbreak", " padded", "plain"])
        let expected =
            "size,folds,metric,mean,sd\n10,10,roc_auc,0.8125,NaN\n"
            + "\"a,b\",\"say \"\"hi\"\"\",\"line\nbreak\",\" padded\",plain\n"
        XCTAssertEqual(csv.text, expected)
        XCTAssertEqual(CSVWriter.parse(csv.text), [csv.header] + csv.rows)
        XCTAssertEqual(CSVWriter.number(200), "200")
        XCTAssertEqual(CSVWriter.number(-.infinity), "-inf")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cytocsv-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try csv.write(to: dir.appendingPathComponent("summary.csv"))
        XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("summary.csv"), encoding: .utf8), csv.text)
    }

    // MARK: a sample page with every figure (also written to $CYTOCL_REPORT_SAMPLE if set)

    func testSamplePageWithEveryFigure() throws {
        let page = SampleReport.page()
        let html = page.html
        for kind in ["loss", "ROC", "ROC-AUC", "t-SNE", "confusion"] { XCTAssertTrue(html.contains(kind), kind) }
        if let out = ProcessInfo.processInfo.environment["CYTOCL_REPORT_SAMPLE"] {
            let dir = URL(fileURLWithPath: out)
            try page.write(to: dir.appendingPathComponent("index.html"))
            for (name, svg) in SampleReport.figures() {
                try writeAtomically(Data(svg.utf8), to: dir.appendingPathComponent("\(name).svg"))
            }
        }
        for (_, svg) in SampleReport.figures() { _ = XMLCheck.check(svg) }
    }
}

/// Synthetic data shaped like a sweep's results, for looking at the figures.
enum SampleReport {
    static func figures() -> [(String, String)] {
        var rng = SeededGenerator(seed: 3)
        func u() -> Double { Double(rng.nextUnitFloat()) }
        let sizes = stride(from: 10.0, through: 200, by: 10).map { $0 }
        let groups = sizes.map { s in
            BoxGroup(position: s, values: (0..<10).map { _ in min(1, 0.97 - 0.35 * exp(-s / 25) + 0.06 * (u() - 0.5)) })
        }
        let boxesLin = Plots.boxes(
            groups, references: [ReferencePoint(x: 200, y: 0.97, sd: 0.02)], seriesLabel: "this run (10 folds)",
            options: PlotOptions(
                title: "ROC-AUC against training-set size", xLabel: "training images",
                yLabel: "ROC-AUC", legend: .bottomRight))
        let amlSizes: [Double] = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 200]
        let amlGroups = amlSizes.map { s in
            BoxGroup(position: s, values: (0..<10).map { _ in 0.93 - 0.3 * exp(-s / 20) + 0.08 * (u() - 0.5) } + (s == 30 ? [0.55] : []))
        }
        let boxesLog = Plots.boxes(
            amlGroups, references: [ReferencePoint(x: 50, y: 0.91, sd: 0.04), ReferencePoint(x: 200, y: 0.93, sd: 0.02)],
            seriesLabel: "this run",
            options: PlotOptions(
                title: "AML: ROC-AUC (log x)", xLabel: "training images",
                yLabel: "ROC-AUC", xScale: .log10, legend: .bottomRight))
        let curves = (0..<10).map { _ -> Metrics.ROCCurve in
            let labels = (0..<25).map { $0 % 2 }
            let scores = labels.map { Double($0) * 0.45 + 0.55 * u() }
            return Metrics.rocCurve(scores: scores, labels: labels)
        }
        let roc = Plots.roc(Metrics.meanROC(curves))
        let epochs = 120
        let train = (0..<epochs).map { e in 0.69 * exp(-Double(e) / 25) + 0.05 + 0.03 * u() }
        let val = (0..<epochs).map { e in 0.69 * exp(-Double(e) / 30) + 0.12 + 0.0008 * Double(max(0, e - 70)) + 0.05 * u() }
        let loss = Plots.lines(
            [LineSeries(name: "training loss", values: train), LineSeries(name: "validation loss", values: val)],
            options: PlotOptions(title: "Loss curves, fold 1, 200 images", xLabel: "epoch", yLabel: "binary cross-entropy"))
        var xs: [Double] = [], ys: [Double] = [], cls: [Int] = []
        for k in 0..<6 {
            for _ in 0..<(20 + 15 * k) {
                let a = Double(k) * 1.05, r = 14 + 6 * u()
                xs.append(r * cos(a) + 3 * (u() - 0.5)); ys.append(r * sin(a) + 3 * (u() - 0.5)); cls.append(k)
            }
        }
        let names = ["lymphocyte", "atypical lymphocyte", "monocyte", "neutrophil", "lymphoblast", "other <x> & \"y\""]
        let scatter = Plots.scatter(
            x: xs, y: ys, classes: cls, classNames: names,
            options: PlotOptions(title: "t-SNE of dense1 (50 images)", width: 640, height: 440))
        let m = [
            [40, 3, 0, 2, 5, 0], [4, 6, 0, 0, 2, 0], [0, 1, 2, 1, 0, 1], [1, 0, 0, 30, 0, 2], [6, 1, 0, 0, 50, 0], [0, 0, 1, 2, 0, 9],
        ]
        let confusion = Plots.confusion(
            m, classNames: names,
            options: PlotOptions(title: "Confusion matrix (row-normalised)", xLabel: "predicted class", yLabel: "true class"))
        return [
            ("boxes-linear", boxesLin), ("boxes-log", boxesLog), ("roc", roc), ("loss", loss), ("tsne", scatter), ("confusion", confusion),
        ]
    }

    static func page() -> HTMLPage {
        let f = Dictionary(uniqueKeysWithValues: figures())
        var p = HTMLPage(title: "CytoCL sweep report: all-idb-binary", subtitle: "sample data — cytocl report")
        p.section("ROC-AUC against training-set size")
        p.svg(f["boxes-linear"]!, caption: "Box plots over folds (cf. Fig. 4a).")
        p.svg(f["boxes-log"]!, caption: "Log-scaled x axis (cf. Fig. 6).")
        p.table(
            header: ["size", "folds", "ROC-AUC mean ± s.d.", "paper"],
            rows: [["10", "10", "0.812 ± 0.071", ""], ["200", "10", "0.968 ± 0.021", "0.97 ± 0.02"]])
        p.section("Mean ROC curve")
        p.svg(f["roc"]!, caption: "Mean ROC at 200 images (cf. Fig. 3b).")
        p.section("Loss curves")
        p.svg(f["loss"]!, caption: "Training and validation loss, one fold (cf. Fig. 3a).")
        p.section("t-SNE and confusion matrix")
        p.svgRow([f["tsne"]!, f["confusion"]!], caption: "t-SNE of the last hidden layer; row-normalised confusion matrix.")
        p.note("Validation images are disjoint from the test fold (the original AML script drew them from it).")
        return p
    }
}

final class FormatTests: XCTestCase {
    func testMeanSDFormatting() {
        XCTAssertEqual(Metrics.meanSD([0.95, 0.99]).formatted(), "0.970 ± 0.028")
        XCTAssertEqual(Metrics.meanSD([0.95]).formatted(decimals: 2), "0.95")
        XCTAssertEqual(Metrics.meanSD([]).formatted(), "–")
    }
}
