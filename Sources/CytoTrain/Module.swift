/// The CytoTrain module. See README.md, section Architecture.
public enum CytoTrainModule { public static let name = "CytoTrain" }
