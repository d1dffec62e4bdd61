import EnforcingMode
import NetModel

/// The node-wide policy rules (SPEC sections 3 and 4), planned as a diff against the live rules.
public enum NodeRules {
    /// Priority of `fwmark <mark>/<mark> lookup main`: before the pods' `from <ip>` rules (1536).
    public static let connmarkPriority = Priority.connmark
    /// Where strict mode moves `lookup local`, after the pods' prio-10 `iif` rules.
    public static let movedLocalPriority = Priority.localMovedTo

    public struct Changes: Equatable, Sendable {
        /// Added first, so the node never lacks a rule while it moves (local lookup above all).
        public var add: [Rule] = []
        public var delete: [Rule] = []
        public var isEmpty: Bool { add.isEmpty && delete.isEmpty }
    }

    /// `localAtPriority`: 20 in strict mode with pod ENI enabled, else 0 (the kernel's default).
    public static func plan(current: [Rule], connmark: UInt32?, localAtPriority: UInt32) -> Changes {
        var changes = Changes()
        let local = Rule(priority: localAtPriority, table: RouteTable.local)
        let isPlainLocal = { (r: Rule) in
            r.table == RouteTable.local && r.inputInterface == nil && r.source == nil && r.destination == nil && r.fwmark == nil && r.ipProtocol == nil
        }
        if !current.contains(where: { isPlainLocal($0) && $0.priority == localAtPriority }) { changes.add.append(local) }
        changes.delete += current.filter { isPlainLocal($0) && ($0.priority == 0 || $0.priority == movedLocalPriority) && $0.priority != localAtPriority }

        let isConnmark = { (r: Rule) in r.priority == connmarkPriority && r.table == RouteTable.main && r.fwmark != nil }
        if let mark = connmark {
            let want = Rule(priority: connmarkPriority, table: RouteTable.main, fwmark: mark, fwmask: mark)
            if !current.contains(where: { isConnmark($0) && $0.fwmark == mark && $0.fwmask == mark }) { changes.add.append(want) }
            changes.delete += current.filter { isConnmark($0) && !($0.fwmark == mark && $0.fwmask == mark) }
        } else {
            changes.delete += current.filter(isConnmark)
        }
        return changes
    }
}
