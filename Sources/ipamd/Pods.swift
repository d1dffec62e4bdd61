import ArgumentParser
import AsyncHTTPClient
import Foundation
import IPAMDCore
import NIOCore

/// `ipamd pods`: the branch pods of a running ipamd as a table.
struct Pods: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the pods a running ipamd knows: pod, container, VLAN, IP, mode, age, state, datapath.")

    @OptionGroup var socket: DebugSocketOption
    @Flag(help: "Print the JSON ipamd answered instead of the table.")
    var json = false

    func run() async throws {
        let body = try await DebugClient(socket: socket.resolved).get("/v1/pods?datapath=1")
        if json {
            print(String(decoding: body, as: UTF8.self))
            return
        }
        let pods = try JSONDecoder().decode([PodView].self, from: Data(body))
        let now = Date()
        var rows = [["POD", "CONTAINER", "VLAN", "IP", "MODE", "AGE", "STATE", "DATAPATH"]]
        for p in pods where p.branch || p.state == .served {
            rows.append([
                "\(p.namespace)/\(p.name)", String((p.containerID ?? "-").prefix(12)), p.vlanID.map(String.init) ?? "-", p.ipv4 ?? "-",
                p.mode ?? "-", p.servedAt.flatMap { age(since: $0, now: now) } ?? "-", p.state.rawValue, p.datapath ?? "-",
            ])
        }
        print(table(rows), terminator: "")
        if pods.contains(where: { $0.datapath != nil && $0.datapath != "ok" }) { throw ViewExit.drift }
    }
}

/// Columns padded to their widest cell.
func table(_ rows: [[String]]) -> String {
    guard let first = rows.first else { return "" }
    let widths = first.indices.map { i in rows.map { $0[i].count }.max() ?? 0 }
    return rows.map { row in
        row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  ")
    }.joined(separator: "\n") + "\n"
}

/// "5s", "3m", "2h", "4d" since an RFC 3339 time.
func age(since text: String, now: Date) -> String? {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    guard let t = f.date(from: text) ?? ISO8601DateFormatter().date(from: text) else { return nil }
    let s = max(0, Int(now.timeIntervalSince(t)))
    return s < 120 ? "\(s)s" : s < 7200 ? "\(s / 60)m" : s < 172_800 ? "\(s / 3600)h" : "\(s / 86400)d"
}

/// GETs on ipamd's debug socket (HTTP over a Unix socket, through AsyncHTTPClient).
struct DebugClient {
    let socket: String

    /// The body of a 200; exits 4 when ipamd cannot be reached, 3 on a 404 (not served).
    func get(_ path: String) async throws -> [UInt8] {
        guard let url = URL(httpURLWithSocketPath: socket, uri: path) else {
            throw ValidationError("not a usable socket path: \(socket)")
        }
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .GET
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        } catch {
            FileHandle.standardError.write(Data("ipamd: cannot reach ipamd at \(socket): \(error)\n".utf8))
            throw ViewExit.unreachable
        }
        let body = Array(try await response.body.collect(upTo: 16 << 20).readableBytesView)
        switch response.status.code {
        case 200: return body
        case 404:
            FileHandle.standardError.write(Data("ipamd: \(String(decoding: body, as: UTF8.self))".utf8))
            throw ViewExit.notServed
        default:
            FileHandle.standardError.write(Data("ipamd: HTTP \(response.status.code): \(String(decoding: body, as: UTF8.self))".utf8))
            throw ViewExit.unreachable
        }
    }
}
