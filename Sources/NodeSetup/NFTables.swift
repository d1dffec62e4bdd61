#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NFTablesShim

public struct NFTablesError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// libnftables could not be opened or the namespace entered; errno kept.
        case system(errno: Int32)
        /// nft refused the commands (syntax, or the kernel rejected the transaction).
        case refused
    }

    public var kind: Kind
    /// nft's own error text, which names the offending line.
    public var message: String

    public init(_ kind: Kind, message: String) { self.kind = kind; self.message = message }

    public var description: String {
        switch kind {
        case .system(let e): "nftables: \(String(cString: strerror(e))) (errno \(e))\(message.isEmpty ? "" : ": \(message)")"
        case .refused: "nftables refused the transaction: \(message)"
        }
    }
}

/// Runs nft command scripts. A protocol so reconciliation logic is tested without the kernel.
public protocol NFTables: AnyObject {
    /// Runs every command of `script` in one kernel transaction (all or nothing); returns nft's output.
    @discardableResult
    func run(_ script: String) throws(NFTablesError) -> String
}

/// libnftables through NFTablesShim. Not thread-safe: one per thread of use.
public final class LibNFTables: NFTables {
    let ctx: OpaquePointer

    /// `namespacePath` (/run/netns/<n>) is for tests; nil works in the caller's namespace.
    /// `json` makes list commands print JSON (`nft -j`).
    public init(namespacePath: String? = nil, json: Bool = false) throws(NFTablesError) {
        var out: OpaquePointer?
        let rc = nftshim_open(namespacePath, json ? 1 : 0, &out)
        guard rc == 0, let out else {
            throw NFTablesError(.system(errno: rc < 0 ? -rc : ENOMEM), message: namespacePath ?? "")
        }
        ctx = out
    }

    deinit { nftshim_close(ctx) }

    @discardableResult
    public func run(_ script: String) throws(NFTablesError) -> String {
        let rc = nftshim_run(ctx, script)
        let output = String(cString: nftshim_output(ctx))
        let error = String(cString: nftshim_error(ctx))
        if rc == -1 { throw NFTablesError(.refused, message: error.trimmingTrailingNewlines) }
        if rc < 0 { throw NFTablesError(.system(errno: -rc), message: error.trimmingTrailingNewlines) }
        return output
    }
}

extension String {
    var trimmingTrailingNewlines: String {
        var s = self
        while s.last == "\n" { s.removeLast() }
        return s
    }
}
