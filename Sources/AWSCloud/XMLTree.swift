import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// An XML element as the AWS query APIs answer: name, the text directly inside it, children in
/// order. Attributes are dropped (the query protocol puts nothing in them we read).
public struct XMLTreeNode: Sendable, Hashable {
    /// Without any namespace prefix.
    public var name: String
    /// The element's own character data, trimmed of surrounding whitespace.
    public var text: String
    public var children: [XMLTreeNode]

    public init(name: String, text: String = "", children: [XMLTreeNode] = []) {
        self.name = name; self.text = text; self.children = children
    }

    public func child(_ name: String) -> XMLTreeNode? { children.first { $0.name == name } }

    public func children(named name: String) -> [XMLTreeNode] { children.filter { $0.name == name } }

    /// Every element at `path` ("a/b/c", relative to this one), in document order.
    public func all(_ path: String) -> [XMLTreeNode] {
        var level = [self]
        for step in path.split(separator: "/") {
            level = level.flatMap { $0.children.filter { $0.name == step } }
        }
        return level
    }

    public func first(_ path: String) -> XMLTreeNode? { all(path).first }

    /// The text at `path`, nil when there is no such element.
    public func text(_ path: String) -> String? { first(path)?.text }

    /// The first element named `name` at any depth (depth first, this one included).
    public func descendant(named name: String) -> XMLTreeNode? {
        if self.name == name { return self }
        for c in children { if let d = c.descendant(named: name) { return d } }
        return nil
    }

    /// nil when `bytes` is not well-formed XML.
    public static func parse(_ bytes: [UInt8]) -> XMLTreeNode? {
        let builder = TreeBuilder()
        let parser = XMLParser(data: Data(bytes))
        parser.shouldProcessNamespaces = false
        parser.shouldResolveExternalEntities = false
        parser.delegate = builder
        guard parser.parse(), builder.failed == false else { return nil }
        return builder.root
    }
}

/// Builds the tree from XMLParser's callbacks; used by one parse on one thread.
private final class TreeBuilder: NSObject, XMLParserDelegate {
    var stack: [(node: XMLTreeNode, text: String)] = []
    var root: XMLTreeNode?
    var failed = false

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName qName: String?,
                attributes attributeDict: [String: String] = [:]) {
        let local = elementName.split(separator: ":").last.map(String.init) ?? elementName
        stack.append((XMLTreeNode(name: local), ""))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        guard !stack.isEmpty else { return }
        stack[stack.count - 1].text += string
    }

    func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
        guard !stack.isEmpty else { return }
        stack[stack.count - 1].text += String(decoding: CDATABlock, as: UTF8.self)
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        guard let popped = stack.popLast() else { failed = true; return }
        var node = popped.node
        node.text = popped.text.trimmingCharacters(in: .whitespacesAndNewlines)
        if stack.isEmpty {
            root = node
        } else {
            stack[stack.count - 1].node.children.append(node)
        }
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: any Error) { failed = true }
}
