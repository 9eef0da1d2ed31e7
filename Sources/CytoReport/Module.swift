/// The CytoReport module. See README.md, section Architecture.
public enum CytoReportModule { public static let name = "CytoReport" }
