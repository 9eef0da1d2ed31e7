/// The CytoData module. See README.md, section Architecture.
public enum CytoDataModule { public static let name = "CytoData" }
