import Foundation
import IPAMDCore
import Logging
import Netlink

// Small helpers every test target shares. This target is linked only into tests.

/// A logger that drops everything (libraries take a Logger; tests rarely want the output).
public let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

/// The trunk at a fixed ifindex (or none), for ipamd logic without netlink.
public struct FixedTrunk: TrunkLocator {
    public var index: Int32?
    public init(index: Int32?) { self.index = index }
    public func trunkIndex() throws(NetlinkError) -> Int32? { index }
}

/// A fresh directory under the system's temporary directory.
public func tempDir() -> String {
    let d = NSTemporaryDirectory() + "ipamd-test-" + UUID().uuidString.prefix(8)
    try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

/// Writes via rename, as editors and config management do; readers see a new file.
public func writeAtomically(_ text: String, to path: String) {
    let tmp = path + ".tmp"
    try! text.write(toFile: tmp, atomically: false, encoding: .utf8)
    rename(tmp, path)
}
