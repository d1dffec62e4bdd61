import FoundationEssentials

// The subset of the Kubernetes wire format ipamd reads. Unknown fields are ignored, so newer
// API servers keep working.

public struct ObjectMeta: Codable, Sendable, Hashable {
    public var name: String?
    public var namespace: String?
    public var uid: String?
    public var resourceVersion: String?
    public var labels: [String: String]?
    public var annotations: [String: String]?

    public init(name: String? = nil, namespace: String? = nil, uid: String? = nil, resourceVersion: String? = nil,
                labels: [String: String]? = nil, annotations: [String: String]? = nil) {
        self.name = name; self.namespace = namespace; self.uid = uid; self.resourceVersion = resourceVersion
        self.labels = labels; self.annotations = annotations
    }
}

public struct ResourceRequirements: Codable, Sendable, Hashable {
    public var limits: [String: String]?
    public var requests: [String: String]?

    public init(limits: [String: String]? = nil, requests: [String: String]? = nil) { self.limits = limits; self.requests = requests }

    // Quantities are strings on the wire, but be lenient with numbers written by hand.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        limits = try c.decodeIfPresent([String: Quantity].self, forKey: .limits)?.mapValues(\.text)
        requests = try c.decodeIfPresent([String: Quantity].self, forKey: .requests)?.mapValues(\.text)
    }

    struct Quantity: Decodable {
        var text: String
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { text = s } else { text = String(try c.decode(Double.self)) }
        }
    }
}

public struct Container: Codable, Sendable, Hashable {
    public var name: String?
    public var resources: ResourceRequirements?

    public init(name: String? = nil, resources: ResourceRequirements? = nil) { self.name = name; self.resources = resources }
}

public struct PodSpec: Codable, Sendable, Hashable {
    public var nodeName: String?
    public var containers: [Container]?

    public init(nodeName: String? = nil, containers: [Container]? = nil) { self.nodeName = nodeName; self.containers = containers }
}

public struct Pod: Codable, Sendable, Hashable {
    public var metadata: ObjectMeta
    public var spec: PodSpec?

    public init(metadata: ObjectMeta, spec: PodSpec? = nil) { self.metadata = metadata; self.spec = spec }
}

public struct ListMeta: Codable, Sendable, Hashable {
    public var resourceVersion: String?
    public var `continue`: String?
}

public struct PodList: Codable, Sendable, Hashable {
    public var metadata: ListMeta
    public var items: [Pod]
}

/// metav1.Status: the body of every error answer and of a watch ERROR event.
public struct Status: Codable, Sendable, Hashable {
    public var code: Int?
    public var reason: String?
    public var message: String?
}

public enum WatchEventType: String, Codable, Sendable {
    case added = "ADDED", modified = "MODIFIED", deleted = "DELETED", bookmark = "BOOKMARK", error = "ERROR"
}

/// One line of a watch stream.
public enum WatchEvent<Object: Decodable & Sendable>: Sendable {
    case added(Object), modified(Object), deleted(Object)
    /// Only metadata.resourceVersion is meaningful.
    case bookmark(resourceVersion: String)
    case error(Status)

    struct TypeOnly: Decodable { var type: WatchEventType }
    struct Typed<T: Decodable>: Decodable { var object: T }
    struct BookmarkObject: Decodable { var metadata: ObjectMeta }

    public static func decode(line: some Collection<UInt8>) throws(KubeError) -> WatchEvent {
        let data = Data(line)
        let d = JSONDecoder()
        do {
            switch try d.decode(TypeOnly.self, from: data).type {
            case .added: return .added(try d.decode(Typed<Object>.self, from: data).object)
            case .modified: return .modified(try d.decode(Typed<Object>.self, from: data).object)
            case .deleted: return .deleted(try d.decode(Typed<Object>.self, from: data).object)
            case .bookmark: return .bookmark(resourceVersion: try d.decode(Typed<BookmarkObject>.self, from: data).object.metadata.resourceVersion ?? "")
            case .error: return .error(try d.decode(Typed<Status>.self, from: data).object)
            }
        } catch {
            throw KubeError.decode("watch event: \(error) in \(String(decoding: line.prefix(200), as: UTF8.self))")
        }
    }
}

/// Splits a byte stream into newline-terminated lines (watch events), across chunk boundaries.
public struct LineSplitter: Sendable {
    private var pending: [UInt8] = []
    /// A single event larger than this is a broken stream, not a pod.
    public static let maxLine = 16 << 20

    public init() {}

    public mutating func feed(_ bytes: some Collection<UInt8>) throws(KubeError) -> [[UInt8]] {
        pending.append(contentsOf: bytes)
        var lines: [[UInt8]] = []
        var start = 0
        while let nl = pending[start...].firstIndex(of: 10) {
            let line = pending[start..<nl]
            if !line.allSatisfy({ $0 == 13 || $0 == 32 }) { lines.append(Array(line)) }
            start = nl + 1
        }
        pending.removeFirst(start)
        if pending.count > Self.maxLine { throw KubeError.decode("watch event longer than \(Self.maxLine) bytes") }
        return lines
    }

    /// What is left when the stream ends: a last event without a newline.
    public var remainder: [UInt8]? { pending.allSatisfy({ $0 == 13 || $0 == 32 }) ? nil : pending }
}
