/// A CNI error as the spec defines it: printed as JSON on stdout with a non-zero exit.
public struct CNIError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: UInt32
    public var msg: String
    public var details: String

    public init(_ code: Code, _ msg: String, details: String = "") {
        self.code = code.rawValue; self.msg = msg; self.details = details
    }

    public enum Code: UInt32, Sendable {
        case incompatibleVersion = 1
        case unsupportedField = 2
        case unknownContainer = 3
        case invalidEnvironment = 4
        case ioFailure = 5
        case decodeFailure = 6
        case invalidConfig = 7
        case tryAgainLater = 11
        case notAvailable = 50
        case notAvailableLimited = 51
        // Ours (100+).
        case ipamdFailure = 100
        case datapathFailure = 101
        case checkMismatch = 102
        case notBranchPod = 103
        /// Another running pod holds the VLAN or address the pod's annotation names.
        case branchConflict = 104
    }

    public var description: String { details.isEmpty ? "[\(code)] \(msg)" : "[\(code)] \(msg): \(details)" }
}

/// The error's wire form.
public struct CNIErrorJSON: Codable, Sendable {
    public var cniVersion: String
    public var code: UInt32
    public var msg: String
    public var details: String?

    public init(_ e: CNIError, version: String) {
        cniVersion = version; code = e.code; msg = e.msg; details = e.details.isEmpty ? nil : e.details
    }
}
