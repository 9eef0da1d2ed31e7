import CytoCore
import Foundation

/// Builds one self-contained HTML page (inline CSS and SVG, images as data URIs; no
/// external resources, so it opens offline in any browser). All text is escaped.
///
///     var page = HTMLPage(title: "Sweep report")
///     page.section("ROC-AUC against training-set size")
///     page.paragraph("Box plots over 10 folds.")
///     page.svg(Plots.boxes(...), caption: "Fig. 4a")
///     page.table(header: ["size", "mean", "sd"], rows: [["10", "0.81", "0.07"]])
///     try page.write(to: URL(fileURLWithPath: "report/index.html"))
public struct HTMLPage {
    public var title: String
    /// Small print under the title (e.g. the command and date).
    public var subtitle: String?
    private var sections: [(title: String?, id: String?, blocks: [String])] = [(nil, nil, [])]

    public init(title: String, subtitle: String? = nil) {
        self.title = title
        self.subtitle = subtitle
    }

    /// Starts a new section with an `<h2>` heading; following blocks go into it.
    /// Sections are listed in a contents box at the top.
    public mutating func section(_ title: String) {
        sections.append((title, "s\(sections.count)", []))
    }

    private mutating func add(_ html: String) { sections[sections.count - 1].blocks.append(html) }

    /// A sub-heading (`<h3>`) inside the current section.
    public mutating func heading(_ text: String) { add("<h3>\(escapeXML(text))</h3>") }

    /// A paragraph of plain text (escaped).
    public mutating func paragraph(_ text: String) { add("<p>\(escapeXML(text))</p>") }

    /// A highlighted note (e.g. how this run departs from the paper's protocol).
    public mutating func note(_ text: String) { add("<p class=\"note\">\(escapeXML(text))</p>") }

    /// Preformatted text (logs, text reports), escaped.
    public mutating func preformatted(_ text: String) { add("<pre>\(escapeXML(text))</pre>") }

    /// An inline SVG document (from `Plots` or `SVGCanvas`) in a figure with an optional caption.
    /// An XML declaration at its start, if any, is removed.
    public mutating func svg(_ svg: String, caption: String? = nil) {
        var s = svg
        if s.hasPrefix("<?xml"), let end = s.range(of: "?>") { s = String(s[end.upperBound...]) }
        add(figure(s, caption))
    }

    /// Several SVGs side by side (wrapping on narrow screens), one caption for the row.
    public mutating func svgRow(_ svgs: [String], caption: String? = nil) {
        add(figure("<div class=\"row\">" + svgs.map { "<div>\($0)</div>" }.joined() + "</div>", caption))
    }

    /// An embedded PNG (as a data URI). A PNG wider than the page (Fig. 4b: five
    /// 257-px columns) scrolls inside its own box at full resolution, so the page
    /// keeps its width and the heatmaps are not resampled.
    public mutating func png(_ data: Data, alt: String, caption: String? = nil, width: Int? = nil) {
        let w = width.map { " width=\"\($0)\"" } ?? ""
        add(
            figure(
                "<div class=\"scroll\"><img alt=\"\(escapeXML(alt))\"\(w) src=\"data:image/png;base64,\(data.base64EncodedString())\"></div>",
                caption))
    }

    /// A table; cells are escaped. Columns whose cells all look numeric are right-aligned.
    public mutating func table(header: [String], rows: [[String]], caption: String? = nil) {
        let numeric = header.indices.map { c in
            rows.allSatisfy { r in c >= r.count || r[c].isEmpty || Double(r[c].split(separator: " ").first ?? "") != nil }
        }
        var h = "<table>"
        if let caption { h += "<caption>\(escapeXML(caption))</caption>" }
        h += "<thead><tr>" + header.map { "<th>\(escapeXML($0))</th>" }.joined() + "</tr></thead><tbody>"
        for r in rows {
            h +=
                "<tr>"
                + r.enumerated().map { c, v in
                    (c < numeric.count && numeric[c] ? "<td class=\"num\">" : "<td>") + escapeXML(v) + "</td>"
                }.joined() + "</tr>"
        }
        add(h + "</tbody></table>")
    }

    /// A definition list of key–value pairs (run settings, backend, device, wall time).
    public mutating func keyValues(_ pairs: [(String, String)]) {
        add("<dl>" + pairs.map { "<dt>\(escapeXML($0.0))</dt><dd>\(escapeXML($0.1))</dd>" }.joined() + "</dl>")
    }

    /// Trusted HTML, inserted as is.
    public mutating func raw(_ html: String) { add(html) }

    private func figure(_ body: String, _ caption: String?) -> String {
        "<figure>\(body)" + (caption.map { "<figcaption>\(escapeXML($0))</figcaption>" } ?? "") + "</figure>"
    }

    static let css = """
        body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;color:#222;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45}
        h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
        .sub{color:#666;margin-top:0}nav{background:#f6f8fa;border:1px solid #e1e4e8;padding:.5em 1em;display:inline-block}
        nav ol{margin:.3em 0;padding-left:1.3em}figure{margin:1em 0}figcaption{color:#555;font-size:.92em;margin-top:.3em}
        svg{max-width:100%;height:auto}.row{display:flex;flex-wrap:wrap;gap:12px}.scroll{max-width:100%;overflow-x:auto}.scroll img{display:block}
        table{border-collapse:collapse;margin:1em 0;font-size:.95em}caption{text-align:left;color:#555;padding-bottom:.3em}
        th,td{border:1px solid #d0d7de;padding:.3em .7em}th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
        tbody tr:nth-child(even){background:#fafbfc}pre{background:#f6f8fa;padding:.8em;overflow-x:auto;font-size:.9em}
        .note{background:#fff8e1;border-left:4px solid #E69F00;padding:.5em .8em}dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
        dt{font-weight:bold}dd{margin:0}
        """

    /// The whole page.
    public var html: String {
        var h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        h += "<title>\(escapeXML(title))</title>\n<style>\n\(HTMLPage.css)\n</style>\n</head>\n<body>\n"
        h += "<h1>\(escapeXML(title))</h1>\n"
        if let subtitle { h += "<p class=\"sub\">\(escapeXML(subtitle))</p>\n" }
        let named = sections.filter { $0.title != nil }
        if named.count > 1 {
            h += "<nav><strong>Contents</strong><ol>"
            for s in named { h += "<li><a href=\"#\(s.id!)\">\(escapeXML(s.title!))</a></li>" }
            h += "</ol></nav>\n"
        }
        for s in sections {
            if let t = s.title { h += "<section id=\"\(s.id!)\">\n<h2>\(escapeXML(t))</h2>\n" }
            h += s.blocks.joined(separator: "\n")
            if s.title != nil { h += "\n</section>\n" } else if !s.blocks.isEmpty { h += "\n" }
        }
        return h + "</body>\n</html>\n"
    }

    /// Writes the page atomically (temporary file + rename), creating the directory.
    public func write(to url: URL) throws {
        try writeAtomically(Data(html.utf8), to: url)
    }
}
