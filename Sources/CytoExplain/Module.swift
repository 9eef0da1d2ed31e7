/// The CytoExplain module. See README.md, section Architecture.
public enum CytoExplainModule { public static let name = "CytoExplain" }
