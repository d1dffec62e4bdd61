import TestSupport
import Foundation
import NetModel
import NodeSetup
import Testing

/// libnftables through the shim, in throwaway namespaces: the SNAT table's transaction semantics.
@Suite(.ownThread) struct NFTablesTests {
    let settings = SNATSettings(vpcCIDRs: [IPPrefix("10.0.0.0/16")!], primaryInterface: "eth0", primaryIP: IPv4Address(10, 0, 0, 10))

    /// The table's rules as (chain, comment) pairs, from libnftables' own JSON listing.
    func rules(_ ns: TestNamespace) throws -> [String] {
        let out = try LibNFTables(namespacePath: ns.path, json: true).run("list ruleset")
        let json = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
        return (json["nftables"] as! [[String: Any]]).compactMap { $0["rule"] as? [String: Any] }
            .map { "\($0["table"]!)/\($0["chain"]!): \($0["comment"] ?? "")" }
    }

    @Test(.enabled(if: isRoot, "needs root: creates network namespaces"))
    func replacingTwiceLeavesOneCopy() throws {
        let ns = try TestNamespace.create("nft")
        defer { ns.destroy() }
        let nft = try LibNFTables(namespacePath: ns.path)
        try nft.run(SNATRuleset.script(settings))
        let once = try rules(ns)
        #expect(once.count == 4)
        try nft.run(SNATRuleset.script(settings))
        #expect(try rules(ns) == once)
    }

    @Test(.enabled(if: isRoot, "needs root: creates network namespaces"))
    func refusedTransactionKeepsThePreviousTable() throws {
        let ns = try TestNamespace.create("nft")
        defer { ns.destroy() }
        let nft = try LibNFTables(namespacePath: ns.path)
        try nft.run(SNATRuleset.script(settings))
        let before = try rules(ns)
        // The delete and the new table are fine; the last rule names a set that does not exist,
        // so the kernel must reject all of it, the delete included.
        let broken = SNATRuleset.script(settings) + "add rule ip aws-cni snat-pod-egress ip daddr @no-such-set accept\n"
        #expect { try nft.run(broken) } throws: {
            let e = $0 as! NFTablesError
            // nft's text comes with the kernel's errno but may point at another line of the batch.
            return e.kind == .refused && e.message.contains("No such file or directory")
        }
        #expect(try rules(ns) == before)
    }

    @Test(.enabled(if: isRoot, "needs root: creates network namespaces"))
    func removalIsIdempotentAndStaysInItsNamespace() throws {
        let ns = try TestNamespace.create("nft")
        defer { ns.destroy() }
        let nft = try LibNFTables(namespacePath: ns.path)
        try nft.run(SNATRuleset.removal)  // nothing there yet: still succeeds
        try nft.run(SNATRuleset.script(settings))
        // The host's namespace never sees the table: the context works only inside ns.
        let host = try LibNFTables(json: true).run("list tables")
        #expect(!host.contains("\"aws-cni\""))
        try nft.run(SNATRuleset.removal)
        #expect(try rules(ns).isEmpty)
    }
}
